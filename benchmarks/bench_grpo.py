"""Reinforcement from graders on a CPU: GRPO from the base model, no demonstrations, on the small task.

The base model (SmolLM2-135M-Instruct) is asked to name the specialty of a short transcript among five
labels. It is evaluated greedily (jt.evaluate mode="generate") before and after a GRPO job whose rewards
are two graders: ``label_match`` with ``choices`` (the one label the answer names is right: a signal even
while the model still talks around its answer, nothing for reciting the label list) and exact ``label_match`` (the answer is the label alone).
Nothing trains on the ground-truth answers; they are only what the graders compare with.

Reported, in one run: macro F1 and accuracy of the answers read as the one label they name, and with the
exact mapping jt.evaluate uses (an answer that is not a label alone is wrong); the reward by step; the time
of each step; tokens/s of training (prompt + sampled tokens per second of the job's steps).

    python benchmarks/bench_grpo.py [--minutes 25] [--eval-rows 80] [--batch-size 16] [--lr 2e-4]
Writes benchmarks/results/grpo.json and prints a markdown table.
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
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [" + ", ".join(LABELS)
            + "]. Answer with the label only. TRANSCRIPT: {input_text}")
GRADERS = [{"kind": "label_match", "name": "one_label", "choices": LABELS},
           {"kind": "label_match", "name": "exact_label"}]


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in open(DATA / name) if line.strip()]


def measure(model, data: list[dict], max_tokens: int) -> dict:
    """Greedy answers; macro F1 / accuracy exact (jt.evaluate's) and read as the one label named."""
    from sklearn.metrics import f1_score

    import jupyter_tune as jt
    from jupyter_tune.graders import LabelMatch

    t = time.perf_counter()
    report = jt.evaluate(model, data, mode="generate", prompt_template=TEMPLATE, labels=LABELS,
                         max_output_tokens=max_tokens, progress=False)
    seconds = time.perf_counter() - t
    one = LabelMatch(choices=LABELS)
    answers = [str(a or "").strip().casefold() for a in report.predictions["raw_answer"]]
    by_fold = {lab.casefold(): lab for lab in LABELS}
    named = [by_fold.get(one.named(a), "none") for a in answers]
    truth = list(report.predictions["ground_truth"])
    return {"macro_f1_exact": float(report.metrics.loc["macro avg", "f1_score"]),
            "accuracy_exact": float(sum(report.predictions["correct"]) / len(truth)),
            "macro_f1_one_label": float(f1_score(truth, named, labels=LABELS, average="macro", zero_division=0)),
            "accuracy_one_label": sum(n == t for n, t in zip(named, truth, strict=True)) / len(truth),
            "no_single_label_named": named.count("none"), "seconds": round(seconds, 1),
            "examples": [{"truth": t, "answer": a} for t, a in list(zip(truth, answers, strict=True))[:6]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-clock budget of the GRPO job")
    ap.add_argument("--eval-rows", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=16, help="answers per step (num_generations per prompt)")
    ap.add_argument("--num-generations", type=int, default=4)
    ap.add_argument("--max-completion-length", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--steps", type=int, default=400, help="upper bound; the time budget usually ends the job")
    ap.add_argument("--out", default=str(RESULTS / "grpo.json"))
    args = ap.parse_args()

    import jupyter_tune as jt

    train, evaluation = rows("small-train.jsonl"), rows("small-eval.jsonl")[: args.eval_rows]
    started = time.perf_counter()
    base = measure(MODEL, evaluation, args.max_completion_length)
    print("base", json.dumps({k: v for k, v in base.items() if k != "examples"}), flush=True)
    job = jt.tune(base_model=MODEL, train_dataset=train, validation_dataset=rows("small-eval.jsonl")[-16:],
                  method="grpo", prompt_template=TEMPLATE, graders=GRADERS, num_generations=args.num_generations,
                  max_completion_length=args.max_completion_length, batch_size=args.batch_size,
                  learning_rate=args.lr, max_steps=args.steps, eval_steps=10, save_steps=10, max_seq_length=256,
                  evaluate_after=False, sample_prompts=2, tuned_model_display_name="bench-grpo")
    deadline = time.monotonic() + args.minutes * 60
    t_job = time.perf_counter()
    while not job.state.is_final and time.monotonic() < deadline:
        time.sleep(5)
    if not job.state.is_final:
        job.cancel()  # keeps the latest adapter (and the best checkpoint by eval_reward)
    state = job.wait(timeout=600)
    job_seconds = time.perf_counter() - t_job
    metrics = [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines() if line]
    train_rows = [m for m in metrics if "train_reward" in m]
    eval_rows = [m for m in metrics if "eval_reward" in m]
    tuned = measure(job.id, evaluation, args.max_completion_length)
    print("tuned", json.dumps({k: v for k, v in tuned.items() if k != "examples"}), flush=True)
    result = {
        "machine": machine(), "model": MODEL, "job": job.id, "state": state.value, "args": vars(args),
        "template": TEMPLATE, "graders": GRADERS, "base": base, "tuned": tuned,
        "job_seconds": round(job_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
        "steps": max((m["step"] for m in metrics), default=0),
        "train_tokens_per_second": [m.get("tokens_per_second") for m in train_rows],
        "train_reward": [(m["step"], m["train_reward"]) for m in train_rows],
        "eval_reward": [(m["step"], m["eval_reward"]) for m in eval_rows],
        "best": job.record.get("best"),
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    n = max(1, len(train_rows) // 4)
    quarters = [sum(m["train_reward"] for m in train_rows[i:i + n]) / len(train_rows[i:i + n])
                for i in range(0, len(train_rows), n)] if train_rows else []
    print(f"\n{result['machine']['cpu']}, {result['steps']} GRPO steps in {job_seconds / 60:.1f} min "
          f"({state.value}); train reward by quarter of the run: {', '.join(f'{q:.2f}' for q in quarters)}; "
          f"eval reward: {', '.join(f'{s}:{r:.2f}' for s, r in result['eval_reward'])}")
    print("| model | macro F1 (the one label named) | accuracy (one label) | macro F1 (exact) | no single label named | eval s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in (("base", base), ("GRPO-tuned", tuned)):
        print(f"| {name} | {r['macro_f1_one_label']:.3f} | {r['accuracy_one_label']:.3f} | "
              f"{r['macro_f1_exact']:.3f} | {r['no_single_label_named']}/{len(evaluation)} | {r['seconds']} |")


if __name__ == "__main__":
    main()
