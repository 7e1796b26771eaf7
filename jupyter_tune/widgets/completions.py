"""The Supervise tab's sampled answers of a GRPO job: at each step, the group of answers the model sampled for
the step's first prompt, each with its reward (graders summed) and each grader's score (completions.jsonl,
jobs/samples.py). A slider picks the step (the latest by default, following new ones while it is on the
latest); the answers are sorted by reward, so what the graders favour is at the top."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.samples import COMPLETIONS_FILE, read_completions
from .format import esc
from .samples import file_grew, show_steps

_CELL = "padding:3px 10px;vertical-align:top"


def completions_html(line: dict[str, Any]) -> str:
    """One step's group: answer, reward and each grader's score, best first."""
    graders = list(dict.fromkeys(g for a in line["answers"] for g in (a.get("rewards") or {})))
    th = f'style="text-align:left;padding:3px 10px;border-bottom:1px solid {theme.BORDER};font-weight:600"'
    head = "".join(f"<th {th}>{esc(t)}</th>" for t in ("answer", "reward", *graders))
    body = []
    for a in sorted(line["answers"], key=lambda a: -(a.get("reward") or 0.0)):
        text = esc(a.get("text")) if a.get("text") else f'<span style="{theme.MUTED_STYLE}">(empty)</span>'
        scores = "".join(f'<td style="{_CELL}">{(a.get("rewards") or {}).get(g, float("nan")):.2f}</td>'
                         for g in graders)
        body.append(f'<tr class="jt-completion"><td style="{_CELL};font-family:{theme.MONO};max-width:420px">{text}'
                    f'</td><td style="{_CELL};font-weight:600">{(a.get("reward") or 0.0):.2f}</td>{scores}</tr>')
    return (f'<table class="jt-completions" style="border-collapse:collapse;font-size:12px;line-height:1.5">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


class CompletionsSection(w.VBox):
    """Hidden until a GRPO job has written a sampled group."""

    def __init__(self):
        self.title = w.HTML('<div style="font-weight:600;font-size:13px;margin-top:8px">Sampled answers and their '
                            "rewards</div>")
        self.summary = w.HTML()
        self.step = w.SelectionSlider(options=[0], description="Step", continuous_update=False,
                                      layout=w.Layout(width="420px"))
        self.table = w.HTML()
        self.lines: dict[int, dict[str, Any]] = {}
        self._size = -1
        self._drawing = True
        super().__init__([self.title, self.summary, self.step, self.table], layout=w.Layout(display="none"))
        self.add_class("jt-completions-section")
        self.step.observe(lambda _: self._draw(), names="value")

    def refresh(self, store, job_id: str) -> bool:
        """Read completions.jsonl when it grew; returns whether anything changed."""
        return file_grew(self, store, job_id, COMPLETIONS_FILE) and self.update(read_completions(store, job_id))

    def update(self, lines: list[dict[str, Any]]) -> bool:
        train = {line["step"]: line for line in lines if line.get("mode") == "train"}
        steps, before = sorted(train), sorted(self.lines)
        if steps == before:
            return False
        self.lines = train
        show_steps(self, before, steps)
        return True

    def _draw(self) -> None:
        if not self._drawing or self.step.value not in self.lines:
            return
        line = self.lines[self.step.value]
        rewards = [a.get("reward") or 0.0 for a in line["answers"]]
        mean = sum(rewards) / max(1, len(rewards))
        same = len(set(rewards)) <= 1
        self.summary.value = (
            f'<span style="{theme.MUTED_STYLE};font-size:12px">Step {self.step.value}: {len(rewards)} answers '
            f"sampled for one prompt, mean reward {mean:.2f}"
            + (" (all alike: this group gives no signal)" if same else "")
            + (f"; reference: {esc(line.get('reference'))}" if line.get("reference") is not None else "")
            + f'.<br>Prompt: …{esc(str(line.get("prompt") or "")[-160:])}</span>')
        self.table.value = completions_html(line)
