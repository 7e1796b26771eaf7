"""The job queue: machine slots, and starting queued jobs in order when one frees, with no daemon.

The queue is nothing but the job.json files: QUEUED jobs in the order they were queued (``queued_unix``,
then creation). Whoever may have freed a slot calls `dispatch`: ``jt.tune`` / ``jt.resume``, a job
process as it exits, a cancel or delete, and the store's reconcile step (jt.list_jobs, jt.get_job, a
waiting kernel, the server's periodic task) when it finds a dead job or a queued one. `dispatch` runs under a store-wide file lock and claims a
job (QUEUED -> PENDING under the job's own lock) before starting its process, so each queued job starts
exactly once whoever races. Lock order: the store-wide lock, then a job's lock; never the reverse.

Torch-free: the server imports it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .records import now_iso, watch_child
from .states import JobState
from .store import JobStore, validate_job_id

SLOTS_ENV = "JUPYTER_TUNE_SLOTS"
# States that hold a slot (a PENDING job's process is starting).
_HOLDING = frozenset({JobState.PENDING, JobState.RUNNING, JobState.CANCELLING})
_local = threading.local()
_RANK_VARS = frozenset({"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                        "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT",
                        "JUPYTER_TUNE_SUPERVISOR_PID"})

Spawn = Callable[[JobStore, str, bool], None]


@functools.cache
def gpu_count() -> int:
    """Visible CUDA GPUs, without importing torch (the server must not): CUDA_VISIBLE_DEVICES, else
    ``nvidia-smi -L``, else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip()]
        return 0 if not ids or ids[0].strip() == "-1" else len(ids)
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def machine_slots() -> int:
    """How many job processes may run at once: $JUPYTER_TUNE_SLOTS, else one per GPU, one on CPU."""
    value = os.environ.get(SLOTS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            pass  # a typo must not stop every job: fall back to the default
    return max(1, gpu_count())


def slots_needed(record: dict[str, Any], total: int) -> int:
    """A distributed job holds one slot per process (all of them at most, so it can always start)."""
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    n = params.get("num_processes")
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:  # None / 0: auto
        n = max(1, gpu_count()) if n is not None else 1
    return max(1, min(n, total))


@contextlib.contextmanager
def queue_lock(store: JobStore) -> Iterator[None]:
    """The store-wide lock. Re-entrant in one thread (a reader inside dispatch must not deadlock)."""
    from filelock import FileLock

    if getattr(_local, "depth", 0):
        _local.depth += 1
        try:
            yield
        finally:
            _local.depth -= 1
        return
    store.root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.root / ".queue.lock")):
        _local.depth = 1
        try:
            yield
        finally:
            _local.depth = 0


def dispatching() -> bool:
    return bool(getattr(_local, "depth", 0))


def _order(record: dict[str, Any]) -> tuple:
    created = record.get("create_unix") or 0.0
    return (record.get("queued_unix") or created, created, record["id"])


def dispatch(store: JobStore, spawn: Spawn | None = None) -> list[str]:
    """Start queued jobs, first queued first, while slots are free; renumber the rest's queue_position.

    Returns the ids started. Strictly in order: a job that needs more slots than are free waits, and
    so do the jobs behind it.
    """
    spawn = spawn or spawn_worker
    started = []
    with queue_lock(store):
        store.record_deaths()  # the dispatcher reconciles: a dead job's slots are free again
        records = store.list()
        total = machine_slots()
        used = sum(slots_needed(r, total) for r in records if r.get("state") in _HOLDING)
        queued = sorted((r for r in records if r.get("state") == JobState.QUEUED), key=_order)
        waiting = []
        for record in queued:
            need = slots_needed(record, total)
            if waiting or used + need > total:
                waiting.append(record)
                continue
            claimed = store.claim_queued(record["id"])
            if claimed is None:
                continue  # cancelled or deleted meanwhile
            used += need
            spawn(store, record["id"], bool(claimed.get("resume_count")))
            started.append(record["id"])
        for position, record in enumerate(waiting, start=1):
            if record.get("queue_position") != position:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    store.set_queue_position(record["id"], position)
    return started


def spawn_worker(store: JobStore, job_id: str, resume: bool) -> None:
    """Start the job's process (a claimed, PENDING job) in a new session, its output into log.txt."""

    job_dir = store.job_dir(job_id)
    params = store.read_raw(job_id).get("params") or {}
    # Several processes: a supervising process runs torchrun and is the job's recorded process.
    module = "distributed" if needs_torchrun(params) else "worker"
    cmd = [sys.executable, "-m", f"jupyter_tune.training.{module}", str(job_dir)] + (["--resume"] if resume else [])
    # A job ending under torchrun starts the next: its rank variables must not leak into that one.
    env = {k: v for k, v in os.environ.items() if k not in _RANK_VARS and not k.startswith("TORCHELASTIC_")}
    env.update(PYTHONUNBUFFERED="1", JUPYTER_TUNE_HOME=str(store.root), TOKENIZERS_PARALLELISM="false")
    try:
        with open(job_dir / "log.txt", "ab") as logf:
            # A new session: the job outlives a kernel restart and ignores the kernel's interrupts.
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True, cwd=str(job_dir))
    except OSError as e:
        store.update(job_id, state=JobState.FAILED, end_time=now_iso(),
                     error={"message": f"The job process could not be started: {e}"})
        raise
    store.update(job_id, pid=proc.pid, pid_create_time=watch_child(proc, job_id))


def resolve_num_processes(n: int | None) -> int:
    """0 / None ("auto"): one per visible GPU, 1 on CPU."""
    return n if n else max(1, gpu_count())


def needs_torchrun(params: dict) -> bool:
    """Whether a job runs as several processes (torchrun, training/distributed.py) rather than one."""
    return resolve_num_processes(params.get("num_processes")) > 1 or int(params.get("nnodes") or 1) > 1


def kick(store: JobStore) -> None:
    """A reader saw a queued job or a dead one: start what can start (never raises)."""
    if dispatching():
        return
    try:
        dispatch(store)
    except Exception as e:  # noqa: BLE001 - reading must not fail because a start did
        import logging

        logging.getLogger(__name__).warning("could not start queued jobs: %s", e)


def reconcile(store: JobStore, job_id: str | None = None) -> list[str]:
    """The one step where reading the store leads to writing it: record the jobs (all, or `job_id`)
    whose process died as FAILED, then, if that freed a slot or a job waits in the queue, start what
    the slots allow (dispatch). Never raises for a write or a start that fails; returns the ids
    recorded FAILED.

    Called at defined points, never by `JobStore.read`: jt.list_jobs / jt.get_job / job.wait, the job
    view's poller, the queue dispatcher, and the server's periodic task (off its event loop).
    """
    if job_id is not None:
        validate_job_id(job_id)
    recorded, queued = store.record_deaths_seen(job_id)
    if recorded or queued:
        kick(store)
    return recorded
