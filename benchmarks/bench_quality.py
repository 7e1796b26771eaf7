"""Quality: macro F1 of the base model and of a default tuning job, on small-eval (or, with --full, the
full transcripts and 38 labels). Also times each step of the seed's loop.

    python benchmarks/bench_quality.py [--full] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mtsamples"
if not DATA.is_dir():
    DATA = ROOT / "notebooks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
SMALL_LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="full transcripts, 38 labels (hours on a CPU)")
    ap.add_argument("--epochs", type=int, default=None)
    a = ap.parse_args()
    os.environ.setdefault("JUPYTER_TUNE_HOME", tempfile.mkdtemp(prefix="jt-bench-"))
    import jupyter_tune as jt

    labels = [x.strip() for x in open(DATA / "labels.txt")] if a.full else SMALL_LABELS
    train = DATA / ("train.jsonl" if a.full else "small-train.jsonl")
    evald = DATA / ("eval.jsonl" if a.full else "small-eval.jsonl")
    template = ("Assign a label to the given medical transcript from among these labels: ["
                + ", ".join(labels) + "]. TRANSCRIPT: {input_text}")
    times = {}

    t = time.perf_counter()
    base = jt.evaluate(jt.load_model(jt.TuningParams().base_model), str(evald), prompt_template=template,
                       progress=False)
    times["base_evaluation_s"] = time.perf_counter() - t

    t = time.perf_counter()
    job = jt.tune(train_dataset=str(train), prompt_template=template, epochs=a.epochs,
                  tuned_model_display_name="bench-quality")
    state = job.wait()
    times["tuning_job_s"] = time.perf_counter() - t
    if state is not jt.JobState.SUCCEEDED:
        raise SystemExit(f"job {job.id} ended {state.value}: {job.error}\n{job.log()}")
    m = job.metrics
    first_step_s = float(m["time"].iloc[0]) - job.record.get("create_unix", m["time"].iloc[0])

    t = time.perf_counter()
    tuned = jt.evaluate(jt.load_model(job), str(evald), prompt_template=template, progress=False)
    times["tuned_evaluation_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cmp = jt.compare(base, tuned)
    times["compare_s"] = time.perf_counter() - t

    f1 = lambda r: float(r.metrics.loc["macro avg", "f1_score"])  # noqa: E731
    tps = m["tokens_per_second"].dropna()
    result = {
        "name": "quality", "dataset": "full" if a.full else "small", "eval_rows": int(len(base.predictions)),
        "base_macro_f1": f1(base), "tuned_macro_f1": f1(tuned),
        "per_label_f1": {"base": base.metrics["f1_score"].to_dict(), "tuned": tuned.metrics["f1_score"].to_dict()},
        "job": {"id": job.id, "epochs": job.record["tuning"]["epochs"], "steps": job.record["tuning"]["total_steps"],
                "time_to_first_step_s": first_step_s, "median_tokens_per_second": float(tps.median()),
                "final_train_loss": float(m["train_total_loss"].dropna().iloc[-1]),
                "dtype": job.record["tuning"]["dtype"]},
        "times": times,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quality_full.json" if a.full else "quality.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=float))
    print(f"\nquality ({result['dataset']}, {result['eval_rows']} eval rows)")
    print(f"  base  macro F1 {result['base_macro_f1']:.3f}   ({times['base_evaluation_s']:.0f} s)")
    print(f"  tune  {result['job']['epochs']} epochs, {result['job']['steps']} steps, "
          f"{result['job']['median_tokens_per_second']:.0f} tokens/s, first step after "
          f"{first_step_s:.1f} s, job {times['tuning_job_s']:.0f} s")
    print(f"  tuned macro F1 {result['tuned_macro_f1']:.3f}   ({times['tuned_evaluation_s']:.0f} s)")
    print(f"  fixed {len(cmp.fixed)} examples, broke {len(cmp.broken)}")


if __name__ == "__main__":
    main()
