"""The Details tab's checkpoint table: the kept checkpoints with their step and metrics, the best one
marked, the chosen one marked, and a dropdown + button that make another the job's tuned model
(``job.use_checkpoint``, jobs/choice.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.choice import checkpoint_rows
from ..jobs.states import JobState
from .format import esc

FINAL = "final"  # the dropdown's value for the job's own model
_COLUMNS = (("train_total_loss", "train loss"), ("eval_total_loss", "eval loss"), ("eval_macro_f1", "macro F1"),
            ("eval_accuracy", "accuracy"), ("eval_rouge_l", "ROUGE-L"))


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}"


def checkpoints_html(rows: list[dict[str, Any]]) -> str:
    """The table: step, the metrics logged at it (columns with no value at all are left out), markers."""
    if not rows:
        return f'<span style="{theme.MUTED_STYLE}">No checkpoints kept yet.</span>'
    cols = [(k, title) for k, title in _COLUMNS if any(r.get(k) is not None for r in rows)]
    th = f'style="text-align:left;padding:3px 10px;border-bottom:1px solid {theme.BORDER};font-weight:600"'
    head = "".join(f"<th {th}>{esc(t)}</th>" for t in ["step", *(t for _, t in cols), ""])
    body = []
    for r in rows:
        marks = []
        if r["best"]:
            marks.append(f'<span style="color:{theme.WARN}" title="best checkpoint">★ best</span>')
        if r["chosen"]:
            marks.append(f'<span style="{theme.SUCCESS_STYLE};font-weight:600">✔ chosen: the job\'s model</span>')
        if r["problem"]:
            marks.append(f'<span style="{theme.ERROR_STYLE}">unusable: {esc(r["problem"])}</span>')
        bg = f"background:{theme.tint(theme.SUCCESS, 14)};" if r["chosen"] else ""
        cells = [str(r["step"]), *(_num(r.get(k)) for k, _ in cols)]
        tds = "".join(f'<td style="padding:3px 10px;{bg}">{esc(c)}</td>' for c in cells)
        tds += f'<td style="padding:3px 10px;{bg}">{" ".join(marks)}</td>'
        body.append(f'<tr class="jt-checkpoint-row" data-step="{r["step"]}">{tds}</tr>')
    return (f'<table class="jt-checkpoints" style="border-collapse:collapse;font-size:12px;line-height:1.5">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


class CheckpointsSection(w.VBox):
    """The table and the chooser. ``on_change`` runs after a choice (the view refreshes its Test tab)."""

    def __init__(self, job, on_change: Callable[[], None] | None = None):
        self.job = job
        self.on_change = on_change
        self.rows: list[dict[str, Any]] = []
        self._key: Any = None
        self.title = w.HTML('<div style="font-weight:600;font-size:13px;margin-top:4px">Checkpoints</div>')
        self.table = w.HTML()
        self.choice = w.Dropdown(description="Job's model", options=[("final adapter", FINAL)], value=FINAL,
                                 style={"description_width": "90px"}, layout=w.Layout(width="320px"))
        # Its own width (ipywidgets' fixed short width cut the label off), never shrunk by the row.
        self.use_button = w.Button(description="Use this checkpoint", icon="check", button_style="",
                                   layout=w.Layout(width="auto", flex="0 0 auto", overflow="visible"))
        self.use_button.on_click(lambda _b: self.use(self.choice.value))
        self.message = w.HTML()
        super().__init__([self.title, self.table, w.HBox([self.choice, self.use_button],
                                                         layout=w.Layout(grid_gap="8px", align_items="center")),
                          self.message])
        self.add_class("jt-checkpoints-section")

    def update(self, record: dict[str, Any], metrics: list[dict[str, Any]] | None = None) -> None:
        """Re-read the kept checkpoints when the state, the choice, the best or the metrics changed."""
        final = JobState.of(record).is_final
        key = (record.get("state"), str(record.get("chosen_checkpoint")), str(record.get("best")),
               len(metrics) if metrics is not None else None)
        if key == self._key:
            return
        self._key = key
        self.rows = checkpoint_rows(self.job.store, self.job.id, record, metrics)
        self.table.value = checkpoints_html(self.rows)
        chosen = (record.get("chosen_checkpoint") or {}).get("step")
        final_name = "final adapter" if not (record.get("params") or {}).get("method") == "full" else "final model"
        best = (record.get("best") or {}).get("step")
        if best is not None and record.get("state") == JobState.SUCCEEDED:  # its weights are the best checkpoint's
            final_name += f" (= checkpoint {best}, the best)"
        options = [(final_name, FINAL)]
        options += [(f"checkpoint {r['step']}" + (" (best)" if r["best"] else ""), r["step"])
                    for r in self.rows if not r["problem"] or r["step"] == chosen]
        self.choice.options = options
        self.choice.value = chosen if chosen in [v for _, v in options] else FINAL
        self.choice.disabled = self.use_button.disabled = not final or not self.rows
        if not final:
            self.message.value = (f'<span style="{theme.MUTED_STYLE}">Once the job has ended, any kept checkpoint '
                                  "can be made its tuned model.</span>")
        elif not self.message.value or "Once the job" in self.message.value:
            self.message.value = ""

    def use(self, value: Any) -> None:
        """Make `value` (a step, or FINAL) the job's model; errors are shown, not raised."""
        try:
            choice = self.job.use_checkpoint(None if value == FINAL else int(value))
        except (ValueError, TypeError, RuntimeError) as e:  # CheckpointError, JobStateError: shown as they are
            self.message.value = f'<span style="{theme.ERROR_STYLE}">{esc(e)}</span>'
        else:
            what = f"checkpoint {choice['step']}" if choice else "the job's own final model"
            self.message.value = (f'<span style="{theme.SUCCESS_STYLE}">The job\'s tuned model is now {esc(what)}: '
                                  "jt.load_model, export and the Test tab use it.</span>")
        self.update(self.job.record, self.job.store.read_metrics(self.job.id))
        if self.on_change is not None:
            self.on_change()
