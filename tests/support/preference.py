"""mtsamples as preference pairs for DPO tests (the same construction as benchmarks/bench_methods.py's, kept
here so the tests do not import from benchmarks/)."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [" + ", ".join(LABELS)
            + "]. TRANSCRIPT: {input_text}")


def preference_pairs(path: Path, n: int | None = None) -> list[dict]:
    """Chosen = the right specialty, rejected = a wrong one (the next label, shifted by the row's index)."""
    rows = [json.loads(line) for line in open(path) if line.strip()][:n]
    return [{"prompt": TEMPLATE.format(input_text=r["input_text"]), "chosen": r["output_text"],
             "rejected": LABELS[(LABELS.index(r["output_text"]) + 1 + i % (len(LABELS) - 1)) % len(LABELS)]}
            for i, r in enumerate(rows)]
