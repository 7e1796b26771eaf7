"""jt.baseline (TF-IDF + linear SVM, majority class) and its column in jt.compare: no model needed."""

import pandas as pd
import pytest

import jupyter_tune as jt
from jupyter_tune.evaluation import EvaluationError, EvaluationReport
from jupyter_tune.evaluation.baseline import MAJORITY_NAME, TFIDF_NAME
from jupyter_tune.evaluation.classification import METRIC_COLUMNS
from jupyter_tune.params import ParameterError

WORDS = {"Urology": "bladder kidney cystoscopy prostate", "Neurology": "brain headache seizure nerve",
         "Orthopedic": "knee fracture hip bone"}
TRAIN = [{"input_text": f"patient {w} exam {i}", "output_text": lab}
         for lab, words in WORDS.items() for i, w in enumerate(words.split())]
TRAIN += [{"input_text": "routine bladder check", "output_text": "Urology"}]  # Urology: the majority
EVAL = [{"prompt": f"{w} pain", "label": lab} for lab, words in WORDS.items() for w in words.split()[:2]]


def test_tfidf_and_majority_reports_have_evaluates_shape():
    report = jt.baseline(TRAIN, EVAL)
    assert isinstance(report, EvaluationReport) and report.model_name == TFIDF_NAME
    assert report.task_type == "classification" and report.labels == sorted(WORDS)
    assert list(report.metrics.columns) == METRIC_COLUMNS
    assert list(report.metrics.index[-3:]) == ["macro avg", "micro avg", "weighted avg"]
    assert report.evaluation_status == {"num_successful_rows": 6, "num_total_rows": 6}
    p = report.predictions
    assert {"prompt", "ground_truth", "prediction", "correct", "status"} <= set(p.columns)
    assert report.macro_f1 == 1.0  # each eval row shares a word with its label's training rows only
    major = report.majority
    assert major.model_name == MAJORITY_NAME and set(major.predictions["prediction"]) == {"Urology"}
    assert major.macro_f1 == pytest.approx((2 * (2 / 6) / (1 + 2 / 6)) / 3)  # Urology: P 2/6, R 1; others 0
    assert "majority class: macro F1 0.167" in report.summary()
    assert jt.baseline(TRAIN, EVAL, kind="majority").macro_f1 == major.macro_f1
    assert "<table" in report._repr_html_()


def test_labels_restrict_the_candidates_and_errors_say_what_to_do(tmp_path):
    labels = ["Neurology", "Orthopedic", "Urology", "Cardiology"]
    report = jt.baseline(pd.DataFrame(TRAIN), EVAL, labels=labels)
    assert report.labels == labels and report.metrics.loc["Cardiology", "support"] == 0
    two = jt.baseline(TRAIN, [r for r in EVAL if r["label"] != "Urology"], labels=["Neurology", "Orthopedic"])
    assert set(two.predictions["prediction"]) <= {"Neurology", "Orthopedic"}  # Urology rows left out of training
    with pytest.raises(ParameterError, match="kind: 'svm' is not one of.*'tfidf'"):
        jt.baseline(TRAIN, EVAL, kind="svm")
    with pytest.raises(EvaluationError, match="not in labels="):
        jt.baseline(TRAIN, EVAL, labels=["Urology"])
    with pytest.raises(EvaluationError, match="single evaluation label.*kind='majority'"):
        jt.baseline(TRAIN, [r for r in EVAL if r["label"] == "Urology"])
    f = tmp_path / "train.jsonl"
    f.write_text('{"input_text": "x"}\n')
    with pytest.raises(jt.DatasetError, match="train.jsonl, line 1"):
        jt.baseline(str(f), EVAL)


def test_compare_shows_the_baseline_and_says_when_tuning_did_not_pay():
    tfidf = jt.baseline(TRAIN, EVAL)
    major = tfidf.majority
    lost = jt.compare(major, major, baseline=tfidf)
    assert lost.beats_baseline is False
    assert "tuned 0.167 < baseline (TF-IDF + linear SVM) 1.000: tuning did not pay on this data" in lost.summary()
    assert lost.metrics.loc["macro avg", ("f1_score", "baseline")] == 1.0
    assert [c for c in lost.metrics.columns if c[0] == "f1_score"] == [
        ("f1_score", "base"), ("f1_score", "tuned"), ("f1_score", "baseline"), ("f1_score", "delta")]
    html = lost._repr_html_()
    assert "tuning did not pay" in html and "data:image/png;base64" in html
    won = jt.compare(major, tfidf, baseline=major)
    assert won.beats_baseline is True and "did not pay" not in won.summary()
    assert "baseline (majority class) 0.167" in won.summary()
    assert "baseline_prediction" in won.fixed.columns and len(won.fixed) == 4
    assert jt.compare(major, tfidf).beats_baseline is None  # without a baseline: as before
    with pytest.raises(ValueError, match="base and baseline reports are on different data"):
        jt.compare(major, tfidf, baseline=jt.baseline(TRAIN, EVAL[:3]))
    with pytest.raises(TypeError, match="EvaluationReports"):
        jt.compare(major, tfidf, baseline="tfidf")


def test_on_the_walkthrough_data_tfidf_beats_the_majority(repo_data):
    report = jt.baseline(repo_data / "small-train.jsonl", repo_data / "small-eval.jsonl")
    assert report.evaluation_status["num_total_rows"] == 80 and len(report.labels) == 5
    assert report.macro_f1 > 0.7  # measured 0.790 (README, "A baseline beside every report")
    assert report.majority.macro_f1 < 0.1
    assert report.elapsed_s < 30
