"""Every grader kind, templates, multi weights and the bad-input cases (raises, hangs, NaN, out of range)."""

import math
import threading
import time

import pytest

from jupyter_tune.graders import (
    LabelMatch,
    ModelGrader,
    Multi,
    PythonGrader,
    StringCheck,
    TextSimilarity,
    constant_groups,
    grade_rows,
    grader_from_spec,
    render,
    safe_grade,
)

ROW = {"prompt": "Capital of France?", "reference": "Paris", "label": "Geography", "meta": {"lang": "en"}}


def test_render_templates():
    assert render("{{ item.reference }}/{{sample.output_text}}", "x", ROW) == "Paris/x"
    assert render("{{ item.meta.lang }}", "x", ROW) == "en"
    assert render("literal", "x", ROW) == "literal"
    with pytest.raises(KeyError, match="nothere"):
        render("{{ item.nothere }}", "x", ROW)


@pytest.mark.parametrize(("op", "sample", "want"), [
    ("eq", "Paris", 1.0), ("eq", "paris", 0.0), ("ne", "Lyon", 1.0), ("ne", "Paris", 0.0),
    ("like", "It is Paris.", 1.0), ("like", "it is paris", 0.0), ("ilike", "it is PARIS", 1.0),
])
def test_string_check(op, sample, want):
    assert StringCheck(operation=op).grade(sample, ROW) == want


def test_string_check_rejects_unknown_operation_and_uses_templates():
    with pytest.raises(ValueError, match="operation"):
        StringCheck(operation="contains")
    g = StringCheck(input="{{ item.label }}", reference="Geography")
    assert g.grade("anything", ROW) == 1.0
    assert g.to_json()["type"] == "string_check"


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "rouge_1", "rouge_l"])
def test_text_similarity(metric):
    g = TextSimilarity(evaluation_metric=metric, reference="the cat sat on the mat today")
    same = g.grade("the cat sat on the mat today", ROW)
    other = g.grade("completely unrelated words here", ROW)
    assert same == pytest.approx(1.0)
    assert 0.0 <= other < same
    with pytest.raises(ValueError, match="evaluation_metric"):
        TextSimilarity(evaluation_metric="cosine")


def test_label_match():
    assert LabelMatch().grade(" geography ", ROW) == 1.0
    assert LabelMatch(case_sensitive=True).grade("geography", ROW) == 0.0
    assert LabelMatch(contains=True).grade("The label is Geography.", ROW) == 1.0
    assert LabelMatch().grade("Paris", {"reference": "Paris"}) == 1.0


def test_label_match_with_choices_reads_the_one_label_named():
    item = {"reference": "Urology"}
    grader = LabelMatch(choices=["Neurology", "Urology", "Cardiovascular / Pulmonary"])
    assert grader.grade("The specialty is urology.", item) == 1.0
    assert grader.grade("Urology or Neurology", item) == 0.0  # two labels named: no answer
    assert grader.grade("Urology, Neurology, Cardiovascular / Pulmonary", item) == 0.0  # reciting the list earns nothing
    assert grader.grade("Gastroenterology", item) == 0.0
    assert LabelMatch(contains=True).grade("Urology, Neurology", item) == 1.0  # what choices guards against
    built = grader_from_spec({"kind": "label_match", "choices": ["Neurology", "Pediatric Neurology"]})
    assert built.grade("pediatric neurology it is", {"reference": "Pediatric Neurology"}) == 1.0  # the longer one
    assert built.to_json()["choices"] == ["Neurology", "Pediatric Neurology"]

def _exact(sample, item):
    return float(sample == item["reference"])


def test_python_grader_and_its_source():
    g = PythonGrader(_exact, name="exact")
    assert g.grade("Paris", ROW) == 1.0
    assert "def _exact" in g.to_json()["source"]
    assert "lambda" in PythonGrader(lambda s, i: 1.0).to_json()["source"]


def test_model_grader_with_a_fake_judge():
    prompts = []

    def judge(prompt):
        prompts.append(prompt)
        return "Score: 8 out of 10"

    g = ModelGrader(judge)
    assert g.grade("Paris", ROW) == pytest.approx(0.8)
    assert "Capital of France?" in prompts[0] and "Answer: Paris" in prompts[0]
    assert safe_grade(ModelGrader(lambda p: "no idea"), "x", ROW)[0] == 0.0


def test_multi_weights():
    g = Multi([StringCheck(), PythonGrader(lambda s, i: 0.5)], weights=[3, 1])
    assert g.grade("Paris", ROW) == pytest.approx((3 * 1 + 1 * 0.5) / 4)
    assert g.grade("Lyon", ROW) == pytest.approx(0.5 / 4)
    assert [d["type"] for d in g.to_json()["graders"]] == ["string_check", "python"]
    with pytest.raises(ValueError, match="weights"):
        Multi([StringCheck()], weights=[1, 2])
    # a sub-grader's bad value fails the row through the runner
    score, error = safe_grade(Multi([PythonGrader(lambda s, i: 2.0, name="big")]), "x", ROW)
    assert score == 0.0 and "big" in error


def _raises(sample, item):
    raise RuntimeError("boom")


_RELEASE = threading.Event()  # set at the end of each test that hangs a function: its thread then ends


def _hangs(sample, item):
    _RELEASE.wait(30)
    return 1.0


@pytest.fixture
def release_hung():
    _RELEASE.clear()
    yield
    _RELEASE.set()


@pytest.mark.parametrize(("fn", "message"), [
    (_raises, "RuntimeError: boom"),
    (lambda s, i: math.nan, "NaN"),
    (lambda s, i: 1.5, "outside [0, 1]"),
    (lambda s, i: -0.1, "outside [0, 1]"),
    (lambda s, i: "high", "not a number"),
])
def test_bad_values_score_zero_and_are_counted(fn, message):
    rows = [ROW, {"reference": "Lyon"}]
    result = grade_rows(PythonGrader(lambda s, i: fn(s, i) if i is ROW else 1.0, name="g"), ["a", "b"], rows)
    assert result.scores == [0.0, 1.0]
    assert len(result.errors) == 1 and result.errors[0][0] == 0 and message in result.errors[0][1]
    assert result.summary()["errors"] == 1 and result.mean == 0.5 and result.pass_rate == 0.5


def test_a_hung_grader_times_out(release_hung):
    start = time.monotonic()
    result = grade_rows(PythonGrader(_hangs, time_limit=0.2), ["a", "b"], [ROW, ROW])
    assert time.monotonic() - start < 5
    assert result.scores == [0.0, 0.0]
    assert len(result.errors) == 2 and "time limit" in result.errors[0][1]


def test_pass_rate_uses_the_threshold():
    g = TextSimilarity(pass_threshold=0.9)
    result = grade_rows(g, ["Paris", "Pari", "London"], [ROW] * 3)
    assert result.scores[0] == 1.0
    assert result.pass_rate == pytest.approx(1 / 3)


def test_constant_groups():
    assert constant_groups([1, 1, 0, 1, 0.5, 0.5, 0.2], 2) == 2
    assert constant_groups([1, 1, 1], 1) == 0


def test_a_hung_part_of_multi_times_out(release_hung):
    g = Multi([StringCheck(), PythonGrader(_hangs, name="slow", time_limit=0.2)])
    start = time.monotonic()
    score, error = safe_grade(g, "Paris", ROW)
    assert time.monotonic() - start < 5
    assert score == 0.0 and "slow" in error and "time limit" in error
