"""Checkpoint retention that keeps the newest, the best and the user's chosen checkpoint.

transformers' own rotation (``save_total_limit``) protects the newest and the best only; a resumed job
would delete a checkpoint the user chose with ``job.use_checkpoint(step)``. This callback takes the limit
over from the Trainer and applies jobs/choice.keep_checkpoints after every save.
"""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from ..jobs.choice import checkpoint_dir, chosen_step, keep_checkpoints


class CheckpointRetention(TrainerCallback):
    """Rotates ``output_dir``'s checkpoints down to ``limit``, never deleting the newest, the best
    (Trainer's ``best_model_checkpoint``) or the one job.json names as chosen."""

    def __init__(self, job_dir: Path, limit: int | None):
        self.job_dir, self.limit = Path(job_dir), limit

    @classmethod
    def take_over(cls, trainer, job_dir: Path) -> CheckpointRetention:
        """The callback for `trainer`, with the Trainer's own rotation turned off (its limit moves here)."""
        limit = trainer.args.save_total_limit
        trainer.args.save_total_limit = None
        return cls(job_dir, limit)

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:  # the process that writes checkpoints (rank 0)
            step = chosen_step(self.job_dir)
            chosen = checkpoint_dir(self.job_dir, step) if step is not None else None
            keep_checkpoints(Path(args.output_dir), self.limit, [state.best_model_checkpoint, chosen])
        return control
