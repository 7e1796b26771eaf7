"""The search a user would run before a long job: jt.sweep(..., search="optuna") over LoRA rank, learning rate
and epochs on a slice of the specialty task, ranked by the validation macro F1 the job logs (the pruner
stops trials that fall behind). The defaults' own point is enqueued first, so the table says whether the
search found anything better than what the panel inserts.

    python benchmarks/bench_sweep.py [--model default|gemma3] [--train-rows 190] [--val-rows 57]
        [--max-seq-length 256] [--trials 6]

Writes benchmarks/results/sweep[-MODEL].json: every trial (parameters, status, best validation macro F1,
steps, seconds), the best point, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from bench_quality import DATA, MODELS, PROMPTS, RESULTS, hold_out
from machine import machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="default")
    ap.add_argument("--train-rows", type=int, default=190, help="the slice tuned on (stratified, 10 per label)")
    ap.add_argument("--val-rows", type=int, default=57, help="held out from the training file (3 per label)")
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--tag", default=None, help="a suffix for the results file (keeps other runs' files)")
    a = ap.parse_args()
    os.environ.setdefault("JUPYTER_TUNE_HOME", tempfile.mkdtemp(prefix="jt-bench-sweep-"))
    import pandas as pd

    import jupyter_tune as jt
    from jupyter_tune.params import RECOMMENDED_LEARNING_RATE, TuningParams, choose_epochs

    train = pd.read_json(DATA / "specialty-train.jsonl", lines=True)
    rest, val = hold_out(train, a.val_rows)
    _, train = hold_out(rest, a.train_rows)  # the slice: the same stratified pick, every run
    template = PROMPTS["short"]
    base = dict(base_model=MODELS[a.model], train_dataset=train, validation_dataset=val, prompt_template=template,
                max_seq_length=a.max_seq_length, eval_task_metric=True, evaluate_after=False, sample_prompts=0,
                early_stopping_patience=0)  # the pruner decides here; patience would end trials on its own
    grid = {"adapter_size": [4, 8, 16], "learning_rate": (1e-4, 3e-3), "epochs": [2, 4, 6]}  # 6: the default for 190 rows
    defaults = {"adapter_size": TuningParams.adapter_size, "learning_rate": RECOMMENDED_LEARNING_RATE,
                "epochs": choose_epochs(len(train))}
    t = time.perf_counter()
    s = jt.sweep(base=base, grid=grid, search="optuna", n_trials=a.trials, parallel=1, enqueue=[defaults],
                 objective="eval_macro_f1", name="bench-sweep")
    print(f"sweep {s.id}: {a.trials} trials on {len(train)} rows, {len(val)} validation rows; defaults first: "
          f"{defaults}", flush=True)
    state = s.wait()
    seconds = time.perf_counter() - t
    trials = []
    for tr in sorted(s.trials, key=lambda x: x["number"]):
        job = jt.get_job(tr["job_id"])
        m = job.metrics
        f1 = m["eval_macro_f1"].dropna() if "eval_macro_f1" in m else pd.Series(dtype=float)
        took = float(m["time"].max() - job.record.get("create_unix", m["time"].min())) if len(m) else None
        trials.append({"number": tr["number"], "params": tr["params"], "status": tr["status"],
                       "best_eval_macro_f1": float(f1.max()) if len(f1) else None,
                       "steps": int(m["step"].max()) if len(m) else 0, "seconds": took})
    best = s.best
    result = {"name": "sweep", "model": MODELS[a.model], "state": state.value, "train_rows": len(train),
              "val_rows": len(val), "max_seq_length": a.max_seq_length, "grid": {k: list(v) for k, v in grid.items()},
              "defaults": defaults, "trials": trials, "best": best and {"params": best["params"], "value": best["value"]},
              "seconds": seconds, "machine": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "sweep" + ("" if a.model == "default" else f"-{a.model}") + (f"-{a.tag}" if a.tag else "") + ".json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=float))
    print(f"\nsweep ({MODELS[a.model]}, {len(train)} rows at {a.max_seq_length} tokens; {seconds / 60:.1f} min, "
          f"{state.value})")
    print("| trial | rank | learning rate | epochs | status | best val macro F1 | steps | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for tr in trials:
        p = tr["params"]
        f1 = "" if tr["best_eval_macro_f1"] is None else f"{tr['best_eval_macro_f1']:.3f}"
        print(f"| {tr['number']} | {p['adapter_size']} | {p['learning_rate']:.2e} | {p['epochs']} | {tr['status']} | "
              f"{f1} | {tr['steps']} | {tr['seconds'] or 0:.0f} |")
    if best:
        print(f"best: {best['params']} -> {best['value']:.3f} (the defaults are trial 0)")


if __name__ == "__main__":
    main()
