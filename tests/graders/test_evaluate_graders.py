"""jt.evaluate(..., graders=[...]) on the tiny model: per-grader mean, pass rate, errors and per-row scores in
the report, through to_json/from_json and beside the base in jt.compare."""

import math

import pytest

import jupyter_tune as jt
from jupyter_tune.evaluation import EvaluationReport
from jupyter_tune.graders import LabelMatch, Multi, PythonGrader, StringCheck, TextSimilarity
from jupyter_tune.params import ParameterError

LABELS = ["Cardiology", "Neurology", "Urology"]
ROWS = [
    {"input_text": "Echocardiogram and chest pain.", "output_text": "Cardiology"},
    {"input_text": "CT head without contrast.", "output_text": "Neurology"},
    {"input_text": "Cystoscopy.", "output_text": "Urology"},
    {"input_text": "Headache for two weeks.", "output_text": "Neurology"},
]


@pytest.fixture(scope="module")
def chatty(chatty_model_dir):
    return jt.load_model(str(chatty_model_dir), dtype="float32")


def _boom(sample, item):
    if item["reference"] == "Urology":
        raise RuntimeError("no urology")
    return 1.0


def test_graders_in_a_classification_report(chatty):
    graders = [LabelMatch(), StringCheck(name="is_neuro", operation="eq", reference="Neurology"),
               PythonGrader(_boom, name="boom"), PythonGrader(lambda s, i: math.nan, name="nan")]
    report = jt.evaluate(chatty, ROWS, graders=graders, progress=False)
    by = {g["name"]: g for g in report.graders}
    correct = report.predictions["correct"].tolist()
    assert by["label_match"]["mean"] == pytest.approx(sum(correct) / 4)
    assert report.predictions["grader:label_match"].tolist() == [float(c) for c in correct]
    preds = report.predictions["prediction"].tolist()
    assert by["is_neuro"]["pass_rate"] == pytest.approx(sum(p == "Neurology" for p in preds) / 4)
    assert by["boom"]["errors"] == 1 and by["boom"]["error_rows"][0][0] == 2
    assert report.predictions["grader:boom"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert by["nan"]["errors"] == 4 and by["nan"]["mean"] == 0.0
    assert "def _boom" in by["boom"]["grader"]["source"]
    assert "graders: label_match" in report.summary()
    again = EvaluationReport.from_json(report.to_json())
    assert again.graders == report.to_json()["graders"]
    # the same graders on a second report compare side by side
    comparison = jt.compare(report, again)
    assert comparison.graders["label_match"] == (by["label_match"]["mean"], by["label_match"]["mean"])
    assert "label_match" in comparison.summary()


def test_graders_on_generated_text(chatty, monkeypatch):
    answers = ["Cardiology", "neuro stuff", "Urology!", "nothing"]
    monkeypatch.setattr("jupyter_tune.evaluation.run.generate_for", lambda lm, ds, **kw: (answers, [""] * 4, 0))
    graders = [Multi([StringCheck(operation="ilike"), TextSimilarity(evaluation_metric="rouge_1")],
                     weights=[1, 1], name="mix"),
               # a spec, built as a GRPO job builds it: the python grader runs in its worker process
               {"kind": "python", "name": "short", "source": "def grade(sample, item):\n    return len(sample) < 9\n"}]
    report = jt.evaluate(chatty, ROWS, task_type="text_generation", graders=graders, progress=False)
    assert report.predictions["grader:short"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert report.graders[1]["grader"]["source"].startswith("def grade") and report.graders[1]["skipped"] == 0
    scores = report.predictions["grader:mix"].tolist()
    assert scores[0] == pytest.approx(1.0) and scores[3] == pytest.approx(0.0)
    assert scores[2] == pytest.approx(1.0)  # "Urology!" contains the label and matches its one word
    assert report.graders[0]["pass_rate"] == pytest.approx(0.5)
    assert "rouge-l_f1_score" in report.metrics.columns  # the existing metrics are unchanged


def test_bad_graders_are_refused_before_the_model_loads():
    with pytest.raises(ValueError, match="not a grader"):
        jt.evaluate("no-such-model", ROWS, graders=[lambda s, i: 1.0], progress=False)
    with pytest.raises(ValueError, match="two graders"):
        jt.evaluate("no-such-model", ROWS, graders=[LabelMatch(), LabelMatch()], progress=False)
    # each item: a grader object or a spec, anything else refused by its index (issue 33)
    with pytest.raises(ParameterError, match=r"graders\[1\]: 5 is not a grader"):
        jt.evaluate("no-such-model", ROWS, graders=[LabelMatch(), 5], progress=False)
    with pytest.raises(ParameterError, match=r"graders\[0\]: string_check grader: reference=5"):
        jt.evaluate("no-such-model", ROWS, graders=[{"kind": "string_check", "reference": 5}], progress=False)
    with pytest.raises(ParameterError, match=r"graders\[0\]: python grader: source=.*grade\(sample, item\)"):
        jt.evaluate("no-such-model", ROWS, graders=[{"kind": "python", "source": "def grade(s):\n    return 1\n"}],
                    progress=False)
