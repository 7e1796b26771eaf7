"""What the Test tab sends: the job's prompt template filled from one box per placeholder (or the raw
text), the exact prompt the model sees (chat template included), and for a classification job the label
ranking as ``jt.evaluate`` ranks them. Rendering and scoring reuse generation/prompts.py and
evaluation/scoring.py; nothing here imports torch until a model is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.loader import TemplateError, template_fields

# rank_labels' name for a classification head's scores (softmax probabilities).
HEAD_SCORES = "softmax"
# The fields a text row is detected by (data/formats.py): a template using other fields still needs one.
_INPUT_FIELDS = ("input_text", "prompt")


def job_template(params: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The job's prompt template and its placeholders, in order and once each ((None, []) without one,
    or when the template no longer parses)."""
    template = params.get("prompt_template")
    if not template or not isinstance(template, str):
        return None, []
    try:
        return template, list(dict.fromkeys(template_fields(template)))
    except TemplateError:
        return None, []


def request(template: str | None, values: dict[str, str], raw_text: str, raw: bool) -> tuple[list[dict], str]:
    """(rows, prompt_template) for generate_text: the template filled with `values`, or `raw_text` as the
    whole prompt ("" as the template, so the model's own is not applied)."""
    if raw or not template:
        return [{"prompt": raw_text}], ""
    row = dict(values)
    if not any(k in row for k in _INPUT_FIELDS):  # the loader recognises a text row by its input field
        row["input_text"] = ""
    return [row], template


def rendered_prompt(lm, rows: list[dict], template: str) -> str:
    """The exact text the model is given: the template filled, the chat template applied, as tokens
    decoded back (special tokens shown)."""
    from ..generation.prompts import encode_prompts, load_rows

    dataset = load_rows(lm, rows, template, require_answer=False, what="the Test tab's prompt")
    ids = encode_prompts(lm, dataset)[0].ids
    return lm.tokenizer.decode(ids, skip_special_tokens=False)


def _answers(path: Path) -> list[str]:
    from ..data.loader import Dataset
    from ..jobs.store import loads

    try:
        with open(path, encoding="utf-8") as f:
            records = [loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []
    return [ex.answer for ex in Dataset.from_records(path.name, records).examples if ex.answer is not None]


def job_labels(job) -> list[str] | None:
    """A classification job's labels (its training and validation answers, as training's task metric
    takes them), or None for a text-generation job."""
    tuning = job.record.get("tuning") or {}
    if tuning.get("labels"):  # a classification-head job: its head's labels
        return list(tuning["labels"])
    train = _answers(Path(job.dir) / "train.jsonl")
    val = _answers(Path(job.dir) / "validation.jsonl")
    if not tuning.get("task_metric"):
        from ..evaluation.classification import looks_like_classification

        if val or not looks_like_classification(train):  # a validation set that was not classification
            return None
    labels = sorted(set(train) | set(val))
    return labels if len(labels) > 1 else None


def rank_labels(lm, rows: list[dict], template: str, labels: list[str]) -> tuple[list[tuple[str, float]], str]:
    """The labels by score, best first, and the scoring used: jt.evaluate's score mode (its default
    scoring for this kind of model) on the one prompt."""
    from ..evaluation import scoring as label_scoring
    from ..generation.prompts import load_rows

    dataset = load_rows(lm, rows, template, require_answer=False, what="the Test tab's prompt")
    if lm.is_classifier:  # a label head: its softmax over its labels, one forward pass
        from ..evaluation.head import rank

        return rank(lm, dataset), HEAD_SCORES
    how = label_scoring.resolve_scoring(label_scoring.DEFAULT_SCORING, tuned=lm.job_id is not None)
    prompt = label_scoring.prepare(lm, dataset, labels)[0]
    if prompt.error:
        raise ValueError(prompt.error)
    free = None
    if how.startswith("calibrated"):
        free = label_scoring.calibration(lm.model, lm.tokenizer, dataset.examples[0], labels)
    sums = label_scoring.score_batch(lm, [prompt])[0]
    scores = label_scoring.to_scores(sums, [len(c) for c in prompt.continuations], how, free)
    return sorted(zip(labels, scores, strict=True), key=lambda x: -x[1]), how


def ranking_html(ranked: list[tuple[str, float]], how: str, top: int = 10) -> str:
    from .. import theme
    from .format import esc

    caption = ("Scores: the classification head's softmax probability of each label (one forward pass)."
               if how == HEAD_SCORES else
               f"Scores: {how} log-likelihood of each label as the answer, as jt.evaluate ranks them.")
    rows = "".join(
        f'<tr><td style="padding:2px 10px;{"font-weight:600" if i == 0 else ""}">{esc(label)}</td>'
        f'<td style="padding:2px 10px;text-align:right">{score:.3f}</td></tr>'
        for i, (label, score) in enumerate(ranked[:top]))
    more = f" (top {top} of {len(ranked)})" if len(ranked) > top else ""
    return (f'<div style="font-weight:600;font-size:13px">Label ranking{esc(more)}</div>'
            f'<div style="{theme.MUTED_STYLE};font-size:12px">{esc(caption)}</div>'
            f'<table class="jt-label-ranking" style="border-collapse:collapse;font-size:12px">{rows}</table>')

