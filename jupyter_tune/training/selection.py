"""The task metric during training, the best checkpoint and early stopping.

When the validation set is a classification set, every evaluation also ranks the validation rows' labels
with the evaluation layer's label scoring (the same code as ``jt.evaluate``) and logs ``eval_macro_f1`` and
``eval_accuracy`` beside the Vertex metrics; otherwise (generation) it answers up to 32 validation rows
greedily and logs their ROUGE-L F1 as ``eval_rouge_l``. Trainer tracks the best evaluation by ``select_best`` (its
``metric_for_best_model``; checkpoints are kept at every evaluation, and its checkpoint rotation keeps the
best one); a succeeded job's adapter is that checkpoint's. A cancelled job keeps its latest adapter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from ..evaluation.classification import MAX_CLASSES, looks_like_classification  # noqa: F401 (re-exported)
from .optim import load_adapter_weights

# select_best -> (Trainer's metric name, greater is better)
SELECT_METRICS = {"eval_macro_f1": ("eval_macro_f1", True), "eval_total_loss": ("eval_loss", False),
                  "eval_rouge_l": ("eval_rouge_l", True),  # a generation task: ROUGE-L F1 of greedy answers
                  "eval_reward": ("eval_reward", True)}  # method="grpo": the mean validation reward


@dataclass
class TaskMetric:
    """Scores the validation examples' labels; ``labels`` are the classes (train and validation answers)."""

    examples: list
    labels: list[str]
    tokenizer: Any
    max_seq_length: int | None = None  # prompts cut to it, as jt.evaluate cuts a tuned job's (long_inputs="auto")
    seconds: list[float] = field(default_factory=list)

    def __call__(self, model) -> dict[str, float]:
        from ..evaluation.scoring import label_metrics

        t = time.perf_counter()
        out = label_metrics(model, self.tokenizer, self.examples, self.labels,
                            long_inputs="cut" if self.max_seq_length else "whole",
                            max_input_tokens=self.max_seq_length)
        self.seconds.append(time.perf_counter() - t)
        return {"macro_f1": out["macro_f1"], "accuracy": out["accuracy"],
                "task_metric_seconds": self.seconds[-1]}


# The generation metric's cost bound: rows answered per evaluation (evenly spaced through the validation
# set) and new tokens per answer (the longest reference plus a margin, at most this: samples.answer_prompts).
GENERATION_ROWS = 32
GENERATION_MAX_NEW_TOKENS = 96


@dataclass
class GenerationMetric:
    """ROUGE-L F1 of the model's greedy answers to (a sample of) the validation rows against their
    references: a generation task's own metric. The validation loss keeps falling, or rises, while the text
    gets better or worse in ways it does not see (issue 34: the kept checkpoint chosen on the loss wrote
    worse titles than training to the end), so selection and early stopping follow this instead."""

    examples: list
    tokenizer: Any
    max_seq_length: int
    seconds: list[float] = field(default_factory=list)

    def __post_init__(self):
        from .samples import answer_prompts

        self.max_new_tokens, self.prompts, _ = answer_prompts(self.tokenizer, self.examples, self.max_seq_length,
                                                              GENERATION_MAX_NEW_TOKENS)

    def __call__(self, model) -> dict[str, float]:
        from ..evaluation.text_metrics import text_generation_metrics
        from .samples import greedy_answers

        t = time.perf_counter()
        answers = greedy_answers(model, self.tokenizer, self.prompts, self.max_new_tokens)
        scores = text_generation_metrics([ex.answer for ex in self.examples], answers).iloc[0]
        self.seconds.append(time.perf_counter() - t)
        return {"rouge_l": float(scores["rouge-l_f1_score"]), "task_metric_seconds": self.seconds[-1]}


def plan_task_metric(params, train, val, tokenizer) -> TaskMetric | GenerationMetric | None:
    if val is None or params.eval_task_metric is False:
        return None
    answers = [ex.answer for ex in val.examples]
    train_answers = [ex.answer for ex in train.examples]
    if params.eval_task_metric is None and not looks_like_classification(answers, train_answers):
        if params.sharding or params.select_best == "eval_total_loss":
            return None  # FSDP: one rank cannot generate alone; the loss asked for: no generation cost
        from .samples import choose_rows

        rows = choose_rows([a if a else None for a in answers], min(params.max_eval_examples or GENERATION_ROWS,
                                                                     GENERATION_ROWS))
        return GenerationMetric([val.examples[i] for i in rows], tokenizer, params.max_seq_length) if rows else None
    examples = [ex for ex in val.examples if ex.answer is not None][: params.max_eval_examples or None]
    labels = sorted({ex.answer for ex in train.examples if ex.answer is not None} | {ex.answer for ex in examples})
    return TaskMetric(examples, labels, tokenizer, params.max_seq_length)


def resolve_select_best(params, has_val: bool, task_metric: TaskMetric | GenerationMetric | None) -> str | None:
    if not has_val:
        return None
    if params.select_best:
        return params.select_best
    if isinstance(task_metric, GenerationMetric):
        return "eval_rouge_l"
    return "eval_macro_f1" if task_metric is not None else "eval_total_loss"


def early_stopping_patience(params, select: str | None) -> int:
    """Evaluations without improvement before the job ends; 0: never. Empty means the default with a
    validation set (select_best is set) for the supervised methods; dpo's and grpo's validation metrics swing
    from one evaluation to the next, so they stop only when asked."""
    from ..params import DEFAULT_EARLY_STOPPING_PATIENCE

    if not select:
        return 0
    if params.early_stopping_patience is not None:
        return params.early_stopping_patience
    return 0 if params.method in ("dpo", "grpo") else DEFAULT_EARLY_STOPPING_PATIENCE


class EvaluateAtEnd(TrainerCallback):
    """The last step is always evaluated (and checkpointed), so the best is chosen among all of them."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and args.eval_strategy != "no":
            control.should_evaluate = True
            control.should_save = True
        return control


class EarlyStopping(TrainerCallback):
    """Ends training after `patience` evaluations without improvement of the select_best metric.

    transformers' EarlyStoppingCallback insists on load_best_model_at_end, which would also give a cancelled
    job its best rather than its latest weights; this one only stops, and says why in ``reason``.
    """

    def __init__(self, metric: str, greater_is_better: bool, patience: int):
        self.metric, self.greater, self.patience = metric, greater_is_better, patience
        self.best: float | None = None
        self.bad = 0
        self.reason: str | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is None:
            return control
        if self.best is None or (value > self.best if self.greater else value < self.best):
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        if self.bad >= self.patience:
            self.reason = (f"early stopping at step {state.global_step}: {self.metric} has not improved on "
                           f"{self.best:.4g} for {self.bad} evaluations (early_stopping_patience={self.patience})")
            control.should_training_stop = True
            control.should_save = True
        return control


def best_checkpoint(trainer) -> dict[str, Any] | None:
    """job.json's ``best``: the best evaluated checkpoint's step, metric and value (None without one)."""
    state, metric = trainer.state, trainer.args.metric_for_best_model
    if metric is None or state.best_metric is None or state.best_global_step is None:
        return None
    name = {v[0]: k for k, v in SELECT_METRICS.items()}.get(metric, metric)
    return {"step": int(state.best_global_step), "metric": name, "value": float(state.best_metric),
            "checkpoint": state.best_model_checkpoint}


def load_best(trainer) -> dict[str, Any] | None:
    """Put the best checkpoint's adapter weights into the model (a succeeded job saves them as its adapter).

    Returns ``best_checkpoint(trainer)``, or None when there is no best or the model already holds it.
    """
    from pathlib import Path

    best = best_checkpoint(trainer)
    if best is None:
        return None
    if best["step"] == trainer.state.global_step or not best["checkpoint"]:
        return best
    from ..jobs.checkpoints import checkpoint_problem

    path = Path(best["checkpoint"])
    weights = [path / "adapter_model.safetensors", path / "model.safetensors"]  # LoRA / full fine-tuning
    if not any(w.is_file() for w in weights) or checkpoint_problem(path, best["step"]):
        return None  # a torn best checkpoint: the job keeps its final weights
    load_adapter_weights(trainer, path)
    return best


