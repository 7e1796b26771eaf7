"""The Supervise tab: live loss, next-token accuracy, predictions per step and tokens per second."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.kept import kept_model
from .charts import has_eval, has_task_metric, metrics_png
from .completions import CompletionsSection
from .format import cards_html, count, number
from .samples import SamplesSection


def latest(rows: list[dict[str, Any]], key: str) -> Any:
    for r in reversed(rows):
        if r.get(key) is not None:
            return r[key]
    return None


class SuperviseTab(w.VBox):
    def __init__(self):
        self.summary = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="820px", width="100%"))
        self.note = w.HTML()
        self.rendered_rows = -1  # metric lines drawn in the current chart
        self._drawn: tuple | None = None  # (lines, kept model, phase) of the current chart and cards
        self.samples = SamplesSection()  # the model's answers to a few validation rows (view.py refreshes it)
        self.completions = CompletionsSection()  # GRPO: each step's sampled answers and rewards (view.py)
        super().__init__([self.summary, self.chart, self.note, self.completions, self.samples])

    def update(self, rows: list[dict[str, Any]], total_steps: int | None = None, force: bool = False,
               record: dict[str, Any] | None = None) -> bool:
        """Redraw when new metric lines arrived or the job ended; returns whether it redrew. With the job's
        record, the cards show the kept checkpoint's validation values and the charts mark it."""
        record = record or {}
        kept = kept_model(record)
        key = (len(rows), (kept or {}).get("text"), (record.get("progress") or {}).get("phase"))
        if not force and key == self._drawn:
            return False
        with_eval = has_eval(rows)
        kept_step = (kept or {}).get("step")
        # the validation cards: the kept checkpoint's evaluation once the job ended, else the latest
        at = [r for r in rows if r.get("step") == kept_step and any(k.startswith("eval_") for k in r)]
        evals = at if kept_step is not None and at else rows
        cells = [
            ("Step", count(latest(rows, "step"))),
            ("Train loss", number(latest(rows, "train_total_loss"))),
            ("Train accuracy", number(latest(rows, "train_fraction_of_correct_next_step_preds"))),
        ]
        at_kept = f" (step {kept_step})" if evals is at else ""
        if with_eval:
            cells += [(f"Validation loss{at_kept}", number(latest(evals, "eval_total_loss"))),
                      (f"Validation accuracy{at_kept}",
                       number(latest(evals, "eval_fraction_of_correct_next_step_preds")))]
        if latest(rows, "eval_rouge_l") is not None:  # a generation job's task metric
            cells += [(f"Validation ROUGE-L{at_kept}", number(latest(evals, "eval_rouge_l")))]
        elif has_task_metric(rows):
            cells += [(f"Validation macro F1{at_kept}", number(latest(evals, "eval_macro_f1"))),
                      (f"Validation label accuracy{at_kept}", number(latest(evals, "eval_accuracy")))]
        if latest(rows, "train_rewards_margin") is not None:  # method="dpo"
            cells += [("Reward margin", number(latest(rows, "train_rewards_margin"))),
                      ("Reward accuracy", number(latest(rows, "train_rewards_accuracy")))]
            if with_eval:
                cells += [("Validation reward accuracy", number(latest(rows, "eval_rewards_accuracy")))]
        cells += [("Learning rate", number(latest(rows, "learning_rate"), 3)),
                  ("Tokens per second", number(latest(rows, "tokens_per_second"), 4))]
        self.summary.value = cards_html(cells)
        self.chart.value = metrics_png(rows, total_steps, kept_step=kept_step,
                                       stopped_at=(kept or {}).get("stopped_at"))
        has_validation = bool((record.get("params") or {}).get("validation_dataset")) if record else with_eval
        if (record.get("progress") or {}).get("phase") == "evaluating":
            note = "Evaluating the models on the validation rows…"
        elif with_eval or not rows:
            note = ""
        elif has_validation:
            note = "Validation curves appear after the first evaluation."
        else:
            note = "No validation set: training curves only."
        self.note.value = note and f'<span style="{theme.MUTED_STYLE};font-size:12px">{note}</span>'
        self._drawn = key
        self.rendered_rows = len(rows)  # last: readers waiting on it see the new chart
        return True
