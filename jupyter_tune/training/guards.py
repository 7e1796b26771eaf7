"""Trainer callbacks that keep a job's checkpoints trustworthy.

- NonFiniteGuard: a loss (or adapter weights) gone NaN/infinite stops the job before anything
  non-finite is saved, so the last checkpoint on disk is the last finite one.
- CheckpointMarker: marks each checkpoint complete once all of it is written (jobs/checkpoints.py), so a
  checkpoint torn by a kill or a full disk is recognised and skipped on resume.
"""

from __future__ import annotations

import math
from pathlib import Path

from transformers import TrainerCallback

from ..jobs.checkpoints import mark_complete


class NonFiniteGuard(TrainerCallback):
    def __init__(self, model):
        self.model = model
        self.tripped: dict | None = None  # {"step": ..., "what": ...} once training diverged

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                self._trip(control, state.global_step, f"the {'training' if key == 'loss' else 'validation'} "
                                                       f"loss is {value}")
        return control

    def on_step_end(self, args, state, control, **kwargs):
        # A checkpoint is due: its weights must be finite (the loss may be logged less often than saved).
        if control.should_save and not self.tripped and not self._weights_finite():
            self._trip(control, state.global_step, "the adapter weights hold NaN or infinity")
        return control

    def _weights_finite(self) -> bool:
        import torch

        with torch.no_grad():
            return all(bool(torch.isfinite(p).all()) for p in self.model.parameters() if p.requires_grad)

    def _trip(self, control, step: int, what: str) -> None:
        self.tripped = self.tripped or {"step": step, "what": what}
        control.should_save = False  # never a checkpoint after the loss went non-finite
        control.should_evaluate = False
        control.should_training_stop = True

    def message(self, last_checkpoint: str | None) -> str:
        kept = (f"The last finite checkpoint, {last_checkpoint}, is kept." if last_checkpoint
                else "No checkpoint was saved before it.")
        return (f"Training diverged at step {self.tripped['step']}: {self.tripped['what']}. Lower the learning "
                f"rate (learning_rate_multiplier or learning_rate) and tune again. {kept}")


class CheckpointMarker(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            mark_complete(folder, state.global_step)
        return control
