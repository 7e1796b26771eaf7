"""``multi``: a weighted mean of other graders (OpenAI's multi grader with a weighted-sum formula)."""

from __future__ import annotations

from dataclasses import dataclass, field

from jupyter_tune.graders.base import (
    GraderError,
    GraderSkipped,
    _is_number,
    call_grader,
    check_grader,
    check_name,
    check_score,
    check_threshold,
    close_graders,
    describe,
    options_checked,
    refuse,
)

KIND = "multi"


@options_checked
@dataclass
class Multi:
    """sum(w_i * g_i) / sum(w_i) over ``graders`` (weights default to 1 each). A sub-grader's failure fails
    the row (reported by the runner), so a broken part is never silently averaged away. Each part runs as it
    would alone: a python part under its own time limit (a hung part fails the row, not the job)."""

    graders: list = field(default_factory=list)
    weights: list[float] | None = None
    name: str = "multi"
    pass_threshold: float = 1.0
    kind: str = field(default=KIND, init=False)  # the class says it; never an option

    def __post_init__(self):
        check_name(KIND, self.name)
        self.pass_threshold = check_threshold(KIND, self.pass_threshold)
        if not isinstance(self.graders, (list, tuple)) or not self.graders:
            raise refuse(KIND, "graders", self.graders, "expected a non-empty list of graders")
        for i, g in enumerate(self.graders):
            check_grader(g, f"multi grader: graders[{i}]")
        self.graders = list(self.graders)
        if self.weights is None:
            self.weights = [1.0] * len(self.graders)
        if not isinstance(self.weights, (list, tuple)) or len(self.weights) != len(self.graders):
            raise refuse(KIND, "weights", self.weights, f"expected a list of {len(self.graders)} weights, one per "
                                                        "grader")
        if any(not _is_number(w) or w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise refuse(KIND, "weights", self.weights, "expected finite numbers >= 0 with a positive sum")
        self.weights = [float(w) for w in self.weights]

    def grade(self, sample: str, item: dict) -> float:
        total = 0.0
        for g, w in zip(self.graders, self.weights, strict=True):
            try:
                total += w * check_score(call_grader(g, sample, item))
            except GraderSkipped as exc:
                raise GraderSkipped(f"{g.name}: {exc}") from None
            except Exception as exc:
                raise GraderError(f"{g.name}: {describe(exc)}") from exc
        return total / sum(self.weights)

    def close(self) -> None:
        """Stop the parts' worker processes (python parts given as source)."""
        close_graders(self.graders)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "graders": [g.to_json() for g in self.graders],
                "weights": list(self.weights), "pass_threshold": self.pass_threshold}
