"""Trainer callbacks: live metrics into the job store (Vertex names) and cancellation."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from ..jobs.store import JobStore


class MetricsCallback(TrainerCallback):
    """Writes one metrics.jsonl line per log event and keeps job.json's progress current."""

    def __init__(self, store: JobStore, job_id: str, trainer):
        self.store, self.job_id, self.trainer = store, job_id, trainer
        self.last_time = time.perf_counter()
        self.start_time = time.perf_counter()
        self.start_step = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_time = time.perf_counter()
        self.start_time = self.last_time
        self.start_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        now = time.perf_counter()
        row = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4), "time": time.time()}
        if "loss" in logs:
            c = self.trainer.counts["train"].take()
            row.update(
                train_total_loss=float(logs["loss"]),
                train_fraction_of_correct_next_step_preds=c.correct / max(1, c.predictions),
                train_num_predictions=c.predictions,
                learning_rate=float(logs.get("learning_rate", 0.0)),
                tokens_per_second=c.tokens / max(1e-9, now - self.last_time),
            )
            self.last_time = now
        elif "eval_loss" in logs:
            c = self.trainer.counts["eval"].take()
            row.update(
                eval_total_loss=float(logs["eval_loss"]),
                eval_fraction_of_correct_next_step_preds=c.correct / max(1, c.predictions),
                eval_num_predictions=c.predictions,
            )
            for k in ("eval_macro_f1", "eval_accuracy"):  # the task metric (selection.py), when on
                if k in logs:
                    row[k] = float(logs[k])
            # evaluation time is not training time
            self.last_time = now
        else:
            return
        self.store.append_metrics(self.job_id, row)
        done = state.global_step - (self.start_step or 0)
        per_step = (now - self.start_time) / max(1, done)
        self.store.update(self.job_id, progress={
            "step": state.global_step, "total_steps": state.max_steps, "epoch": row["epoch"],
            "eta_seconds": round(per_step * max(0, state.max_steps - state.global_step), 1)})


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
        if self.requested:
            control.should_save = True
            control.should_evaluate = False
            control.should_training_stop = True
        return control

    def on_prediction_step(self, args, state, control, **kwargs):
        # Evaluating has no step boundary to stop at: abandon it (it does not change the weights).
        self.watch.check()
