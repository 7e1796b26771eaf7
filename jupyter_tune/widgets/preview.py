"""``jt.preview_dataset(data, base_model=..., **params)``: the Dataset tab for a dataset that has not been
tuned on yet, plus an estimate of the time and memory a job with these settings would take."""

from __future__ import annotations

import importlib
from typing import Any

import ipywidgets as w

from .. import theme
from ..params import TuningParams
from .dataset import DatasetTab
from .format import Markup, count, duration, esc, nbytes, table_html


def estimate_html(estimate: dict[str, Any] | None, error: str | None = None) -> str:
    if estimate is None:
        why = f": {esc(error)}" if error else ""
        return f'<div style="{theme.MUTED_STYLE}">No time and memory estimate{why}.</div>'
    measured = estimate.get("measured_steps")
    rows = [
        ("Estimated time", Markup(f"<b>{esc(duration(estimate.get('total_seconds') or estimate.get('estimated_seconds')))}"
                                  "</b>")),
        ("Steps", count(estimate.get("total_steps"))),
        ("Seconds per step", f"{estimate['seconds_per_step']:.2f}"
         if estimate.get("seconds_per_step") is not None else "—"),
        ("Peak memory", nbytes(estimate.get("peak_memory_bytes"))),
    ]
    if estimate.get("evaluation_seconds"):  # evaluate_after: base and tuned model on the validation set
        rows.insert(1, ("End-of-job report", f"about {duration(estimate['evaluation_seconds'])} of it (rough)"))
    if measured:
        rows.append(("Measured from", f"{measured} real training steps"))
    return '<h4 style="margin:6px 0 4px">Estimate for these settings</h4>' + table_html(rows)


class DatasetPreview(w.VBox):
    """The dataset statistics and the cost estimate, before any job exists."""

    def __init__(self, stats: dict[str, Any], params: TuningParams, estimate: dict[str, Any] | None,
                 estimate_error: str | None = None):
        self.stats, self.params, self.estimate = stats, params, estimate
        self.title = w.HTML(f'<div style="font-size:16px;font-weight:600">Dataset preview</div>'
                            f'<div style="{theme.MUTED_STYLE};font-size:13px">base model '
                            f"<code>{esc(params.base_model)}</code> · max sequence length "
                            f"{params.max_seq_length} · batch size {params.batch_size}</div>")
        self.estimate_box = w.HTML(estimate_html(estimate, estimate_error))
        self.dataset = DatasetTab()
        self.dataset.update(stats)
        super().__init__([self.title, self.estimate_box, self.dataset], layout=w.Layout(max_width="900px"))


def preview_dataset(train_dataset: Any, validation_dataset: Any = None, base_model: str | None = None,
                    estimate: bool = True, **params: Any) -> DatasetPreview:
    """Statistics of `train_dataset` (and `validation_dataset`) as a job with these settings would see them,
    and (when `estimate`) the time and peak memory measured from a few real training steps.

    Takes the same datasets and parameters as ``jt.tune``; returns a widget. A bad dataset raises the same
    DatasetError that ``jt.tune`` would.
    """
    if base_model is not None:
        params["base_model"] = base_model
    tp = TuningParams(**params)
    stats_mod = importlib.import_module("jupyter_tune.data.stats")
    stats = stats_mod.dataset_stats(train_dataset, validation_dataset, base_model=tp.base_model, params=tp)
    cost, error = None, None
    if estimate:
        try:
            estimate_mod = importlib.import_module("jupyter_tune.training.estimate")
            cost = estimate_mod.estimate_cost(train_dataset, tp, validation_data=validation_dataset)
        except Exception as e:  # the preview still shows the statistics
            error = f"{type(e).__name__}: {e}"
    return DatasetPreview(stats, tp, cost, error)
