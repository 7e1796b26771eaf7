"""``baseline``: what a model-free method scores on the same rows, to read a tuned model against.

Classification: a TF-IDF + linear model (scikit-learn) trained on the training rows in seconds, and the
majority class. Generation: the answer of the most similar training input (TF-IDF cosine), and the input's
first words cut to the usual answer length. All come back as EvaluationReports with the metrics of
``jt.evaluate`` (same code, same label set), so ``jt.compare(base, tuned, baseline=...)`` can lay them
beside the models.
"""

from __future__ import annotations

import time
from typing import Any

from ..data.loader import load_dataset
from ..params.arguments import BaselineArgs
from ..params.gate import checked
from .classification import classification_metrics, confusion, looks_like_classification
from .report import EvaluationReport
from .run import EvaluationError, _check_labels
from .text_metrics import exact_match, text_generation_metrics

TFIDF_NAME = "baseline: TF-IDF + linear SVM"
MAJORITY_NAME = "baseline: majority class"
NEAREST_NAME = "baseline: nearest neighbour (TF-IDF)"
LEAD_NAME = "baseline: lead words"
_NEIGHBOUR_BLOCK = 1024  # eval rows per similarity block: a dense block is 1024 x train rows of floats


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
             kind: str = "auto") -> EvaluationReport:
    """Fit a model-free baseline on `train` and evaluate it on `eval`, scored as ``jt.evaluate`` scores.

    train, eval: path, list of dicts or DataFrame, in any dataset format (as ``jt.evaluate`` takes them).
    prompt_template: the template the models are shown (its constant words barely move TF-IDF).
    labels (classification): the candidate labels, as in ``jt.evaluate`` (default: those of `eval`'s ground
      truth); training rows with other labels are left out, so every prediction is a candidate, as in score
      mode. Giving labels makes kind="auto" a classification baseline.
    kind: classification: "tfidf" (TF-IDF word unigrams + linear SVM) or "majority" (always the most
      frequent training label); generation (text_generation metrics: BLEU-4, ROUGE-L, exact match):
      "nearest" (the output of the training row whose input is most similar, by TF-IDF cosine) or "lead"
      (the eval input's first words, as many as the median training output has). "auto" (the default):
      "tfidf" when `labels` is given or the training answers look like class labels (few distinct short
      answers that repeat) and share one with `eval`, else both generation baselines, the better by ROUGE-L
      F1 returned.
    Returns an EvaluationReport whose model_name says which baseline it is; the TF-IDF report carries the
    majority-class report on the same rows as ``report.majority``, and "auto" on generation rows carries the
    other generation baseline as ``report.runner_up``.
    """
    start = time.perf_counter()
    train_ds = load_dataset(train, prompt_template, require_answer=True, what="baseline training data")
    eval_ds = load_dataset(eval, prompt_template, require_answer=True, what="evaluation data")
    truth = [ex.answer for ex in eval_ds.examples]
    if kind == "auto" and (labels is not None or _labels_like(truth, [ex.answer for ex in train_ds.examples])):
        kind = "tfidf"
    if kind in ("auto", "nearest", "lead"):  # "auto" left here: generation rows
        return generation_baseline(train_ds, eval_ds, kind, start)
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


def _labels_like(truth: list[str], train_truth: list[str]) -> bool:
    """Classification rows: the training answers look like labels (few distinct short answers that repeat)
    and an eval answer is one of them. Judged on the training answers: eval rows that repeat training rows
    would make free text repeat too."""
    return bool(set(truth) & set(train_truth)) and looks_like_classification(train_truth)


def generation_baseline(train_ds, eval_ds, kind: str = "auto", start: float | None = None) -> EvaluationReport:
    """The generation baselines on loaded datasets (the end-of-job report calls this): kind "nearest",
    "lead", or "auto": both, the better by ROUGE-L F1 returned with the other as ``runner_up`` (nearest
    wins a tie; lead alone when the inputs hold no word for TF-IDF)."""
    start = time.perf_counter() if start is None else start
    makers = {"nearest": (NEAREST_NAME, _nearest), "lead": (LEAD_NAME, _lead)}
    reports = []
    for name, make in (makers.values() if kind == "auto" else [makers[kind]]):
        try:
            reports.append(_generation_report(name, make(train_ds, eval_ds), eval_ds, start))
        except EvaluationError:
            if kind != "auto":
                raise
    best = max(reports, key=lambda r: r.rouge_l)
    best.runner_up = next((r for r in reports if r is not best), None)
    return best


def _nearest(train_ds, eval_ds) -> list[str]:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    # No max_df pruning: a template's constant words already weigh little, and pruning could empty it.
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    try:
        x_train = vectorizer.fit_transform([_text(ex) for ex in train_ds.examples])
    except ValueError as e:  # sklearn: "empty vocabulary"
        raise EvaluationError(f"The nearest-neighbour baseline finds no words in the training inputs of "
                              f"{train_ds.source} ({e}): it reads words of two or more letters. Use "
                              "kind='lead'.") from None
    x_eval = vectorizer.transform([_text(ex) for ex in eval_ds.examples])
    # Rows are L2-normalised, so the dot product is the cosine; argmax takes the first of equally similar
    # rows (and the first row for an input sharing no word): the same answer every run.
    best = np.concatenate([linear_kernel(x_eval[i:i + _NEIGHBOUR_BLOCK], x_train).argmax(axis=1)
                           for i in range(0, x_eval.shape[0], _NEIGHBOUR_BLOCK)])
    return [train_ds.examples[i].answer for i in best]


def _lead(train_ds, eval_ds) -> list[str]:
    from statistics import median

    from ..data.health import input_text

    words = max(1, round(median(len(ex.answer.split()) for ex in train_ds.examples)))
    # The row's own input (before the template, without the system prompt): a template's fixed opening
    # words would otherwise be every row's lead.
    return [" ".join(input_text(ex).split()[:words]) for ex in eval_ds.examples]


def _generation_report(name: str, preds: list[str], eval_ds, start: float) -> EvaluationReport:
    import pandas as pd

    from ..generation.prompts import row_fields

    truth = [ex.answer for ex in eval_ds.examples]
    rows = pd.DataFrame([row_fields(ex) for ex in eval_ds.examples])
    rows["ground_truth"], rows["prediction"] = truth, preds
    rows["correct"] = [exact_match(t, p) for t, p in zip(truth, preds, strict=True)]
    rows["status"] = ""
    return EvaluationReport(task_type="text_generation", mode=None, metrics=text_generation_metrics(truth, preds),
                            predictions=rows,
                            evaluation_status={"num_successful_rows": len(truth), "num_total_rows": len(truth)},
                            model_name=name, elapsed_s=time.perf_counter() - start)
