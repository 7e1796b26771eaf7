"""TuningJob: a handle on one job in the store, usable from any process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from .states import JobState
from .store import JobStore, atomic_write_json, now_iso, process_alive


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
        """Ask the job to stop. It saves its latest adapter and checkpoint, then reads CANCELLED."""
        with self.store.lock(self.id):
            record = self.store.read_raw(self.id)
            state = JobState(record["state"])
            if state.is_final or state is JobState.CANCELLING:
                return state
            alive = process_alive(record.get("pid"), record.get("pid_create_time"))
            if alive:
                record.update(state=JobState.CANCELLING.value, cancel_requested_time=now_iso())
            else:
                record.update(state=JobState.CANCELLED.value, end_time=now_iso())
            record["update_time"] = now_iso()
            atomic_write_json(self.dir / "job.json", record)
        if alive:
            # SIGUSR1 wakes a job still loading its model; the training loop polls the state anyway.
            try:
                os.kill(record["pid"], signal.SIGUSR1)
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
    store = JobStore()
    return [TuningJob(r["id"], store) for r in store.list()]


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
