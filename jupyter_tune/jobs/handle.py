"""JobHandle: one job in the store as any process sees it (kernel, server, widgets, export), and the
cancel and delete that the kernel and the server share.

Torch-free, and beneath everything that takes a job: models, widgets and export accept a JobHandle, and
the public ``TuningJob`` (api/job.py) adds what needs the layers above (``view()``, ``export()``).
No signals: a cancel is a state in job.json that the job process polls (jobs/cancel.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..params.arguments import UseCheckpointArgs
from ..params.gate import checked
from .queue import kick, reconcile
from .states import JobState
from .store import CorruptJobError, JobStore, process_alive


class JobHandle:
    """A job in the store. Cheap to create; every property reads the store afresh, with no side effect
    (a job whose process died reads FAILED; ``store.reconcile`` records it)."""

    def __init__(self, job_id: str, store: JobStore | None = None):
        self.store = store or JobStore()
        self.store.read(job_id)  # raises JobNotFoundError / InvalidJobIdError
        self.id = job_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state}>"

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
        return JobState.of(self.record)

    @property
    def queue_position(self) -> int | None:
        """1 for the next job to start, while JOB_STATE_QUEUED; else None."""
        r = self.record
        return r.get("queue_position") if r.get("state") == JobState.QUEUED else None

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
    def samples(self):
        """The model's answers to a few fixed validation rows at each evaluation (``sample_prompts``): one
        row per evaluation and sampled row, with ``changed`` (differs from the previous evaluation's answer)
        and ``became`` ("right" / "wrong" when that flipped). Empty without a validation set."""
        import pandas as pd

        from .samples import COLUMNS, read_evaluations, sample_rows

        return pd.DataFrame(sample_rows(read_evaluations(self.store, self.id)), columns=COLUMNS)

    @property
    def completions(self):
        """method="grpo": the answers sampled at each step for its first prompt (and at each evaluation), one
        row per answer: step, mode ("train" / "eval"), prompt, reference, answer, reward (graders summed) and
        one column per grader. Empty for other methods."""
        import pandas as pd

        from .samples import read_completions

        rows = [{"step": line["step"], "mode": line.get("mode"), "prompt": line.get("prompt"),
                 "reference": line.get("reference"), "answer": a.get("text"), "reward": a.get("reward"),
                 **(a.get("rewards") or {})}
                for line in read_completions(self.store, self.id) for a in line["answers"]]
        return pd.DataFrame(rows, columns=None if rows else ["step", "mode", "prompt", "reference", "answer", "reward"])

    @property
    def dataset_stats(self) -> dict[str, Any] | None:
        return self.store.read_dataset_stats(self.id)

    def log(self, n: int = 50) -> str:
        return self.store.log_tail(self.id, n)

    # -- checkpoints (jobs/choice.py) --
    @property
    def checkpoints(self):
        """The kept checkpoints, one row per step (oldest first): the metrics logged at that step
        (train_total_loss, eval_total_loss, eval_macro_f1, eval_accuracy), ``best``, ``chosen``, and
        ``problem`` (why it cannot be used, None when whole), and its ``path``."""
        import pandas as pd

        from .choice import METRIC_COLUMNS, checkpoint_rows

        columns = ["step", *METRIC_COLUMNS, "best", "chosen", "problem", "path"]
        return pd.DataFrame(checkpoint_rows(self.store, self.id), columns=columns)

    @property
    def chosen_checkpoint(self) -> int | None:
        """The step of the checkpoint the user made this job's tuned model, or None (its own model)."""
        return (self.record.get("chosen_checkpoint") or {}).get("step")

    @checked(UseCheckpointArgs, name="job.use_checkpoint")
    def use_checkpoint(self, step: int | str | None = None) -> dict[str, Any] | None:
        """Make the checkpoint at `step` this job's tuned model: jt.load_model, export, the Test tab and jobs
        tuned on this one use it from now on. ``None`` (or ``"final"``) goes back to the job's own model.

        Only for a job that has ended (succeeded, cancelled or failed); its state does not change. job.json
        records the choice (``chosen_checkpoint``: step, path, by, user, time); checkpoint retention never
        deletes it. Raises CheckpointError (a ValueError) for a missing or torn checkpoint, naming the kept
        steps, and JobStateError for a job still running."""
        from .choice import choose

        return choose(self.store, self.id, step)

    # -- control --
    def wait(self, timeout: float | None = None, poll: float = 0.5) -> JobState:
        """Block until the job reaches a final state; returns it. Raises TimeoutError after `timeout`.

        Each poll reconciles the store: a dead job is recorded FAILED and the queue moves, so a waiting
        kernel keeps queued jobs starting with nobody else watching.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            reconcile(self.store, self.id)
            state = self.state
            if state.is_final:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Job {self.id} still {state} after {timeout} s")
            time.sleep(poll)

    def cancel(self) -> JobState:
        """Ask the job to stop. It saves its latest adapter and checkpoint, then reads CANCELLED.
        A queued job is CANCELLED at once and never starts."""
        return cancel_job(self.store, self.id)


def cancel_job(store: JobStore, job_id: str) -> JobState:
    """Ask a job to stop; returns its state now. Works in every state and on every platform: a job with
    no process yet is CANCELLED at once; a running one finds CANCELLING in job.json (it polls it)."""
    try:
        state = store.request_cancel(job_id)
    except CorruptJobError:
        return JobState.of(store.read(job_id))  # an unreadable job reads FAILED; nothing to cancel
    if state is JobState.CANCELLED:  # a queued job (or one with no process): the queue moves on
        kick(store)
    return JobState.of(store.read(job_id))


def delete_job(store: JobStore, job_id: str, wait_s: float = 30.0) -> None:
    """Delete a job and its files. A running job is cancelled first and waited for (it must stop
    writing); one still alive after `wait_s` is killed. Blocks: the server calls it off its event loop."""
    job = JobHandle(job_id, store)
    if job.state.is_active:
        job.cancel()
        try:
            job.wait(timeout=wait_s)
        except TimeoutError:
            record = job.record
            _kill(record.get("pid"), record.get("pid_create_time"))
    store.delete(job_id)
    kick(store)  # the jobs queued behind it move up


def _kill(pid: int | None, create_time: float | None) -> None:
    if not pid or not process_alive(pid, create_time):
        return
    import psutil

    try:
        psutil.Process(pid).kill()  # SIGKILL on POSIX, TerminateProcess on Windows
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
