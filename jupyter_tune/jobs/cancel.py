"""Cancel requests as a job process sees them, from its first line to its last.

Two ways in, so cancel works with and without signals (Windows has no SIGUSR1):
- job.json reading CANCELLING, polled by a thread once a second;
- SIGUSR1 or SIGTERM (POSIX), which only make the process notice sooner.
While the process cannot stop cleanly at a step boundary (loading the model, evaluating), a request
raises JobCancelled in the main thread; while it trains it sets a flag that the Trainer callback reads
at the end of each step, so training stops with a checkpoint and an adapter.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
from collections.abc import Iterator

from .states import JobState
from .store import JobStore


class JobCancelled(BaseException):  # noqa: N818 - like KeyboardInterrupt: no `except Exception` stops it
    """Raised in the job process's main thread to abandon the current phase."""


class CancelWatch:
    def __init__(self, store: JobStore, job_id: str, poll_seconds: float = 1.0, interrupt: bool = True):
        self.store, self.job_id, self.poll_seconds = store, job_id, poll_seconds
        # False for a rank of a distributed job: it must never leave its group alone mid-collective, so a
        # request only sets the flag that the ranks agree on at a step end (callbacks.CancelCallback).
        self.interrupt = interrupt
        self.requested = threading.Event()
        self._interruptible = False
        self._stop = threading.Event()

    def install_signals(self) -> None:
        """First thing in the process: from here on a cancel signal never kills it."""
        for name in ("SIGUSR1", "SIGTERM", "SIGINT"):  # SIGINT: the polling thread's interrupt_main
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self._on_signal)

    def start_polling(self) -> None:
        threading.Thread(target=self._poll, daemon=True, name="cancel-watch").start()

    def stop(self) -> None:
        self._stop.set()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A request inside this block raises JobCancelled at once (nothing to save yet)."""
        self._interruptible = self.interrupt
        try:
            if self.requested.is_set():
                raise JobCancelled
            yield
        finally:
            self._interruptible = False

    def check(self) -> None:
        if self.interrupt and self.requested.is_set():
            raise JobCancelled

    def _request(self) -> None:
        self.requested.set()

    def _on_signal(self, signum, frame) -> None:
        self._request()
        if self._interruptible:
            raise JobCancelled

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            if self.requested.is_set():
                return
            try:
                state = self.store.read_raw(self.job_id).get("state")
            except (OSError, ValueError, KeyError):
                continue  # a transient read problem is not a cancel
            if state == JobState.CANCELLING:
                self._request()
                if self._interruptible:
                    _thread.interrupt_main(signal.SIGINT)  # runs _on_signal in the main thread
                return
