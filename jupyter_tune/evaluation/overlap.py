"""Rows a tuned model is evaluated on that it trained on, or whose validation score chose its checkpoint.

A score on such rows overstates the model (issue 38: Evaluate fell back to the training file; a test file
typed into Validation data picked the checkpoint it was then scored on). ``jt.evaluate`` compares its rows'
inputs with the job's own copies of its training and validation rows (job folder: train.jsonl,
validation.jsonl) by the health checks' grouping (data/near.py: the same input after normalising, or a
near-duplicate by word-triple Jaccard), and warns, or refuses with ``overlap="refuse"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..data.health import shared_inputs
from ..data.loader import Dataset
from ..data.near import THRESHOLD

PARTS = (("train.jsonl", "training"), ("validation.jsonl", "validation"))
SHOWN = 8  # row numbers named in a message


class OverlapError(ValueError):
    """overlap="refuse" and the evaluation rows share inputs with the job's own rows."""


@dataclass
class Overlap:
    """Per part of the job's data ("training", "validation"): the evaluation rows (their lines) whose input
    is the same as, or nearly the same as, one of that part's."""

    rows: int
    unit: str
    source: str
    lines: dict[str, list[int]] = field(default_factory=dict)

    def messages(self, job_id: str) -> list[str]:
        out = []
        for part, lines in self.lines.items():
            if not lines:
                continue
            shown = ", ".join(map(str, lines[:SHOWN])) + (", ..." if len(lines) > SHOWN else "")
            why = ("the model trained on them" if part == "training"
                   else "their validation score chose the job's checkpoint")
            out.append(f"{len(lines)} of {self.rows} evaluation rows of {self.source} ({self.unit}s {shown}) have "
                       f"the input, or a near-duplicate of it, of job {job_id}'s {part} rows: {why}, so the score "
                       "overstates the model on new data. Evaluate on rows kept out of tuning (jt.split before "
                       "tuning, or a separate file).")
        return out

    def to_dict(self) -> dict:
        return {part: len(lines) for part, lines in self.lines.items()}


def _records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def job_overlap(job_dir: Path, dataset: Dataset, threshold: float = THRESHOLD) -> Overlap:
    """The evaluation rows of `dataset` that share an input with the job's training or validation copy."""
    result = Overlap(len(dataset.examples), dataset.unit, dataset.source)
    for name, part in PARTS:
        if (job_dir / name).is_file():
            copy = Dataset.from_records(name, _records(job_dir / name))
            result.lines[part] = shared_inputs(copy, dataset, threshold)
    return result
