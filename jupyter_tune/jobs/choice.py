"""Checkpoints you can see and choose: a finished job's kept checkpoints with their metrics, the one the
user made the job's tuned model (job.json ``chosen_checkpoint``), and the retention rule that never
deletes the best or the chosen one.

Torch-free: the server, the widgets and the job process all read it. ``models/loading.job_adapter``
follows the choice, so jt.load_model, export, the Test tab and a job tuned on this one all use it.
"""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path
from typing import Any

from .checkpoints import _WEIGHTS, checkpoint_problem

CHOSEN = "chosen_checkpoint"
# A whole model saved in shards (full fine-tuning of a large model) has an index instead of one file.
_WEIGHT_FILES = (*_WEIGHTS, "model.safetensors.index.json")
# Per-checkpoint metrics read from metrics.jsonl at the checkpoint's step.
METRIC_COLUMNS = ("train_total_loss", "eval_total_loss", "eval_macro_f1", "eval_accuracy", "eval_rouge_l")


class CheckpointError(ValueError):
    """A checkpoint that cannot be chosen or read (missing, torn, no weights); the message says which
    file and what to do."""


def checkpoint_dir(job_dir: Path, step: int) -> Path:
    return Path(job_dir) / "checkpoints" / f"checkpoint-{step}"


def unusable(folder: Path, step: int) -> str | None:
    """Why a checkpoint cannot serve as the job's model (torn, or no weights in it), or None."""
    if not folder.is_dir():
        return "its folder is gone"
    problem = checkpoint_problem(folder, step)
    if problem:
        return problem
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        return f"it holds no weights ({' / '.join(_WEIGHT_FILES[:2])} missing)"
    return None


def chosen_path(job_id: str, job_dir: Path, record: dict[str, Any]) -> Path | None:
    """The chosen checkpoint's folder, None when the job uses its own model; CheckpointError when the
    chosen one can no longer be read (never a silent fallback to another model)."""
    chosen = record.get(CHOSEN)
    if not chosen:
        return None
    step = chosen.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        raise CheckpointError(f"Job {job_id}: job.json's {CHOSEN!r} has no whole-number 'step' (found {step!r}). "
                              f"Choose again with jt.get_job({job_id!r}).use_checkpoint(step), or use_checkpoint(None) "
                              "for the job's own model.")
    folder = checkpoint_dir(job_dir, step)
    why = unusable(folder, step)
    if why:
        raise CheckpointError(f"Job {job_id}'s chosen checkpoint, step {step} ({folder}), cannot be read: {why}. "
                              f"Choose another with jt.get_job({job_id!r}).use_checkpoint(step), or go back to the "
                              "job's own model with use_checkpoint(None).")
    return folder


def checkpoint_rows(store, job_id: str, record: dict[str, Any] | None = None,
                    metrics: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The kept checkpoints, oldest first: step, path, the metrics logged at that step, whether it is the
    best (job.json ``best``) and the chosen one, and why it is unusable (None when it is whole)."""
    record = record if record is not None else store.read(job_id)
    metrics = metrics if metrics is not None else store.read_metrics(job_id)
    at: dict[int, dict[str, Any]] = {}
    for row in metrics:  # train and eval lines of one step merge
        at.setdefault(row["step"], {}).update({k: row[k] for k in METRIC_COLUMNS if row.get(k) is not None})
    best = (record.get("best") or {}).get("step")
    chosen = (record.get(CHOSEN) or {}).get("step")
    rows = []
    for step, path, _ in sorted(store.checkpoints(job_id)):
        values = at.get(step, {})
        rows.append({"step": step, **{k: values.get(k) for k in METRIC_COLUMNS}, "best": step == best,
                     "chosen": step == chosen, "problem": unusable(path, step), "path": str(path)})
    return rows


def choose(store, job_id: str, step: int | str | None) -> dict[str, Any] | None:
    """Make checkpoint `step` the finished job's tuned model (None or "final": its own model again).

    Checked and written under the job's lock: the job must be in a final state (which is unchanged) and
    the checkpoint whole. Returns job.json's new ``chosen_checkpoint`` (None for the job's own model).
    """
    from .queue import reconcile
    from .states import JobState
    from .store import JobStateError, atomic_write_json, now_iso

    if step == "final":
        step = None
    if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
        raise TypeError(f"use_checkpoint(step={step!r}): give a checkpoint's step (a whole number), or None / "
                        "'final' for the job's own model.")
    reconcile(store, job_id)  # a job whose process died is recorded FAILED (final) first
    with store.lock(job_id):
        record = store.read_raw(job_id)
        state = JobState.of(record)
        if not state.is_final:
            raise JobStateError(f"Job {job_id} is {state}: a checkpoint can be chosen once the job has "
                                "ended (succeeded, cancelled or failed). Wait for it: "
                                f"jt.get_job({job_id!r}).wait().")
        choice = None
        if step is not None:
            folder = checkpoint_dir(store.job_dir(job_id), step)
            kept = [s for s, _, _ in sorted(store.checkpoints(job_id))]
            if not folder.is_dir():
                raise CheckpointError(f"Job {job_id} has no checkpoint at step {step} (in {folder.parent}); its kept "
                                      f"checkpoints are at steps {kept or 'none'}.")
            why = unusable(folder, step)
            if why:
                raise CheckpointError(f"Job {job_id}'s checkpoint at step {step} ({folder}) cannot be used: {why}. "
                                      f"Choose another of steps {kept}, or None for the job's own model.")
            choice = {"step": step, "path": str(folder), "by": "user", "user": _login(), "time": now_iso()}
        record[CHOSEN] = choice
        record["update_time"] = now_iso()
        atomic_write_json(store.job_dir(job_id) / "job.json", record)
        return choice


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return None


def chosen_step(job_dir: Path) -> int | None:
    """The chosen checkpoint's step from job.json (the job process's retention reads it), else None."""
    import json

    try:
        chosen = json.loads((Path(job_dir) / "job.json").read_text(encoding="utf-8")).get(CHOSEN)
    except (OSError, ValueError, AttributeError):
        return None
    step = chosen.get("step") if isinstance(chosen, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def keep_checkpoints(folder: Path, limit: int | None, protected: list[Path | str | None]) -> list[Path]:
    """Delete the oldest checkpoints beyond `limit`, never the newest (resume continues from it) nor the
    `protected` ones (the best, the chosen). Returns the folders deleted."""
    found = sorted((int(p.name.rsplit("-", 1)[-1]), p) for p in Path(folder).glob("checkpoint-*")
                   if p.is_dir() and p.name.rsplit("-", 1)[-1].isdigit())
    if not limit or limit <= 0 or len(found) <= limit:
        return []
    paths = {path.resolve() for _, path in found}
    keep = {found[-1][1].resolve()} | ({Path(p).resolve() for p in protected if p} & paths)
    remaining, deleted = len(found), []
    for _, path in found:
        if remaining <= max(limit, len(keep)):
            break
        if path.resolve() not in keep:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
            remaining -= 1
    return deleted
