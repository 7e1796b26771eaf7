"""``baseline``: what a classic text classifier scores on the same rows, to read a tuned model against.

A TF-IDF + linear model (scikit-learn) trained on the training rows in seconds, and the majority class.
Both come back as EvaluationReports with the metrics of ``jt.evaluate`` (same code, same label set), so
``jt.compare(base, tuned, baseline=...)`` can lay them beside the models.
"""

from __future__ import annotations

import time
from typing import Any

from ..data.loader import load_dataset
from ..params.arguments import BaselineArgs
from ..params.gate import checked
from .classification import classification_metrics, confusion
from .report import EvaluationReport
from .run import EvaluationError, _check_labels

TFIDF_NAME = "baseline: TF-IDF + linear SVM"
MAJORITY_NAME = "baseline: majority class"


def _text(example) -> str:
    """The text the model is shown: the prompt's turns (system and user), template applied."""
    return "\n".join(m["content"] for m in example.prompt_messages)


def tfidf_pipeline():
    """Word unigrams, sublinear term frequency, words in over 90 % of the rows dropped (a prompt template's
    constant words), into a linear SVM. Measured on the walkthrough's tasks (README, "A baseline beside every
    report"): unigrams beat 1-2 grams (small-eval 0.823 vs 0.790 macro F1, eval.jsonl 0.568 vs 0.506) and
    logistic regression (0.834 and 0.500, at 10-20x the time on eval.jsonl)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    return make_pipeline(TfidfVectorizer(sublinear_tf=True, max_df=0.9), LinearSVC(C=1.0))


@checked(BaselineArgs)
def baseline(train: Any, eval: Any, prompt_template: str | None = None, labels: list[str] | None = None,
             kind: str = "tfidf") -> EvaluationReport:
    """Train a classic classifier on `train` and evaluate it on `eval` (classification only).

    train, eval: path, list of dicts or DataFrame, in any dataset format (as ``jt.evaluate`` takes them).
    prompt_template: the template the models are shown (its constant words barely move TF-IDF).
    labels: the candidate labels, as in ``jt.evaluate`` (default: those of `eval`'s ground truth); training
      rows with other labels are left out, so every prediction is a candidate, as in score mode.
    kind: "tfidf" (TF-IDF word 1-2 grams + linear SVM) or "majority" (always the most frequent training label).
    Returns an EvaluationReport whose model_name says which baseline it is; the TF-IDF report carries the
    majority-class report on the same rows as ``report.majority``.
    """
    start = time.perf_counter()
    train_ds = load_dataset(train, prompt_template, require_answer=True, what="baseline training data")
    eval_ds = load_dataset(eval, prompt_template, require_answer=True, what="evaluation data")
    truth = [ex.answer for ex in eval_ds.examples]
    label_list = _check_labels(labels, truth)
    known = set(label_list)
    pairs = [(_text(ex), ex.answer) for ex in train_ds.examples if ex.answer in known]
    if not pairs:
        raise EvaluationError(f"No training row of {train_ds.source} has one of the evaluation labels "
                              f"({', '.join(label_list[:5])}...); train and evaluate on the same task.")
    x_train, y_train = zip(*pairs, strict=True)
    x_eval = [_text(ex) for ex in eval_ds.examples]
    if kind == "majority":
        return _report(MAJORITY_NAME, _majority(y_train, len(x_eval)), eval_ds, truth, label_list, start)
    if len(set(y_train)) < 2:  # a linear model needs two classes; one label is the majority baseline
        raise EvaluationError(f"The training rows of {train_ds.source} have a single evaluation label "
                              f"({y_train[0]!r}); a TF-IDF model needs two. Use kind='majority'.")
    majority = _report(MAJORITY_NAME, _majority(y_train, len(x_eval)), eval_ds, truth, label_list, start)
    try:
        model = tfidf_pipeline().fit(list(x_train), list(y_train))
    except ValueError as e:  # sklearn: no word survives ("empty vocabulary", "After pruning, no terms remain")
        raise EvaluationError(
            f"The TF-IDF baseline finds no words to learn from in the training rows of {train_ds.source} ({e}): it "
            "reads words of two or more letters and leaves out those in over 90 % of the rows, such as a prompt "
            "template's constant words. Check that prompt_template holds a field such as {input_text}, or use "
            "kind='majority'.") from None
    report = _report(TFIDF_NAME, [str(p) for p in model.predict(x_eval)], eval_ds, truth, label_list, start)
    report.majority = majority
    return report


def _majority(y_train, n: int) -> list[str]:
    from collections import Counter

    # Counter.most_common keeps first-seen order among ties: the same label every run.
    return [Counter(y_train).most_common(1)[0][0]] * n


def _report(name: str, preds: list[str], eval_ds, truth: list[str], label_list: list[str],
            start: float) -> EvaluationReport:
    import pandas as pd

    from ..generation.prompts import row_fields

    rows = pd.DataFrame([row_fields(ex) for ex in eval_ds.examples])
    rows["ground_truth"] = truth
    rows["prediction"] = preds
    rows["correct"] = [p == t for p, t in zip(preds, truth, strict=True)]
    rows["status"] = ""
    return EvaluationReport(task_type="classification", mode=None,
                            metrics=classification_metrics(truth, preds, label_list), predictions=rows,
                            evaluation_status={"num_successful_rows": len(truth), "num_total_rows": len(truth)},
                            confusion_matrix=confusion(truth, preds, label_list), labels=label_list,
                            model_name=name, elapsed_s=time.perf_counter() - start)
