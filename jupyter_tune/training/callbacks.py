"""The job's Trainer callbacks, assembled in one ordered list (job_callbacks), and the ones defined here:
live metrics into the job store (Vertex names), cancellation, GRPO's grader summary.

The others live beside what they serve: selection.py (EvaluateAtEnd, EarlyStopping), samples.py,
trackers.py, guards.py (NonFiniteGuard, CheckpointMarker), retention.py. In a distributed job every rank runs
them; the ranks agree through small all_reduces (counts, the cancel flag) and rank 0 alone writes.
"""

from __future__ import annotations

import time
from pathlib import Path

from transformers import PrinterCallback, TrainerCallback

from ..jobs.store import JobStore
from .log import log


def job_callbacks(trainer, params, val, tokenizer, store: JobStore, job_id: str, watch, *, is_main: bool,
                  world_size: int, spec: dict) -> list[TrainerCallback]:
    """Every callback a job's trainer gets beyond the Trainer's own, in the order they must run: for each
    event the Trainer calls them in list order, each seeing the ``control`` the ones before it set.
    ``watch``: the job's CancelWatch; ``spec``: job.json's params (the trackers record them)."""
    from .guards import CheckpointMarker, NonFiniteGuard
    from .retention import CheckpointRetention
    from .samples import sample_answers
    from .selection import EarlyStopping, EvaluateAtEnd, early_stopping_patience
    from .trackers import tracker_relay

    job_dir = store.job_dir(job_id)
    metrics = MetricsCallback(store, job_id, trainer, write=is_main)
    # Transformers logs a NaN/inf step loss as the running mean by default: the guard must see it.
    trainer.args.logging_nan_inf_filter = False
    # metrics.jsonl holds every logged value; the console copy of each log dict (tqdm is off) is only noise
    # in log.txt
    trainer.remove_callback(PrinterCallback)
    best_metric = trainer.args.metric_for_best_model
    patience = early_stopping_patience(params, best_metric)
    callbacks = [
        # asks for the last step's evaluation and checkpoint; before the cancel and the guard, which may undo them
        EvaluateAtEnd() if trainer.args.eval_strategy != "no" else None,
        # stops after evaluations without improvement (select_best's metric); reads each evaluation's metrics
        EarlyStopping(best_metric, trainer.args.greater_is_better, patience) if patience and best_metric else None,
        # GRPO: each grader's counts in the job log at the end of training; a mostly failing grader is a warning
        GraderSummary(trainer.grader_rewards, store if is_main else None, job_id) if params.method == "grpo" else None,
        # GRPO, rank 0: each step's first group of sampled answers with their rewards (completions.jsonl)
        CompletionLog(store, job_id, trainer) if params.method == "grpo" and is_main else None,
        # metrics.jsonl and job.json's progress; before the trackers, which it feeds
        metrics,
        # rank 0: the model's answers to a few validation rows at each evaluation (samples.jsonl)
        sample_answers(params, val, tokenizer, store, job_id) if is_main else None,
        # rank 0: report_to's trackers, fed metrics.jsonl's rows by the metrics callback
        tracker_relay(metrics, params.report_to, job_dir, job_id, spec) if is_main else None,
        # a cancel stops at the step's end with a checkpoint
        CancelCallback(watch),
        # after the cancel: it may veto the checkpoint a cancel (or EvaluateAtEnd) asks for
        NonFiniteGuard(trainer.model),
        # marks each checkpoint complete once written (every rank's part of it, with several ranks)
        GroupCheckpointMarker() if world_size > 1 else CheckpointMarker(),
        # last: rotates checkpoints after the marker, keeping the newest, the best and the user's chosen one
        # (job.use_checkpoint), across a resume; takes over the Trainer's own rotation
        CheckpointRetention.take_over(trainer, job_dir),
    ]
    return [c for c in callbacks if c is not None]


class MetricsCallback(TrainerCallback):
    """Writes one metrics.jsonl line per log event and keeps job.json's progress current."""

    def __init__(self, store: JobStore, job_id: str, trainer, write: bool = True):
        self.store, self.job_id, self.trainer = store, job_id, trainer
        self.write = write  # False on ranks other than 0
        self.last_time = time.perf_counter()
        self.start_time = time.perf_counter()
        self.start_step = None
        self.listeners = []  # called with each row written (the experiment trackers)

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_time = time.perf_counter()
        self.start_time = self.last_time
        self.start_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        now = time.perf_counter()
        row = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4), "time": time.time()}
        if "loss" in logs:
            c = _summed(self.trainer.counts["train"].take(), args)
            row.update(
                train_total_loss=float(logs["loss"]),
                train_fraction_of_correct_next_step_preds=c.correct / max(1, c.predictions),
                train_num_predictions=c.predictions,
                learning_rate=float(logs.get("learning_rate", 0.0)),
                tokens_per_second=c.tokens / max(1e-9, now - self.last_time),
            )
            row.update(dpo_metrics(logs, "train"))
            row.update(grpo_metrics(logs, "train"))
            if not getattr(self.trainer, "token_accuracy", True):  # GRPO: the answers are the model's samples
                del row["train_fraction_of_correct_next_step_preds"]
            self.last_time = now
        elif "eval_loss" in logs:
            c = _summed(self.trainer.counts["eval"].take(), args)
            row.update(
                eval_total_loss=float(logs["eval_loss"]),
                eval_fraction_of_correct_next_step_preds=c.correct / max(1, c.predictions),
                eval_num_predictions=c.predictions,
            )
            # the task metric (selection.py), when on, and what computing it cost
            for k in ("eval_macro_f1", "eval_accuracy", "eval_rouge_l", "eval_task_metric_seconds"):
                if k in logs:
                    row[k] = float(logs[k])
            row.update(dpo_metrics(logs, "eval"))
            row.update(grpo_metrics(logs, "eval"))
            if not getattr(self.trainer, "token_accuracy", True):
                del row["eval_fraction_of_correct_next_step_preds"]
            # evaluation time is not training time
            self.last_time = now
        else:
            return
        if not self.write:
            return
        self.store.append_metrics(self.job_id, row)
        for listener in self.listeners:
            listener(row, args, state, control)
        done = state.global_step - (self.start_step or 0)
        per_step = (now - self.start_time) / max(1, done)
        self.store.update(self.job_id, progress={
            "step": state.global_step, "total_steps": state.max_steps, "epoch": row["epoch"],
            "eta_seconds": round(per_step * max(0, state.max_steps - state.global_step), 1)})


# TRL's DPO log names -> ours (train_ / eval_ prefixed): reward margin and accuracy, log-probabilities.
DPO_METRICS = {"rewards/margins": "rewards_margin", "rewards/accuracies": "rewards_accuracy",
               "rewards/chosen": "rewards_chosen", "rewards/rejected": "rewards_rejected",
               "logps/chosen": "logps_chosen", "logps/rejected": "logps_rejected"}


def dpo_metrics(logs: dict, split: str) -> dict[str, float]:
    """The DPO metrics of one TRL log event (none for supervised jobs)."""
    prefix = "eval_" if split == "eval" else ""
    return {f"{split}_{ours}": float(logs[prefix + trl]) for trl, ours in DPO_METRICS.items()
            if prefix + trl in logs}


# TRL's GRPO log names -> ours (train_ / eval_ prefixed): the mean reward (all graders summed) and its spread,
# the share of groups whose answers all scored alike (no signal), answer lengths, KL to the base, entropy.
GRPO_METRICS = {"reward": "reward", "reward_std": "reward_std", "frac_reward_zero_std": "constant_groups",
                "completions/mean_length": "completion_length",
                "completions/clipped_ratio": "completion_clipped", "kl": "kl", "entropy": "entropy"}
# Per grader (training/grpo.py names them): TRL's rewards/<name>/mean, our error and constant-group shares.
GRPO_PER_GRADER = (("rewards/", "/mean", "reward_"), ("grader_errors/", "", "grader_errors_"),
                   ("constant_groups/", "", "constant_groups_"))


def grpo_metrics(logs: dict, split: str) -> dict[str, float]:
    """The GRPO metrics of one TRL log event (none for other jobs); a metric TRL left empty (None) is left out."""
    prefix = "eval_" if split == "eval" else ""
    out = {f"{split}_{ours}": float(logs[prefix + trl]) for trl, ours in GRPO_METRICS.items()
           if logs.get(prefix + trl) is not None}
    for key, value in logs.items():
        if value is None or not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        for head, tail, ours in GRPO_PER_GRADER:
            if name.startswith(head) and name.endswith(tail) and "/" not in name[len(head):len(name) - len(tail)]:
                out[f"{split}_{ours}{name[len(head):len(name) - len(tail)]}"] = float(value)
    return out


class CancelCallback(TrainerCallback):
    """Stops training with a checkpoint once a cancel was requested.

    The request itself is watched from the job process's start (jobs/cancel.CancelWatch: job.json
    polled, SIGUSR1/SIGTERM), so a cancel during the model load is not lost or fatal.
    """

    def __init__(self, watch):
        self.watch = watch

    @property
    def requested(self) -> bool:
        return self.watch.requested.is_set()

    def on_step_end(self, args, state, control, **kwargs):
        # Every rank stops at the same step: any rank's request (each polls job.json) stops them all.
        if _any_rank(self.requested, args):
            self.watch.requested.set()
            control.should_save = True
            control.should_evaluate = False
            control.should_training_stop = True
        return control

    def on_prediction_step(self, args, state, control, **kwargs):
        # Evaluating has no step boundary to stop at: abandon it (it does not change the weights).
        self.watch.check()


class CompletionLog(TrainerCallback):
    """GRPO: the groups of sampled answers the trainer kept (grpo.first_group), one completions.jsonl line each,
    at the end of the step or evaluation that sampled them."""

    def __init__(self, store: JobStore, job_id: str, trainer):
        self.store, self.job_id, self.trainer = store, job_id, trainer

    def _flush(self, state) -> None:
        from ..jobs.samples import COMPLETIONS_FILE

        groups, self.trainer.completion_groups = self.trainer.completion_groups, {}
        for group in groups.values():  # one per mode
            self.store.append_line(self.job_id, COMPLETIONS_FILE, {"step": state.global_step, "time": time.time(),
                                                                   **group})

    def on_step_end(self, args, state, control, **kwargs):
        self._flush(state)

    def on_evaluate(self, args, state, control, **kwargs):
        self._flush(state)


class GraderSummary(TrainerCallback):
    """At the end of training: each grader's answers, errors and constant groups in the job log, and a warning on
    the job for a grader that errored on more than half of its answers (grpo.record_grader_warnings)."""

    def __init__(self, rewards, store: JobStore | None = None, job_id: str | None = None):
        self.rewards, self.store, self.job_id = rewards, store, job_id

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from .grpo import record_grader_warnings

            for r in self.rewards:
                s = r.summary()
                skipped = f", {s['skipped']} skipped after a time-out" if s.get("skipped") else ""
                log(f"Grader {s['name']} ({s['kind']}): {s['answers']} answers scored, {s['errors']} errors "
                    f"(scored 0{skipped}), {s['constant_groups']} of {s['groups']} groups without a reward spread")
            record_grader_warnings(self.rewards, self.store, self.job_id)


class GroupCheckpointMarker(TrainerCallback):
    """CheckpointMarker for several ranks: rank 0 marks the checkpoint once every rank wrote its part
    (each saves its own rng_state_<rank>.pth), so the marker never records a file half-written."""

    def on_save(self, args, state, control, **kwargs):
        import torch.distributed as dist

        from ..jobs.checkpoints import mark_complete

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            mark_complete(folder, state.global_step)
        return control


def _group(args):
    import torch.distributed as dist

    return dist if args.world_size > 1 and dist.is_available() and dist.is_initialized() else None


def _summed(c, args):
    """The counts of every rank added up: tokens/s is the whole group's."""
    dist = _group(args)
    if dist is None:
        return c
    import torch

    t = torch.tensor([c.correct, c.predictions, c.tokens], dtype=torch.float64, device=args.device)
    dist.all_reduce(t)
    return type(c)(*(int(v) for v in t.tolist()))


def _any_rank(flag: bool, args) -> bool:
    dist = _group(args)
    if dist is None:
        return flag
    import torch

    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=args.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
