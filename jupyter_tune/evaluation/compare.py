"""``compare``: two evaluations of the same data side by side (typically base vs tuned), optionally with a
baseline (``jt.baseline``: TF-IDF + linear SVM; nearest neighbour or lead words for generation) as a third
column."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .. import theme
from . import plots
from .report import EvaluationReport


@dataclass
class Comparison:
    """metrics: base, tuned, baseline (when given) and delta (tuned - base) per metric (classification: per
    label and averages); fixed / broken: the rows the tuned model got right that the base got wrong, and the
    reverse."""

    base: EvaluationReport
    tuned: EvaluationReport
    metrics: Any
    fixed: Any
    broken: Any
    baseline: EvaluationReport | None = None

    @property
    def macro_f1_change(self) -> float | None:
        if self.base.task_type != "classification":
            return None
        return self.tuned.macro_f1 - self.base.macro_f1

    @property
    def beats_baseline(self) -> bool | None:
        """Whether the tuned model's macro F1 (text generation: ROUGE-L F1) is above the baseline's; None
        without a baseline."""
        if self.baseline is None:
            return None
        return _score(self.tuned) > _score(self.baseline)

    def _baseline_note(self) -> str:
        if self.beats_baseline is None:
            return ""
        name = _baseline_name(self.baseline)
        t, b = _score(self.tuned), _score(self.baseline)
        if self.beats_baseline:
            return f"; {name} {b:.3f}"
        # Said in the headline: a tuned model that a model-free baseline matches is not worth its cost.
        return f"; tuned {t:.3f} {'<' if t < b else '='} {name} {b:.3f}: tuning did not pay on this data"

    def summary(self) -> str:
        if self.base.task_type == "classification":
            head = (f"macro F1 {self.base.macro_f1:.3f} -> {self.tuned.macro_f1:.3f} "
                    f"({self.macro_f1_change:+.3f}){self._baseline_note()}")
        else:
            b, t = self.base.rouge_l, self.tuned.rouge_l
            head = f"ROUGE-L F1 {b:.3f} -> {t:.3f} ({t - b:+.3f}){self._baseline_note()}"
        return (f"{head}; {len(self.fixed)} rows fixed, {len(self.broken)} broken{self._graders_note()}"
                f"{self._scoring_note()}")

    @property
    def graders(self) -> dict[str, tuple[float, float]]:
        """{grader name: (base mean, tuned mean)} for the graders both reports ran."""
        base = {g["name"]: g["mean"] for g in getattr(self.base, "graders", None) or []}
        return {g["name"]: (base[g["name"]], g["mean"]) for g in getattr(self.tuned, "graders", None) or []
                if g["name"] in base}

    def _graders_note(self) -> str:
        return "".join(f"; {name} {b:.3f} -> {t:.3f}" for name, (b, t) in self.graders.items())

    def _scoring_note(self) -> str:
        b, t = self.base.scoring, self.tuned.scoring
        if b == t:
            return f"; {b} scoring" if b else ""
        if "head" in (self.base.mode, self.tuned.mode):  # a classification head ranks by its own softmax
            return "; " + ", ".join(f"{name}: {'classification head' if r.mode == 'head' else f'{r.scoring} scoring'}"
                                    for name, r in (("base", self.base), ("tuned", self.tuned)))
        if self.base.scoring_auto and self.tuned.scoring_auto:  # each the best measured for its kind
            return f"; auto scoring: base {b}, tuned {t}"
        # Different scorings rank labels differently: the delta mixes model and scoring.
        return f"; scoring differs: base {b or self.base.mode}, tuned {t or self.tuned.mode}"

    def __repr__(self) -> str:
        return f"<Comparison {self.base.model_name} vs {self.tuned.model_name}: {self.summary()}>"

    def plot(self):
        """Per-label F1, base vs tuned (and the baseline); the metrics side by side otherwise."""
        if self.base.task_type == "classification":
            labels = self.base.labels
            f1 = [r.metrics.reindex(labels)["f1_score"].fillna(0.0).tolist() if r is not None else None
                  for r in (self.base, self.tuned, self.baseline)]
            return plots.f1_base_vs_tuned(labels, f1[0], f1[1], baseline=f1[2],
                                          baseline_name=_baseline_name(self.baseline) if self.baseline else "")
        names = list(self.base.metrics.columns)
        bl = self.baseline
        return plots.f1_base_vs_tuned(names, self.base.metrics.iloc[0].tolist(), self.tuned.metrics.iloc[0].tolist(),
                                      title="Text generation metrics: base vs tuned" + (" vs baseline" if bl else ""),
                                      baseline=bl.metrics.iloc[0][names].tolist() if bl else None,
                                      baseline_name=_baseline_name(bl) if bl else "")

    def _repr_html_(self) -> str:
        def examples(df, title):
            if df.empty:
                return f"<p><b>{title}</b>: none</p>"
            return f"<p><b>{title}</b> ({len(df)})</p>" + df.head(10).to_html(border=0)

        def number(signed: bool):
            return lambda v: (f"{v:+.3f}" if signed else f"{v:.3f}") if abs(v) < 1.0001 else f"{v:.0f}"

        # only a difference (tuned - base) carries a sign; base, tuned and baseline are values
        table = self.metrics.to_html(formatters={c: number(c[-1] == "delta") for c in self.metrics.columns},
                                     border=0)
        lost = self.beats_baseline is False
        head = html.escape(self.summary())
        if lost:  # the verdict reads as a warning, not as one more number
            head = f'<span style="{theme.ERROR_STYLE}">{head}</span>'
        return (f"<div><b>Comparison</b> {html.escape(self.base.model_name)} &rarr; "
                f"{html.escape(self.tuned.model_name)}: {head}"
                f'<div style="display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start"><div>{table}</div>'
                f"<div>{plots.figure_html(self.plot())}</div></div>"
                f"{examples(self.fixed, 'Fixed by tuning')}{examples(self.broken, 'Broken by tuning')}</div>")


def _baseline_name(report: EvaluationReport) -> str:
    """'baseline: TF-IDF + linear SVM' -> 'baseline (TF-IDF + linear SVM)', 'baseline: nearest neighbour
    (TF-IDF)' -> 'baseline (nearest neighbour, TF-IDF)'; another report: its model."""
    name = report.model_name
    if not name.startswith("baseline:"):
        return f"baseline {name}"
    return f"baseline ({name.split(':', 1)[1].strip().replace(' (', ', ').replace(')', '')})"


def _score(report: EvaluationReport) -> float:
    """The metric a report is ranked by: macro F1, or ROUGE-L F1 for text generation."""
    return report.macro_f1 if report.task_type == "classification" else report.rouge_l


def compare(base_report: EvaluationReport, tuned_report: EvaluationReport,
            baseline: EvaluationReport | None = None) -> Comparison:
    """Compare two reports on the same rows: metrics with deltas, the examples fixed and broken.

    baseline: a report of the same task on the same rows to read both against, typically
    ``jt.baseline(train, eval)`` (TF-IDF + linear SVM for classification, the better of nearest neighbour and
    lead words for generation): a third column per metric, and the headline says when the tuned model does
    not beat it (macro F1; generation: ROUGE-L F1).
    """
    import pandas as pd

    reports = (base_report, tuned_report) + ((baseline,) if baseline is not None else ())
    for r in reports:
        if not isinstance(r, EvaluationReport):
            raise TypeError(f"compare takes EvaluationReports (from jt.evaluate or jt.baseline), not "
                            f"{type(r).__name__}.")
    if base_report.task_type != tuned_report.task_type:
        raise ValueError(f"Cannot compare a {base_report.task_type} report with a {tuned_report.task_type} one; "
                         "evaluate both models with the same task_type.")
    if baseline is not None and baseline.task_type != base_report.task_type:
        raise ValueError(f"baseline= is a {baseline.task_type} report and the models' are {base_report.task_type}: "
                         "give a baseline of the same task (jt.baseline(train, eval, kind=...): tfidf or majority "
                         "for classification, nearest or lead for generation), or leave baseline out.")
    bp, tp = base_report.predictions, tuned_report.predictions
    for other, what in ((tp, "tuned"), (baseline.predictions if baseline is not None else None, "baseline")):
        if other is not None and (len(bp) != len(other) or list(bp["ground_truth"]) != list(other["ground_truth"])):
            raise ValueError(f"The base and {what} reports are on different data ({len(bp)} vs {len(other)} rows, "
                             "or other ground truth); evaluate them on the same dataset.")
    if base_report.task_type == "classification":
        labels = list(dict.fromkeys(base_report.labels + tuned_report.labels))
        idx = labels + ["macro avg", "micro avg", "weighted avg"]
        b, t = base_report.metrics.reindex(idx), tuned_report.metrics.reindex(idx)
        bl = baseline.metrics.reindex(idx) if baseline is not None else None
        cols = ["precision", "recall", "f1_score"]
    else:
        b, t = base_report.metrics, tuned_report.metrics
        bl = baseline.metrics if baseline is not None else None
        cols = list(b.columns)
    parts = {}
    for c in cols:
        parts[(c, "base")] = b[c]
        parts[(c, "tuned")] = t[c]
        if bl is not None:
            parts[(c, "baseline")] = bl[c]
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
    if baseline is not None:
        side["baseline_prediction"] = baseline.predictions["prediction"].to_numpy()
    fixed = side[both_ok & ~bp["correct"].astype(bool) & tp["correct"].astype(bool)]
    broken = side[both_ok & bp["correct"].astype(bool) & ~tp["correct"].astype(bool)]
    return Comparison(base_report, tuned_report, metrics, fixed, broken, baseline)
