"""Reading a job's sample answers (samples.jsonl, written by training/samples.py at each evaluation) and a GRPO
job's sampled answers (completions.jsonl, written by training/grpo.py at each step).

Torch-free: the kernel, the widgets and the server read them. samples.jsonl has one line per evaluation:
``{"step", "epoch", "seconds", "samples": [{"row", "prompt", "expected", "answer", "correct", ...}]}``;
completions.jsonl one line per step and mode (train, eval): the first prompt's group of sampled answers,
``{"step", "mode", "prompt", "reference", "answers": [{"text", "reward", "rewards": {grader: score}}]}``.
"""

from __future__ import annotations

import json
from typing import Any

from .store import JobStore

FILE = "samples.jsonl"
COMPLETIONS_FILE = "completions.jsonl"
# job.samples' columns
COLUMNS = ["step", "row", "expected", "answer", "correct", "changed", "became", "epoch", "prompt"]


def read_evaluations(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    """The sampled evaluations by step. A step written twice (replayed after a resume) keeps its latest
    line; torn or unreadable lines (a process killed mid-write) are skipped."""
    return [line for _, line in sorted(_lines(store, job_id, FILE, "samples", lambda line: line["step"]).items())]


def read_completions(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    """A GRPO job's sampled groups by step, training's before evaluation's at a step; replayed steps keep their
    latest line, torn lines are skipped."""
    lines = _lines(store, job_id, COMPLETIONS_FILE, "answers", lambda line: (line["step"], line.get("mode") != "train"))
    return [lines[k] for k in sorted(lines)]


def _lines(store: JobStore, job_id: str, name: str, field: str, key) -> dict[Any, dict[str, Any]]:
    try:
        data = (store.job_dir(job_id) / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    out: dict[Any, dict[str, Any]] = {}
    for raw in data.split(b"\n")[:-1]:  # the piece after the last newline is still being written
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("step"), int) and isinstance(line.get(field), list):
            out[key(line)] = line
    return out


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
