"""Graders (jupyter_tune.graders) applied to an evaluation's answers: one per-row column per grader in the
report's predictions frame and one summary each (mean, pass rate, errors) in ``EvaluationReport.graders``."""

from __future__ import annotations

from typing import Any

from ..graders import close_graders, grade_rows
from ..graders.base import check_grader
from ..params import ParameterError


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
    """The graders of jt.evaluate: grader objects (checked: a name, grade(sample, item), their options) and
    grader specs (dicts such as {'kind': 'string_check'}, built as a GRPO job builds them); anything else is a
    ParameterError naming ``graders[i]``. Names must be unique (each names a column of the report)."""
    from ..graders.spec import grader_from_spec

    out, names = [], set()
    for i, g in enumerate(list(graders or [])):
        if isinstance(g, dict):
            try:
                g = grader_from_spec(g)
            except (ValueError, TypeError) as e:
                raise ParameterError(f"graders[{i}]: {e}") from None
        else:
            check_grader(g, f"graders[{i}]")
        if g.name in names:
            raise ParameterError(f"graders[{i}]: two graders are named {g.name!r}; give each its own name.")
        names.add(g.name)
        out.append(g)
    return out


def apply_graders(graders, rows, examples, truth, preds, status) -> list[dict[str, Any]]:
    """Add a ``grader:<name>`` column to ``rows`` (None for rows whose answer failed) and return each grader's
    summary with its per-row errors as ``error_rows`` ([row, message])."""
    ok = [i for i, s in enumerate(status) if not s]
    items = [grader_item(examples[i], truth[i]) for i in ok]
    samples = ["" if preds[i] is None else str(preds[i]) for i in ok]
    out = []
    for g in graders:
        try:
            result = grade_rows(g, samples, items)
        finally:
            close_graders([g])  # a python grader's worker process ends with the evaluation (it restarts if reused)
        column: list[float | None] = [None] * len(status)
        for i, score in zip(ok, result.scores, strict=True):
            column[i] = score
        rows[f"grader:{g.name}"] = column
        summary = result.summary()
        summary["error_rows"] = [[ok[j], msg] for j, msg in result.errors]
        summary["grader"] = g.to_json() if hasattr(g, "to_json") else {"name": g.name}
        out.append(summary)
    return out
