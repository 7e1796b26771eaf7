"""Graders (jupyter_tune.graders) applied to an evaluation's answers: one per-row column per grader in the
report's predictions frame and one summary each (mean, pass rate, errors) in ``EvaluationReport.graders``."""

from __future__ import annotations

from typing import Any

from ..graders import grade_rows


def grader_item(ex, truth: str | None) -> dict[str, Any]:
    """The row a grader sees: the example's fields, its prompt (``prompt``, ``messages``) and the ground truth
    under ``reference`` and ``label`` (unless the row has fields of those names)."""
    item = dict(ex.fields)
    item.setdefault("messages", [dict(m) for m in ex.prompt_messages])
    user = [m["content"] for m in ex.prompt_messages if m["role"] == "user"]
    item.setdefault("prompt", user[-1] if user else "")
    item.setdefault("reference", truth)
    item.setdefault("label", truth)
    return item


def check_graders(graders) -> list:
    graders = list(graders or [])
    names = set()
    for g in graders:
        if not callable(getattr(g, "grade", None)) or not getattr(g, "name", None):
            raise ValueError(f"graders: {g!r} is not a grader (it needs a name and grade(sample, item)); use "
                             "jupyter_tune.graders.StringCheck, TextSimilarity, PythonGrader, LabelMatch, "
                             "ModelGrader or Multi.")
        if g.name in names:
            raise ValueError(f"graders: two graders are named {g.name!r}; give each its own name.")
        names.add(g.name)
    return graders


def apply_graders(graders, rows, examples, truth, preds, status) -> list[dict[str, Any]]:
    """Add a ``grader:<name>`` column to ``rows`` (None for rows whose answer failed) and return each grader's
    summary with its per-row errors as ``error_rows`` ([row, message])."""
    ok = [i for i, s in enumerate(status) if not s]
    items = [grader_item(examples[i], truth[i]) for i in ok]
    samples = ["" if preds[i] is None else str(preds[i]) for i in ok]
    out = []
    for g in graders:
        result = grade_rows(g, samples, items)
        column: list[float | None] = [None] * len(status)
        for i, score in zip(ok, result.scores, strict=True):
            column[i] = score
        rows[f"grader:{g.name}"] = column
        summary = result.summary()
        summary["error_rows"] = [[ok[j], msg] for j, msg in result.errors]
        summary["grader"] = g.to_json() if hasattr(g, "to_json") else {"name": g.name}
        out.append(summary)
    return out
