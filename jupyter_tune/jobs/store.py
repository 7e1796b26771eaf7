"""The job store: one folder per job, shared by the kernel, the job processes and the server.

Layout (``$JUPYTER_TUNE_HOME`` or ``<jupyter data dir>/tune``)::

    jobs/<job_id>/job.json           spec, state, times, error, pid (replaced atomically)
    jobs/<job_id>/metrics.jsonl      one JSON line per logged step (append-only)
    jobs/<job_id>/dataset_stats.json
    jobs/<job_id>/log.txt
    jobs/<job_id>/checkpoints/       Trainer checkpoints (adapter + optimizer state)
    jobs/<job_id>/adapter/           the final PEFT adapter

Torch-free: the server imports it. The mechanism (atomic writes, create-then-rename, checked reads, a
per-job file lock with ``filelock``: POSIX and Windows) is jobs/records.py's RecordStore, which sweeps
share. Writers take the job's lock, so several processes can update a job without losing each other's
changes. Reading has no side effect: `read` and `list` report a job whose process died as FAILED
without writing anything; `reconcile` is the one explicit step that records it and lets the queue move
(called by the kernel API, the queue dispatcher and the server's periodic task). Readers never fail
because of one bad job folder, and JSON the store writes never holds NaN or Infinity (a browser's
JSON.parse rejects them).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from . import exit_note
from .checkpoints import checkpoint_problem
from .kept import kept_model
from .records import (  # noqa: F401 - re-exported: the rest of the package imports them from here
    RECORD_ID_RE,
    CorruptRecordError,
    InvalidRecordIdError,
    RecordNotFoundError,
    RecordStore,
    atomic_write_json,
    default_root,
    dumps,
    json_safe,
    loads,
    now_iso,
    process_alive,
)
from .shapes import JobRecord
from .states import ACTIVE_STATES, FINAL_STATES, JobState

JOB_ID_RE = RECORD_ID_RE  # 1 to 64 of a-z, 0-9 and '-' (fullmatch)
# A PENDING job whose process never registered within this time is reported FAILED.
_PENDING_GRACE_S = 120.0
_STATES = frozenset(JobState)  # JobState is a str enum: the strings read from job.json are found in these sets
# job.json's blocks that readers index, and the JSON type each must have.
_RECORD_SHAPES = (("params", dict), ("progress", dict), ("tuning", dict), ("paths", dict), ("error", dict),
                  ("best", dict), ("warnings", list), ("exports", list),
                  ("chosen_checkpoint", dict), ("evaluation", dict))


logger = logging.getLogger(__name__)


class InvalidJobIdError(InvalidRecordIdError):
    pass


class JobNotFoundError(RecordNotFoundError):
    pass


class CorruptJobError(CorruptRecordError):
    """A job folder whose job.json cannot be used; `.reason` says why."""

    noun = "Job"

    @property
    def job_id(self) -> str:
        return self.record_id


class JobStateError(RuntimeError):
    """The job is in a state that does not allow the operation (e.g. resuming a running job)."""


def validate_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        raise InvalidJobIdError(
            f"Invalid job id {job_id!r}: job ids are 1 to 64 characters of a-z, 0-9 and '-'.")
    return job_id


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "job"


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


class JobStore(RecordStore):
    kind, subdir, noun = "job", "jobs", "tuning job"
    not_found_error, corrupt_error, invalid_id_error = JobNotFoundError, CorruptJobError, InvalidJobIdError

    def __init__(self, root: str | os.PathLike | None = None):
        super().__init__(root)
        self.jobs_dir = self.records_dir

    # -- paths --
    def job_dir(self, job_id: str) -> Path:
        return self.record_dir(job_id)

    def new_job_id(self, display_name: str | None = None) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"{slugify(display_name or 'tuning')}-{stamp}-{secrets.token_hex(2)}"

    # -- creating --
    def create(self, job_id: str, record: dict[str, Any], files: dict[str, bytes | str] | None = None) -> Path:
        """Create a job folder with its job.json, an empty metrics.jsonl and log.txt and the extra files,
        all or nothing."""
        return super().create(job_id, record, {"metrics.jsonl": "", "log.txt": "", **(files or {})})

    # -- reading --
    def check(self, record: dict[str, Any]) -> str | None:
        """read_raw's job checks: a valid state, and the blocks readers index of the right JSON type."""
        if record.get("state") not in _STATES:
            return f"job.json has no valid state (found {record.get('state')!r})"
        return self.check_shapes(record, _RECORD_SHAPES)

    def read(self, job_id: str) -> JobRecord:
        """job.json for display, with no side effect: a job whose process died reads FAILED (with the
        reason) but nothing is written; an unreadable one reads as a FAILED stub (``"unreadable": true``)
        whose error says why, so one bad folder breaks nothing. `reconcile` records the death."""
        try:
            record = self.read_raw(job_id)
        except CorruptJobError as e:
            return self.unreadable_record(job_id, e.reason)
        return self.assess(record)

    def unreadable_record(self, job_id: str, reason: str) -> dict[str, Any]:
        try:
            created = self.job_dir(job_id).stat().st_mtime
        except OSError:
            created = 0.0
        return {"id": job_id, "display_name": job_id, "state": JobState.FAILED, "unreadable": True,
                "error": {"message": f"This job's files are unreadable: {reason}. Delete it with "
                                     f"jt.delete_job({job_id!r}) or the panel."},
                "params": {}, "progress": {}, "create_unix": created, "create_time": None,
                "start_time": None, "end_time": None, "warnings": []}

    def _death_changes(self, record: dict[str, Any]) -> dict[str, Any]:
        """The final state of a job whose process is gone: the state and reason it left in its exit note
        (jobs/exit_note.py: it could not write job.json, e.g. on a full disk), else FAILED with a guess."""
        note = exit_note.read(self.job_dir(record["id"]), record.get("pid")) if record.get("pid") else None
        if note is not None and note["state"] in FINAL_STATES:
            message = note.get("message")
            if note["state"] == JobState.FAILED:
                message = (f"{message}\n(The job process recorded this in {exit_note.NAME}: it could not "
                           "update job.json, for example because the disk is full.)")
            error = {"message": message} if message else None
            return {"state": JobState.of(note), "error": error, "end_time": now_iso(), "update_time": now_iso()}
        return {"state": JobState.FAILED, "error": {"message": self._death_reason(record)},
                "end_time": now_iso(), "update_time": now_iso()}

    def record_deaths(self, job_id: str | None = None) -> list[str]:
        """Record as FAILED every job (or `job_id` alone) whose process died; returns their ids."""
        return self.record_deaths_seen(job_id)[0]

    def record_deaths_seen(self, job_id: str | None) -> tuple[list[str], bool]:
        """(ids recorded FAILED, whether a QUEUED job was seen). If a write fails (full disk, read-only
        store) readers still see FAILED through `assess`, nothing is left behind, and the next
        reconcile tries again."""
        recorded, queued = [], False
        for jid in [job_id] if job_id is not None else self._job_ids():
            try:
                raw = self.read_raw(jid)
                queued |= raw["state"] == JobState.QUEUED
                if self._died(raw) and self.record_death(jid):  # checked again under the lock
                    recorded.append(jid)
            except (OSError, CorruptJobError, JobNotFoundError) as e:
                logger.debug("could not record job %s as FAILED: %s", jid, e)
        return recorded, queued

    @staticmethod
    def _died(record: dict[str, Any]) -> bool:
        if record.get("state") not in ACTIVE_STATES or record.get("state") == JobState.QUEUED:
            return False  # a queued job has no process by design: it waits for a slot
        pid = record.get("pid")
        if pid is None:
            since = _number(record.get("pending_since"), _number(record.get("create_unix"), time.time()))
            return time.time() - since > _PENDING_GRACE_S
        return not process_alive(pid, record.get("pid_create_time"))

    def _death_reason(self, record: dict[str, Any]) -> str:
        pid = record.get("pid")
        if pid is None:
            return "The job process never started (the launching kernel may have exited)."
        tail = self.log_tail(record["id"], 5)
        msg = (f"The job process (pid {pid}) ended without reporting a final state: it was killed "
               f"(for example kill -9 or out of memory) or crashed. Resume it with "
               f"jt.resume({record['id']!r}) to continue from the last checkpoint.")
        return msg + (f"\nLast log lines:\n{tail}" if tail else "")

    # -- state changes that must be checked and made in one step (under the job's lock) --
    def start_worker(self, job_id: str, pid: int, pid_create_time: float | None) -> bool:
        """Called by a job process before it does anything: True if it now owns the job (RUNNING).

        A job cancelled before its process got here ends CANCELLED; a job in any other state is
        someone else's (or finished), and the process must leave it alone.
        """
        with self.lock(job_id):
            record = self.read_raw(job_id)
            state = JobState.of(record)
            if state is JobState.CANCELLING:
                record.update(state=JobState.CANCELLED, end_time=now_iso(), update_time=now_iso())
                atomic_write_json(self.job_dir(job_id) / "job.json", record)
                return False
            if state is not JobState.PENDING:  # a QUEUED job starts only through the queue
                return False
            record.update(state=JobState.RUNNING, pid=pid, pid_create_time=pid_create_time,
                          start_time=record.get("start_time") or now_iso(), update_time=now_iso())
            atomic_write_json(self.job_dir(job_id) / "job.json", record)
            return True

    def begin_resume(self, job_id: str) -> dict[str, Any]:
        """FAILED/CANCELLED -> QUEUED in one locked step, so two racing resumes start one process
        (queue.dispatch then starts it when a slot is free)."""
        with self.lock(job_id):
            record = self.read_raw(job_id)
            seen = self.assess(record)
            state = JobState.of(seen)
            if state not in (JobState.FAILED, JobState.CANCELLED):
                raise JobStateError(f"Job {job_id} is {state}; only FAILED or CANCELLED jobs can be resumed.")
            previous = seen.get("error")
            record.update(state=JobState.QUEUED, error=None, rank_error=None, end_time=None, pid=None,
                          pid_create_time=None, queued_unix=time.time(),
                          resume_count=int(_number(record.get("resume_count"))) + 1,
                          previous_error=previous, update_time=now_iso())
            atomic_write_json(self.job_dir(job_id) / "job.json", record)
            return record

    def request_cancel(self, job_id: str) -> JobState:
        """Mark a job for cancelling; returns its new state. No signal is sent: the job process polls
        job.json (jobs/cancel.py), so this works the same on every platform.

        A job with no live process (a queued one among them: it never starts) is CANCELLED at once.
        """
        with self.lock(job_id):
            record = self.read_raw(job_id)
            state = JobState.of(record)
            if state.is_final or state is JobState.CANCELLING:
                return state
            if process_alive(record.get("pid"), record.get("pid_create_time")):
                record.update(state=JobState.CANCELLING, cancel_requested_time=now_iso())
            else:
                record.update(state=JobState.CANCELLED, end_time=now_iso(), queue_position=None)
            record["update_time"] = now_iso()
            atomic_write_json(self.job_dir(job_id) / "job.json", record)
            return JobState.of(record)

    def _job_ids(self) -> list[str]:
        return self.ids()

    def list(self) -> list[JobRecord]:
        """Every job, newest first, as `read` gives it (no side effect); an unreadable one appears as a
        FAILED stub saying why."""
        out = []
        for job_id in self._job_ids():
            try:
                out.append(self.assess(self.read_raw(job_id)))
            except CorruptJobError as e:
                out.append(self.unreadable_record(job_id, e.reason))
            except JobNotFoundError:
                continue  # deleted while we listed
        out.sort(key=lambda r: _number(r.get("create_unix")), reverse=True)
        return out

    # -- the queue's steps (queue.py holds the store-wide lock around them) --
    def claim_queued(self, job_id: str) -> dict[str, Any] | None:
        """QUEUED -> PENDING under the job's lock; None if it is no longer queued (cancelled, deleted)."""
        try:
            with self.lock(job_id):
                record = self.read_raw(job_id)
                if record["state"] != JobState.QUEUED:
                    return None
                record.update(state=JobState.PENDING, pending_since=time.time(), queue_position=None,
                              update_time=now_iso())
                atomic_write_json(self.job_dir(job_id) / "job.json", record)
                return record
        except (JobNotFoundError, CorruptJobError, FileNotFoundError):
            return None

    def set_queue_position(self, job_id: str, position: int) -> None:
        with self.lock(job_id):
            record = self.read_raw(job_id)
            if record["state"] == JobState.QUEUED:
                record.update(queue_position=position, update_time=now_iso())
                atomic_write_json(self.job_dir(job_id) / "job.json", record)

    # -- metrics, stats, logs --
    def append_metrics(self, job_id: str, row: dict[str, Any]) -> None:
        self.append_line(job_id, "metrics.jsonl", row)

    def append_line(self, job_id: str, name: str, row: dict[str, Any]) -> None:
        """One JSON line appended to the job's `name` (metrics.jsonl, samples.jsonl)."""
        line = dumps(row) + "\n"
        with open(self.job_dir(job_id) / name, "a+b") as f:
            # A process killed mid-line left a torn last line: start on a new one, or both rows are lost.
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            # One write() of a short line in append mode lands whole, even with concurrent readers.
            f.write(line.encode("utf-8"))

    def read_metrics(self, job_id: str) -> list[dict[str, Any]]:
        """The logged rows by step. A step logged twice (replayed after a resume) keeps its latest
        row; torn or unreadable lines are skipped without taking a neighbour with them."""
        try:
            data = (self.job_dir(job_id) / "metrics.jsonl").read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return []
        latest: dict[tuple[int, str], tuple[int, dict[str, Any]]] = {}
        # The piece after the last newline is being written right now (or was torn): not a row yet.
        for i, raw in enumerate(data.split(b"\n")[:-1]):
            row = _metrics_row(raw)
            if row is None:
                continue
            kind = "eval" if any(k.startswith("eval_") for k in row) else "train"
            latest[(row["step"], kind)] = (i, row)
        return [row for (step, _), (i, row) in sorted(latest.items(), key=lambda kv: (kv[0][0], kv[1][0]))]

    def read_dataset_stats(self, job_id: str) -> dict[str, Any] | None:
        path = self.job_dir(job_id) / "dataset_stats.json"
        try:
            stats = loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        return stats if isinstance(stats, dict) else None

    def log_tail(self, job_id: str, n: int = 20) -> str:
        path = self.job_dir(job_id) / "log.txt"
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 16384))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def checkpoints(self, job_id: str) -> list[tuple[int, Path, str | None]]:
        """(step, folder, why it cannot be resumed from or None), newest first."""
        ckpts = self.job_dir(job_id) / "checkpoints"
        if not ckpts.is_dir():
            return []
        found = [(int(p.name.rsplit("-", 1)[-1]), p) for p in ckpts.glob("checkpoint-*")
                 if p.name.rsplit("-", 1)[-1].isdigit() and p.is_dir()]
        return [(step, p, checkpoint_problem(p, step)) for step, p in sorted(found, reverse=True)]

    def latest_checkpoint(self, job_id: str, report: Callable[[str], None] | None = None) -> Path | None:
        """The newest complete checkpoint. Torn ones (a kill or a full disk during the save) are
        skipped and reported through `report` (default: the logging module)."""
        for _, path, problem in self.checkpoints(job_id):
            if problem is None:
                return path
            (report or logger.warning)(f"Skipping {path.name}: {problem}")
        return None

    def discard_torn_checkpoints(self, job_id: str, resumed_from: Path | None,
                                 report: Callable[[str], None] | None = None) -> None:
        """Remove torn checkpoints newer than the one training resumes from (the job process calls this).

        Training writes those steps again, and the Trainer's rotation, which keeps the highest-numbered
        folders, must not keep a torn one in place of a complete one.
        """
        start = int(resumed_from.name.rsplit("-", 1)[-1]) if resumed_from else -1
        for step, path, problem in self.checkpoints(job_id):
            if step > start and problem is not None:
                shutil.rmtree(path, ignore_errors=True)
                (report or logger.warning)(f"Removed torn {path.name}")

    def summary(self, record: dict[str, Any]) -> dict[str, Any]:
        """The short form the job list shows."""
        params = record.get("params") if isinstance(record.get("params"), dict) else {}
        progress = record.get("progress") if isinstance(record.get("progress"), dict) else {}
        # Weights models/loading.py can load (an adapter, a full model, a checkpoint; a torn one is found out
        # when loaded): a few stat calls, as the job list asks for every job at each poll.
        folder = self.job_dir(record["id"])
        has_weights = ((folder / "adapter" / "adapter_config.json").is_file()
                       or (folder / "model" / "config.json").is_file()
                       or any(p.is_dir() for p in (folder / "checkpoints").glob("checkpoint-*")))
        return json_safe({
            "id": record["id"],
            "display_name": record.get("display_name"),
            "state": record.get("state"),
            "base_model": params.get("base_model"),
            "create_time": record.get("create_time"),
            "start_time": record.get("start_time"),
            "end_time": record.get("end_time"),
            "progress": progress,
            "queue_position": record.get("queue_position") if record.get("state") == JobState.QUEUED
            else None,
            "error": record.get("error"),
            # the checkpoint the user made the job's model (jobs/choice.py), for the job list's note
            "chosen_checkpoint": (record.get("chosen_checkpoint") or {}).get("step"),
            # which weights the model is, e.g. "Stopped early at step 104; model = checkpoint 65 (macro F1 0.81)"
            "kept": (kept_model(record) or {}).get("text"),
            # the end-of-job report's one line (training/evaluate_after.py), e.g. "macro F1 0.29 -> 0.84, ..."
            "headline": (record.get("evaluation") or {}).get("headline"),
            # weights to load (an adapter, a full model, or a checkpoint): a cancelled job's Test and Export
            "has_checkpoint": has_weights,
            **({"unreadable": True} if record.get("unreadable") else {}),
        })


def _metrics_row(raw: bytes) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    candidates = [0]
    # A line written after a torn one by an older version: the row starts at a later '{'.
    candidates += [m.start() for m in re.finditer(r'\{"', text) if m.start() > 0][:8]
    for start in candidates:
        try:
            row = loads(text[start:])
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and not isinstance(row["step"], bool):
            return row
        return None
    return None
