"""``model`` (score_model): a local judge. ``judge`` is any callable prompt -> text (for instance a
function that calls ``generate`` on a model ``jt.load_model`` loaded); the rubric is a template and the
score is the first number in the judge's answer, divided by ``scale``."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from jupyter_tune.graders.base import (
    _is_number,
    check_name,
    check_template,
    check_threshold,
    check_time_limit,
    options_checked,
    refuse,
    render,
)

KIND = "score_model"

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_score(text: str, scale: float = 1.0) -> float:
    match = _NUMBER.search(text or "")
    if match is None:
        raise ValueError(f"the judge's answer holds no number: {text[:80]!r}")
    return float(match.group()) / scale


@options_checked
@dataclass
class ModelGrader:
    """Ask ``judge`` the rendered ``rubric`` (``{{ item.* }}`` and ``{{ sample.output_text }}`` filled in). The
    judge runs in a thread under ``time_limit``; after its first time-out it is not called again while that
    call still runs (base.call_in_thread)."""

    judge: Callable[[str], str]
    rubric: str = ("Rate the answer from 0 to 10.\nQuestion: {{ item.prompt }}\nReference: {{ item.reference }}\n"
                   "Answer: {{ sample.output_text }}\nScore:")
    scale: float = 10.0
    name: str = "model"
    time_limit: float = 120.0
    pass_threshold: float = 0.5
    kind: str = field(default=KIND, init=False)  # the class says it; never an option

    def __post_init__(self):
        if not callable(self.judge):
            raise refuse(KIND, "judge", self.judge, "expected a callable prompt (str) -> the judge's answer (str), "
                                                    "e.g. a function that calls generate on a loaded model")
        try:
            signature = inspect.signature(self.judge)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            try:
                signature.bind("prompt")
            except TypeError as e:
                raise refuse(KIND, "judge", self.judge, f"judge{signature} cannot be called as judge(prompt) ({e}); "
                                                        "expected a callable prompt (str) -> answer (str)") from None
        check_template(KIND, "rubric", self.rubric)
        if not _is_number(self.scale) or self.scale <= 0:
            raise refuse(KIND, "scale", self.scale, "expected a finite number > 0 (the judge's top score)")
        check_name(KIND, self.name)
        self.time_limit = check_time_limit(KIND, self.time_limit)
        self.pass_threshold = check_threshold(KIND, self.pass_threshold)

    def grade(self, sample: str, item: dict) -> float:
        return parse_score(self.judge(render(self.rubric, sample, item)), self.scale)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "rubric": self.rubric, "scale": self.scale,
                "judge": repr(self.judge), "pass_threshold": self.pass_threshold}
