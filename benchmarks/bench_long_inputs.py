"""Long transcripts at evaluation: the same tuned model scored with each `long_inputs` choice (whole prompts up to
the model's context, cut to the job's max_seq_length as training cut them, or windows whose label
log-likelihoods are averaged), on the specialty task's evaluation rows (transcripts of about 700 tokens, up to
4,000). Reports macro F1, accuracy, seconds and prompts scored for each, so the default ("auto": cut) is
a measured choice. Writes benchmarks/results/long_inputs[-NAME].json.

    JUPYTER_TUNE_HOME=... python benchmarks/bench_long_inputs.py --job JOB_ID [--modes whole,cut,chunks]
        [--eval-rows N] [--max-input-tokens L] [--name NAME]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "notebooks" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--job", required=True, help="a tuned job's id (in $JUPYTER_TUNE_HOME)")
    ap.add_argument("--modes", default="whole,cut,chunks")
    ap.add_argument("--eval-file", default="specialty-eval.jsonl")
    ap.add_argument("--labels-file", default="specialty-labels.txt")
    ap.add_argument("--eval-rows", type=int, default=None)
    ap.add_argument("--max-input-tokens", type=int, default=None, help="default: the job's max_seq_length")
    ap.add_argument("--name", default=None, help="results file suffix")
    a = ap.parse_args()

    import pandas as pd

    import jupyter_tune as jt

    labels = [x.strip() for x in open(DATA / a.labels_file) if x.strip()]
    rows = pd.read_json(DATA / a.eval_file, lines=True)
    if a.eval_rows:
        rows = rows.head(a.eval_rows)
    job = jt.get_job(a.job)
    lm = jt.load_model(job)
    lengths = [len(lm.tokenizer(t)["input_ids"]) for t in rows["input_text"]]
    out = {"machine": machine(), "job": job.id, "model": job.record["params"]["base_model"],
           "task": job.record["params"].get("task") or "generation",
           "max_seq_length": job.record["params"]["max_seq_length"], "eval_file": a.eval_file,
           "eval_rows": len(rows), "input_tokens": {"mean": sum(lengths) / len(lengths), "max": max(lengths),
                                                   "over_max_seq_length": sum(n > job.record["params"]["max_seq_length"]
                                                                              for n in lengths)},
           "modes": {}}
    for mode in a.modes.split(","):
        t = time.perf_counter()
        report = jt.evaluate(lm, rows, labels=labels, long_inputs=mode, max_input_tokens=a.max_input_tokens,
                             progress=False)
        seconds = time.perf_counter() - t
        out["modes"][mode] = {"macro_f1": report.macro_f1, "accuracy": report.accuracy, "seconds": round(seconds, 1),
                              "long_inputs": report.long_inputs, "scoring": report.scoring,
                              "rows_scored": report.evaluation_status["num_successful_rows"]}
        print(f"{mode:7s} macro F1 {report.macro_f1:.3f}  accuracy {report.accuracy:.3f}  {seconds:6.0f} s  "
              f"{report.long_inputs}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "long_inputs" + (f"-{a.name}" if a.name else "") + ".json"
    (RESULTS / name).write_text(json.dumps(out, indent=1, default=float))
    print(f"\n{out['machine']['cpu']}; {job.id} ({out['model']}, max_seq_length {out['max_seq_length']}); "
          f"{len(rows)} rows, {out['input_tokens']['mean']:.0f} tokens on average, {out['input_tokens']['max']} at most")
    print("| long_inputs | macro F1 | accuracy | seconds | prompts |\n| --- | --- | --- | --- | --- |")
    for mode, r in out["modes"].items():
        print(f"| {mode} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | {r['seconds']:.0f} | "
              f"{r['long_inputs']['prompts'] if r['long_inputs'] else '-'} |")


if __name__ == "__main__":
    main()
