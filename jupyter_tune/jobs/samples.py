"""Reading a job's sample answers (samples.jsonl, written by training/samples.py at each evaluation).

Torch-free: the kernel, the widgets and the server read it. One line per evaluation:
``{"step", "epoch", "seconds", "samples": [{"row", "prompt", "expected", "answer", "correct", ...}]}``.
"""

from __future__ import annotations

import json
from typing import Any

from .store import JobStore

FILE = "samples.jsonl"
# job.samples' columns
COLUMNS = ["step", "row", "expected", "answer", "correct", "changed", "became", "epoch", "prompt"]


def read_evaluations(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    """The sampled evaluations by step. A step written twice (replayed after a resume) keeps its latest
    line; torn or unreadable lines (a process killed mid-write) are skipped."""
    try:
        data = (store.job_dir(job_id) / FILE).read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for raw in data.split(b"\n")[:-1]:  # the piece after the last newline is still being written
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("step"), int) and isinstance(line.get("samples"), list):
            by_step[line["step"]] = line
    return [by_step[s] for s in sorted(by_step)]


def sample_rows(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (evaluation, sampled row), with ``changed`` (the answer differs from the previous
    evaluation's) and ``became`` ("right" / "wrong" when correctness flipped since then, else None)."""
    previous: dict[int, dict[str, Any]] = {}
    out = []
    for ev in evaluations:
        for s in ev["samples"]:
            before = previous.get(s.get("row"))
            changed = before is not None and before.get("answer") != s.get("answer")
            became = None
            if before is not None and bool(before.get("correct")) != bool(s.get("correct")):
                became = "right" if s.get("correct") else "wrong"
            out.append({"step": ev["step"], "epoch": ev.get("epoch"), "row": s.get("row"),
                        "prompt": s.get("prompt"), "expected": s.get("expected"), "answer": s.get("answer"),
                        "correct": bool(s.get("correct")), "changed": changed, "became": became})
            previous[s.get("row")] = s
    return out
