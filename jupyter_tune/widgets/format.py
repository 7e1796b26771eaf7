"""Small formatting helpers shared by the tabs: numbers, durations, times, state colours."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

from .. import theme
from ..jobs.states import JobState

# Badge colours by state, close to the Vertex console's, from JupyterLab's theme (theme.py).
STATE_COLORS = {
    JobState.QUEUED: theme.NEUTRAL,
    JobState.PENDING: theme.NEUTRAL,
    JobState.RUNNING: theme.BRAND,
    JobState.SUCCEEDED: theme.SUCCESS,
    JobState.FAILED: theme.ERROR,
    JobState.CANCELLING: theme.WARN,
    JobState.CANCELLED: theme.WARN,
}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def state_label(state: str | None) -> str:
    """'JOB_STATE_RUNNING' -> 'Running'."""
    return (state or "unknown").removeprefix("JOB_STATE_").capitalize()


def badge_html(state: str | None) -> str:
    color = STATE_COLORS.get(state or "", theme.NEUTRAL)
    return (f'<span class="jt-badge" title="{esc(state)}" style="background:{color};color:{theme.ON_COLOR};'
            f'border-radius:10px;padding:2px 10px;font-size:12px;font-weight:600">'
            f"{esc(state_label(state))}</span>")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def local_time(value: Any) -> str:
    t = parse_time(value)
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S") if t else "—"


def duration(seconds: float | None) -> str:
    """3725 -> '1 h 2 min'; 75 -> '1 min 15 s'."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def count(n: Any) -> str:
    """1234567 -> '1,234,567'; None -> '—'."""
    if n is None:
        return "—"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def number(x: Any, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}g}"
    return esc(x)


def nbytes(n: Any) -> str:
    if n is None:
        return "—"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def table_html(rows: list[tuple[str, Any]], cls: str = "jt-table") -> str:
    """A two-column key/value table; values are escaped unless they are already Markup (str subclass)."""
    body = "".join(
        f'<tr><th style="text-align:left;padding:3px 16px 3px 0;font-weight:500;color:{theme.MUTED};'
        f'vertical-align:top">{esc(k)}</th><td style="padding:3px 0">'
        f"{v if isinstance(v, Markup) else esc(v)}</td></tr>"
        for k, v in rows)
    # line-height: the HTML widget's own (a control's height) would space the rows far apart
    return f'<table class="{cls}" style="border-collapse:collapse;font-size:13px;line-height:1.4">{body}</table>'


def cards_html(items: list[tuple[str, str]]) -> str:
    """A row of small label/value cards (the latest metrics)."""
    cards = "".join(
        f'<div style="border:1px solid {theme.BORDER};border-radius:6px;padding:4px 10px;min-width:96px">'
        f'<div style="font-size:11px;color:{theme.MUTED}">{esc(k)}</div>'
        f'<div style="font-size:16px;font-weight:600">{esc(v)}</div></div>' for k, v in items)
    return f'<div class="jt-cards" style="display:flex;flex-wrap:wrap;gap:8px;line-height:1.4">{cards}</div>'


class Markup(str):
    """A string that is already HTML (not escaped again by table_html)."""
