"""Metrics against the libraries they come from, and the mapping of free answers to labels (no model)."""

import random

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.metrics import classification_report, confusion_matrix

from jupyter_tune.evaluation.classification import (
    UNMAPPED,
    classification_metrics,
    confusion,
    label_mapper,
    normalize,
)
from jupyter_tune.evaluation.text_metrics import text_generation_metrics

LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_scikit_learns(seed):
    rng = random.Random(seed)
    y_true = [rng.choice(LABELS) for _ in range(60)]
    y_pred = [t if rng.random() < 0.5 else rng.choice(LABELS) for t in y_true]
    df = classification_metrics(y_true, y_pred, LABELS)
    ref = classification_report(y_true, y_pred, labels=LABELS, output_dict=True, zero_division=0)
    assert list(df.index) == LABELS + ["macro avg", "micro avg", "weighted avg"]
    for row in LABELS + ["macro avg", "weighted avg"]:
        assert df.loc[row, "precision"] == pytest.approx(ref[row]["precision"])
        assert df.loc[row, "recall"] == pytest.approx(ref[row]["recall"])
        assert df.loc[row, "f1_score"] == pytest.approx(ref[row]["f1-score"])
        assert df.loc[row, "support"] == ref[row]["support"]
    # all labels present: micro avg is accuracy
    assert df.loc["micro avg", "f1_score"] == pytest.approx(ref["accuracy"])


def test_unmapped_answers_count_as_misses():
    y_true = ["Urology", "Urology", "Neurology", "Neurology"]
    y_pred = ["Urology", None, "Neurology", None]
    df = classification_metrics(y_true, y_pred, ["Neurology", "Urology"])
    assert df.loc["Urology", "recall"] == 0.5 and df.loc["Urology", "precision"] == 1.0
    ref = classification_report(y_true, [p or UNMAPPED for p in y_pred], labels=["Neurology", "Urology"],
                                output_dict=True, zero_division=0)
    assert df.loc["macro avg", "f1_score"] == pytest.approx(ref["macro avg"]["f1-score"])
    cm = confusion(y_true, y_pred, ["Neurology", "Urology"])
    assert list(cm.columns) == ["Neurology", "Urology", UNMAPPED]
    assert cm.loc["Urology", UNMAPPED] == 1 and cm.to_numpy().sum() == 4


def test_confusion_matrix_equals_scikit_learns():
    y_true = ["Urology", "Neurology", "Neurology", "Orthopedic"]
    y_pred = ["Neurology", "Neurology", "Orthopedic", "Orthopedic"]
    labels = ["Neurology", "Orthopedic", "Urology"]
    assert (confusion(y_true, y_pred, labels).to_numpy() == confusion_matrix(y_true, y_pred, labels=labels)).all()


@pytest.mark.parametrize("answer, label", [
    ("Neurology", "Neurology"), (" neurology. ", "Neurology"), ("NEUROLOGY!", "Neurology"),
    ("cardiovascular  /\npulmonary", "Cardiovascular / Pulmonary"), ('"Urology"', "Urology"),
    ("Neuro", None), ("The answer is Neurology", None), ("", None), (None, None),
])
def test_answers_map_to_labels_after_normalising(answer, label):
    assert label_mapper(LABELS)(answer) == label


def test_normalize_keeps_inner_punctuation():
    assert normalize("  Cardiovascular / Pulmonary. ") == "cardiovascular / pulmonary"


def test_text_metrics_equal_the_libraries():
    refs = ["the cat sat on the mat", "a quick brown fox", "hello world"]
    preds = ["the cat sat on a mat", "a quick brown fox", "goodbye"]
    df = text_generation_metrics(refs, preds)
    assert df["bleu4_score"].iloc[0] == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score / 100)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    f1 = [scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(refs, preds, strict=True)]
    assert df["rouge-l_f1_score"].iloc[0] == pytest.approx(sum(f1) / 3)
    assert df["exact_match"].iloc[0] == pytest.approx(1 / 3)
    assert list(df.columns) == ["bleu4_score", "rouge-l_precision", "rouge-l_recall", "rouge-l_f1_score",
                                "exact_match"]
