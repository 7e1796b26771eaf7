"""Time and memory of a tuning run, measured from a few real steps rather than guessed.

The steps run in a short child process (``python -m jupyter_tune.training.estimate <dir> <steps>``),
started as a job's process is, with the data and parameters in files and the result back as JSON. The
kernel that asks is left as it was (its torch threads, its random state, its memory), and the peak
memory reported is the probe's own rather than the kernel's lifetime peak.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..data.loader import Dataset, validate_dataset
from ..params import TuningParams

# A probe that has not finished in this time is stopped (a few steps of a model that fits take seconds).
TIMEOUT_S = 900.0


class EstimateError(RuntimeError):
    """The probe process failed; the message says why (its error, or the end of its output)."""


def estimate_cost(data: Any, params: TuningParams, validation_data: Any = None, steps: int = 4,
                  timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Run `steps` real optimizer steps (the first is warm-up and not timed) in a child process and
    extrapolate.

    Returns seconds_per_step, total_steps, estimated_seconds (training only), peak_memory_bytes
    (the probe process's RSS peak on CPU, allocated on CUDA), measured_steps, device and dtype; with a
    validation set, evaluation_seconds (the end-of-job report, ``evaluate_after``: rough, from the measured
    step time, evaluation/job_report.estimate_seconds; None when no report will run) and
    total_seconds (training plus the report).
    Raises DatasetError for bad data (before any process starts), EstimateError if the probe fails and
    TimeoutError after `timeout` seconds.
    """
    train, val = validate_dataset(data, validation_data, params.prompt_template, params.min_train_examples)
    spec = params.to_dict()
    for key in ("train_dataset", "validation_dataset"):  # the data goes in its own file
        if spec.get(key) is not None and not isinstance(spec[key], str):
            spec[key] = None
    with tempfile.TemporaryDirectory(prefix="jt-estimate-") as tmp:
        folder = Path(tmp)
        (folder / "params.json").write_text(json.dumps(spec, default=str), encoding="utf-8")
        (folder / "train.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train.to_records()), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        cmd = [sys.executable, "-m", "jupyter_tune.training.estimate", str(folder), str(int(steps))]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                                  timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"The estimate did not finish in {timeout:.0f} s.") from None
        try:
            result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = None
    if not isinstance(result, dict):
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-5:])
        raise EstimateError(f"The estimate process ended with code {proc.returncode}" + (f":\n{tail}" if tail else "."))
    if result.get("error"):
        raise EstimateError(result["error"])
    result["evaluation_seconds"] = _report_seconds(params, train, val, result.get("seconds_per_step"))
    if result.get("estimated_seconds") is not None:
        result["total_seconds"] = result["estimated_seconds"] + (result["evaluation_seconds"] or 0.0)
    return result


def _report_seconds(params: TuningParams, train: Dataset, val: Dataset | None,
                    seconds_per_step: float | None) -> float | None:
    """The end-of-job report's time: the job's own decision (evaluation/job_report.plan) and rows."""
    from ..evaluation import job_report

    task_type, _ = job_report.plan(params, [ex.answer for ex in train.examples],
                                   [ex.answer for ex in val.examples] if val is not None else None)
    if task_type is None or seconds_per_step is None:
        return None
    answers = [ex.answer for ex in val.examples if ex.answer is not None]
    per_example = seconds_per_step / (params.batch_size * params.gradient_accumulation_steps)
    return job_report.estimate_seconds(task_type, len(answers), per_example, job_report.mean_answer_tokens(answers))


# -- the child process --
def _peak_memory() -> int:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # Linux reports KiB


def measure(train: Dataset, params: TuningParams, steps: int) -> dict[str, Any]:
    """The probe itself: build the real Trainer, run `steps` steps, time them. Changes this process's
    torch threads and seed, which is why it runs in a process of its own."""
    import torch
    from transformers import TrainerCallback

    from .build import build_trainer

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    probe = TuningParams.from_dict({**params.to_dict(), "max_steps": steps, "save_steps": 10**6,
                                    "eval_steps": None, "logging_steps": 10**6})
    with tempfile.TemporaryDirectory(prefix="jt-estimate-run-") as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # the job log's lines are noise here
            trainer, _, info, stats = build_trainer(probe, train, None, tmp)
        # The real run's step count, from the real parameters and data.
        total = params.max_steps or stats["train"]["tuning_step_count"]
        clock = StepClock()
        trainer.add_callback(clock)
        trainer.args.disable_tqdm = True
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints its own summary dict
            trainer.train()
    t = clock.times
    per_step = (t[-1] - t[0]) / max(1, len(t) - 1) if len(t) > 1 else None
    return {"seconds_per_step": per_step, "total_steps": int(total),
            "estimated_seconds": per_step * total if per_step is not None else None,
            "peak_memory_bytes": _peak_memory(), "measured_steps": max(0, len(t) - 1),
            "device": info["device"], "dtype": info["dtype"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder, steps = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 4
    try:
        params = TuningParams.from_dict(json.loads((folder / "params.json").read_text(encoding="utf-8")))
        with open(folder / "train.jsonl", encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        result = measure(Dataset.from_records(params.train_dataset or "train", records), params, steps)
    except Exception as e:  # noqa: BLE001 - the kernel shows it
        result = {"error": f"{type(e).__name__}: {e}"}
    (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
