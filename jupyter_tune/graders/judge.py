"""``model`` (score_model): a local judge. ``judge`` is any callable prompt -> text (for instance a
function that calls ``generate`` on a model ``jt.load_model`` loaded); the rubric is a template and the
score is the first number in the judge's answer, divided by ``scale``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from jupyter_tune.graders.base import render

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_score(text: str, scale: float = 1.0) -> float:
    match = _NUMBER.search(text or "")
    if match is None:
        raise ValueError(f"the judge's answer holds no number: {text[:80]!r}")
    return float(match.group()) / scale


@dataclass
class ModelGrader:
    """Ask ``judge`` the rendered ``rubric`` (``{{ item.* }}`` and ``{{ sample.output_text }}`` filled in)."""

    judge: Callable[[str], str]
    rubric: str = ("Rate the answer from 0 to 10.\nQuestion: {{ item.prompt }}\nReference: {{ item.reference }}\n"
                   "Answer: {{ sample.output_text }}\nScore:")
    scale: float = 10.0
    name: str = "model"
    time_limit: float | None = 120.0
    pass_threshold: float = 0.5
    kind: str = "score_model"

    def grade(self, sample: str, item: dict) -> float:
        return parse_score(self.judge(render(self.rubric, sample, item)), self.scale)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "rubric": self.rubric, "scale": self.scale,
                "judge": repr(self.judge), "pass_threshold": self.pass_threshold}
