"""Time and memory of a tuning run, measured from a few real steps rather than guessed."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from typing import Any

from transformers import TrainerCallback

from ..data.loader import validate_dataset
from ..params import TuningParams


class _StepClock(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def _peak_memory() -> int:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def estimate_cost(data: Any, params: TuningParams, validation_data: Any = None, steps: int = 4) -> dict[str, Any]:
    """Run `steps` real optimizer steps (the first is warm-up and not timed) and extrapolate.

    Returns seconds_per_step, total_steps, estimated_seconds (training only), peak_memory_bytes
    (process RSS peak on CPU, allocated on CUDA) and measured_steps.
    """
    import torch

    from .build import build_trainer

    train, _ = validate_dataset(data, None, params.prompt_template, params.min_train_examples)
    probe = TuningParams.from_dict({**params.to_dict(), "max_steps": steps, "save_steps": 10**6,
                                    "eval_steps": None, "logging_steps": 10**6})
    with tempfile.TemporaryDirectory(prefix="jt-estimate-") as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # the job log's lines are noise in a notebook
            trainer, _, info, stats = build_trainer(probe, train, None, tmp)
        # The real run's step count, from the real parameters and data.
        total = params.max_steps or stats["train"]["tuning_step_count"]
        clock = _StepClock()
        trainer.add_callback(clock)
        trainer.args.disable_tqdm = True
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints its own summary dict
            trainer.train()
    t = clock.times
    per_step = (t[-1] - t[0]) / max(1, len(t) - 1) if len(t) > 1 else float("nan")
    return {"seconds_per_step": per_step, "total_steps": int(total), "estimated_seconds": per_step * total,
            "peak_memory_bytes": _peak_memory(), "measured_steps": max(0, len(t) - 1),
            "device": info["device"], "dtype": info["dtype"]}
