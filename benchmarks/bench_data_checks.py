"""Time the dataset health checks (data/health.py) on synthetic data.

Two sizes: 10,000 rows of 3,000-character inputs (the issue's bar) and 100,000 rows of realistic length
(log-normal, median about 700 characters, as a mix of short descriptions and long transcripts). Each set
has 5 % exact duplicates (case and punctuation changed), 5 % near-duplicates (one word in 100 changed),
a share of them under another label, and a 20 % validation part drawn from the same rows (so it leaks).
Times only the checks (the rows are loaded first, as jt.tune has them), median of --repeats runs, in wall
time and in this process's CPU time (the load average at the end says how busy the machine was).

Writes benchmarks/results/data_checks.json. Run with nothing else busy: the machines have 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from machine import cpu_model  # noqa: E402

from jupyter_tune.data.health import check_health  # noqa: E402
from jupyter_tune.data.loader import load_dataset  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def synthetic(n: int, chars: int | None, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(30_000)])
    lengths = (np.full(n, chars) if chars else np.clip(rng.lognormal(np.log(700), 0.8, n), 40, 20_000)).astype(int)
    labels = [f"label{i}" for i in range(38)]
    rows = []
    for i in range(n):
        words = vocab[rng.zipf(1.2, lengths[i] // 4) % len(vocab)]
        rows.append({"input_text": " ".join(words)[:lengths[i]], "output_text": labels[int(rng.integers(38))]})
    for i in rng.choice(n, n // 10, replace=False):  # copies of other rows: half exact, half near
        j = int(rng.integers(n))
        src = rows[j]["input_text"]
        if rng.random() < 0.5:
            text = src.upper().replace(" ", " , ", 3)
        else:
            words = src.split()
            for k in range(0, len(words), 100):
                words[k] = "changed"
            text = " ".join(words)
        label = rows[j]["output_text"] if rng.random() < 0.7 else labels[int(rng.integers(38))]
        rows[i] = {"input_text": text, "output_text": label}
    return rows


def measure(n: int, chars: int | None, repeats: int) -> dict:
    rows = synthetic(n, chars)
    cut = int(n * 0.8)
    train, val = load_dataset(rows[:cut]), load_dataset(rows[cut:])
    times, cpu, report = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        report = check_health(train, val)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"rows": n, "train_rows": cut, "validation_rows": n - cut,
            "mean_chars": round(float(np.mean([len(r["input_text"]) for r in rows]))),
            "seconds": [round(t, 2) for t in times], "median_seconds": round(statistics.median(times), 2),
            # CPU time of this process: less inflated than wall time when other work shares the cores
            "median_cpu_seconds": round(statistics.median(cpu), 2),
            "counts": report.counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="10k,100k", help="which sets: 10k (3,000 chars), 100k (realistic)")
    args = ap.parse_args()
    check_health(load_dataset([{"input_text": "warm up the imports", "output_text": "a"}]))
    result = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "runs": {}}
    for size in args.sizes.split(","):
        n, chars = {"10k": (10_000, 3_000), "100k": (100_000, None)}[size]
        result["runs"][size] = measure(n, chars, args.repeats)
        print(f"{size}: {result['runs'][size]}", flush=True)
    result["load_average"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_checks.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'data_checks.json'}")


if __name__ == "__main__":
    main()
