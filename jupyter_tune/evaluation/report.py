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
    runner_up: a generation baseline's (``jt.baseline``, kind "auto") other baseline on the same rows, the one
      with the lower ROUGE-L F1, else None.
    long_inputs: score mode: {"mode", "max_input_tokens", "rows_cut", "rows_in_windows", "prompts"} (what
      became of prompts longer than max_input_tokens; evaluation/long_inputs.py), else None.
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
    graders: list[dict[str, Any]] = field(default_factory=list)  # per grader: name, kind, mean, pass_rate, errors
    long_inputs: dict[str, Any] | None = None
    runner_up: EvaluationReport | None = None
    # a tuned job's model: its evaluation rows that share inputs with the job's own rows (evaluation/overlap.py),
    # {"training": n, "validation": n, "messages": [...]}; None when not checked (a base model, overlap="ignore")
    overlap: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_json`` reads it back): frames in pandas' "split" form."""
        return {"task_type": self.task_type, "mode": self.mode, "metrics": _frame_out(self.metrics),
                "predictions": _frame_out(self.predictions), "evaluation_status": dict(self.evaluation_status),
                "confusion_matrix": _frame_out(self.confusion_matrix), "labels": list(self.labels),
                "model_name": self.model_name, "elapsed_s": self.elapsed_s, "scoring": self.scoring,
                "content_free_logprobs": self.content_free_logprobs, "scoring_auto": self.scoring_auto,
                "majority": self.majority.to_json() if self.majority is not None else None,
                "graders": list(self.graders), "long_inputs": self.long_inputs,
                "runner_up": self.runner_up.to_json() if self.runner_up is not None else None,
                "overlap": self.overlap, "summary": self.summary()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EvaluationReport:
        """The report ``to_json`` wrote (a job's evaluation/*.json, the cached base reports)."""
        return cls(task_type=d["task_type"], mode=d.get("mode"), metrics=_frame_in(d["metrics"]),
                   predictions=_frame_in(d["predictions"]), evaluation_status=dict(d["evaluation_status"]),
                   confusion_matrix=_frame_in(d.get("confusion_matrix")), labels=list(d.get("labels") or []),
                   model_name=d.get("model_name", ""), elapsed_s=float(d.get("elapsed_s") or 0.0),
                   scoring=d.get("scoring"), content_free_logprobs=d.get("content_free_logprobs"),
                   majority=cls.from_json(d["majority"]) if d.get("majority") else None,
                   scoring_auto=bool(d.get("scoring_auto")), graders=list(d.get("graders") or []),
                   long_inputs=d.get("long_inputs"),
                   runner_up=cls.from_json(d["runner_up"]) if d.get("runner_up") else None,
                   overlap=d.get("overlap"))

    @property
    def macro_f1(self) -> float | None:
        if self.task_type != "classification":
            return None
        return float(self.metrics.loc["macro avg", "f1_score"])

    @property
    def rouge_l(self) -> float | None:
        """text_generation: the ROUGE-L F1 (the metric generation reports and baselines are ranked by)."""
        if self.task_type != "text_generation":
            return None
        return float(self.metrics.iloc[0]["rouge-l_f1_score"])

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
            return head + f", macro F1 {self.macro_f1:.3f}, accuracy {self.accuracy:.3f}{extra}{self._graders_note()}"
        m = self.metrics.iloc[0]
        extra = (f"; {self.runner_up.model_name.removeprefix('baseline: ')}: ROUGE-L F1 {self.runner_up.rouge_l:.3f}"
                 if self.runner_up else "")
        return (head + f", BLEU-4 {m['bleu4_score']:.3f}, ROUGE-L F1 {m['rouge-l_f1_score']:.3f}{extra}"
                + self._graders_note())

    def _graders_note(self) -> str:
        parts = [f"{g['name']} {g['mean']:.3f} (pass {g['pass_rate']:.0%}"
                 + (f", {g['errors']} error{'s' if g['errors'] > 1 else ''})" if g["errors"] else ")") for g in self.graders]
        return ("; graders: " + ", ".join(parts)) if parts else ""

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
        for message in (self.overlap or {}).get("messages") or []:  # scored on rows the job used
            warn += f'<div style="{theme.ERROR_STYLE}">{html.escape(message)}</div>'
        table = self.metrics.to_html(float_format=lambda v: f"{v:.3f}", border=0)
        body = f'<div style="flex:0 0 auto">{table}</div>'
        if self.task_type == "classification":
            body += f'<div style="flex:1 1 400px">{plots.figure_html(self.plot())}</div>'
        return (f'<div class="jt-report"><b>EvaluationReport</b> &mdash; {html.escape(self.summary())}{warn}'
                f'<div style="display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start">{body}</div></div>')


def _frame_out(df) -> dict[str, Any] | None:
    if df is None:
        return None
    out = df.to_dict(orient="split")
    out["index_name"], out["columns_name"] = df.index.name, df.columns.name
    return out


def _frame_in(d: dict[str, Any] | None):
    import pandas as pd

    if d is None:
        return None
    df = pd.DataFrame(d["data"], index=d["index"], columns=d["columns"])
    df.index.name, df.columns.name = d.get("index_name"), d.get("columns_name")
    return df
