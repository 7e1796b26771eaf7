"""CompareView: runs side by side (``jt.compare_jobs([...])``, ``sweep.view()``).

Loss, next-token accuracy and, where logged, the task metric (eval_macro_f1), train and validation
overlaid with one colour per job, against steps or trained tokens; a table of the parameters that differ
and the final and best metrics, the best run starred. Like the job view it reads the store and polls it
from a daemon thread while any run is active, so it updates live; ``_repr_html_`` gives the same chart and
table to static renders (nbconvert, a notebook viewer).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

from .. import theme
from ..experiments.compare import (
    Run,
    best_run,
    choose_objective,
    differing_params,
    summary_rows,
)
from ..jobs.queue import reconcile
from ..jobs.states import JobState
from ..jobs.store import JobNotFoundError, JobStore
from .charts import _to_png
from .format import badge_html, esc
from .poller import LivePoller

# (title, train key, validation key)
PANELS = (
    ("Loss", "train_total_loss", "eval_total_loss"),
    ("Next-token accuracy", "train_fraction_of_correct_next_step_preds", "eval_fraction_of_correct_next_step_preds"),
    ("Task metric: macro F1 (validation)", None, "eval_macro_f1"),
)
COLORS = theme.PLOT_SERIES  # one per run: the chart's lines and the table's swatches
# Parameters whose None means "chosen by the job" and the job.json ``tuning`` key holding what it chose.
AUTO_PARAMS = {"epochs": "epochs"}
X_AXES = {"steps": "step", "tokens": "trained tokens"}


def _job_id(job: Any) -> str:
    return job if isinstance(job, str) else job.id


def compare_png(runs: list[Run], x: str = "steps", best: str | None = None) -> tuple[bytes, list[tuple]]:
    """The overlaid curves as PNG, and the (job id, metric) series drawn."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    panels = [p for p in PANELS if p[1] is not None or any(run.values(p[2]) for run in runs)]
    fig = Figure(figsize=(4.2 * len(panels), 3.9), dpi=80, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    drawn = []
    for ax, (title, train_key, eval_key) in zip(axes, panels):
        ax.set_title(title, fontsize=11, loc="left")
        ax.grid(True, alpha=0.3)
        ax.set_xlabel(X_AXES[x], fontsize=9)
        ax.tick_params(labelsize=8)
        for i, run in enumerate(runs):
            color = COLORS[i % len(COLORS)]
            tokens = run.tokens_at() if x == "tokens" else None
            width = 2.6 if run.id == best else 1.4
            for key, style in ((train_key, "-"), (eval_key, "--")):
                points = run.values(key) if key else []
                if not points:
                    continue
                xs = [tokens.get(s, 0.0) if tokens is not None else s for s, _ in points]
                ax.plot(xs, [v for _, v in points], style, color=color, linewidth=width,
                        marker="o" if key == eval_key else None, markersize=3.5)
                drawn.append((run.id, key))
        if not ax.lines:
            ax.text(0.5, 0.5, "waiting for the first step…", ha="center", va="center", transform=ax.transAxes,
                    color=theme.PLOT_TEXT)
    handles = [Line2D([], [], color=COLORS[i % len(COLORS)], linewidth=2.6 if run.id == best else 1.4,
                      label=("★ " if run.id == best else "") + run.name) for i, run in enumerate(runs)]
    handles += [Line2D([], [], color=theme.PLOT_GREY, linestyle="-", label="train"),
                Line2D([], [], color=theme.PLOT_GREY, linestyle="--", marker="o", markersize=3.5, label="validation")]
    # A figure legend (style_figure greys only the axes' own): grey text that reads on light and dark pages.
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8, frameon=False,
               labelcolor=theme.PLOT_TEXT)
    return _to_png(fig), drawn


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _param_text(name: str, value: Any, resolved: dict[str, Any]) -> str:
    """A parameter as the table shows it: "auto (3)" for an automatic value the job resolved, "auto" before."""
    if value is None and name in AUTO_PARAMS:
        chosen = resolved.get(name)
        return f"auto ({_fmt(chosen)})" if chosen is not None else "auto"
    return _fmt(value)


def resolved_params(record: dict[str, Any]) -> dict[str, Any]:
    """What the job chose for its automatic parameters (job.json ``tuning``, once training started)."""
    tuning = record.get("tuning") or {}
    return {name: tuning.get(key) for name, key in AUTO_PARAMS.items() if tuning.get(key) is not None}


def runs_text(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def table_html(rows: list[dict[str, Any]], params: list[str], best: str | None, objective: str | None,
               resolved: dict[str, dict[str, Any]] | None = None) -> str:
    """The runs' table; ``resolved``: job id -> the values its automatic parameters took (epochs)."""
    if not rows:
        return "<i>No runs to compare.</i>"
    skip = {"job", "id", "state", "note"}
    columns = [k for k in rows[0] if k not in skip]
    th = (f'style="text-align:left;padding:3px 10px;border-bottom:1px solid {theme.BORDER};font-weight:600;'
          'white-space:nowrap;line-height:1.5"')
    head = "".join(f"<th {th}>{esc(c)}{' ▼' if c == f'best {objective}' else ''}</th>"
                   for c in ["", "job", "state", *columns])
    body = []
    for i, r in enumerate(rows):
        star = "★" if r["id"] == best else ""
        color = COLORS[i % len(COLORS)]
        bg = f"background:{theme.tint(theme.BRAND, 14)};font-weight:600;" if star else ""
        note = f' <span style="{theme.MUTED_STYLE};font-size:11px">({esc(r["note"])})</span>' if r.get("note") else ""
        cells = [f'<span style="color:{theme.WARN}" title="best run">{star}</span>',
                 f'<span style="color:{color}">■</span> {esc(r["job"])}{note}', badge_html(r["state"])]
        chosen = (resolved or {}).get(r["id"], {})
        cells += [esc(_param_text(c, r[c], chosen) if c in params else _fmt(r[c])) for c in columns]
        tds = "".join(f'<td style="padding:3px 10px;white-space:nowrap;line-height:1.5;{bg}">{c}</td>'
                      for c in cells)
        body.append(f'<tr class="jt-compare-row" data-job-id="{esc(r["id"])}">{tds}</tr>')
    differ = (f"Parameters that differ: <b>{esc(', '.join(params))}</b>." if params
              else "The runs share every parameter.")
    return (f'<div style="font-size:12px;{theme.MUTED_STYLE};margin:4px 0">{differ}</div>'
            f'<div style="overflow-x:auto"><table class="jt-compare-table" style="border-collapse:collapse;'
            f'font-size:12px"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


class CompareView(LivePoller, w.VBox):
    """``CompareView(jobs, metric=None, x="steps", poll_interval=2.0, live=True)``.

    ``jobs``: jobs or ids, or a callable returning them (a sweep adds jobs as it goes). ``metric`` ranks the
    runs (default: eval_macro_f1, else eval_total_loss, else train_total_loss). ``notes`` maps job ids to a
    note shown under the job's name; ``active`` says whether more may come while no job is running.
    """

    thread_name = "jt-compare"

    def __init__(self, jobs: Iterable[Any] | Callable[[], Iterable[Any]], metric: str | None = None,
                 x: str = "steps", title: str | None = None, poll_interval: float = 2.0, live: bool = True,
                 notes: Callable[[], dict[str, str]] | None = None, active: Callable[[], bool] | None = None,
                 store: JobStore | None = None):
        if x not in X_AXES:
            raise ValueError(f"x: {x!r} is not 'steps' or 'tokens'")
        if callable(jobs):
            self._source = jobs
        else:
            ids = [_job_id(j) for j in jobs]
            self._source = lambda: ids
        self.store = store or JobStore()
        self.metric, self.poll_interval = metric, poll_interval
        self._notes = notes or dict
        self._active = active or (lambda: False)
        self.title = w.HTML()
        self._title = title or "Compare runs"
        self.x_axis = w.ToggleButtons(options=[("steps", "steps"), ("tokens", "tokens")], value=x,
                                      description="x axis", style={"button_width": "70px"})
        self.x_axis.observe(lambda _: self.refresh(force=True), names="value")
        self.chart = w.Image(format="png", layout=w.Layout(width="100%", max_width="1100px"))
        self.table = w.HTML()
        self.message = w.HTML()
        super().__init__([self.title, self.x_axis, self.chart, self.table, self.message],
                         layout=w.Layout(max_width="1120px"))
        self.add_class("jt-compare-view")
        self._init_poller()
        self._cache: dict[str, tuple[int, list]] = {}
        self._key: tuple | None = None
        self.runs: list[Run] = []
        self.resolved: dict[str, dict[str, Any]] = {}  # job id -> its automatic parameters' values
        self.series: list[tuple] = []  # (job id, metric) drawn in the chart
        self.differing: list[str] = []
        self.best: Run | None = None
        self.objective: tuple[str | None, bool] = (None, True)
        self.updates = 0
        if not self.refresh() and live:
            self.start()

    # -- reading --
    def _metrics(self, job_id: str) -> list[dict[str, Any]]:
        try:
            size = (self.store.job_dir(job_id) / "metrics.jsonl").stat().st_size
        except OSError:
            size = 0
        cached = self._cache.get(job_id)
        if cached is None or cached[0] != size:
            cached = (size, self.store.read_metrics(job_id))
            self._cache[job_id] = cached
        return cached[1]

    def load(self) -> list[Run]:
        runs, notes = [], self._notes()
        for job_id in dict.fromkeys(_job_id(j) for j in self._source()):
            try:
                record = self.store.read(job_id)
            except JobNotFoundError:
                continue
            self.resolved[job_id] = resolved_params(record)
            runs.append(Run(job_id, record.get("display_name") or job_id, JobState.of(record),
                            record.get("params") or {}, self._metrics(job_id), notes.get(job_id, "")))
        names = [run.name for run in runs]
        for run in runs:  # two runs of one name: the legend and table tell them apart by id
            if names.count(run.name) > 1:
                run.name = run.id
        return runs

    def refresh(self, force: bool = False) -> bool:
        """Read the store and redraw what changed; True once every run is final and no more are coming."""
        with self._lock:
            runs = self.load()
            key = (self.x_axis.value, tuple((r.id, r.state, len(r.rows), r.note, str(self.resolved.get(r.id)))
                                            for r in runs))
            if force or key != self._key:
                self.runs = runs
                self.differing = differing_params(runs)
                self.objective = choose_objective(runs, self.metric)
                self.best = best_run(runs, *self.objective)
                best_id = self.best.id if self.best else None
                self.title.value = self._title_html()
                png, self.series = compare_png(runs, self.x_axis.value, best_id)
                self.chart.value = png
                self.table.value = table_html(summary_rows(runs, self.differing, self.objective[0]),
                                              self.differing, best_id, self.objective[0], self.resolved)
                self._key = key
                self.updates += 1
            done = all(r.state.is_final for r in runs) and not self._active()
            return done

    def _title_html(self) -> str:
        metric, greater = self.objective
        best = (f" Best run: <b>★ {esc(self.best.name)}</b> ({esc(metric)} "
                f"{self.best.best(metric):.4g}, {'higher' if greater else 'lower'} is better)."
                if self.best and metric else "")
        return (f'<div style="font-size:15px;font-weight:600">{esc(self._title)}</div>'
                f'<div style="font-size:12px;{theme.MUTED_STYLE}">{runs_text(len(self.runs))}.{best}</div>')

    # -- the poller (widgets/poller.py) --
    def _tick(self) -> bool:
        # As the job view's poller: a watching kernel records dead jobs and keeps the queue moving.
        for run in self.runs:
            if not run.state.is_final:
                reconcile(self.store, run.id)
        return self.refresh()

    # -- static renders --
    def _repr_html_(self) -> str:
        png = base64.b64encode(self.chart.value or b"").decode("ascii")
        return (f'<div class="jt-compare-static">{self.title.value}'
                f'<img alt="compared runs" src="data:image/png;base64,{png}" style="max-width:100%">'
                f"{self.table.value}</div>")


def compare_jobs(jobs: Iterable[Any], metric: str | None = None, x: str = "steps", **kwargs: Any) -> CompareView:
    """Runs side by side: loss, next-token accuracy and the task metric overlaid (train and validation, one
    colour per job, ``x="steps"`` or ``"tokens"``), the parameters that differ, final and best metrics, the
    best run (by ``metric``; default eval_macro_f1, else eval_total_loss) starred. Live while any job runs.

    ``jobs``: TuningJob objects or job ids."""
    jobs = list(jobs)
    if not jobs:
        raise ValueError("compare_jobs needs at least one job (a TuningJob or a job id)")
    store = JobStore()
    for j in jobs:
        store.read_raw(_job_id(j))  # an unknown id fails here, naming it
    return CompareView(jobs, metric=metric, x=x, store=store, **kwargs)
