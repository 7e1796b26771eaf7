"""Classification metrics (scikit-learn) and the mapping of free answers to labels."""

from __future__ import annotations

import string
import warnings
from collections.abc import Sequence

# The confusion matrix's column for generated answers that match no label.
UNMAPPED = "(no label)"
AVERAGES = ("macro", "micro", "weighted")
METRIC_COLUMNS = ["precision", "recall", "f1_score", "support"]
_ENDS = string.punctuation + string.whitespace
# A validation set whose answers take at most this many distinct values (and repeat) is a classification set.
MAX_CLASSES = 100


def normalize(text: str) -> str:
    """Case and white space folded, punctuation stripped at both ends: ' Neurology.' -> 'neurology'."""
    return " ".join(text.split()).casefold().strip(_ENDS)


def label_mapper(labels: Sequence[str]):
    """A function from a generated answer to the label it names, or None."""
    table: dict[str, str] = {}
    for label in labels:
        table.setdefault(normalize(label), label)

    def to_label(answer: str | None) -> str | None:
        return None if answer is None else table.get(normalize(answer))

    return to_label


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str]):
    """Per-label precision, recall, f1_score, support, then macro / micro / weighted avg rows.

    A prediction of None (an answer that names no label) counts as wrong: a miss for its true label.
    """
    import numpy as np
    import pandas as pd
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(labels)
    pred = [UNMAPPED if p is None else p for p in y_pred]
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    rows = {lab: [p[i], r[i], f[i], int(s[i])] for i, lab in enumerate(labels)}
    for avg in AVERAGES:
        pa, ra, fa, _ = precision_recall_fscore_support(y_true, pred, labels=labels, average=avg, zero_division=0)
        rows[f"{avg} avg"] = [pa, ra, fa, int(np.sum(s))]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=METRIC_COLUMNS)
    df.index.name = "label"
    df["support"] = df["support"].astype(int)
    return df


def confusion(y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str]):
    """Rows: true label; columns: predicted label (plus UNMAPPED when some answers named no label, and any
    predicted label outside ``labels``: a classification head's label absent from the evaluation rows)."""
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    pred = [UNMAPPED if p is None else p for p in y_pred]
    others = sorted({p for p in pred if p != UNMAPPED and p not in set(labels)})
    cols = list(labels) + others + ([UNMAPPED] if UNMAPPED in pred else [])
    with warnings.catch_warnings():  # sklearn advises passing labels= when one label occurs; they are passed
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        m = confusion_matrix(y_true, pred, labels=cols)
    return pd.DataFrame(m[: len(labels)], index=pd.Index(list(labels), name="true"),
                        columns=pd.Index(cols, name="predicted"))


def looks_like_classification(answers: list[str | None], train_answers: list[str | None] = ()) -> bool:
    """Few distinct, short answers that repeat: the rows are labelled with classes.

    The training answers count too: a validation set of one row per label (38 rows, 38 labels) is a
    classification set when every one of its answers is a training answer that repeats there."""
    answers = [a for a in answers if a is not None]
    train_answers = [a for a in train_answers if a is not None]
    if train_answers and not set(answers) <= set(train_answers):
        train_answers = []  # answers never seen in training: judge the validation rows alone
    pool = answers + train_answers
    distinct = set(pool)
    return (len(answers) >= 2 and 1 < len(distinct) <= min(MAX_CLASSES, max(2, len(pool) // 2))
            and all(len(a) <= 80 for a in distinct))
