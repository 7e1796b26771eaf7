"""The fuzzer's invariant: a call either succeeds or is refused cleanly, and a refusal changes nothing.

Clean refusals:
- ``ParameterError`` whose message names the argument: every argument drawn invalid (declared.Arg.valid is
  False), or, when all were valid (a rule between arguments), at least one of those given;
- one of the project's own errors (a class defined in jupyter_tune: DatasetError, EvaluationError,
  CheckpointError, JobNotFoundError, ModelNotFoundError, ...) when every argument was valid and the data, model
  or job is not;
- a plain ValueError, RuntimeError or OSError raised by a ``raise`` statement in jupyter_tune's own code (a
  deliberate refusal: export's ``dtype=`` check, the GGUF converter's failure on a model it cannot convert),
  again only when every argument was valid.

Anything else (TypeError, KeyError, AttributeError, IndexError, a numpy, sklearn, torch or Optuna error, a
ValueError raised inside a library, an error raised for a call with an invalid argument that names none of
them) fails the example with the traceback.
"""

from __future__ import annotations

import contextlib
import linecache
import re
import signal
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hypothesis import event

from jupyter_tune.params import ParameterError
from tests.support.store_digest import folder_digest

from .declared import Arg, invalid_names

PACKAGE = str(Path(__import__("jupyter_tune").__file__).parent)


def names(message: str, name: str) -> bool:
    """Whether an error message names an argument (as a word: ``test_size:``, ``'zz'``, ``graders[0]``)."""
    if name == "":
        return "''" in message or '""' in message
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None


def _raise_site(exc: BaseException) -> tuple[str, int, str]:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "", 0, ""
    file, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
    return file, line, linecache.getline(file, line)


def deliberate(exc: BaseException) -> bool:
    """Raised by a ``raise`` statement in jupyter_tune's code (not by a library, nor a raw builtin)."""
    file, line, text = _raise_site(exc)
    if not file.startswith(PACKAGE):
        return False
    # a raise statement may span lines: the reported line or one of the three above it starts it
    lines = [linecache.getline(file, n).strip() for n in range(max(1, line - 3), line + 1)]
    return any(t.startswith("raise ") for t in lines)


def project_error(exc: BaseException) -> bool:
    """One of the project's own exception classes (DatasetError, CheckpointError, ...)."""
    return any(c.__module__.startswith("jupyter_tune") for c in type(exc).__mro__[:-2])


class Violation(AssertionError):
    """The invariant broken by one call: what was called, with which arguments, what came out, and why."""

    def __init__(self, what: str, args: list[Arg], exc: BaseException | None, why: str):
        self.what, self.args_, self.exc, self.why = what, list(args), exc, why
        shown = "\n  ".join(repr(a) for a in args)
        tb = "".join(traceback.format_exception(exc)) if exc is not None else ""
        super().__init__(f"{what}(\n  {shown}\n): {why}\n{tb}")


def check_refusal(what: str, args: list[Arg], exc: BaseException, declared: Iterable[str] = (),
                  every: bool = False) -> None:
    """Raise Violation unless ``exc`` is a clean refusal of a call with ``args`` (see the module's docstring).
    ``every``: the refusal must name every invalid argument (the gate lists every problem)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise exc
    message = str(exc)
    bad = invalid_names(args)
    if bad:
        if not isinstance(exc, ParameterError):
            raise Violation(what, args, exc, f"invalid argument(s) {bad} not refused by a ParameterError")
        if not any(names(message, n) for n in bad):
            raise Violation(what, args, exc, f"the refusal names none of {bad}")
        unknown = [n for n in bad if n not in set(declared)]
        missing = [a.name for a in args if not a.valid and not a.late and not names(message, a.name)]
        if every and not unknown and missing:  # an unknown keyword fails the binding first, alone
            raise Violation(what, args, exc, f"the refusal does not name {missing} (every problem is listed)")
        return
    if isinstance(exc, ParameterError):  # a rule between valid arguments: it names one of them
        if not any(names(message, n) for n in {a.name for a in args} | set(declared)):
            raise Violation(what, args, exc, "the refusal names no argument")
        return
    if project_error(exc) and isinstance(exc, (ValueError, LookupError, OSError, RuntimeError, MemoryError)):
        if not message.strip():
            raise Violation(what, args, exc, "a project error with no message")
        return
    if type(exc) in (ValueError, RuntimeError, FileExistsError, FileNotFoundError, NotADirectoryError,
                     IsADirectoryError, PermissionError) and deliberate(exc):
        if not message.strip():
            raise Violation(what, args, exc, "a refusal with no message")
        return
    raise Violation(what, args, exc, f"raw {type(exc).__name__}")


class Accepted(BaseException):
    """Raised by a test's wrapper when a call succeeded with a result the engine would refuse (a cell, a
    stored parameter set): ``what`` it made, the problems, and the result shown."""

    def __init__(self, what: str, problems: list[str], shown: str = ""):
        super().__init__("; ".join(problems))
        self.what, self.problems, self.shown = what, problems, shown


class Hung(BaseException):
    """A call ran past the fuzzer's time limit (a BaseException: no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise Hung in the main thread after ``seconds`` (a refusal must come before anything long starts)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise Hung(f"{what} ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def call(what: str, fn: Callable[..., Any], args: list[Arg], *, store: Path | None, declared: Iterable[str],
         changes_store: bool = False, positional: tuple = (), timeout: float | None = 60.0, every: bool = False
         ) -> tuple[Any, BaseException | None]:
    """Call ``fn(*positional, **args)`` and check the invariant; returns (result, refusal). A refusal must leave
    ``store`` as it was; so must a success unless ``changes_store``. A call past ``timeout`` seconds fails.
    A violation that known.py lists (a gap someone else is closing) is recorded as an event, not failed."""
    declared = list(declared)
    try:
        return _call(what, fn, args, store=store, declared=declared, changes_store=changes_store,
                     positional=positional, timeout=timeout, every=every)
    except Violation as v:
        from .known import known_gap

        gap = known_gap(v)
        if gap is None:
            raise
        event(f"known gap: {gap}")
        return None, v.exc or v


def _call(what, fn, args, *, store, declared, changes_store, positional, timeout, every):
    before = folder_digest(store) if store is not None and store.exists() else None
    kwargs = {a.name: a.value for a in args}
    try:
        with time_limit(timeout, what):
            result = fn(*positional, **kwargs)
    except Hung as exc:
        raise Violation(what, args, exc, "hung") from None
    except Accepted as exc:  # the call made something that the engine would refuse
        raise Violation(what, args, None, f"{exc.what} that the engine refuses: {exc}\n{exc.shown}") from None
    except Exception as exc:  # noqa: BLE001 - every exception is judged
        event(f"refused: {type(exc).__name__}")
        check_refusal(what, args, exc, declared, every)
        _same_store(what, args, store, before, exc)
        return None, exc
    event("succeeded")
    bad = invalid_names(args)
    if bad:
        raise Violation(what, args, None, f"accepted the invalid argument(s) {bad}")
    if not changes_store:
        _same_store(what, args, store, before, None)
    return result, None


def _same_store(what: str, args: list[Arg], store: Path | None, before: str | None,
                exc: BaseException | None) -> None:
    if store is None:
        return
    after = folder_digest(store) if store.exists() else None
    if after != before:
        raise Violation(what, args, exc, f"the job store {store} changed")
