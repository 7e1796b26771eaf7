"""The Evaluate tab: the end-of-job report (``evaluate_after``) without a line of code: the Comparison's own
HTML (per-label F1 base / tuned / baseline, the chart, the examples fixed and broken by tuning), or what
is happening instead (evaluating, skipped and why, the error)."""

from __future__ import annotations

import json
import re
from typing import Any

import ipywidgets as w

from .. import theme
from ..evaluation.job_report import load_comparison
from .format import esc

_FIRST_TABLE = re.compile(r"<table\b.*?</table>", re.S)


def _number(value: Any, signed: bool) -> str:
    """A score as the table shows it: 0.750 (a difference: +0.750); counts whole; a missing one as a dash."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if not isinstance(value, (int, float)):
        return str(value)  # to_html escapes it
    sign = "+" if signed else ""
    return f"{value:{sign}.3f}" if abs(value) < 1.0001 else f"{value:{sign}.0f}"


def _is_difference(column: Any) -> bool:
    return (column[-1] if isinstance(column, tuple) else str(column)) == "delta"


def metrics_table_html(metrics: Any) -> str:
    """The Comparison's metrics table (base, tuned, baseline, delta per metric) with a sign on the
    differences only: an absolute score of 0.75 reads "0.750", its change "+0.750"."""
    def signed(v: Any) -> str:
        return _number(v, True)

    def plain(v: Any) -> str:
        return _number(v, False)

    formatters = {c: signed if _is_difference(c) else plain for c in metrics.columns}
    return metrics.to_html(formatters=formatters, border=0, na_rep="—")


def comparison_html(comparison: Any) -> str:
    """The Comparison's HTML with the tab's metrics table (signs on the differences only) in place of its own."""
    return _FIRST_TABLE.sub(lambda _: metrics_table_html(comparison.metrics), comparison._repr_html_(), count=1)


class EvaluateTab(w.VBox):
    def __init__(self, job):
        self.job = job
        self.content = w.HTML("No evaluation yet.")
        self._key: str | None = None
        super().__init__([self.content])

    def update(self, record: dict[str, Any]) -> bool:
        """Redraw when the report's state changed (the Comparison's chart is drawn once); True if redrawn."""
        evaluation = record.get("evaluation") or {}
        progress = record.get("progress") or {}
        phase = progress.get("evaluating") if progress.get("phase") == "evaluating" else None
        key = json.dumps([evaluation, phase], sort_keys=True, default=str)
        if key == self._key:
            return False
        self._key = key
        self.content.value = self._html(evaluation, phase, progress)
        return True

    def _html(self, evaluation: dict[str, Any], phase: str | None, progress: dict[str, Any]) -> str:
        muted = f'<div style="color:{theme.MUTED}">{{}}</div>'
        if phase:
            step, steps = progress.get("report_step"), progress.get("report_steps")
            return muted.format(f"Evaluating the {esc(phase)} on the validation set"
                                + (f" ({step} of {steps})" if step and steps else "") + "…")
        if evaluation.get("skipped"):
            return muted.format(esc(evaluation["skipped"]) + ".")
        error = (f'<div style="{theme.ERROR_STYLE}">The end-of-job report did not finish: '
                 f'{esc(evaluation["error"])}</div>') if evaluation.get("error") else ""
        try:
            comparison = load_comparison(self.job.dir)
        except Exception as e:  # noqa: BLE001 - a damaged report file is shown, not raised in a poller
            return error + f'<div style="{theme.ERROR_STYLE}">The stored report cannot be read: {esc(e)}</div>'
        if comparison is None:
            return error or muted.format(
                "No evaluation yet. With a labelled validation set, a job evaluates the base and the tuned "
                "model when training ends (evaluate_after); or run <code>jt.evaluate</code> and "
                "<code>jt.compare</code>.")
        took = f" ({evaluation['seconds']:.0f} s" if evaluation.get("seconds") is not None else " ("
        took += ", base model's report cached)" if evaluation.get("base_cached") else ")"
        return (error + f'<div style="color:{theme.MUTED};margin-bottom:6px">Evaluated on the validation set '
                f"when training ended{took if took != ' ()' else ''}; in code: <code>job.evaluation</code>.</div>"
                + comparison_html(comparison))
