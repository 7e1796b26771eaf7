"""``multi``: a weighted mean of other graders (OpenAI's multi grader with a weighted-sum formula)."""

from __future__ import annotations

from dataclasses import dataclass, field

from jupyter_tune.graders.base import _call_with_limit, check_score


@dataclass
class Multi:
    """sum(w_i * g_i) / sum(w_i) over ``graders`` (weights default to 1 each). A sub-grader's failure fails
    the row (reported by the runner), so a broken part is never silently averaged away."""

    graders: list = field(default_factory=list)
    weights: list[float] | None = None
    name: str = "multi"
    pass_threshold: float = 1.0
    kind: str = "multi"

    def __post_init__(self):
        if not self.graders:
            raise ValueError("multi grader: give at least one grader")
        if self.weights is None:
            self.weights = [1.0] * len(self.graders)
        if len(self.weights) != len(self.graders):
            raise ValueError(f"multi grader: {len(self.weights)} weights for {len(self.graders)} graders")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError("multi grader: weights must be >= 0 with a positive sum")

    def grade(self, sample: str, item: dict) -> float:
        total = 0.0
        for g, w in zip(self.graders, self.weights, strict=True):
            try:
                # each part under its own time limit (a hung python part fails the row, not the job)
                total += w * check_score(_call_with_limit(g.grade, (sample, item), getattr(g, "time_limit", None)))
            except Exception as exc:
                raise type(exc)(f"{g.name}: {exc}") from exc
        return total / sum(self.weights)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "graders": [g.to_json() for g in self.graders],
                "weights": list(self.weights), "pass_threshold": self.pass_threshold}
