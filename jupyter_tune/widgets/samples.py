"""The Supervise tab's sample answers: at each evaluation, the model's answers to a few fixed validation
rows beside the expected ones (samples.jsonl, jobs/samples.py), with the answers that changed since the
previous evaluation and those that became right or wrong marked. A slider picks the evaluation (the
latest by default, and it follows new ones while it is on the latest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.samples import FILE, read_evaluations, sample_rows
from .format import esc

_CELL = "padding:3px 10px;vertical-align:top"


def _mark(r: dict[str, Any]) -> str:
    marks = []
    if r["became"] == "right":
        marks.append(f'<span class="jt-became-right" style="{theme.SUCCESS_STYLE};font-weight:600">▲ became right</span>')
    elif r["became"] == "wrong":
        marks.append(f'<span class="jt-became-wrong" style="{theme.ERROR_STYLE};font-weight:600">▼ became wrong</span>')
    elif r["changed"]:
        marks.append(f'<span class="jt-changed" style="color:{theme.WARN}">● changed</span>')
    return " ".join(marks)


def samples_html(rows: list[dict[str, Any]]) -> str:
    """One evaluation's table: row, prompt, expected, answer (✔/✘), and what changed since the last one."""
    th = f'style="text-align:left;padding:3px 10px;border-bottom:1px solid {theme.BORDER};font-weight:600"'
    head = "".join(f"<th {th}>{t}</th>" for t in ("row", "prompt", "expected", "answer", ""))
    body = []
    for r in rows:
        ok = (f'<span style="{theme.SUCCESS_STYLE}">✔</span>' if r["correct"]
              else f'<span style="{theme.ERROR_STYLE}">✘</span>')
        bg = f"background:{theme.tint(theme.SUCCESS if r['became'] == 'right' else theme.ERROR, 12)};" \
            if r["became"] else ""
        answer = esc(r["answer"]) if r["answer"] else f'<span style="{theme.MUTED_STYLE}">(empty)</span>'
        tds = (f'<td style="{_CELL};{bg}">{esc(r["row"])}</td>'
               f'<td style="{_CELL};{bg};max-width:320px;color:{theme.MUTED}">{esc(r["prompt"])}</td>'
               f'<td style="{_CELL};{bg}">{esc(r["expected"])}</td>'
               f'<td style="{_CELL};{bg};font-family:{theme.MONO}">{ok} {answer}</td>'
               f'<td style="{_CELL};{bg}">{_mark(r)}</td>')
        body.append(f'<tr class="jt-sample-row" data-row="{esc(r["row"])}">{tds}</tr>')
    return (f'<table class="jt-samples" style="border-collapse:collapse;font-size:12px;line-height:1.5">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def file_grew(section, store, job_id: str, name: str) -> bool:
    """Whether the job's file `name` changed size since the section last read it (``section._size``)."""
    try:
        size = (Path(store.job_dir(job_id)) / name).stat().st_size
    except OSError:
        size = 0
    if size == section._size:
        return False
    section._size = size
    return True


def show_steps(section, before: list[int], steps: list[int]) -> None:
    """A section's step slider (``section.step``) moved to new `steps`: on the latest step it stays on the
    latest, elsewhere it keeps its step; the section is shown once it has one and drawn once (``_draw``, which
    does nothing while ``_drawing`` is off)."""
    follow = not before or section.step.value == before[-1]
    shown = section.step.value
    section.layout.display = None if steps else "none"
    if not steps:
        return
    section._drawing = False  # one draw below, not one per trait the slider changes
    try:
        section.step.options = steps
        section.step.value = steps[-1] if follow or shown not in steps else shown
    finally:
        section._drawing = True
    section._draw()


class SamplesSection(w.VBox):
    """Hidden until the job has written a sampled evaluation."""

    def __init__(self):
        self.title = w.HTML('<div style="font-weight:600;font-size:13px;margin-top:8px">Sample answers</div>')
        self.summary = w.HTML()
        self.step = w.SelectionSlider(options=[0], description="Evaluation at step", continuous_update=False,
                                      style={"description_width": "initial"}, layout=w.Layout(width="420px"))
        self.table = w.HTML()
        self.rows: list[dict[str, Any]] = []
        self.steps: list[int] = []
        self._size = -1
        self._drawing = True
        super().__init__([self.title, self.summary, self.step, self.table], layout=w.Layout(display="none"))
        self.add_class("jt-samples-section")
        self.step.observe(lambda _: self._draw(), names="value")

    def refresh(self, store, job_id: str) -> bool:
        """Read samples.jsonl when it grew; returns whether anything changed."""
        return file_grew(self, store, job_id, FILE) and self.update(read_evaluations(store, job_id))

    def update(self, evaluations: list[dict[str, Any]]) -> bool:
        self.rows = sample_rows(evaluations)
        steps = [e["step"] for e in evaluations]
        if steps == self.steps:
            return False
        before, self.steps = self.steps, steps
        show_steps(self, before, steps)
        return True

    def _draw(self) -> None:
        if not self._drawing:
            return
        at = [r for r in self.rows if r["step"] == self.step.value]
        right = sum(r["correct"] for r in at)
        changed = sum(r["changed"] for r in at)
        better = sum(r["became"] == "right" for r in at)
        worse = sum(r["became"] == "wrong" for r in at)
        self.summary.value = (
            f'<span style="{theme.MUTED_STYLE};font-size:12px">{len(at)} validation rows answered greedily at '
            f"each of {len(self.steps)} evaluation(s). Step {self.step.value}: {right} of {len(at)} right, "
            f"{changed} changed since the previous evaluation ({better} became right, {worse} became wrong)."
            "</span>")
        self.table.value = samples_html(at)
