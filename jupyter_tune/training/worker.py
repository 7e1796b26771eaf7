"""The job process: ``python -m jupyter_tune.training.worker <job_dir>``.

Reads the job's own copy of its data and parameters, trains, and leaves a final state in job.json
whatever happens: SUCCEEDED, CANCELLED (with the latest adapter) or FAILED (with the reason).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from ..data.loader import Dataset
from ..jobs.states import JobState
from ..jobs.store import JobStore, atomic_write_json, now_iso
from ..params import TuningParams
from .build import build_trainer, log


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run(job_dir: Path, resume: bool) -> int:
    store = JobStore(job_dir.parent.parent)
    job_id = job_dir.name
    record = store.read_raw(job_id)
    params = TuningParams.from_dict(record["params"])
    if record.get("state") == JobState.CANCELLING.value:
        store.update(job_id, state=JobState.CANCELLED.value, end_time=now_iso())
        return 0
    store.update(job_id, state=JobState.RUNNING.value, start_time=record.get("start_time") or now_iso())
    try:
        job_dir = store.job_dir(job_id)
        train = Dataset.from_records(params.train_dataset or "train", read_records(job_dir / "train.jsonl"))
        val = None
        if (job_dir / "validation.jsonl").exists():
            val = Dataset.from_records(params.validation_dataset or "validation",
                                       read_records(job_dir / "validation.jsonl"))
        trainer, tokenizer, info, stats = build_trainer(params, train, val, job_dir / "checkpoints")
        atomic_write_json(job_dir / "dataset_stats.json", stats)
        if stats["train"]["truncated_example_count"]:
            log(f"{stats['train']['truncated_example_count']} training examples truncated to "
                f"max_seq_length={params.max_seq_length}")
        from .callbacks import CancelCallback, MetricsCallback

        trainer.add_callback(MetricsCallback(store, job_id, trainer))
        cancel = CancelCallback(store, job_id)
        trainer.add_callback(cancel)
        store.update(job_id, tuning=info, progress={"step": 0, "total_steps": info["total_steps"], "epoch": 0.0})
        log(f"{info['method']} r={info['adapter_size']} on {', '.join(info['target_modules'])}: "
            f"{info['trainable_params']:,} trainable of {info['total_params']:,} parameters; "
            f"{info['device']} {info['dtype']}, {info['total_steps']} steps")
        checkpoint = store.latest_checkpoint(job_id) if resume else None
        if resume:
            log(f"Resuming from {checkpoint}" if checkpoint else "No checkpoint yet: starting over")
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        adapter = job_dir / "adapter"
        trainer.model.save_pretrained(adapter)
        tokenizer.save_pretrained(adapter)
        final = JobState.CANCELLED if cancel.requested else JobState.SUCCEEDED
        log(f"Adapter saved to {adapter}; {final.value}")
        store.update(job_id, state=final.value, end_time=now_iso(), error=None)
        return 0
    except BaseException as e:  # noqa: BLE001 - the job must always end in a final state
        traceback.print_exc()
        message = f"{type(e).__name__}: {e}"
        store.update(job_id, state=JobState.FAILED.value, end_time=now_iso(), error={"message": message})
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m jupyter_tune.training.worker JOB_DIR [--resume]", file=sys.stderr)
        return 2
    return run(Path(argv[0]), "--resume" in argv)


if __name__ == "__main__":
    sys.exit(main())
