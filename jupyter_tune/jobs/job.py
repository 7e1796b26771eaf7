"""TuningJob: a handle on one job in the store, usable from any process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from .queue import kick
from .states import JobState
from .store import CorruptJobError, JobStore, process_alive


class TuningJob:
    """A tuning job in the store. Cheap to create; every property reads the store afresh."""

    def __init__(self, job_id: str, store: JobStore | None = None):
        self.store = store or JobStore()
        self.store.read(job_id)  # raises JobNotFoundError / InvalidJobIdError
        self.id = job_id

    def __repr__(self) -> str:
        return f"<TuningJob {self.id} {self.state.value}>"

    # -- state --
    @property
    def record(self) -> dict[str, Any]:
        """job.json as a dict (a dead job process is reported FAILED here)."""
        return self.store.read(self.id)

    @property
    def name(self) -> str:
        return self.record.get("display_name") or self.id

    @property
    def state(self) -> JobState:
        return JobState(self.record["state"])

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, while JOB_STATE_QUEUED; else None."""
        r = self.record
        return r.get("queue_position") if r.get("state") == JobState.QUEUED.value else None

    @property
    def error(self) -> str | None:
        err = self.record.get("error")
        return err.get("message") if isinstance(err, dict) else err

    @property
    def dir(self) -> Path:
        return self.store.job_dir(self.id)

    @property
    def adapter_path(self) -> Path:
        return self.dir / "adapter"

    @property
    def params(self) -> dict[str, Any]:
        return self.record.get("params", {})

    @property
    def base_model(self) -> str:
        return self.params.get("base_model")

    @property
    def metrics(self):
        """One row per logged step: train metrics, plus eval metrics at the steps they were computed."""
        import pandas as pd

        rows = self.store.read_metrics(self.id)
        if not rows:
            return pd.DataFrame(columns=["step", "epoch", "train_total_loss"])
        df = pd.DataFrame(rows)
        # Train and eval lines of the same step are merged into one row.
        return df.groupby("step", as_index=False, sort=True).first()

    @property
    def dataset_stats(self) -> dict[str, Any] | None:
        return self.store.read_dataset_stats(self.id)

    def log(self, n: int = 50) -> str:
        return self.store.log_tail(self.id, n)

    # -- control --
    def wait(self, timeout: float | None = None, poll: float = 0.5) -> JobState:
        """Block until the job reaches a final state; returns it. Raises TimeoutError after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state
            if state.is_final:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Job {self.id} still {state.value} after {timeout} s")
            time.sleep(poll)

    def cancel(self) -> JobState:
        """Ask the job to stop. It saves its latest adapter and checkpoint, then reads CANCELLED.
        A queued job is CANCELLED at once and never starts.

        Works in every state: a job with no process yet is CANCELLED at once; a running one finds
        CANCELLING in job.json (polled, no signal needed) and SIGUSR1 only makes it notice sooner.
        """
        try:
            state, pid = self.store.request_cancel(self.id)
        except CorruptJobError:
            return self.state  # an unreadable job reads FAILED; nothing runs to cancel
        if state is JobState.CANCELLED:  # a queued job (or one with no process): the queue moves on
            kick(self.store)
        if pid is not None and hasattr(signal, "SIGUSR1"):
            try:
                os.kill(pid, signal.SIGUSR1)
            except OSError:
                pass
        return self.state

    def export(self, dest, format: str = "merged", **options):
        """Write the tuned model to ``dest`` ("merged", "adapter" or "gguf") and check it answers as this job's
        model does; returns the ParityReport. See ``jt.export`` for the options."""
        from ..export import export

        return export(self, dest, format=format, **options)

    def view(self):
        """The ipywidgets view: Supervise / Dataset / Details / Test."""
        from ..widgets import JobView

        return JobView(self)

    def _repr_html_(self) -> str:
        r = self.record
        return (f"<b>TuningJob</b> <code>{self.id}</code> &mdash; {r.get('state')} "
                f"(base model {self.base_model}); <code>job.view()</code> shows it live.")


def get_job(job_id: str) -> TuningJob:
    return TuningJob(job_id)


def list_jobs() -> list[TuningJob]:
    """Every job, newest first; an unreadable job folder is listed as FAILED with the reason."""
    store = JobStore()
    jobs = []
    for r in store.list():
        try:
            jobs.append(TuningJob(r["id"], store))
        except KeyError:  # JobNotFoundError: deleted while we listed
            continue
    return jobs


def delete_job(job_id: str) -> None:
    """Delete a job and its files. A running job is cancelled first (it must stop writing)."""
    job = TuningJob(job_id)
    if job.state.is_active:
        job.cancel()
        try:
            job.wait(timeout=30)
        except TimeoutError:
            pid = job.record.get("pid")
            if pid and process_alive(pid, job.record.get("pid_create_time")):
                os.kill(pid, signal.SIGKILL)
    job.store.delete(job_id)
    kick(job.store)  # the jobs queued behind it move up
