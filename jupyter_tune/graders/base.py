"""The grader protocol and the safe per-row runner shared by every grader kind.

A grader scores one model answer (``sample``, a string) against one row (``item``, a dict of the row's
fields: the prompt or messages, the reference answer under ``reference``, a label under ``label``, and any
extra field the row carries) with a float in [0, 1]. ``grade_rows`` applies a grader to many rows and never
raises: an exception, a time-out, NaN or a value outside [0, 1] scores 0 for that row and is counted and
reported with the row's index.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Grader(Protocol):
    name: str
    kind: str
    pass_threshold: float

    def grade(self, sample: str, item: dict) -> float: ...

    def to_json(self) -> dict: ...


class GraderTimeout(Exception):
    """The grader ran past its time limit."""


_TEMPLATE = re.compile(r"\{\{\s*(item|sample)(?:\.([A-Za-z_][\w.]*))?\s*\}\}")


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
    """One grader over many rows: per-row scores (errors score 0) and the errors as (row, message)."""

    name: str
    kind: str
    pass_threshold: float
    scores: list[float] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else float("nan")

    @property
    def pass_rate(self) -> float:
        if not self.scores:
            return float("nan")
        return sum(s >= self.pass_threshold for s in self.scores) / len(self.scores)

    def summary(self) -> dict:
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "pass_rate": self.pass_rate,
                "pass_threshold": self.pass_threshold, "errors": len(self.errors), "rows": len(self.scores)}


def _call_with_limit(fn, args, time_limit: float | None):
    """Run fn(*args) in a daemon thread and wait at most time_limit seconds. A thread, not a forked
    process: the function may be a closure or lambda (not picklable) and forking a process that holds torch
    threads is unsafe. A function that hangs is abandoned (the daemon thread cannot be killed; it ends with
    the process) and the row scores 0 with a time-out error."""
    if time_limit is None:
        return fn(*args)
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported per row
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="jupyter-tune-grader")
    thread.start()
    thread.join(time_limit)
    if thread.is_alive():
        raise GraderTimeout(f"ran past its time limit of {time_limit:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def check_score(value) -> float:
    """A grader's return value as a float in [0, 1], or ValueError naming what is wrong."""
    if isinstance(value, bool):
        return float(value)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"returned {value!r}, not a number") from None
    if math.isnan(score):
        raise ValueError("returned NaN")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"returned {score!r}, outside [0, 1]")
    return score


def safe_grade(grader, sample: str, item: dict, time_limit: float | None = None) -> tuple[float, str | None]:
    """(score, None) or (0.0, error message): never raises for a grader's own failure."""
    limit = time_limit if time_limit is not None else getattr(grader, "time_limit", None)
    try:
        return check_score(_call_with_limit(grader.grade, (sample, item), limit)), None
    except GraderTimeout as exc:
        return 0.0, f"{grader.name}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a user's grader may raise anything
        return 0.0, f"{grader.name}: {type(exc).__name__}: {exc}"


def grade_rows(grader, samples, items, time_limit: float | None = None) -> GradeResult:
    """Apply one grader to every (sample, item) pair; errors are scored 0 and counted."""
    samples, items = list(samples), list(items)
    if len(samples) != len(items):
        raise ValueError(f"{len(samples)} answers for {len(items)} rows")
    result = GradeResult(grader.name, grader.kind, float(getattr(grader, "pass_threshold", 1.0)))
    for i, (sample, item) in enumerate(zip(samples, items, strict=True)):
        score, error = safe_grade(grader, sample, item, time_limit)
        result.scores.append(score)
        if error is not None:
            result.errors.append((i, error))
    return result


def constant_groups(rewards, group_size: int) -> int:
    """How many consecutive groups of ``group_size`` rewards are constant (no signal for a group-relative
    method such as GRPO). A last, shorter group counts too."""
    rewards = list(rewards)
    if group_size < 2:
        return 0
    groups = [rewards[i:i + group_size] for i in range(0, len(rewards), group_size)]
    return sum(1 for g in groups if len(g) > 1 and max(g) - min(g) == 0)
