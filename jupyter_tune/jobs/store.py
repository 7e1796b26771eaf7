"""The job store: one folder per job, shared by the kernel, the job processes and the server.

Layout (``$JUPYTER_TUNE_HOME`` or ``<jupyter data dir>/tune``)::

    jobs/<job_id>/job.json           spec, state, times, error, pid (replaced atomically)
    jobs/<job_id>/metrics.jsonl      one JSON line per logged step (append-only)
    jobs/<job_id>/dataset_stats.json
    jobs/<job_id>/log.txt
    jobs/<job_id>/checkpoints/       Trainer checkpoints (adapter + optimizer state)
    jobs/<job_id>/adapter/           the final PEFT adapter

Torch-free: the server imports it. Writers take a per-job file lock, so several processes can update
a job without losing each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .states import JobState

JOB_ID_RE = re.compile(r"^[a-z0-9-]{1,64}$")
# A PENDING job whose process never registered within this time is reported FAILED.
_PENDING_GRACE_S = 120.0


class InvalidJobIdError(ValueError):
    pass


class JobNotFoundError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0]) if self.args else "job not found"


def validate_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        raise InvalidJobIdError(
            f"Invalid job id {job_id!r}: job ids are 1 to 64 characters of a-z, 0-9 and '-'.")
    return job_id


def default_root() -> Path:
    env = os.environ.get("JUPYTER_TUNE_HOME")
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "tune"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "job"


def atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def process_alive(pid: int | None, create_time: float | None = None) -> bool:
    """True while process `pid` runs and is the one that was recorded (pids get reused)."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class JobStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.jobs_dir = self.root / "jobs"

    # -- paths --
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / validate_job_id(job_id)

    def exists(self, job_id: str) -> bool:
        return (self.job_dir(job_id) / "job.json").is_file()

    def new_job_id(self, display_name: str | None = None) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"{slugify(display_name or 'tuning')}-{stamp}-{secrets.token_hex(2)}"

    @contextlib.contextmanager
    def lock(self, job_id: str) -> Iterator[None]:
        path = self.job_dir(job_id) / ".lock"
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- creating --
    def create(self, job_id: str, record: dict[str, Any], files: dict[str, bytes | str] | None = None) -> Path:
        """Create a job folder with its job.json and extra files, all or nothing."""
        validate_job_id(job_id)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        final = self.jobs_dir / job_id
        if final.exists():
            raise FileExistsError(f"Job {job_id} already exists in {self.jobs_dir}")
        tmp = self.jobs_dir / f".creating-{job_id}-{secrets.token_hex(3)}"
        tmp.mkdir()
        try:
            for name, content in (files or {}).items():
                mode = "wb" if isinstance(content, bytes) else "w"
                with open(tmp / name, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
                    f.write(content)
            record = {**record, "id": job_id}
            atomic_write_json(tmp / "job.json", record)
            (tmp / "metrics.jsonl").touch()
            (tmp / "log.txt").touch()
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    # -- reading --
    def read_raw(self, job_id: str) -> dict[str, Any]:
        path = self.job_dir(job_id) / "job.json"
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            raise JobNotFoundError(f"No tuning job {job_id!r} in {self.jobs_dir}") from None

    def read(self, job_id: str) -> dict[str, Any]:
        """job.json, with a job whose process died reported (and recorded) as FAILED."""
        record = self.read_raw(job_id)
        if self._died(record):
            with self.lock(job_id):
                record = self.read_raw(job_id)
                if self._died(record):
                    reason = self._death_reason(record)
                    record.update(state=JobState.FAILED.value, error={"message": reason},
                                  end_time=now_iso(), update_time=now_iso())
                    atomic_write_json(self.job_dir(job_id) / "job.json", record)
        return record

    @staticmethod
    def _died(record: dict[str, Any]) -> bool:
        state = record.get("state")
        if state not in (JobState.PENDING.value, JobState.RUNNING.value, JobState.CANCELLING.value,
                         JobState.QUEUED.value):
            return False
        pid = record.get("pid")
        if pid is None:
            created = record.get("create_unix", time.time())
            return time.time() - created > _PENDING_GRACE_S
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

    def update(self, job_id: str, **changes: Any) -> dict[str, Any]:
        with self.lock(job_id):
            record = self.read_raw(job_id)
            record.update(changes)
            record["update_time"] = now_iso()
            atomic_write_json(self.job_dir(job_id) / "job.json", record)
            return record

    def list(self) -> list[dict[str, Any]]:
        if not self.jobs_dir.is_dir():
            return []
        out = []
        for d in self.jobs_dir.iterdir():
            if d.name.startswith(".") or not JOB_ID_RE.match(d.name) or not (d / "job.json").is_file():
                continue
            try:
                out.append(self.read(d.name))
            except (JobNotFoundError, json.JSONDecodeError, OSError):
                continue  # deleted or being written by an older client: skip, never crash the list
        out.sort(key=lambda r: r.get("create_unix", 0), reverse=True)
        return out

    def delete(self, job_id: str) -> None:
        d = self.job_dir(job_id)
        if not d.is_dir():
            raise JobNotFoundError(f"No tuning job {job_id!r} in {self.jobs_dir}")
        # Rename first so readers never see a half-deleted job.
        trash = self.jobs_dir / f".deleting-{job_id}-{secrets.token_hex(3)}"
        os.rename(d, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # -- metrics, stats, logs --
    def append_metrics(self, job_id: str, row: dict[str, Any]) -> None:
        line = json.dumps(row, default=float) + "\n"
        # One write() of a short line in append mode lands whole, even with concurrent readers.
        with open(self.job_dir(job_id) / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line)

    def read_metrics(self, job_id: str) -> list[dict[str, Any]]:
        path = self.job_dir(job_id) / "metrics.jsonl"
        rows = []
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break  # being written right now
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        except FileNotFoundError:
            pass
        return rows

    def read_dataset_stats(self, job_id: str) -> dict[str, Any] | None:
        path = self.job_dir(job_id) / "dataset_stats.json"
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def log_tail(self, job_id: str, n: int = 20) -> str:
        path = self.job_dir(job_id) / "log.txt"
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 16384))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def latest_checkpoint(self, job_id: str) -> Path | None:
        ckpts = self.job_dir(job_id) / "checkpoints"
        if not ckpts.is_dir():
            return None
        found = [(int(p.name.split("-")[-1]), p) for p in ckpts.glob("checkpoint-*")
                 if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").exists()]
        return max(found)[1] if found else None

    def summary(self, record: dict[str, Any]) -> dict[str, Any]:
        """The short form the job list shows."""
        return {
            "id": record["id"],
            "display_name": record.get("display_name"),
            "state": record.get("state"),
            "base_model": record.get("params", {}).get("base_model"),
            "create_time": record.get("create_time"),
            "start_time": record.get("start_time"),
            "end_time": record.get("end_time"),
            "progress": record.get("progress", {}),
            "error": record.get("error"),
        }
