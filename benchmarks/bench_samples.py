"""The cost of sample answers at each evaluation (sample_prompts, training/samples.py) on the small task.

A default job on small-train (jt.split(test_size=0.1): 24 validation rows; batch 8, 5 epochs, an evaluation
every tenth of the steps) runs for minutes, longer than this busy 2-core machine allows a benchmark. So one
job runs the default settings for --steps steps with the default job's evaluation interval, and its own
records give the pieces: the seconds per training step (metrics.jsonl times), per evaluation (loss and task
metric), per sample-answer pass (samples.jsonl ``seconds``) and the rest (loading, checkpoints). The default
job's time is those pieces scaled to its steps and evaluations; the share is its sample-answer seconds over
that time. The short job's own share is recorded beside it, and each evaluation's answers are printed.
Writes benchmarks/results/samples.json.

    python benchmarks/bench_samples.py [--steps 26] [--eval-steps 13] [--sample-prompts 4]
    python benchmarks/bench_samples.py --job <store>/jobs/<job id>     # the figures from a job already run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "notebooks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
TEMPLATE = ("Assign a label from [Cardiovascular / Pulmonary, Gastroenterology, Neurology, Orthopedic, Urology]. "
            "TRANSCRIPT: {input_text}")


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def default_plan(n_train: int, batch_size: int = 8) -> dict:
    """Steps and evaluations of a default job (training/arguments.py's shared_arguments, selection.EvaluateAtEnd)."""
    from jupyter_tune.params import choose_epochs

    epochs = choose_epochs(n_train)
    steps = math.ceil(n_train / batch_size) * epochs
    eval_steps = max(1, steps // 10)
    evaluations = steps // eval_steps + (steps % eval_steps != 0)  # the last step is always evaluated
    return {"train_rows": n_train, "epochs": epochs, "steps": steps, "eval_steps": eval_steps,
            "evaluations": evaluations}


def pieces(job) -> dict:
    """Seconds per training step, per evaluation, per sample pass, and the rest, from one job's records."""
    from jupyter_tune.jobs.samples import read_evaluations

    rows = job.store.read_metrics(job.id)
    train = {r["step"]: r["time"] for r in rows if "train_total_loss" in r}
    evals = {r["step"]: r["time"] for r in rows if "eval_total_loss" in r}
    samples = read_evaluations(job.store, job.id)
    # a step's time: between two consecutive train lines with no evaluation between them
    steps = sorted(train)
    step_s = statistics.median(train[b] - train[a] for a, b in zip(steps, steps[1:])
                               if b == a + 1 and a not in evals)
    eval_s = statistics.median(evals[s] - train[s] for s in evals if s in train)
    sample_s = [e["seconds"] for e in samples]
    rec = job.record
    wall = _unix(rec["end_time"]) - _unix(rec["start_time"])
    n = max(steps)
    rest = wall - n * step_s - len(evals) * eval_s - sum(sample_s)
    return {"job_seconds": wall, "steps": n, "evaluations": len(evals), "step_seconds": step_s,
            "eval_seconds": eval_s, "sample_seconds": sample_s, "rest_seconds": rest,
            "max_new_tokens": samples[0]["max_new_tokens"] if samples else None,
            "share_in_this_job": sum(sample_s) / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=26, help="steps of the measured job")
    ap.add_argument("--eval-steps", type=int, default=None,
                    help="its evaluation interval; empty: the default job's (13: two evaluations in 26 steps)")
    ap.add_argument("--sample-prompts", type=int, default=4)
    ap.add_argument("--job", help="read a finished job's records instead of running one: its folder "
                                  "(the job may have failed after training, e.g. in a later phase)")
    args = ap.parse_args()
    if args.job:
        os.environ["JUPYTER_TUNE_HOME"] = str(Path(args.job).resolve().parent.parent)
    if not os.environ.get("JUPYTER_TUNE_HOME"):  # not the user's jobs
        os.environ["JUPYTER_TUNE_HOME"] = tempfile.mkdtemp(prefix="bench-samples-")
    import jupyter_tune as jt

    train, val = jt.split(str(DATA / "small-train.jsonl"), test_size=0.1)
    plan = default_plan(len(train))
    if args.job:
        job = jt.get_job(Path(args.job).name)
    else:
        job = jt.tune(train_dataset=train, validation_dataset=val, prompt_template=TEMPLATE,
                      max_steps=args.steps, eval_steps=args.eval_steps or plan["eval_steps"],
                      sample_prompts=args.sample_prompts, tuned_model_display_name="bench-samples",
                      evaluate_after=False)  # the training job alone: the share is over less time, not more
        if job.wait() is not jt.JobState.SUCCEEDED:
            print(job.log(40), file=sys.stderr)
            return 1
    p = pieces(job)
    per_sample = statistics.mean(p["sample_seconds"])
    default_s = (p["rest_seconds"] + plan["steps"] * p["step_seconds"]
                 + plan["evaluations"] * (p["eval_seconds"] + per_sample))
    share = plan["evaluations"] * per_sample / default_s
    from jupyter_tune.jobs.samples import read_evaluations

    for ev in read_evaluations(job.store, job.id):
        print(f"step {ev['step']} ({ev['seconds']:.2f} s):")
        for s in ev["samples"]:
            print(f"  row {s['row']:>3}  expected {s['expected']!r:<30} answer {s['answer']!r} "
                  f"{'right' if s['correct'] else 'wrong'}")
    result = {"name": "samples", "cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
              "validation_rows": len(val), "sample_prompts": args.sample_prompts, "measured_job": p,
              "default_job": {**plan, "estimated_seconds": default_s,
                              "sample_seconds": plan["evaluations"] * per_sample},
              "share_of_default_job": share, "job_id": job.id,
              "samples": read_evaluations(job.store, job.id)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "samples.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"step {p['step_seconds']:.2f} s, evaluation {p['eval_seconds']:.2f} s, sample answers "
          f"{per_sample:.2f} s per evaluation ({p['max_new_tokens']} new tokens at most)")
    print(f"default job: {plan['steps']} steps, {plan['evaluations']} evaluations, ~{default_s:.0f} s; "
          f"sample answers {plan['evaluations'] * per_sample:.1f} s = {100 * share:.1f}% "
          f"(this {p['steps']}-step job: {100 * p['share_in_this_job']:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
