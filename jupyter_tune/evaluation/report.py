"""EvaluationReport: the metrics, the per-row predictions and the status of one evaluation."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from .. import theme
from . import plots


@dataclass
class EvaluationReport:
    """What ``jt.evaluate`` returns.

    metrics: DataFrame; classification: one row per label (precision, recall, f1_score, support) plus
      "macro avg", "micro avg" and "weighted avg"; text_generation: bleu4_score, rouge-l_precision,
      rouge-l_recall, rouge-l_f1_score, exact_match.
    predictions: DataFrame, one row per example: its fields, ground_truth, prediction, correct, status,
      and label_scores (the ranking scores) with label_logprobs (summed log-likelihoods) in score mode,
      or raw_answer in generate mode.
    evaluation_status: {"num_successful_rows", "num_total_rows"}; rows that failed are left out of metrics.
    confusion_matrix: DataFrame (true label x predicted label), classification only.
    scoring: score mode's label scoring ("sum", "mean", "calibrated", "calibrated_mean"), else None;
      scoring_auto: True when scoring="auto" chose it (calibrated for a base model, sum for a tuned one).
    content_free_logprobs: {label: mean summed log-likelihood for the content-free inputs} when calibrated.
    majority: a TF-IDF baseline's (``jt.baseline``) majority-class report on the same rows, else None.
    """

    task_type: str
    mode: str | None
    metrics: Any
    predictions: Any
    evaluation_status: dict[str, int]
    confusion_matrix: Any = None
    labels: list[str] = field(default_factory=list)
    model_name: str = ""
    elapsed_s: float = 0.0
    scoring: str | None = None
    content_free_logprobs: dict[str, float] | None = None
    majority: EvaluationReport | None = None
    scoring_auto: bool = False  # `scoring` was chosen by scoring="auto" for this kind of model

    @property
    def macro_f1(self) -> float | None:
        if self.task_type != "classification":
            return None
        return float(self.metrics.loc["macro avg", "f1_score"])

    @property
    def accuracy(self) -> float:
        ok = self.predictions[self.predictions["status"] == ""]
        return float(ok["correct"].mean()) if len(ok) else 0.0

    def summary(self) -> str:
        s = self.evaluation_status
        what = f"{self.task_type}" + (f", {self.mode} mode" if self.mode else "")
        what += f" ({'auto: ' if self.scoring_auto else ''}{self.scoring} scoring)" if self.scoring else ""
        head = f"{self.model_name}: {what}, {s['num_successful_rows']}/{s['num_total_rows']} rows"
        if self.task_type == "classification":
            extra = f"; majority class: macro F1 {self.majority.macro_f1:.3f}" if self.majority else ""
            return head + f", macro F1 {self.macro_f1:.3f}, accuracy {self.accuracy:.3f}{extra}"
        m = self.metrics.iloc[0]
        return head + f", BLEU-4 {m['bleu4_score']:.3f}, ROUGE-L F1 {m['rouge-l_f1_score']:.3f}"

    def __repr__(self) -> str:
        return f"<EvaluationReport {self.summary()}>"

    def plot(self):
        """Classification: per-label F1 bars beside the confusion matrix; text generation: the metrics."""
        if self.task_type == "classification":
            f = plots._figure(11.5, max(3.5, 0.42 * len(self.labels) + 1.8))
            left, right = f.subfigures(1, 2, width_ratios=[1, 1.2])
            plots.f1_bars(self.labels, self.metrics.loc[self.labels, "f1_score"].tolist(), ax=left.add_subplot())
            plots.confusion_heatmap(self.confusion_matrix, ax=right.add_subplot())
            return f
        f = plots._figure(5.5, 2.6)
        ax = f.add_subplot()
        row = self.metrics.iloc[0]
        ax.barh(list(row.index), list(row.values), color=theme.PLOT_BLUE)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title("Text generation metrics")
        return f

    def _repr_html_(self) -> str:
        s = self.evaluation_status
        warn = ""
        if s["num_successful_rows"] < s["num_total_rows"]:
            failed = self.predictions[self.predictions["status"] != ""]
            first = html.escape(str(failed["status"].iloc[0]))[:300]
            warn = (f'<div style="{theme.ERROR_STYLE}">{s["num_total_rows"] - s["num_successful_rows"]} rows failed and '
                    f"are left out of the metrics (see <code>report.predictions.status</code>); first: {first}</div>")
        table = self.metrics.to_html(float_format=lambda v: f"{v:.3f}", border=0)
        body = f'<div style="flex:0 0 auto">{table}</div>'
        if self.task_type == "classification":
            body += f'<div style="flex:1 1 400px">{plots.figure_html(self.plot())}</div>'
        return (f'<div class="jt-report"><b>EvaluationReport</b> &mdash; {html.escape(self.summary())}{warn}'
                f'<div style="display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start">{body}</div></div>')
