"""Reinforcement from graders (method="grpo"): TRL's GRPOTrainer with LoRA on the policy.

Each training prompt is answered ``num_generations`` times; each grader (TuningParams.graders, built by
graders/spec.py) scores every answer against the row and is one reward function; an answer's advantage is its
reward against its group's. The rows reach the graders whole: a prompt-only dataset whose ``item`` column
holds each row's fields as JSON, with the row's answer as ``reference`` (unless the row has its own), so
graders read ``item["reference"]``, ``item["label"]`` ...

A grader that raises, hangs, returns NaN or leaves [0, 1] scores that answer 0 (graders.grade_rows) and is
counted: the job log names the first errors, metrics.jsonl has each grader's error share and constant-group
share. The job around it is a supervised one's: metrics.jsonl (TRL's rewards under clear names, see
callbacks.py), checkpoints, cancel, resume and the best checkpoint by ``eval_reward``. TRL is imported here
only, never by ``import jupyter_tune``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..data.loader import Dataset
from ..graders import constant_groups, grade_rows, graders_from_specs
from ..params import TuningParams, choose_epochs
from .arguments import shared_arguments
from .log import log
from .trainer import TokenCounts
from .trl_policy import load_policy, start

# Grader errors named in the job log (each with its message) before only the counts go on.
LOGGED_ERRORS = 10


def grader_metric_name(name: str) -> str:
    """A grader's name as a metric name's tail: letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "grader"


def row_item(ex) -> dict:
    """What a grader sees of one row: its fields, ``reference`` (the row's answer unless the row has its own
    ``reference`` field) and ``messages`` (the prompt's turns)."""
    item = dict(ex.fields)
    if ex.answer is not None:
        item.setdefault("reference", ex.answer)
    item.setdefault("messages", ex.prompt_messages)
    return item


def prompt_rows(dataset: Dataset, tokenizer) -> list[dict]:
    """TRL's prompt-only rows: the prompt as messages (a tokenizer with a chat template) or as the rendered
    text (the same rendering as supervised tuning), and ``item``: the row for the graders, as JSON."""
    from ..data.tokenize import has_chat_template, render_prompt

    chat = has_chat_template(tokenizer)
    return [{"prompt": ex.prompt_messages if chat else render_prompt(tokenizer, ex.prompt_messages),
             "item": json.dumps(row_item(ex), ensure_ascii=False, default=str)} for ex in dataset.examples]


def completion_text(completion) -> str:
    """An answer as text: TRL gives a string, or for chat prompts a list of assistant messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    return str(completion)


class GraderReward:
    """One grader as a TRL reward function: a score per answer in [0, 1]; a failing grader scores 0 and is
    counted, never raised. Named after the grader (TRL names the reward and its metrics after ``__name__``)."""

    def __init__(self, grader, group_size: int):
        self.grader, self.group_size = grader, group_size
        self.__name__ = grader_metric_name(grader.name)
        self.rows = self.errors = self.constant = self.groups = 0

    def __call__(self, prompts, completions, item=None, log_metric=None, **kwargs) -> list[float]:
        samples = [completion_text(c) for c in completions]
        items = [json.loads(i) if isinstance(i, str) else dict(i or {}) for i in (item or [{}] * len(samples))]
        result = grade_rows(self.grader, samples, items)
        before = self.errors
        self.rows += len(samples)
        self.errors += len(result.errors)
        groups = max(1, -(-len(samples) // self.group_size))
        constant = constant_groups(result.scores, self.group_size)
        self.groups += groups
        self.constant += constant
        for _, message in result.errors[: max(0, LOGGED_ERRORS - before)]:
            log(f"Grader error (the answer scores 0): {message}")
        if before < LOGGED_ERRORS <= self.errors:
            log(f"Grader {self.grader.name}: {self.errors} errors so far; further ones are only counted "
                f"(metrics: grader_errors_{self.__name__})")
        if log_metric is not None:
            log_metric(f"grader_errors/{self.__name__}", len(result.errors) / max(1, len(samples)))
            log_metric(f"constant_groups/{self.__name__}", constant / groups)
        return result.scores

    def summary(self) -> dict:
        return {"name": self.grader.name, "kind": self.grader.kind, "answers": self.rows, "errors": self.errors,
                "groups": self.groups, "constant_groups": self.constant}


def make_trainer_class():
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    class GraderSummary(TrainerCallback):
        """At the end of training: each grader's answers, errors and constant groups in the job log."""

        def __init__(self, rewards):
            self.rewards = rewards

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                for r in self.rewards:
                    s = r.summary()
                    log(f"Grader {s['name']} ({s['kind']}): {s['answers']} answers scored, {s['errors']} errors "
                        f"(scored 0), {s['constant_groups']} of {s['groups']} groups without a reward spread")

    class JobGRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer plus the token counts the job's metrics read (answer tokens as predictions; no
        next-token accuracy: the answers are the model's own samples)."""

        task_metric = None
        token_accuracy = False

        def __init__(self, *args, grader_rewards=(), **kwargs):
            super().__init__(*args, **kwargs)
            self.counts = {"train": TokenCounts(), "eval": TokenCounts()}
            self.grader_rewards = list(grader_rewards)
            self.add_callback(GraderSummary(self.grader_rewards))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            answer = int(inputs["completion_mask"].sum())
            self.counts[mode].add(0, answer, answer + int(inputs["prompt_mask"].sum()))
            return out

    return JobGRPOTrainer


def grpo_stats(tokenizer, dataset: Dataset, params: TuningParams, epochs: int) -> dict:
    """The Vertex-shaped statistics of the rows (prompt as input, the row's answer as output: the reference
    the graders read, not what is trained on). A step takes batch_size / num_generations prompts, which
    tuning_step_count (the cost estimate's run length) counts."""
    from ..data.stats import split_stats

    prompts_per_step = max(1, params.batch_size // params.num_generations)
    return split_stats(tokenizer, dataset, params.max_seq_length, epochs, prompts_per_step)


def long_prompts(tokenizer, dataset: Dataset, params: TuningParams) -> int:
    """Prompts whose tokens plus max_completion_length exceed max_seq_length."""
    from ..data.tokenize import encode_prompt

    room = params.max_seq_length - params.max_completion_length
    return sum(1 for ex in dataset.examples if len(encode_prompt(tokenizer, ex.prompt_messages)) > room)


def build_grpo_trainer(params: TuningParams, train: Dataset, val: Dataset | None, output_dir: Path):
    """(trainer, tokenizer, info for job.json, dataset stats), as build.build_trainer."""
    from datasets import Dataset as HFDataset
    from trl import GRPOConfig

    from .fastpath import FastPath
    from .info import model_info
    from .methods import METHOD_NAMES
    from .optim import saved_precision
    from .selection import EarlyStopping, EvaluateAtEnd, resolve_select_best

    if train.is_preference:
        raise ValueError("method='grpo' needs prompts (with the fields its graders read), not preference pairs")
    graders = graders_from_specs(params.graders)
    hw, model_path, merge, tokenizer = start(params)
    epochs = params.epochs or choose_epochs(len(train))
    stats = {"max_seq_length": params.max_seq_length, "epochs": epochs, "method": "grpo",
             "train": grpo_stats(tokenizer, train, params, epochs),
             "validation": grpo_stats(tokenizer, val, params, 1) if val is not None else None}
    val_rows = prompt_rows(val, tokenizer)[: params.max_eval_examples or None] if val is not None else None
    long = long_prompts(tokenizer, train, params)
    for split in ("train", "validation"):  # nothing is cut: the prompts are used whole, answers are sampled
        if stats[split] is not None:
            stats[split]["truncated_example_count"] = 0
    stats["train"]["long_prompt_count"] = long
    if long:
        log(f"{long} training prompts leave fewer than max_completion_length={params.max_completion_length} "
            f"tokens under max_seq_length={params.max_seq_length}: GRPO does not truncate prompts (TRL 1.16 has "
            "no prompt limit), so they are used whole")

    fp = FastPath()
    for name in ("packed_attention", "answer_only_logits", "fused_lora", "master_weights"):
        fp.set(name, False, "GRPO: TRL's own generation and scoring (padded batches, fp32 adapters)")
    model, lora = load_policy(params, hw, model_path, merge, use_cache=True)  # sampling

    select = resolve_select_best(params, bool(val_rows), None)
    if select and params.select_best is None:
        select = "eval_reward"  # the mean reward on the validation prompts
    # batch_size counts answers: an epoch is every prompt answered num_generations times, and TRL's sampler
    # gives about len(train) * num_generations / batch_size optimizer steps whatever the accumulation
    shared, total_steps = shared_arguments(params, len(train) * params.num_generations
                                           * params.gradient_accumulation_steps, epochs, bool(val_rows), select,
                                           hw.device, output_dir)
    eval_steps, save_steps = shared["eval_steps"], shared["save_steps"]
    best_metric, greater = shared["metric_for_best_model"], shared["greater_is_better"]
    args = GRPOConfig(
        **shared,
        num_generations=params.num_generations,
        max_completion_length=params.max_completion_length,
        beta=params.kl_beta,
        disable_tqdm=True,
        log_completions=False,
    )
    rewards = [GraderReward(g, params.num_generations) for g in graders]
    trainer_class = make_trainer_class()
    trainer = trainer_class(model=model, reward_funcs=rewards, args=args, processing_class=tokenizer,
                            peft_config=lora, train_dataset=HFDataset.from_list(prompt_rows(train, tokenizer)),
                            eval_dataset=HFDataset.from_list(val_rows) if val_rows else None,
                            grader_rewards=rewards)
    if val_rows:
        trainer.add_callback(EvaluateAtEnd())
    if params.early_stopping_patience and best_metric:
        trainer.add_callback(EarlyStopping(best_metric, greater, params.early_stopping_patience))
    info = {
        **model_info(trainer.model, params, hw, fp, METHOD_NAMES["grpo"], adapters=True,
                     saved=saved_precision(trainer.model, False),
                     quantization=params.effective_quantization),
        "graders": [{"name": g.name, "kind": g.kind} for g in graders],  # their specs: params.graders
        "num_generations": params.num_generations,
        "max_completion_length": params.max_completion_length, "kl_beta": params.kl_beta,
        "reference": "the base model (adapter disabled)" if params.kl_beta else None,
        "base_model": params.base_model, "resolved_model_path": str(model_path),
        "learning_rate": params.effective_learning_rate, "epochs": epochs, "total_steps": total_steps,
        "batch_size": params.batch_size, "gradient_accumulation_steps": params.gradient_accumulation_steps,
        "max_seq_length": params.max_seq_length, "eval_steps": eval_steps if val_rows else None,
        "save_steps": save_steps, "padding_free": False, "task_metric": None, "select_best": select,
        "early_stopping_patience": params.early_stopping_patience,
    }
    log(f"GRPO: {len(graders)} grader(s) as rewards ({', '.join(g.name for g in graders)}), "
        f"{params.num_generations} answers per prompt of at most {params.max_completion_length} tokens, "
        f"kl_beta={params.kl_beta:g}")
    return trainer, tokenizer, info, stats
