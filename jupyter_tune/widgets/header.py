"""The view's header: name, state badge, base model, progress with elapsed time and ETA, Cancel, which weights
are the job's model once it ended, and the error with the log's last lines when the job failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.kept import kept_model
from ..jobs.states import CANCELLABLE_STATES, JobState
from .format import badge_html, duration, esc, parse_time

_BAR_STYLES = {JobState.SUCCEEDED: "success", JobState.FAILED: "danger",
               JobState.CANCELLED: "warning", JobState.CANCELLING: "warning"}


def elapsed_seconds(record: dict[str, Any], now: float | None = None) -> float | None:
    start = parse_time(record.get("start_time")) or parse_time(record.get("create_time"))
    if start is None:
        return None
    end = parse_time(record.get("end_time"))
    stop = end.timestamp() if end else (now if now is not None else time.time())
    return max(0.0, stop - start.timestamp())


def eta_seconds(record: dict[str, Any], metrics: list[dict[str, Any]], now: float | None = None) -> float | None:
    """Seconds left: from the pace of the logged steps, else from the time since the start."""
    progress = record.get("progress") or {}
    step, total = progress.get("step") or 0, progress.get("total_steps") or 0
    if record.get("state") != JobState.RUNNING or not total or step <= 0 or step >= total:
        return None
    timed = [(r["step"], r["time"]) for r in metrics
             if isinstance(r.get("time"), (int, float)) and isinstance(r.get("step"), (int, float))]
    if len(timed) >= 2 and timed[-1][0] > timed[0][0]:
        per_step = (timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])
    else:
        elapsed = elapsed_seconds(record, now)
        if elapsed is None:
            return None
        per_step = elapsed / step
    return max(0.0, per_step * (total - step))


class JobHeader(w.VBox):
    def __init__(self, on_cancel: Callable[[], None] | None = None):
        self.title = w.HTML()
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="420px"))
        self.progress_text = w.HTML()
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="",
                                      tooltip="Stop the job; its latest checkpoint is kept")
        self.cancel_button.add_class("jt-cancel")  # hidden by the front end once the view is disconnected
        self.cancel_button.on_click(lambda _b: on_cancel and on_cancel())
        self.error = w.HTML(layout=w.Layout(display="none"))
        self.kept = w.HTML(layout=w.Layout(display="none"))  # which weights are the model (jobs/kept.py)
        row = w.HBox([self.progress, self.progress_text, self.cancel_button],
                      layout=w.Layout(align_items="center", grid_gap="12px"))
        super().__init__([self.title, row, self.kept, self.error])

    def update(self, record: dict[str, Any], metrics: list[dict[str, Any]], log_tail: str = "") -> None:
        state = record.get("state")
        name = record.get("display_name") or record.get("id")
        base = (record.get("tuning") or {}).get("base_model") or (record.get("params") or {}).get("base_model")
        self.title.value = (
            f'<div style="display:flex;align-items:center;gap:10px;flex-wrap:wrap">'
            f'<span style="font-size:17px;font-weight:600">{esc(name)}</span>{badge_html(state)}'
            f'<span style="color:{theme.MUTED};font-size:13px">base model <code>{esc(base)}</code> · '
            f'job <code>{esc(record.get("id"))}</code></span></div>')

        progress = record.get("progress") or {}
        step, total = int(progress.get("step") or 0), int(progress.get("total_steps") or 0)
        kept = kept_model(record)
        stopped_at = (kept or {}).get("stopped_at")
        self.progress.max = max(total, 1)
        self.progress.value = min(step, self.progress.max) if total else 0
        if state == JobState.SUCCEEDED and not stopped_at:
            self.progress.value = self.progress.max  # an early-stopped bar ends where the job stopped
        self.progress.bar_style = _BAR_STYLES.get(state, "info")
        position = record.get("queue_position")
        if state == JobState.QUEUED:  # waiting for a machine slot ($JUPYTER_TUNE_SLOTS)
            parts = [f"queued, position {position}" if isinstance(position, int) else "queued"]
        elif stopped_at:
            parts = [f"stopped early at step {stopped_at:,} of {total:,}" if total else f"stopped at step {stopped_at:,}"]
        else:
            parts = [f"step {step:,} / {total:,}" if total else "preparing…"]
            if progress.get("phase") == "evaluating":  # the end-of-job report (training/end_report.py)
                parts.append(f"evaluating the {esc(progress.get('evaluating') or 'models')}")
        if progress.get("epoch") is not None:
            parts.append(f"epoch {float(progress['epoch']):.2f}")
        parts.append(f"elapsed {duration(elapsed_seconds(record))}")
        eta = eta_seconds(record, metrics)
        if eta is not None:
            parts.append(f"ETA {duration(eta)}")
        self.progress_text.value = f'<span style="font-size:13px">{" · ".join(parts)}</span>'
        self.kept.value = (f'<div class="jt-kept" style="font-size:13px"><b>{esc(kept["text"])}</b></div>'
                           if kept else "")
        self.kept.layout.display = None if kept else "none"

        self.cancel_button.layout.display = None if state in CANCELLABLE_STATES else "none"
        self.cancel_button.disabled = state not in CANCELLABLE_STATES

        err = record.get("error")
        message = err.get("message") if isinstance(err, dict) else err
        if state == JobState.FAILED or message:
            log = (f'<div style="margin-top:6px;color:{theme.MUTED}">Last lines of <code>log.txt</code>:</div>'
                   f'<pre style="max-height:220px;overflow:auto;{theme.BOX_STYLE};padding:6px;'
                   f'font-size:12px;white-space:pre-wrap">{esc(log_tail)}</pre>') if log_tail else ""
            self.error.value = (
                f'<div class="jt-error" style="border-left:4px solid {theme.ERROR};padding:6px 10px;'
                f'background:{theme.ERROR_SURFACE};color:{theme.TEXT}">'
                f'<b>Error</b><pre style="white-space:pre-wrap;margin:4px 0">{esc(message or "unknown error")}'
                f"</pre></div>{log}")
            self.error.layout.display = None
        else:
            self.error.value = ""
            self.error.layout.display = "none"
