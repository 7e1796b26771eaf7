"""Reinforcement from graders (method="grpo"): TRL's GRPOTrainer with LoRA on the policy.

Each training prompt is answered ``num_generations`` times; each grader (TuningParams.graders, built by
graders/spec.py) scores every answer against the row and is one reward function; an answer's advantage is its
reward against its group's. The rows reach the graders whole: a prompt-only dataset whose ``item`` column
holds each row's fields as JSON, with the row's answer as ``reference`` (unless the row has its own), so
graders read ``item["reference"]``, ``item["label"]`` ...

A grader that raises, hangs, returns NaN or leaves [0, 1] scores that answer 0 (graders.grade_rows) and is
counted: the job log names the first errors, metrics.jsonl has each grader's error share and constant-group
share, and a grader that errored on more than half of the answers is a warning on the job (job.json's
``warnings``, and the log) when training ends. A python grader runs in its own spawned worker process
(graders/worker.py), killed and replaced when it hangs; jt.tune refuses a grader that errors on every one
of the first training rows (graders.spec.probe_graders). ``GRPO`` is the method's steps of the one pipeline (build.py), so the job around it is a supervised
one's: metrics.jsonl (TRL's rewards under clear names, see callbacks.py), checkpoints, cancel, resume and the
best checkpoint by ``eval_reward``. TRL is imported here (and in dpo.py) only, never by ``import jupyter_tune``.
"""

from __future__ import annotations

import json
import re

from ..data.loader import Dataset
from ..graders import close_graders, constant_groups, grade_rows, graders_from_specs
from ..graders.spec import row_item
from ..params import TuningParams
from .log import log
from .trainer import TokenCounts
from .trl_method import TRLMethod

# Grader errors named in the job log (each with its message) before only the counts go on.
LOGGED_ERRORS = 10


def grader_metric_name(name: str) -> str:
    """A grader's name as a metric name's tail: letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "grader"


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
        self.rows = self.errors = self.constant = self.groups = self.skipped = 0
        self.first_error: str | None = None

    def __call__(self, prompts, completions, item=None, log_metric=None, **kwargs) -> list[float]:
        samples = [completion_text(c) for c in completions]
        items = [json.loads(i) if isinstance(i, str) else dict(i or {}) for i in (item or [{}] * len(samples))]
        result = grade_rows(self.grader, samples, items)
        before = self.errors
        self.rows += len(samples)
        self.errors += len(result.errors)
        self.skipped += result.skipped
        if self.first_error is None and result.errors:
            self.first_error = result.errors[0][1]
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
                "groups": self.groups, "constant_groups": self.constant, "skipped": self.skipped,
                "first_error": self.first_error}

    def warning(self) -> str | None:
        """The job's warning when this grader errored on more than half of its answers (they scored 0: the
        rewards said little about the answers), else None."""
        if not self.rows or self.errors * 2 <= self.rows:
            return None
        return (f"Grader {self.grader.name} ({self.grader.kind}) errored on {self.errors} of {self.rows} answers "
                f"({self.errors / self.rows:.0%}); they scored 0, so its rewards carried little signal. First "
                f"error: {self.first_error}")


def record_grader_warnings(rewards, store, job_id: str) -> list[str]:
    """At the end of training: each grader that errored on more than half of its answers is a warning in
    job.json's ``warnings`` (beside the data's) and in the log; the graders' worker processes are stopped."""
    close_graders([r.grader for r in rewards])
    warnings = [w for w in (r.warning() for r in rewards) if w]
    for w in warnings:
        log(f"Warning: {w}")
    if warnings and store is not None:
        with store.lock(job_id):  # appended in one locked read-change-write: the record's other writers keep theirs
            record = store.read_raw(job_id)
            record["warnings"] = list(record.get("warnings") or []) + warnings
            store.write(job_id, record)
    return warnings


def first_group(inputs, prompts, completions, rewards: list[list[float]], names: list[str], size: int,
                mode: str) -> dict:
    """completions.jsonl's line for one generation (jobs/samples.py): the first prompt's `size` sampled answers,
    each with its summed reward and each grader's; NaN (a reward that returned None) is left out of both."""
    item = inputs[0].get("item") if isinstance(inputs[0], dict) else None
    item = json.loads(item) if isinstance(item, str) else dict(item or {})
    turns = item.get("messages") or []
    prompt = next((str(m.get("content")) for m in reversed(turns) if m.get("role") == "user"), None)
    answers = []
    for completion, scores in list(zip(completions, rewards, strict=False))[:size]:
        per = {n: float(r) for n, r in zip(names, scores, strict=False) if r == r}  # r == r: not NaN
        answers.append({"text": completion_text(completion), "reward": sum(per.values()), "rewards": per})
    return {"mode": mode, "prompt": (prompt or completion_text(prompts[0]))[-300:],
            "reference": item.get("reference"), "answers": answers}


def cut_prompts(prompt_ids: list[list[int]], room: int) -> tuple[list[list[int]], int]:
    """Prompts longer than `room` tokens cut as supervised training cuts them (their beginning and their last
    tokens, which hold the turn's end: data/tokenize), and how many were cut. TRL 1.16 has no prompt limit."""
    from ..data.tokenize import _cut_middle

    out = [list(ids) if len(ids) <= room else _cut_middle(list(ids), room) for ids in prompt_ids]
    return out, sum(1 for ids in prompt_ids if len(ids) > room)


def prompt_room(params: TuningParams) -> int:
    """Tokens a prompt may have: max_seq_length less the answer's max_completion_length (at least a quarter)."""
    return max(params.max_seq_length - params.max_completion_length, params.max_seq_length // 4, 1)


def make_trainer_class():
    from trl import GRPOTrainer

    class JobGRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer plus the token counts the job's metrics read (answer tokens as predictions; no
        next-token accuracy: the answers are the model's own samples)."""

        task_metric = None
        token_accuracy = False

        def __init__(self, *args, grader_rewards=(), prompt_room=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.counts = {"train": TokenCounts(), "eval": TokenCounts()}
            self.grader_rewards = list(grader_rewards)  # callbacks.GraderSummary reports them at the end
            self.prompt_room = prompt_room
            # per mode, the first group sampled since callbacks.CompletionLog last wrote completions.jsonl
            self.completion_groups: dict[str, dict] = {}

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            mode = "train" if self.model.training else "eval"
            if self.accelerator.is_main_process and mode not in self.completion_groups:
                try:  # the first prompt's group, as the job view shows it
                    self.completion_groups[mode] = first_group(
                        inputs, prompts, completions, rewards.tolist(), [r.__name__ for r in self.grader_rewards],
                        self.num_generations, mode)
                except Exception as e:  # noqa: BLE001 - a side view of training: it never fails the job
                    log(f"Warning: sampled answers not recorded ({type(e).__name__}: {e})")
            return rewards

        def _tokenize_prompts(self, prompts):
            # TRL renders and tokenizes the prompts here; a long one is cut before it is answered
            prompt_ids, *rest = super()._tokenize_prompts(prompts)
            if self.prompt_room is not None and not rest[0]:  # not a prompt with images
                prompt_ids, _ = cut_prompts(prompt_ids, self.prompt_room)
            return (prompt_ids, *rest)

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
    """Prompts longer than prompt_room (max_seq_length less max_completion_length): the ones that are cut."""
    from ..data.tokenize import encode_prompt

    room = prompt_room(params)
    return sum(1 for ex in dataset.examples if len(encode_prompt(tokenizer, ex.prompt_messages)) > room)


class GRPO(TRLMethod):
    """method="grpo": prompt rows, the graders as rewards, TRL's GRPOConfig and GRPOTrainer (JobGRPOTrainer)."""

    use_cache = True  # sampling

    def check(self, train, val):
        if train.is_preference:
            raise ValueError("method='grpo' needs prompts (with the fields its graders read), not preference pairs")
        self.graders = graders_from_specs(self.params.graders)

    def data(self, tokenizer, train, val, epochs):
        params = self.params
        self.train_rows = prompt_rows(train, tokenizer)
        if val is not None:
            self.val_rows = prompt_rows(val, tokenizer)[: params.max_eval_examples or None]
        stats = {"method": "grpo", "train": grpo_stats(tokenizer, train, params, epochs),
                 "validation": grpo_stats(tokenizer, val, params, 1) if val is not None else None}
        for split, rows in (("train", train), ("validation", val)):  # prompts cut to prompt_room; answers sampled
            if stats[split] is not None:
                stats[split]["truncated_example_count"] = long_prompts(tokenizer, rows, params)
        long = stats["train"]["long_prompt_count"] = stats["train"]["truncated_example_count"]
        if long:
            log(f"{long} training prompts are longer than {prompt_room(params)} tokens (max_seq_length="
                f"{params.max_seq_length} less max_completion_length={params.max_completion_length}): they are "
                "cut as supervised training cuts them (their beginning and their last tokens)")
        return stats

    def epoch_examples(self):
        # batch_size counts answers: an epoch is every prompt answered num_generations times, and TRL's sampler
        # gives about len(train) * num_generations / batch_size optimizer steps whatever the accumulation
        return len(self.train_rows) * self.params.num_generations * self.params.gradient_accumulation_steps

    def select_best(self):
        select = super().select_best()
        if select and self.params.select_best is None:
            select = "eval_reward"  # the mean reward on the validation prompts
        return select

    def plan_fast_path(self, hw):
        from .fastpath import FastPath

        fp = FastPath()
        for name in ("packed_attention", "answer_only_logits", "fused_lora", "master_weights"):
            fp.set(name, False, "GRPO: TRL's own generation and scoring (padded batches, fp32 adapters)")
        return fp

    def arguments(self, shared):
        from trl import GRPOConfig

        return GRPOConfig(
            **shared,
            num_generations=self.params.num_generations,
            max_completion_length=self.params.max_completion_length,
            beta=self.params.kl_beta,
            log_completions=False,
        )

    def trainer(self, model, args, tokenizer, hw):
        params, graders = self.params, self.graders
        rewards = [GraderReward(g, params.num_generations) for g in graders]
        trainer = make_trainer_class()(model=model, reward_funcs=rewards, args=args, **self.datasets(tokenizer),
                                       grader_rewards=rewards, prompt_room=prompt_room(params))
        log(f"GRPO: {len(graders)} grader(s) as rewards ({', '.join(g.name for g in graders)}), "
            f"{params.num_generations} answers per prompt of at most {params.max_completion_length} tokens, "
            f"kl_beta={params.kl_beta:g}")
        return trainer

    def info(self):
        params = self.params
        return {"graders": [{"name": g.name, "kind": g.kind} for g in self.graders],  # their specs: params.graders
                "num_generations": params.num_generations, "max_completion_length": params.max_completion_length,
                "kl_beta": params.kl_beta,
                "reference": "the base model (adapter disabled)" if params.kl_beta else None}
