"""OpenAI's ``python`` grader: a user function ``fn(sample, item) -> float`` run in the job process with a
time limit (see base._call_with_limit); its source is kept for job.json and the Details tab."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass


def source_of(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return repr(fn)


@dataclass
class PythonGrader:
    """``fn(sample: str, item: dict) -> float in [0, 1]``. An exception, a time-out (``time_limit``
    seconds), NaN or a value outside [0, 1] scores the row 0 and is counted; the job goes on."""

    fn: Callable[[str, dict], float]
    name: str = "python"
    time_limit: float | None = 10.0
    pass_threshold: float = 1.0
    kind: str = "python"

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"python grader: fn must be callable, got {type(self.fn).__name__}")

    def grade(self, sample: str, item: dict) -> float:
        return self.fn(sample, item)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "source": source_of(self.fn),
                "time_limit": self.time_limit, "pass_threshold": self.pass_threshold}
