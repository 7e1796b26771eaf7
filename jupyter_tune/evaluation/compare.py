"""``compare``: two evaluations of the same data side by side (typically base vs tuned)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from . import plots
from .report import EvaluationReport


@dataclass
class Comparison:
    """metrics: base, tuned and delta per metric (classification: per label and averages);
    fixed / broken: the rows the tuned model got right that the base got wrong, and the reverse."""

    base: EvaluationReport
    tuned: EvaluationReport
    metrics: Any
    fixed: Any
    broken: Any

    @property
    def macro_f1_change(self) -> float | None:
        if self.base.task_type != "classification":
            return None
        return self.tuned.macro_f1 - self.base.macro_f1

    def summary(self) -> str:
        if self.base.task_type == "classification":
            head = (f"macro F1 {self.base.macro_f1:.3f} -> {self.tuned.macro_f1:.3f} "
                    f"({self.macro_f1_change:+.3f})")
        else:
            b, t = (r.metrics.iloc[0]["rouge-l_f1_score"] for r in (self.base, self.tuned))
            head = f"ROUGE-L F1 {b:.3f} -> {t:.3f} ({t - b:+.3f})"
        return f"{head}; {len(self.fixed)} rows fixed, {len(self.broken)} broken{self._scoring_note()}"

    def _scoring_note(self) -> str:
        b, t = self.base.scoring, self.tuned.scoring
        if b == t:
            return f"; {b} scoring" if b else ""
        # Different scorings rank labels differently: the delta mixes model and scoring.
        return f"; scoring differs: base {b or self.base.mode}, tuned {t or self.tuned.mode}"

    def __repr__(self) -> str:
        return f"<Comparison {self.base.model_name} vs {self.tuned.model_name}: {self.summary()}>"

    def plot(self):
        """Per-label F1, base vs tuned (classification); the metrics side by side otherwise."""
        if self.base.task_type == "classification":
            labels = self.base.labels
            return plots.f1_base_vs_tuned(labels, self.base.metrics.loc[labels, "f1_score"].tolist(),
                                          self.tuned.metrics.loc[labels, "f1_score"].tolist())
        names = list(self.base.metrics.columns)
        return plots.f1_base_vs_tuned(names, self.base.metrics.iloc[0].tolist(), self.tuned.metrics.iloc[0].tolist(),
                                      title="Text generation metrics: base vs tuned")

    def _repr_html_(self) -> str:
        def examples(df, title):
            if df.empty:
                return f"<p><b>{title}</b>: none</p>"
            return f"<p><b>{title}</b> ({len(df)})</p>" + df.head(10).to_html(border=0)

        table = self.metrics.to_html(float_format=lambda v: f"{v:+.3f}" if abs(v) < 1.0001 else f"{v:.0f}",
                                     border=0)
        return (f"<div><b>Comparison</b> {html.escape(self.base.model_name)} &rarr; "
                f"{html.escape(self.tuned.model_name)}: {html.escape(self.summary())}"
                f'<div style="display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start"><div>{table}</div>'
                f"<div>{plots.figure_html(self.plot())}</div></div>"
                f"{examples(self.fixed, 'Fixed by tuning')}{examples(self.broken, 'Broken by tuning')}</div>")


def compare(base_report: EvaluationReport, tuned_report: EvaluationReport) -> Comparison:
    """Compare two reports on the same rows: metrics with deltas, the examples fixed and broken."""
    import pandas as pd

    for r in (base_report, tuned_report):
        if not isinstance(r, EvaluationReport):
            raise TypeError(f"compare takes two EvaluationReports (from jt.evaluate), not {type(r).__name__}.")
    if base_report.task_type != tuned_report.task_type:
        raise ValueError(f"Cannot compare a {base_report.task_type} report with a {tuned_report.task_type} one; "
                         "evaluate both models with the same task_type.")
    bp, tp = base_report.predictions, tuned_report.predictions
    if len(bp) != len(tp) or list(bp["ground_truth"]) != list(tp["ground_truth"]):
        raise ValueError(f"The reports are on different data ({len(bp)} vs {len(tp)} rows, or other ground "
                         "truth); evaluate both models on the same dataset.")
    if base_report.task_type == "classification":
        labels = list(dict.fromkeys(base_report.labels + tuned_report.labels))
        idx = labels + ["macro avg", "micro avg", "weighted avg"]
        b, t = base_report.metrics.reindex(idx), tuned_report.metrics.reindex(idx)
        cols = ["precision", "recall", "f1_score"]
    else:
        b, t = base_report.metrics, tuned_report.metrics
        cols = list(b.columns)
    parts = {}
    for c in cols:
        parts[(c, "base")] = b[c]
        parts[(c, "tuned")] = t[c]
        parts[(c, "delta")] = t[c] - b[c]
    metrics = pd.DataFrame(parts)
    if base_report.task_type == "classification":
        metrics[("support", "")] = b["support"]
    both_ok = (bp["status"] == "") & (tp["status"] == "")
    keep = [c for c in bp.columns if c not in ("prediction", "correct", "status", "label_scores", "label_logprobs",
                                               "raw_answer")]
    side = bp[keep].copy()
    side["base_prediction"] = bp["prediction"]
    side["tuned_prediction"] = tp["prediction"]
    fixed = side[both_ok & ~bp["correct"].astype(bool) & tp["correct"].astype(bool)]
    broken = side[both_ok & bp["correct"].astype(bool) & ~tp["correct"].astype(bool)]
    return Comparison(base_report, tuned_report, metrics, fixed, broken)
