"""The worker process of a python grader given as source (graders/python.py).

One process per grader, started with multiprocessing's *spawn* method (never fork: the job process holds
torch's threads, which a forked child would inherit in an unknown state), kept from row to row (GRPO grades
every step) and fed one (answer, row) at a time over a pipe. The parent waits ``time_limit`` seconds for each
score; past it the process is killed and a new one is started at once, so a grader that hangs leaves nothing
running. The process stops when the grader is closed or garbage-collected, at the parent's exit, and on its
own when the parent dies (it watches the parent's sentinel), so none is left behind.

A spawned process normally imports the parent's main module first (a script run again as ``__mp_main__``):
the worker needs nothing from it, and a script without ``if __name__ == "__main__":`` would run again in the
worker (loading models, starting jobs), so the worker's start leaves the main module out (``_spawn``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import weakref

from jupyter_tune.graders.base import GraderError, GraderTimeout, check_score, describe

# Seconds a new worker process may take to start and run the source's top level (its imports).
START_TIMEOUT = 60.0

_SPAWNING = threading.local()  # set while this thread starts a worker: its preparation leaves __main__ out


def _install_main_skip() -> None:
    """Wrap multiprocessing.spawn.get_preparation_data (once) so that a worker started by ``_spawn`` does not
    import the parent's main module; every other process is prepared exactly as before (the flag is
    per-thread and set only around a worker's start)."""
    from multiprocessing import spawn

    original = getattr(spawn, "get_preparation_data", None)
    if original is None or getattr(original, "jupyter_tune_wrapped", False):
        return

    def get_preparation_data(name):
        data = original(name)
        if getattr(_SPAWNING, "active", False):
            data.pop("init_main_from_name", None)
            data.pop("init_main_from_path", None)
        return data

    get_preparation_data.jupyter_tune_wrapped = True
    spawn.get_preparation_data = get_preparation_data


def _spawn(proc) -> None:
    """Start a spawn-context process without the parent's main module (see the module's docstring)."""
    _install_main_skip()
    _SPAWNING.active = True
    try:
        proc.start()
    finally:
        _SPAWNING.active = False


def serve(conn, source: str, name: str, loader) -> None:
    """The worker's loop (in the spawned process): run the source once with ``loader`` (python.load_source,
    passed by reference so that this module does not import python.py, which imports it), then answer each
    (sample, item) with ("ok", score) or ("error", "Type: message"); None or a closed pipe ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops this process
    parent = multiprocessing.parent_process()
    if parent is not None:  # the parent gone (even killed): end at once, whatever grade() is doing
        threading.Thread(target=lambda: (parent.join(), os._exit(0)), daemon=True,
                         name="jupyter-tune-grader-watch").start()
    try:
        fn = loader(source, name)
        reply = ("ready", None)
    except Exception as exc:  # noqa: BLE001 - load_source's ValueErrors say what is wrong
        fn, reply = None, ("error", str(exc) if isinstance(exc, ValueError) else describe(exc))
    try:
        conn.send(reply)
    except (OSError, ValueError):  # the parent no longer waits (the worker was stopped while it started)
        return
    while fn is not None:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        sample, item = request
        try:
            reply = ("ok", check_score(fn(sample, item)))
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the row's errors too
            reply = ("error", describe(exc))
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


def stop_process(proc, conn, graceful: bool = True) -> None:
    """End a worker process: asked to (an idle one leaves at once), else killed; always reaped."""
    if graceful:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
    try:
        conn.close()
    except OSError:
        pass
    try:
        proc.join(0.5 if graceful else 0)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        if not proc.is_alive():
            proc.close()  # its pipe to the child's sentinel
    except (ValueError, OSError, AssertionError):  # already closed, or not ours to join
        pass


class SourceWorker:
    """A python grader's source, run in its own spawned process (started at the first call)."""

    def __init__(self, source: str, name: str, loader):
        self.source, self.name, self.loader = source, name, loader
        self.lock = threading.Lock()
        self.proc = self.conn = self.stopper = None
        self.ready = False
        self.pending = False  # a row was sent and its answer not read (the caller was interrupted)
        self.broken: str | None = None  # the source failed when run: every further row gets this error
        self.starts = 0  # processes started: the first and its replacements

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=serve, args=(theirs, self.source, self.name, self.loader), daemon=True,
                           name=f"jupyter-tune-grader {self.name}")
        _spawn(proc)
        theirs.close()
        self.proc, self.conn, self.ready = proc, ours, False
        # garbage collection of this object, or the interpreter's exit, stops the process
        self.stopper = weakref.finalize(self, stop_process, proc, ours)
        self.starts += 1

    def _discard(self, graceful: bool) -> int | None:
        """Stop the current process; its exit code (None if it was killed while running)."""
        code = None
        if self.stopper is not None:
            self.stopper.detach()
            proc = self.proc
            stop_process(proc, self.conn, graceful)
            try:
                code = proc.exitcode
            except ValueError:
                code = None
        self.proc = self.conn = self.stopper = None
        self.ready = self.pending = False
        return code

    def _replace(self) -> None:
        """Kill the process and start its successor now (it starts while the caller goes on)."""
        self._discard(graceful=False)
        self._start()

    def _fail_start(self, message: str) -> GraderError:
        self._discard(graceful=False)
        self.broken = message
        return GraderError(message)

    def _await_ready(self) -> None:
        if not self.conn.poll(START_TIMEOUT):
            raise self._fail_start(f"its worker process did not start within {START_TIMEOUT:g} s (does the "
                                   "source's top level hang?)")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(1)
            raise self._fail_start(f"its worker process ended before it was ready (exit code "
                                   f"{self.proc.exitcode}; its output says why)") from None
        if status != "ready":
            raise self._fail_start(str(payload))
        self.ready = True

    def call(self, sample: str, item: dict, time_limit: float):
        """The score of one answer, or GraderTimeout / GraderError."""
        with self.lock:
            if self.broken:
                raise GraderError(self.broken)
            if self.pending:  # an earlier call was interrupted (Ctrl-C) before its answer came: start afresh
                self._discard(graceful=False)
            if self.proc is None:
                self._start()
            if not self.ready:
                self._await_ready()
            try:
                self.conn.send((sample, item))
                self.pending = True
            except (OSError, EOFError) as e:
                self._replace()
                raise GraderError(f"its worker process was gone ({type(e).__name__}); a new one takes the next "
                                  "row") from None
            except Exception as e:  # noqa: BLE001 - the row does not pickle: nothing was written to the pipe
                raise GraderError(f"the row could not be sent to its worker process: {describe(e)}") from None
            if not self.conn.poll(time_limit):
                self._replace()
                raise GraderTimeout(f"ran past its time limit of {time_limit:g} s (its worker process was stopped "
                                    "and replaced)")
            try:
                status, payload = self.conn.recv()
                self.pending = False
            except (EOFError, OSError):
                self.proc.join(1)
                code = self.proc.exitcode
                self._replace()
                raise GraderError(f"its worker process ended while grading (exit code {code}); a new one takes "
                                  "the next row") from None
            if status == "ok":
                return payload
            raise GraderError(payload)

    def close(self) -> None:
        """Stop the process (a later call starts a new one)."""
        with self.lock:
            self._discard(graceful=True)
