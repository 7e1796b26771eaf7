"""Selection for generation (issue 34, item 1): title generation (mtsamples description -> sample_name), the
panel's hold-out (jt.split, 10 %), the same 60-step job choosing its checkpoint on ROUGE-L of greedy answers
(the default now) vs on the validation loss (the default before), each scored on 60 test rows no run saw,
beside the base model and jt.baseline's better generation baseline. Writes
benchmarks/results/selection_generation.json (with the CPU and its matmul ceilings).

    JUPYTER_TUNE_HOME=/tmp/sel-home python benchmarks/bench_selection.py
"""
import csv
import json
import random
import sys
import time
from pathlib import Path

import jupyter_tune as jt

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine  # noqa: E402

rows, seen = [], set()
with open("/work/shared/data/mtsamples/mtsamples.csv", newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        d, t = r["description"].strip(), r["sample_name"].strip()
        if d and t and d not in seen and t not in seen:
            seen.update((d, t))
            rows.append({"input_text": d, "output_text": t})
random.Random(0).shuffle(rows)
test, pool = rows[:60], rows[60:360]
T = "Write a short title for this medical note: {input_text}"
train, val = jt.split(pool, test_size=0.1, prompt_template=T, seed=0)
out = {"machine": machine(), "train": len(train), "validation": len(val), "test": len(test)}
for name, extra in (("rouge_l", {}), ("loss", {"select_best": "eval_total_loss"})):
    t0 = time.time()
    job = jt.tune(train_dataset=train, validation_dataset=val, prompt_template=T, max_steps=60, eval_steps=10,
                  evaluate_after=False, sample_prompts=0, seed=0, **extra)
    job.wait(timeout=3000)
    rep = jt.evaluate(job, test, task_type="text_generation", progress=False, max_output_tokens=24)
    m = job.metrics
    ev = m[m["eval_total_loss"].notna()][["step", "eval_total_loss"] + (["eval_rouge_l"] if "eval_rouge_l" in m else [])]
    out[name] = {"state": str(job.state), "best": job.record.get("best"), "stopped": job.record.get("stopped_early"),
                 "test_rouge_l": rep.rouge_l, "seconds": round(time.time() - t0, 1),
                 "evals": ev.to_dict("records")}
    print(name, json.dumps(out[name], default=str), flush=True)
base = jt.evaluate("HuggingFaceTB/SmolLM2-135M-Instruct", test, prompt_template=T, task_type="text_generation",
                   progress=False, max_output_tokens=24)
bl = jt.baseline(train, test, prompt_template=T)
out["base_test_rouge_l"], out["baseline"] = base.rouge_l, {"name": bl.model_name, "rouge_l": bl.rouge_l}
print(json.dumps(out, default=str, indent=1))
dest = Path(__file__).parent / "results" / "selection_generation.json"
dest.write_text(json.dumps(out, default=str, indent=1) + "\n")
