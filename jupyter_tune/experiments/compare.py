"""Comparing runs: which parameters differ, final and best metrics, the best run. Pure functions over job
records and metric rows (no widgets, no torch): the comparison view and sweeps both use them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..jobs.states import JobState

# metric -> greater is better. The objective a comparison ranks runs by, first present wins.
DIRECTIONS = {
    "eval_macro_f1": True, "eval_accuracy": True, "eval_total_loss": False,
    "eval_fraction_of_correct_next_step_preds": True, "train_total_loss": False,
    "train_fraction_of_correct_next_step_preds": True, "eval_rewards_accuracy": True,
    "eval_rewards_margin": True,
}
AUTO_OBJECTIVES = ("eval_macro_f1", "eval_total_loss", "train_total_loss")
# Parameters every run has its own value of, or that say nothing about the run: never "differing".
_IGNORED = frozenset({"tuned_model_display_name"})
# The table's metric columns: (column, metric, which value)
SUMMARY_COLUMNS = (
    ("final train loss", "train_total_loss", "final"),
    ("final validation loss", "eval_total_loss", "final"),
    ("best validation loss", "eval_total_loss", "best"),
    ("best macro F1", "eval_macro_f1", "best"),
    ("best validation accuracy", "eval_fraction_of_correct_next_step_preds", "best"),
)


def greater_is_better(metric: str) -> bool:
    if metric in DIRECTIONS:
        return DIRECTIONS[metric]
    return not metric.endswith("loss")


@dataclass
class Run:
    """One job as a comparison sees it."""

    id: str
    name: str
    state: JobState
    params: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # e.g. "pruned at step 4" (sweeps)

    def values(self, metric: str) -> list[tuple[int, float]]:
        return [(r["step"], r[metric]) for r in self.rows
                if isinstance(r.get(metric), (int, float)) and r.get("step") is not None]

    def final(self, metric: str) -> float | None:
        v = self.values(metric)
        return v[-1][1] if v else None

    def best(self, metric: str) -> float | None:
        v = [y for _, y in self.values(metric)]
        if not v:
            return None
        return max(v) if greater_is_better(metric) else min(v)

    def tokens_at(self) -> dict[int, float]:
        """Step -> answer tokens trained on up to it (the sum of train_num_predictions): the tokens x axis."""
        out, total = {}, 0.0
        for r in self.rows:
            if isinstance(r.get("train_num_predictions"), (int, float)):
                total += r["train_num_predictions"]
            if r.get("step") is not None:
                out[r["step"]] = total
        return out


def differing_params(runs: list[Run]) -> list[str]:
    """The parameter names whose values are not the same in every run (in the dataclass's order)."""
    names: list[str] = []
    for run in runs:
        names += [k for k in run.params if k not in names]
    out = []
    for name in names:
        if name in _IGNORED:
            continue
        seen = {json.dumps(run.params.get(name), sort_keys=True, default=str) for run in runs}
        if len(seen) > 1:
            out.append(name)
    return out


def choose_objective(runs: list[Run], metric: str | None = None) -> tuple[str | None, bool]:
    """(metric, greater is better): the one asked for, else the first of eval_macro_f1, eval_total_loss,
    train_total_loss that some run has logged."""
    if metric:
        return metric, greater_is_better(metric)
    for m in AUTO_OBJECTIVES:
        if any(run.values(m) for run in runs):
            return m, greater_is_better(m)
    return None, True


def best_run(runs: list[Run], metric: str | None, greater: bool = True) -> Run | None:
    """The run with the best value of `metric` (each run at its best evaluation); None without values."""
    scored = [(run.best(metric), run) for run in runs if metric and run.best(metric) is not None]
    if not scored:
        return None
    return (max if greater else min)(scored, key=lambda vr: vr[0])[1]


def summary_rows(runs: list[Run], params: list[str], objective: str | None) -> list[dict[str, Any]]:
    """One dict per run: name, state, the differing parameters, the final/best metrics, steps."""
    columns = [c for c in SUMMARY_COLUMNS if any(run.values(c[1]) for run in runs)]
    if objective and not any(c[1] == objective for c in columns):
        columns.append((f"best {objective}", objective, "best"))
    out = []
    for run in runs:
        row: dict[str, Any] = {"job": run.name, "id": run.id, "state": run.state}
        row.update({p: run.params.get(p) for p in params})
        for title, metric, which in columns:
            row[title] = run.final(metric) if which == "final" else run.best(metric)
        steps = [r["step"] for r in run.rows if r.get("step") is not None]
        row["steps"] = max(steps) if steps else 0
        if run.note:
            row["note"] = run.note
        out.append(row)
    return out
