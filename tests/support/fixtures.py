"""Fixture job folders in the shape the job process writes (job.json, metrics.jsonl, dataset_stats.json)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from jupyter_tune.jobs.store import JobStore, now_iso


def distribution(values: list[int]) -> dict[str, Any]:
    values = sorted(values)
    lo, hi = values[0], values[-1]
    width = max(1, (hi - lo) / 4)
    buckets = []
    for i in range(4):
        left, right = lo + i * width, lo + (i + 1) * width
        buckets.append({"count": sum(1 for v in values if left <= v < right or (i == 3 and v == right)),
                        "left": left, "right": right})
    return {"sum": sum(values), "min": lo, "max": hi, "mean": sum(values) / len(values),
            "median": values[len(values) // 2], "p5": values[0], "p95": values[-1], "buckets": buckets}


def split_stats(n: int, with_dropped: bool = True) -> dict[str, Any]:
    return {
        "source": "data/train.jsonl",
        "tuning_dataset_example_count": n,
        "total_token_count": n * 120,
        "total_billable_token_count": n * 120 * 3,
        "tuning_step_count": math.ceil(n / 8) * 3,
        "user_input_token_distribution": distribution([80 + (i * 7) % 60 for i in range(n)]),
        "user_output_token_distribution": distribution([3 + i % 5 for i in range(n)]),
        "user_message_per_example_distribution": distribution([1] * n),
        "truncated_example_count": 2,
        "truncated_example_indices": [3, 17],
        "dropped_example_count": 1 if with_dropped else 0,
        "dropped_examples": [{"index": 9, "line": 10, "reason": "no answer tokens"}] if with_dropped else [],
        "user_dataset_examples": [
            {"index": i, "line": i + 1, "segments": [
                {"text": "<|im_start|>user\nAssign a label: CT head <b>without</b> contrast.<|im_end|>\n"
                         "<|im_start|>assistant\n", "trained": False},
                {"text": "Neurology<|im_end|>", "trained": True}]}
            for i in range(3)],
    }


def dataset_stats(validation: bool = True) -> dict[str, Any]:
    return {"max_seq_length": 256, "epochs": 3, "train": split_stats(40),
            "validation": split_stats(12, with_dropped=False) if validation else None}


def metric_rows(steps: int, validation: bool = True, start: float = 1000.0) -> list[dict[str, Any]]:
    rows = []
    for s in range(1, steps + 1):
        rows.append({"step": s, "epoch": s / 5, "train_total_loss": 3.0 / s ** 0.5,
                     "train_fraction_of_correct_next_step_preds": 0.3 + 0.6 * (1 - 1 / s),
                     "train_num_predictions": 40 + s % 3, "learning_rate": 1e-3 * (1 - s / 20),
                     "tokens_per_second": 400 + 10 * s, "time": start + 2.0 * s})
        if validation and s % 5 == 0:
            rows.append({"step": s, "epoch": s / 5, "eval_total_loss": 3.2 / s ** 0.5,
                         "eval_fraction_of_correct_next_step_preds": 0.25 + 0.6 * (1 - 1 / s),
                         "eval_num_predictions": 120, "time": start + 2.0 * s + 1})
    return rows


def record(state: str, step: int, total: int = 20, validation: bool = True) -> dict[str, Any]:
    import psutil

    final = state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
    rec: dict[str, Any] = {
        "display_name": "medical-specialty", "state": state, "create_time": now_iso(),
        "start_time": now_iso(), "end_time": now_iso() if final else None, "update_time": now_iso(),
        "create_unix": time.time(), "error": None,
        # the test process stands in for the job process, so the store sees an active job alive
        "pid": os.getpid(), "pid_create_time": psutil.Process().create_time(),
        "params": {"base_model": "tiny-llama", "train_dataset": "data/train.jsonl",
                   "validation_dataset": "data/eval.jsonl" if validation else None, "adapter_size": 8,
                   "learning_rate_multiplier": 1.0, "max_seq_length": 256, "batch_size": 8,
                   "quantization": None},
        "progress": {"step": step, "total_steps": total, "epoch": step / 5},
        "tuning": {"method": "LoRA", "base_model": "tiny-llama", "resolved_model_path": "/models/tiny-llama",
                   "adapter_size": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
                   "learning_rate": 1e-3, "epochs": 3, "total_steps": total, "batch_size": 8,
                   "gradient_accumulation_steps": 1, "max_seq_length": 256, "trainable_params": 12345,
                   "total_params": 4567890, "trainable_percent": 100 * 12345 / 4567890,
                   "quantization": None, "device": "cpu", "dtype": "bfloat16", "num_threads": 2},
    }
    return rec


def make_job(store: JobStore, job_id: str, state: str = "JOB_STATE_RUNNING", steps: int = 8,
             total: int = 20, validation: bool = True, stats: bool = True, **changes: Any) -> Path:
    rec = record(state, steps, total, validation)
    rec.update(changes)
    d = store.create(job_id, rec)
    store.update(job_id, paths={"job_dir": str(d), "adapter": str(d / "adapter"),
                                "checkpoints": str(d / "checkpoints"), "log": str(d / "log.txt")})
    for row in metric_rows(steps, validation):
        store.append_metrics(job_id, row)
    if stats:
        (d / "dataset_stats.json").write_text(json.dumps(dataset_stats(validation)))
    if state == "JOB_STATE_SUCCEEDED":
        add_adapter(d)  # a succeeded job always has its final adapter
    return d


def add_adapter(job_dir: Path) -> Path:
    adapter = job_dir / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_config.json").write_text("{}")
    return adapter


def add_checkpoint(job_dir: Path, step: int) -> Path:
    ckpt = job_dir / "checkpoints" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    (ckpt / "adapter_config.json").write_text("{}")
    return ckpt
