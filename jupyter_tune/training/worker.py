"""The job process: ``python -m jupyter_tune.training.worker <job_dir>``.

Reads the job's own copy of its data and parameters, trains, and leaves a final state in job.json
whatever happens: SUCCEEDED, CANCELLED (with the latest adapter when one was trained) or FAILED (with
the reason). Cancel is honoured from the process's first line (jobs/cancel.py), not only once training
runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path

from ..data.loader import Dataset
from ..jobs import exit_note
from ..jobs.cancel import CancelWatch, JobCancelled
from ..jobs.states import JobState
from ..jobs.store import JobStore, atomic_write_json, now_iso
from ..params import TuningParams
from .build import build_trainer
from .distributed import CHECKSUM_ENV
from .log import log

_PRECISIONS = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run(job_dir: Path, resume: bool) -> int:
    from .distributed import is_distributed, world

    store = JobStore(job_dir.parent.parent)
    job_id = job_dir.name
    if is_distributed():
        # One rank of a torchrun group (training/distributed.py holds the job and its pid): every rank polls
        # job.json for a cancel and they agree at each step end; SIGTERM stays torchrun's way to end the group.
        rank, world_size = world()
        return _train(store, job_id, CancelWatch(store, job_id, interrupt=False), resume, rank,
                      world_size)
    watch = CancelWatch(store, job_id)
    watch.install_signals()  # first: from here on a cancel signal never kills the process
    if not store.start_worker(job_id, os.getpid(), _create_time()):
        log(f"Not starting: the job is {store.read_raw(job_id)['state']}")
        return 0
    try:
        exit_note.reserve(job_dir)  # room for the last word, while there is room
    except OSError as e:
        log(f"Warning: could not reserve {exit_note.NAME} ({e}); a full disk may hide why the job stops")
    return _train(store, job_id, watch, resume, 0, 1)


def _finish(store: JobStore, job_id: str, state: JobState, message: str | None) -> None:
    """The one place a job process records how it ended: the exit note first (in place: it survives a
    full disk), then job.json. A failed job.json write is logged, never raised: the note tells the
    store the rest when it sees the process gone."""
    exit_note.write(store.job_dir(job_id), state.value, message)
    try:
        store.update(job_id, state=state, end_time=now_iso(),
                     error={"message": message} if state is JobState.FAILED else None)
    except OSError as e:
        log(f"Could not record {state} in job.json ({type(e).__name__}: {e}); "
            f"{exit_note.NAME} holds it")


def _train(store: JobStore, job_id: str, watch: CancelWatch, resume: bool,
           rank: int, world_size: int) -> int:
    """Train and leave a final state. Rank 0 alone writes the job's files (every rank holds the same
    weights); the other ranks only train."""
    is_main = rank == 0
    watch.start_polling()
    trainer = None
    trackers = None  # report_to's trackers (training/trackers.py), rank 0 only
    try:
        with watch.interruptible():  # loading: a cancel abandons it at once, nothing to keep
            record = store.read_raw(job_id)
            params = TuningParams.from_dict(record["params"])
            dtype = (record.get("tuning") or {}).get("dtype")
            if resume and params.precision == "auto" and dtype in _PRECISIONS:
                # a resume trains in the dtype the checkpoints were made in (its optimizer state depends on it)
                params = TuningParams.from_dict({**params.to_dict(), "precision": _PRECISIONS[dtype]})
            if world_size > 1:
                params = _share_cores(params)
                _use_own_gpu()
            job_dir = store.job_dir(job_id)
            train = Dataset.from_records(params.train_dataset or "train", read_records(job_dir / "train.jsonl"))
            val = None
            if (job_dir / "validation.jsonl").exists():
                val = Dataset.from_records(params.validation_dataset or "validation",
                                           read_records(job_dir / "validation.jsonl"))
            trainer, tokenizer, info, stats = build_trainer(params, train, val, job_dir / "checkpoints")
        if is_main:
            if record.get("data_health") is not None:  # checked by jt.tune on the user's files (data/health.py)
                stats["health"] = record["data_health"]
            atomic_write_json(job_dir / "dataset_stats.json", stats)
            if stats["train"]["truncated_example_count"] and stats.get("method") != "grpo":  # grpo.py says it
                log(f"{stats['train']['truncated_example_count']} training examples truncated to "
                    f"max_seq_length={params.max_seq_length}")
        from .callbacks import job_callbacks
        from .guards import NonFiniteGuard
        from .trackers import TrackerRelay

        callbacks = job_callbacks(trainer, params, val, tokenizer, store, job_id, watch, is_main=is_main,
                                  world_size=world_size, spec=record["params"])
        for callback in callbacks:  # in the list's order: it is the order they run in
            trainer.add_callback(callback)
        guard = next(c for c in callbacks if isinstance(c, NonFiniteGuard))
        trackers = next((c for c in callbacks if isinstance(c, TrackerRelay)), None)
        info.update(num_processes=world_size)
        if is_main:
            store.update(job_id, tuning=info, progress={"step": 0, "total_steps": info["total_steps"], "epoch": 0.0})
            log(f"{info['method']}"
                + (f" r={info['adapter_size']} on {', '.join(info['target_modules'])}" if info['target_modules'] else "")
                + ": "
                f"{info['trainable_params']:,} trainable of {info['total_params']:,} parameters; "
                f"{info['device']} {info['dtype']}, {info['total_steps']} steps"
                + (f", {world_size} processes" if world_size > 1 else ""))
        checkpoint = store.latest_checkpoint(job_id, report=log if is_main else lambda m: None) if resume else None
        if resume and params.nnodes > 1:
            # Each machine resumes from its own store: every one must start from the same step.
            from .distributed import common_checkpoint

            checkpoint = common_checkpoint(store, job_id)
        if resume and (is_main or (params.nnodes > 1 and int(os.environ.get("LOCAL_RANK", "0")) == 0)):
            log(f"Resuming from {checkpoint}" if checkpoint else "No complete checkpoint yet: starting over")
            store.discard_torn_checkpoints(job_id, checkpoint, report=log)
        done = checkpoint is not None and _checkpoint_step(checkpoint) >= info["total_steps"]
        if done:  # killed after its last checkpoint: Trainer would train one step past max_steps
            if is_main:
                log(f"{checkpoint.name} is the last step: nothing left to train")
            _load_checkpoint_weights(trainer, checkpoint)
        else:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        if os.environ.get(CHECKSUM_ENV):
            log(f"adapter checksum rank {rank}: {_adapter_checksum(trainer.model)}")
        if not is_main:
            return 0
        if guard.tripped:
            last = store.latest_checkpoint(job_id, report=log)
            message = guard.message(last.name if last else None)
            log(message)
            _finish(store, job_id, JobState.FAILED, message)
            return 1
        final = JobState.CANCELLED if watch.requested.is_set() else JobState.SUCCEEDED
        _finish_selection(store, job_id, trainer, final)
        _save_adapter(trainer, tokenizer, job_dir / "adapter")
        log(f"{'Model' if params.method == 'full' else 'Adapter'} saved to "
            f"{job_dir / ('model' if params.method == 'full' else 'adapter')}; {final}")
        _close_trackers(trackers, job_dir / "adapter", final)
        if final is JobState.SUCCEEDED and (val is not None or params.evaluate_after):
            import gc

            from . import end_report

            # the training model's memory back before the report loads the base and tuned models
            trainer = guard = callbacks = trackers = None
            gc.collect()
            test = None  # test_dataset: rows that played no part in training or the checkpoint's choice
            if (job_dir / "test.jsonl").exists():
                test = Dataset.from_records(params.test_dataset or "test", read_records(job_dir / "test.jsonl"))
            final = end_report.run(store, job_id, params, train, val, watch, test=test)
        _finish(store, job_id, final, None)
        return 0
    except JobCancelled:
        # While loading (nothing trained) or evaluating (the weights are the last step's: keep them).
        if trainer is not None and trainer.state.global_step > 0:
            _save_checkpoint(trainer)
            _finish_selection(store, job_id, trainer, JobState.CANCELLED)  # the best of the evaluations done
            _save_adapter(trainer, tokenizer, store.job_dir(job_id) / "adapter")
            log(f"Cancelled at step {trainer.state.global_step}; adapter saved")
        else:
            log("Cancelled before training started")
        _close_trackers(trackers, store.job_dir(job_id) / "adapter", JobState.CANCELLED)
        _finish(store, job_id, JobState.CANCELLED, None)
        return 0
    except BaseException as e:  # noqa: BLE001 - the job must always end in a final state
        traceback.print_exc()
        message = f"{type(e).__name__}: {e}"
        _close_trackers(trackers, None, JobState.FAILED)
        if world_size > 1:
            # A rank's error may only echo another rank's death: the supervisor, which sees how every
            # rank ended, writes the final state.
            # Several machines: each one's first rank tells its own job (rank 0 runs on node_rank 0 only).
            nodes = int(os.environ.get("GROUP_WORLD_SIZE", "1"))
            other_node = nodes > 1 and os.environ.get("LOCAL_RANK") == "0"
            if is_main or other_node:
                store.update(job_id, rank_error=f"{message} (rank {rank} of {world_size})")
        else:
            _finish(store, job_id, JobState.FAILED, message)
        return 1
    finally:
        _close_trackers(trackers, None, "ended")  # no-op once closed above
        watch.stop()


def _close_trackers(trackers, adapter: Path | None, final: JobState) -> None:
    """End the trackers' runs with the adapter's location; never changes how the job ends."""
    if trackers is not None:
        try:
            trackers.close(adapter, str(final))  # the trackers take plain text
        except Exception as e:  # noqa: BLE001
            log(f"Warning: the trackers did not close cleanly: {e}")


def _share_cores(params: TuningParams) -> TuningParams:
    """Ranks on one CPU share its cores instead of each taking them all."""
    import dataclasses

    import psutil

    if params.num_threads:
        return params
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return dataclasses.replace(params, num_threads=max(1, cores // local))


def _use_own_gpu() -> None:
    """Each rank on its own GPU before the model loads ("cuda" then means that one)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def _adapter_checksum(model) -> str:
    """sha256 over the trainable weights in name order (debug: every rank must hold the same adapter)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def _checkpoint_step(checkpoint: Path) -> int:
    try:
        return int(checkpoint.name.rsplit("-", 1)[-1])
    except ValueError:
        return -1


def _load_checkpoint_weights(trainer, checkpoint: Path) -> None:
    from .optim import load_adapter_weights

    load_adapter_weights(trainer, checkpoint)
    trainer.state.global_step = _checkpoint_step(checkpoint)


def _finish_selection(store: JobStore, job_id: str, trainer, final: JobState) -> None:
    """A succeeded job's adapter is its best checkpoint's (select_best); a cancelled one keeps its latest."""
    from .selection import EarlyStopping, best_checkpoint, load_best

    stop = next((c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStopping)), None)
    if stop is not None and stop.reason:
        log(stop.reason.capitalize())
        store.update(job_id, stopped_early={"step": trainer.state.global_step, "reason": stop.reason})
    best = load_best(trainer) if final is JobState.SUCCEEDED else best_checkpoint(trainer)
    if best is not None:
        if final is JobState.SUCCEEDED:
            log(f"Best checkpoint: step {best['step']}, {best['metric']} {best['value']:.4g}; the adapter is its weights")
        store.update(job_id, best=best)


def _create_time() -> float | None:
    import psutil

    try:
        return psutil.Process(os.getpid()).create_time()
    except psutil.Error:
        return None


def _save_adapter(trainer, tokenizer, adapter: Path) -> None:
    """Save into a new folder and swap it in: a kill mid-save never leaves a torn adapter.

    A full fine-tuning job (no adapter) saves its whole model as a plain Hugging Face folder, model/."""
    from peft import PeftModel

    from .optim import full_precision_state_dict

    model = trainer.accelerator.unwrap_model(trainer.model)
    full = not isinstance(model, PeftModel)
    state_dict = full_precision_state_dict(model, trainer.optimizer)  # the fp32 masters, where there are
    if full:
        from ..models.from_job import FULL_MODEL_DIR

        adapter = adapter.with_name(FULL_MODEL_DIR)
    for stale in adapter.parent.glob(f".{adapter.name}-*"):  # left by a process killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    tmp = adapter.with_name(f".{adapter.name}-{os.getpid()}.partial")
    if full:
        from .methods import save_full_model

        save_full_model(model, tokenizer, tmp, state_dict)
    else:
        from .classifier import save_head_config

        model.save_pretrained(tmp, state_dict=state_dict)
        save_head_config(model, tmp)  # a classifier's labels (id2label) beside its adapter
        tokenizer.save_pretrained(tmp)
    old = adapter.with_name(f".{adapter.name}-{os.getpid()}.old")
    if adapter.exists():
        os.rename(adapter, old)
    os.rename(tmp, adapter)
    shutil.rmtree(old, ignore_errors=True)


def _save_checkpoint(trainer) -> None:
    """A checkpoint at the current step (cancelled mid-evaluation), so resume continues from here."""
    from ..jobs.checkpoints import mark_complete

    folder = Path(trainer.args.output_dir) / f"checkpoint-{trainer.state.global_step}"
    if folder.is_dir():
        return
    try:
        trainer._save_checkpoint(trainer.model, trial=None)
        mark_complete(folder, trainer.state.global_step)
    except Exception as e:  # noqa: BLE001 - the adapter below still keeps the weights
        log(f"Could not save a checkpoint at step {trainer.state.global_step}: {e}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m jupyter_tune.training.worker JOB_DIR [--resume]", file=sys.stderr)
        return 2
    job_dir = Path(argv[0])
    try:
        return run(job_dir, "--resume" in argv)
    finally:
        if "RANK" not in os.environ:  # under torchrun, training/distributed.py frees the slots
            _start_next(job_dir)


def _start_next(job_dir: Path) -> None:
    """This job's slot is free (it ended, or never started): start the next queued job."""
    from ..jobs.queue import kick

    kick(JobStore(job_dir.parent.parent))


if __name__ == "__main__":
    sys.exit(main())
