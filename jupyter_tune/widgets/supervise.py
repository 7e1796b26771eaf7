"""The Supervise tab: live loss, next-token accuracy, predictions per step and tokens per second."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from .. import theme
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
        self.samples = SamplesSection()  # the model's answers to a few validation rows (view.py refreshes it)
        self.completions = CompletionsSection()  # GRPO: each step's sampled answers and rewards (view.py)
        super().__init__([self.summary, self.chart, self.note, self.completions, self.samples])

    def update(self, rows: list[dict[str, Any]], total_steps: int | None = None, force: bool = False) -> bool:
        """Redraw when new metric lines arrived; returns whether it redrew."""
        if not force and len(rows) == self.rendered_rows:
            return False
        with_eval = has_eval(rows)
        cells = [
            ("Step", count(latest(rows, "step"))),
            ("Train loss", number(latest(rows, "train_total_loss"))),
            ("Train accuracy", number(latest(rows, "train_fraction_of_correct_next_step_preds"))),
        ]
        if with_eval:
            cells += [("Validation loss", number(latest(rows, "eval_total_loss"))),
                      ("Validation accuracy",
                       number(latest(rows, "eval_fraction_of_correct_next_step_preds")))]
        if has_task_metric(rows):
            cells += [("Validation macro F1", number(latest(rows, "eval_macro_f1"))),
                      ("Validation label accuracy", number(latest(rows, "eval_accuracy")))]
        if latest(rows, "train_rewards_margin") is not None:  # method="dpo"
            cells += [("Reward margin", number(latest(rows, "train_rewards_margin"))),
                      ("Reward accuracy", number(latest(rows, "train_rewards_accuracy")))]
            if with_eval:
                cells += [("Validation reward accuracy", number(latest(rows, "eval_rewards_accuracy")))]
        cells += [("Learning rate", number(latest(rows, "learning_rate"), 3)),
                  ("Tokens per second", number(latest(rows, "tokens_per_second"), 4))]
        self.summary.value = cards_html(cells)
        self.chart.value = metrics_png(rows, total_steps)
        self.note.value = ("" if with_eval or not rows else
                           f'<span style="{theme.MUTED_STYLE};font-size:12px">No validation set: training curves '
                           "only.</span>")
        self.rendered_rows = len(rows)  # last: readers waiting on it see the new chart
        return True
