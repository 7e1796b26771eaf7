"""``evaluate``: a model's metrics on a labelled dataset (classification or text generation)."""

from __future__ import annotations

import sys
import time
from typing import Any

from ..data.errors import DatasetError
from ..generation.generate import DEFAULT_BATCH_SIZE, generate_for
from ..generation.prompts import load_rows, row_fields
from ..params.arguments import EvaluateArgs
from ..params.gate import checked
from . import scoring as label_scoring
from .classification import classification_metrics, confusion, label_mapper
from .graded import apply_graders, check_graders
from .long_inputs import resolve as resolve_long_inputs
from .report import EvaluationReport
from .text_metrics import exact_match, text_generation_metrics

# Generate mode: room for the longest label plus a few tokens of slack (a trailing period, a space).
_LABEL_SLACK_TOKENS = 8
_TEXT_MAX_OUTPUT_TOKENS = 128


class EvaluationError(ValueError):
    """evaluate() was asked for something it cannot do; the message says what to change."""


def _check_labels(labels: Any, truth: list[str]) -> list[str]:
    if labels is None:
        return sorted(set(truth))
    if isinstance(labels, str) or not all(isinstance(x, str) and x.strip() for x in labels):
        raise EvaluationError(f"labels={labels!r}: give a list of non-empty label strings, or None to use the "
                              "labels found in the ground truth.")
    out = list(dict.fromkeys(labels))
    unknown = sorted(set(truth) - set(out))
    if unknown:
        raise EvaluationError(f"The ground truth has labels that are not in labels=: {unknown}. Add them to "
                              "labels=, or leave labels=None to use every label of the ground truth.")
    return out


def _score_rows(lm, dataset, labels: list[str], batch_size: int, progress: bool, how: str,
                inputs: tuple[str, int | None] = ("whole", None)):
    """Score mode: per row (predicted label or None, {label: score} or None, {label: summed log-likelihood}
    or None, status), and the labels' mean content-free log-likelihoods (calibrated scorings, else None).
    inputs: (long_inputs, max_input_tokens), resolved; a row's windows ("chunks") score as their mean."""
    from tqdm.auto import tqdm

    prompts = label_scoring.prepare(lm, dataset, labels, *inputs)
    free = None
    if how.startswith("calibrated"):
        free = label_scoring.calibration(lm.model, lm.tokenizer, dataset.examples[0], labels)
    rows = len(dataset.examples)
    preds: list[str | None] = [None] * rows
    scores: list[dict[str, float] | None] = [None] * rows
    sums: list[dict[str, float] | None] = [None] * rows
    status = [""] * rows
    parts: dict[int, list[list[float]]] = {}
    for p in prompts:
        status[p.index] = status[p.index] or p.error
    with tqdm(total=len(prompts), desc="Scoring labels", unit="prompt", disable=not progress, leave=False) as bar:
        bar.update(sum(1 for p in prompts if p.error))
        for batch in label_scoring.batches(prompts, batch_size, label_scoring.vocab_size(lm.model)):
            try:
                results = [(p, s, "") for p, s in zip(batch, label_scoring.score_batch(lm, batch), strict=True)]
            except Exception:  # noqa: BLE001 - retried row by row, each error kept with its row
                results = []
                for p in batch:
                    try:
                        results.append((p, label_scoring.score_batch(lm, [p])[0], ""))
                    except Exception as e:  # noqa: BLE001
                        results.append((p, None, f"{type(e).__name__}: {e}"))
            for p, s, err in results:
                status[p.index] = status[p.index] or err
                if s is not None:
                    parts.setdefault(p.index, []).append(s)
            bar.update(len(batch))
    counts = {p.index: [len(c) for c in p.continuations] for p in prompts}
    scored = {i: s for i, s in parts.items() if not status[i]}  # a row with a failed window is not scored
    for i, (mean, ranked, pred) in label_scoring.rank_rows(scored, counts, labels, how, free).items():
        sums[i] = dict(zip(labels, mean, strict=True))
        scores[i] = dict(zip(labels, ranked, strict=True))
        preds[i] = pred
    used = {"mode": inputs[0], "max_input_tokens": inputs[1], "prompts": len(prompts),
            "rows_cut": len({p.index for p in prompts if p.part == "cut"}),
            "rows_in_windows": len({p.index for p in prompts if p.part == "window"})}
    return preds, scores, sums, status, (dict(zip(labels, free, strict=True)) if free is not None else None), used


def _head_rows(lm, dataset, rows, truth: list[str], labels, task_type: str, mode: str, batch_size: int,
               progress: bool):
    """A classifier's predictions (evaluation/head.py): (predictions, rows with prediction, label_scores
    and correct, status, the labels the metrics are over)."""
    from . import head

    if task_type != "classification":
        raise EvaluationError(f"{lm.name} is a classifier (a task='classification' job): evaluate it with "
                              "task_type='classification'; it does not generate text.")
    if mode != "score":
        raise EvaluationError(f"mode={mode!r}: {lm.name} is a classifier; its labels are ranked by the head "
                              "(mode='score', the default), it does not decode answers.")
    label_list = _check_labels(labels, truth)
    head.warn_unknown(lm, truth)
    preds, scores, status = head.classify(lm, dataset, labels=label_list if labels is not None else None,
                                          batch_size=batch_size, progress=progress)
    rows["prediction"], rows["label_scores"] = preds, scores
    rows["correct"] = [p == t for p, t in zip(preds, truth, strict=True)]
    return preds, rows, status, label_list


@checked(EvaluateArgs)
def evaluate(model: Any, data: Any, task_type: str = "classification", prompt_template: str | None = None,
             mode: str = "score", labels: list[str] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             max_output_tokens: int | None = None, progress: bool = True,
             scoring: str = label_scoring.DEFAULT_SCORING, graders: list | None = None,
             long_inputs: str = "auto", max_input_tokens: int | None = None, overlap: str = "warn") -> EvaluationReport:
    """Evaluate `model` on labelled `data`.

    model: a LoadedModel or anything ``jt.load_model`` takes.
    data: path, list of dicts or DataFrame with the prompt (input_text / prompt / contents) and the ground
      truth (output_text / label / the final model turn).
    task_type: "classification" (per-label precision, recall, F1, support and averages, a confusion
      matrix) or "text_generation" (BLEU-4, ROUGE-L, exact match).
    mode (classification): "score" ranks the labels (`labels`, default: those of the ground truth) by the
      model's likelihood, so every prediction is a valid label; "generate" decodes greedily and maps the
      answer to a label (case, white space and end punctuation ignored); an answer naming no label is wrong.
    A classification-head model (a task="classification" job) ranks its labels by the head's softmax, one
    forward pass per row (mode "head" in the report; `scoring` does not apply); ground-truth labels its head
    does not know are warned about and count as wrong.
    scoring (score mode): how label log-likelihoods rank the labels: "sum", "mean" (per answer token),
      "calibrated" (minus the label's mean log-likelihood for the content-free inputs "N/A", "none",
      "[MASK]" in the same prompt, as in "Calibrate before use"), "calibrated_mean" (both), or "auto" (the
      default, the best measured for each kind: calibrated for a base model, sum for a tuned job's model);
      benchmarks/results/scoring.md has the measurements.
    long_inputs (score mode): what a prompt longer than max_input_tokens becomes: "cut" the way training
      cuts it, "chunks" (windows of the row's text, label log-likelihoods averaged), "whole" (up to the
      model's context), or "auto" (the default: "cut" to a tuned job's max_seq_length, "whole" otherwise);
      evaluation/long_inputs.py has the measurements. max_input_tokens: None for the job's max_seq_length.
    prompt_template: None uses the model's own (a tuned job's) template.
    graders: jupyter_tune.graders objects applied to each answered row (the answer, or the predicted label, is
      the sample; the row's fields plus ``reference`` / ``label`` = the ground truth are the item): the report's
      ``graders`` holds each one's mean, pass rate and errors, ``predictions["grader:<name>"]`` its scores.
    overlap: a tuned job's model: rows whose input is (nearly) one of the job's training or validation rows
      make the score overstate the model (evaluation/overlap.py): "warn" (the default: printed, and in
      ``report.overlap``), "refuse" (OverlapError before any row is scored), or "ignore".
    Returns an EvaluationReport. Raises EvaluationError / DatasetError (ValueErrors) saying what to fix.
    """
    import pandas as pd

    from ..models.loading import load_model
    graders = check_graders(graders)
    start = time.perf_counter()
    lm = load_model(model)
    asked_scoring = scoring
    scoring = label_scoring.resolve_scoring(scoring, tuned=lm.job_id is not None)
    try:
        dataset = load_rows(lm, data, prompt_template, require_answer=True, what="evaluation data")
    except DatasetError as e:
        if any(p.message == "Missing." for p in e.problems):
            e.args = (e.args[0] + "\nevaluate compares answers with each row's ground truth (output_text, label or "
                      "a final model turn); to answer rows without one, use jt.generate_text.",)
        raise
    shared = _overlap(lm, dataset, overlap)
    truth = [ex.answer for ex in dataset.examples]
    rows = pd.DataFrame([row_fields(ex) for ex in dataset.examples])
    rows["ground_truth"] = truth
    confusion_df = content_free = long_used = None
    used_mode: str | None = mode
    if lm.is_classifier:  # a classification head: one forward per row, labels ranked by its softmax
        preds, rows, status, label_list = _head_rows(lm, dataset, rows, truth, labels, task_type, mode, batch_size,
                                                     progress)
        used_mode, scoring = "head", None
    elif task_type == "classification":
        label_list = _check_labels(labels, truth)
        if mode == "score":
            inputs = resolve_long_inputs(long_inputs, max_input_tokens, lm.max_seq_length)  # None: not tuned
            preds, scores, sums, status, content_free, long_used = _score_rows(lm, dataset, label_list, batch_size,
                                                                               progress, scoring, inputs)
            rows["prediction"], rows["label_scores"], rows["label_logprobs"] = preds, scores, sums
        else:
            longest = max(len(lm.tokenizer(lab, add_special_tokens=False)["input_ids"]) for lab in label_list)
            texts, status, _ = generate_for(lm, dataset, max_output_tokens=max_output_tokens or longest + _LABEL_SLACK_TOKENS,
                                            batch_size=batch_size, progress=progress)
            to_label = label_mapper(label_list)
            preds = [to_label(t) for t in texts]
            rows["prediction"], rows["raw_answer"] = preds, texts
        rows["correct"] = [p is not None and p == t for p, t in zip(preds, truth, strict=True)]
    else:
        label_list, used_mode = [], None
        texts, status, _ = generate_for(lm, dataset, max_output_tokens=max_output_tokens or _TEXT_MAX_OUTPUT_TOKENS,
                                        batch_size=batch_size, progress=progress)
        preds = texts
        rows["prediction"] = texts
        rows["correct"] = [exact_match(t, p) for t, p in zip(truth, texts, strict=True)]
    rows["status"] = status
    ok = [i for i, s in enumerate(status) if not s]
    if not ok:
        raise EvaluationError(f"Every row failed ({len(status)}); the first error: {status[0]}")
    graded = apply_graders(graders, rows, dataset.examples, truth, preds, status) if graders else []
    if task_type == "classification":
        y_true, y_pred = [truth[i] for i in ok], [preds[i] for i in ok]
        metrics = classification_metrics(y_true, y_pred, label_list)
        confusion_df = confusion(y_true, y_pred, label_list)
    else:
        metrics = text_generation_metrics([truth[i] for i in ok], [preds[i] for i in ok])
    return EvaluationReport(task_type=task_type, mode=used_mode, metrics=metrics, predictions=rows,
                            evaluation_status={"num_successful_rows": len(ok), "num_total_rows": len(status)},
                            confusion_matrix=confusion_df, labels=label_list, model_name=lm.name,
                            elapsed_s=time.perf_counter() - start,
                            scoring=scoring if used_mode == "score" else None, content_free_logprobs=content_free,
                            scoring_auto=asked_scoring == label_scoring.AUTO and used_mode == "score",
                            graders=graded, long_inputs=long_used, overlap=shared)


def _overlap(lm, dataset, how: str) -> dict[str, Any] | None:
    """Check a tuned job's model's evaluation rows against the job's own rows: warn (stderr) or refuse."""
    if how == "ignore" or lm.job_id is None:
        return None
    from pathlib import Path

    from ..jobs.store import JobStore
    from .overlap import OverlapError, job_overlap

    # the job's folder: above its adapter (or full model) folder, whichever store it is in; else the default's
    near = [Path(p) for p in (lm.adapter_path, lm.base_path) if p]
    job_dir = next((d for p in near for d in (p.parent, p.parent.parent) if (d / "job.json").is_file()),
                   JobStore().job_dir(lm.job_id))
    if not job_dir.is_dir():
        return None
    found = job_overlap(job_dir, dataset)
    messages = found.messages(lm.job_id)
    if messages and how == "refuse":
        raise OverlapError("\n".join(messages) + "\n(overlap='warn' scores them anyway, with this warning.)")
    for message in messages:
        print(f"Warning: {message}", file=sys.stderr)
    return {**found.to_dict(), "messages": messages}
