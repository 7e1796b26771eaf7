"""The grader protocol, the checks every grader's options go through, and the safe per-row runner.

A grader scores one model answer (``sample``, a string) against one row (``item``, a dict of the row's
fields: the prompt or messages, the reference answer under ``reference``, a label under ``label``, and any
extra field the row carries) with a float in [0, 1]. ``grade_rows`` applies a grader to many rows and never
raises: an exception (SystemExit and KeyboardInterrupt raised by the grader included), a time-out, NaN or a
value outside [0, 1] scores 0 for that row and is counted and reported with the row's index.

How a grader runs (``call_grader``):

- a python grader given as source runs in a spawned worker process (graders/worker.py): one past its time
  limit is killed and replaced, so nothing keeps running;
- a grader with a ``time_limit`` whose code is a Python callable (PythonGrader(fn=...), ModelGrader's judge)
  runs in a thread: a thread cannot be stopped, so after its first time-out the grader is not called again
  while that thread still runs; the further rows score 0 with an error saying they were skipped (one
  abandoned thread per grader at most);
- the built-in graders (label_match, string_check, text_similarity) are called directly.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from jupyter_tune.params import ParameterError

# Seconds a python or model grader may take on one answer unless told otherwise.
DEFAULT_TIME_LIMIT = 10.0


@runtime_checkable
class Grader(Protocol):
    name: str
    kind: str
    pass_threshold: float

    def grade(self, sample: str, item: dict) -> float: ...

    def to_json(self) -> dict: ...


class GraderTimeout(Exception):
    """The grader ran past its time limit."""


class GraderError(Exception):
    """A grader's failure described as text: ``"<ExceptionType>: <message>"`` (the worker process's errors,
    a SystemExit or KeyboardInterrupt that the grader raised, a part of a multi grader)."""


class GraderSkipped(GraderError):
    """The grader was not called: its callable is still running past its time limit on an earlier row."""


def describe(exc: BaseException) -> str:
    """An exception as a row's error text: our own kinds as their message, others as ``Type: message``."""
    if isinstance(exc, (GraderTimeout, GraderError)):
        return str(exc)
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# -- the options' checks (every grader's constructor runs them; a bad value is a ParameterError) --

def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refuse(kind: str, option: str, value: Any, allowed: str) -> ParameterError:
    """The error for one bad option: the grader kind, the option, the value and what is allowed."""
    return ParameterError(f"{kind} grader: {option}={_short(value)}: {allowed}")


def options_checked(cls):
    """A grader class whose constructor refuses an unknown option (or one given twice) with a ParameterError
    naming it and listing the known ones, as it refuses a bad value; the dataclass's own TypeError otherwise."""
    init = cls.__init__
    signature = inspect.signature(init)
    known = [name for name in signature.parameters if name != "self"]

    kind = cls.__dataclass_fields__["kind"].default

    @functools.wraps(init)
    def __init__(obj, /, *args: Any, **kwargs: Any) -> None:  # positional-only: LabelMatch(self=1) is an option
        try:
            signature.bind(obj, *args, **kwargs)
        except TypeError as e:
            raise ParameterError(f"{kind} grader: {e}; its options: {', '.join(known)}") from None
        init(obj, *args, **kwargs)

    cls.__init__ = __init__
    return cls


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_threshold(kind: str, value: Any) -> float:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise refuse(kind, "pass_threshold", value, "expected a finite number in [0, 1] (the score a row "
                                                     "needs to pass)")
    return float(value)


def check_time_limit(kind: str, value: Any) -> float:
    if not _is_number(value) or value <= 0:
        raise refuse(kind, "time_limit", value, f"expected a finite number of seconds > 0 (default "
                                                f"{DEFAULT_TIME_LIMIT:g}); a grader past it scores the row 0")
    return float(value)


def check_name(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise refuse(kind, "name", value, "expected a non-empty str (it names the grader's scores and metrics)")
    return value


def check_flag(kind: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise refuse(kind, option, value, "expected True or False")
    return value


def check_choice(kind: str, option: str, value: Any, choices: tuple) -> str:
    if not isinstance(value, str) or value not in choices:
        raise refuse(kind, option, value, f"expected one of {', '.join(map(repr, choices))}")
    return value


_TEMPLATE = re.compile(r"\{\{\s*(item|sample)(?:\.([A-Za-z_][\w.]*))?\s*\}\}")


def check_template(kind: str, option: str, value: Any, *, optional: bool = False) -> str | None:
    """A template option: a non-empty str (``{{ item.<field> }}``, ``{{ sample.output_text }}`` or a literal)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise refuse(kind, option, value, "expected a non-empty str: a template such as '{{ item.reference }}' "
                                          "(a field of the row) or '{{ sample.output_text }}' (the answer), or a "
                                          "literal")
    for match in _TEMPLATE.finditer(value):
        if match.group(1) == "sample" and match.group(2) not in (None, "output_text"):
            raise refuse(kind, option, value, f"sample.{match.group(2)} is unknown; the answer is "
                                              "'{{ sample.output_text }}' (or '{{ sample }}')")
    return value


def check_grader(grader: Any, where: str = "grader") -> Any:
    """A grader object (any kind, also one of the user's own classes): a name, grade(sample, item), and when it
    has them a pass_threshold in [0, 1] and a finite time_limit. ParameterError names ``where``."""
    if not callable(getattr(grader, "grade", None)) or not isinstance(getattr(grader, "name", None), str) \
            or not grader.name.strip():
        raise ParameterError(f"{where}: {_short(grader)} is not a grader (it needs a name and grade(sample, "
                             "item)); use jupyter_tune.graders.StringCheck, TextSimilarity, PythonGrader, "
                             "LabelMatch, ModelGrader or Multi, or a spec such as {'kind': 'string_check'}")
    kind = str(getattr(grader, "kind", type(grader).__name__))
    try:
        if hasattr(grader, "pass_threshold"):
            check_threshold(kind, grader.pass_threshold)
        if hasattr(grader, "time_limit"):
            check_time_limit(kind, grader.time_limit)
    except ParameterError as e:
        raise ParameterError(f"{where}: {e}") from None
    return grader


def render(template: str, sample: str, item: dict) -> str:
    """Fill ``{{ item.<field> }}`` (dotted paths reach nested dicts) and ``{{ sample.output_text }}`` (or
    ``{{ sample }}``) as OpenAI's graders do. A template with no braces is returned as it is (a literal)."""

    def one(match: re.Match) -> str:
        root, path = match.group(1), match.group(2)
        if root == "sample":
            if path not in (None, "output_text"):
                raise KeyError(f"sample.{path}: only sample.output_text is known")
            return "" if sample is None else str(sample)
        value: Any = item
        for part in (path or "").split("."):
            if not part:
                continue
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"item.{path}: the row has no field {part!r}")
            value = value[part]
        return "" if value is None else str(value)

    return _TEMPLATE.sub(one, template)


@dataclass
class GradeResult:
    """One grader over many rows: per-row scores (errors score 0), the errors as (row, message), and how many
    rows were skipped (counted among the errors) because the grader's callable hung on an earlier row."""

    name: str
    kind: str
    pass_threshold: float
    scores: list[float] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    skipped: int = 0

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else float("nan")

    @property
    def pass_rate(self) -> float:
        if not self.scores:
            return float("nan")
        return sum(s >= self.pass_threshold for s in self.scores) / len(self.scores)

    @property
    def note(self) -> str | None:
        """What the scores do not say by themselves: rows skipped after a time-out."""
        if not self.skipped:
            return None
        return (f"{self.skipped} of {len(self.scores)} rows were not graded (scored 0): the grader's function ran "
                "past its time limit on an earlier row and still runs, so it was not called again. Give a python "
                "grader as source ({'kind': 'python', 'source': ...}) to run it in a worker process that is "
                "replaced after a time-out.")

    def summary(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "mean": self.mean, "pass_rate": self.pass_rate,
               "pass_threshold": self.pass_threshold, "errors": len(self.errors), "rows": len(self.scores),
               "skipped": self.skipped}
        if self.note:
            out["note"] = self.note
        return out


# Callables still running past their time limit: id(owner) -> (owner, thread, note). The owner (a grader)
# is kept with its thread; the entry goes when the thread ends.
_HUNG: dict[int, tuple[Any, threading.Thread, str]] = {}
_HUNG_LOCK = threading.Lock()


def call_in_thread(owner, fn, args, time_limit: float):
    """fn(*args) in a daemon thread, waiting at most time_limit seconds. A thread, not a process: fn may be a
    closure or a lambda (not picklable). A thread cannot be stopped: one past its limit is abandoned (it ends
    with the process) and ``owner`` is not called again while it runs (GraderSkipped), so a grader that
    hangs leaves one thread at most. A SystemExit or KeyboardInterrupt that fn raises is a GraderError."""
    with _HUNG_LOCK:
        hung = _HUNG.get(id(owner))
        if hung is not None and hung[0] is owner and hung[1].is_alive():
            raise GraderSkipped(hung[2])
        _HUNG.pop(id(owner), None)
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported per row
            box["error"] = exc

    name = getattr(owner, "name", "grader")
    thread = threading.Thread(target=target, daemon=True, name=f"jupyter-tune-grader {name}")
    thread.start()
    thread.join(time_limit)
    if thread.is_alive():
        note = (f"skipped: it ran past its time limit of {time_limit:g} s on an earlier row and still runs (a "
                "function cannot be stopped), so it is not called again until that call ends")
        with _HUNG_LOCK:
            _HUNG[id(owner)] = (owner, thread, note)
        raise GraderTimeout(f"ran past its time limit of {time_limit:g} s")
    if "error" in box:
        error = box["error"]
        if isinstance(error, Exception):
            raise error
        raise GraderError(describe(error))  # SystemExit, KeyboardInterrupt, GeneratorExit from the grader
    return box.get("value")


def call_grader(grader, sample: str, item: dict, time_limit: float | None = None):
    """grader.grade(sample, item) as the grader's kind runs it (see the module's docstring); ``time_limit``
    overrides the grader's own. Raises what the grader raised (GraderTimeout, GraderSkipped, GraderError ...)."""
    if time_limit is not None:
        time_limit = check_time_limit(getattr(grader, "kind", "grader"), time_limit)
    guarded = getattr(grader, "guarded_grade", None)
    if callable(guarded):  # PythonGrader: a worker process (source) or a thread (fn)
        return guarded(sample, item, time_limit)
    limit = time_limit if time_limit is not None else getattr(grader, "time_limit", None)
    if limit is not None:
        return call_in_thread(grader, grader.grade, (sample, item), limit)
    try:
        return grader.grade(sample, item)
    except SystemExit as exc:  # a KeyboardInterrupt here is the user's: it goes on
        raise GraderError(describe(exc)) from None


def check_score(value) -> float:
    """A grader's return value as a float in [0, 1], or ValueError naming what is wrong."""
    if isinstance(value, bool):
        return float(value)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"returned {_short(value)}, not a number") from None
    if math.isnan(score):
        raise ValueError("returned NaN")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"returned {score!r}, outside [0, 1]")
    return score


def _grade_one(grader, sample: str, item: dict, time_limit: float | None) -> tuple[float, str | None, bool]:
    """(score, error message or None, skipped after a time-out)."""
    try:
        return check_score(call_grader(grader, sample, item, time_limit)), None, False
    except GraderSkipped as exc:
        return 0.0, f"{grader.name}: {exc}", True
    except Exception as exc:  # noqa: BLE001 - a user's grader may raise anything
        return 0.0, f"{grader.name}: {describe(exc)}", False


def safe_grade(grader, sample: str, item: dict, time_limit: float | None = None) -> tuple[float, str | None]:
    """(score, None) or (0.0, error message): never raises for a grader's own failure (a bad ``time_limit``
    is the caller's: ParameterError)."""
    if time_limit is not None:
        time_limit = check_time_limit(getattr(grader, "kind", "grader"), time_limit)
    score, error, _ = _grade_one(grader, sample, item, time_limit)
    return score, error


def grade_rows(grader, samples, items, time_limit: float | None = None) -> GradeResult:
    """Apply one grader to every (sample, item) pair; errors are scored 0 and counted."""
    samples, items = list(samples), list(items)
    if len(samples) != len(items):
        raise ValueError(f"{len(samples)} answers for {len(items)} rows")
    if time_limit is not None:
        time_limit = check_time_limit(getattr(grader, "kind", "grader"), time_limit)
    result = GradeResult(grader.name, getattr(grader, "kind", type(grader).__name__),
                         float(getattr(grader, "pass_threshold", 1.0)))
    for i, (sample, item) in enumerate(zip(samples, items, strict=True)):
        score, error, skipped = _grade_one(grader, sample, item, time_limit)
        result.scores.append(score)
        if error is not None:
            result.errors.append((i, error))
        result.skipped += skipped
    return result


def close_graders(graders) -> None:
    """Stop the worker processes of these graders (python graders given as source; a multi grader's parts).
    They start again if graded again; garbage collection and the process's exit stop them too."""
    for g in graders or []:
        close = getattr(g, "close", None)
        if callable(close):
            close()


def constant_groups(rewards, group_size: int) -> int:
    """How many consecutive groups of ``group_size`` rewards are constant (no signal for a group-relative
    method such as GRPO). A last, shorter group counts too."""
    rewards = list(rewards)
    if group_size < 2:
        return 0
    groups = [rewards[i:i + group_size] for i in range(0, len(rewards), group_size)]
    return sum(1 for g in groups if len(g) > 1 and max(g) - min(g) == 0)
