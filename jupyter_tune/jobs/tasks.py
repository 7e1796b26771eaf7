"""Agent tasks: the operations an AI agent starts through the server's tools (server/mcp_tools.py) that need a
model, and so torch, which the server never imports: starting a job (jt.tune's checks), evaluating, exporting.

Each task is a record in the store, ``<root>/tasks/<task_id>/task.json`` (the RecordStore of jobs/records.py:
atomic writes, per-record locks), run by its own process, ``python -m jupyter_tune.api.task_worker
<task folder>``, started in a new session like a job's (jobs/queue.spawn_worker), its output in the task's
``log.txt``. The worker reads ``request``, writes ``state`` (RUNNING, then SUCCEEDED or FAILED) and ``result``
or ``error``; whoever started it polls the record. A task whose process died while RUNNING reads FAILED with
the reason and the last log lines (`assess`), as a job does.

Torch-free: the server imports it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from .records import RecordNotFoundError, RecordStore, now_iso, process_alive, watch_child
from .states import JobState

KINDS = ("tune", "evaluate", "export")
# A task whose process never registered within this time is reported FAILED.
_START_GRACE_S = 120.0
WORKER_MODULE = "jupyter_tune.api.task_worker"
LOG = "log.txt"


class TaskNotFoundError(RecordNotFoundError):
    pass


class InvalidTaskIdError(ValueError):
    pass


class TaskStore(RecordStore):
    """``<root>/tasks/<task_id>/task.json``, beside the job store's ``jobs/`` (the same root)."""

    kind, subdir, noun, lock_subdir = "task", "tasks", "agent task", "tasks"
    not_found_error, invalid_id_error = TaskNotFoundError, InvalidTaskIdError

    def check(self, record: dict[str, Any]) -> str | None:
        if record.get("state") not in (JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED):
            return f"task.json has no valid state (found {record.get('state')!r})"
        if record.get("kind") not in KINDS:
            return f"task.json has no valid kind (found {record.get('kind')!r})"
        return self.check_shapes(record, (("request", dict), ("result", dict), ("error", dict)))

    def new_task(self, kind: str, request: dict[str, Any], cwd: str | os.PathLike,
                 job_id: str | None = None) -> str:
        """Create a RUNNING task (its process not started yet: `spawn`); returns its id."""
        assert kind in KINDS, kind
        task_id = f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        self.create(task_id, {"kind": kind, "state": JobState.RUNNING, "job_id": job_id, "request": request,
                              "cwd": str(cwd), "create_time": now_iso(), "create_unix": time.time(),
                              "end_time": None, "pid": None, "result": None, "error": None}, {LOG: ""})
        return task_id

    def read(self, task_id: str) -> dict[str, Any]:
        """task.json as readers see it: FAILED with the reason if its process died (nothing written)."""
        return self.assess(self.read_raw(task_id))

    def list(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Every readable task (those of `job_id` alone if given), newest first."""
        out = []
        for task_id in self.ids():
            try:
                record = self.read(task_id)
            except (OSError, ValueError, RecordNotFoundError):
                continue
            if job_id is None or record.get("job_id") == job_id:
                out.append(record)
        return sorted(out, key=lambda r: (r.get("create_unix") or 0.0, r["id"]), reverse=True)

    def finish(self, task_id: str, *, result: dict[str, Any] | None = None,
               error: dict[str, Any] | None = None) -> dict[str, Any]:
        """The worker's last write: SUCCEEDED with `result`, or FAILED with `error`."""
        state = JobState.FAILED if error is not None else JobState.SUCCEEDED
        return self.update(task_id, state=state, result=result, error=error, end_time=now_iso())

    def log_tail(self, task_id: str, n: int = 20) -> str:
        try:
            with open(self.record_dir(task_id) / LOG, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64_000))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]  # a progress bar's last state
        return "\n".join([line for line in lines if line.strip()][-n:])

    # -- a task whose process died --
    def _died(self, record: dict[str, Any]) -> bool:
        if record.get("state") != JobState.RUNNING:
            return False
        pid = record.get("pid")
        if pid is None:
            created = record.get("create_unix")
            return isinstance(created, (int, float)) and time.time() - created > _START_GRACE_S
        return not process_alive(pid, record.get("pid_create_time"))

    def _death_changes(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("pid") is None:
            message = "The task's process never started."
        else:
            tail = self.log_tail(record["id"], 8)
            message = (f"The task's process (pid {record['pid']}) ended without a result: it was killed (for "
                       "example out of memory) or crashed." + (f"\nLast log lines:\n{tail}" if tail else ""))
        return {"state": JobState.FAILED, "error": {"message": message, "reason": "ProcessDied"},
                "end_time": now_iso()}


def spawn(store: TaskStore, task_id: str, job_store_root: str | os.PathLike) -> int:
    """Start the task's process (cwd: the task's ``cwd``, where relative paths resolve), as
    jobs/queue.spawn_worker starts a job's; returns its pid. A start that fails leaves the task FAILED."""

    record = store.read_raw(task_id)
    folder = store.record_dir(task_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1", JUPYTER_TUNE_HOME=str(job_store_root),
               TOKENIZERS_PARALLELISM="false")
    try:
        with open(folder / LOG, "ab") as log:
            # A new session: the task outlives the request that started it and ignores the server's signals.
            proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(folder)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True, cwd=record.get("cwd") or None)
    except OSError as e:
        store.finish(task_id, error={"message": f"The task's process could not be started: {e}",
                                     "reason": type(e).__name__})
        raise
    store.update(task_id, pid=proc.pid, pid_create_time=watch_child(proc, task_id))
    return proc.pid


def task_summary(record: dict[str, Any]) -> dict[str, Any]:
    """What an agent is told about a task."""
    out = {k: record.get(k) for k in ("id", "kind", "state", "job_id", "create_time", "end_time")}
    out["task_id"] = out.pop("id")
    if record.get("result") is not None:
        out["result"] = record["result"]
    if record.get("error") is not None:
        out["error"] = record["error"]
    return out
