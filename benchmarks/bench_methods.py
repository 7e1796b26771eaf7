"""The tuning methods on the default model: tokens/s and peak memory of full fine-tuning vs LoRA, and of DPO.

Each config trains `--steps` optimizer steps of `--batch-size` examples from small-train (mtsamples, short
inputs, the 5-label template) in a fresh process, through the job's own trainer builder (the same code a
job runs), the order alternating over repeats. The first step is warm-up and not timed. Tokens are the real
(non-pad) tokens that reach the model: a DPO pair counts its prompt twice (with the chosen and with the
rejected answer), and its reference pass (the adapter disabled) is not counted again. Peak memory is the
process's RSS peak (CPU) or the allocated peak (CUDA), model load included.

    python benchmarks/bench_methods.py [--steps 8] [--batch-size 8] [--repeats 2] [--configs lora,qlora,full,dpo,dpo_all_positions]
Writes benchmarks/results/methods.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model, matmul_ceiling

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "notebooks" / "data"  # the repo's own data: a fresh clone runs it
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [" + ", ".join(LABELS)
            + "]. TRANSCRIPT: {input_text}")
# dpo_all_positions: DPO with answer_only_logits off, TRL's own CPU path (its fused LM head scores every position)
CONFIGS = ("lora", "qlora", "full", "dpo", "dpo_all_positions")  # qlora: LoRA on a 4-bit (NF4) base
MATMUL: dict = {}


def preference_pairs(path: Path, n: int | None = None) -> list[dict]:
    """mtsamples as preference pairs: chosen = the right specialty, rejected = a wrong one (the next label)."""
    rows = [json.loads(line) for line in open(path) if line.strip()][:n]
    return [{"prompt": TEMPLATE.format(input_text=r["input_text"]), "chosen": r["output_text"],
             "rejected": LABELS[(LABELS.index(r["output_text"]) + 1 + i % (len(LABELS) - 1)) % len(LABELS)]}
            for i, r in enumerate(rows)]


def peak_memory() -> int:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run(method: str, steps: int, batch_size: int) -> dict:
    from transformers import TrainerCallback

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer

    train_file = DATA / "small-train.jsonl"
    if method.startswith("dpo"):
        params = TuningParams(base_model=MODEL, method="dpo", max_steps=steps, batch_size=batch_size,
                              save_steps=10**6, seed=0, answer_only_logits=method == "dpo")
        train = load_dataset(preference_pairs(train_file), preference=True)
    else:
        params = TuningParams(base_model=MODEL, method=method, prompt_template=TEMPLATE, max_steps=steps,
                              batch_size=batch_size, save_steps=10**6, seed=0)
        train = load_dataset(train_file, TEMPLATE)

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), trainer.counts["train"].tokens))

    with tempfile.TemporaryDirectory() as tmp:
        trainer, _, info, _ = build_trainer(params, train, None, Path(tmp))
        trainer.args.disable_tqdm = True
        clock = Clock()
        trainer.add_callback(clock)
        trainer.train()
    (t0, k0), (t1, k1) = clock.marks[0], clock.marks[-1]
    return {"tokens_per_second": (k1 - k0) / (t1 - t0), "seconds_per_step": (t1 - t0) / (len(clock.marks) - 1),
            "timed_steps": len(clock.marks) - 1, "peak_memory_bytes": peak_memory(), "dtype": info["dtype"],
            "device": info["device"], "trainable_params": info["trainable_params"],
            "total_params": info["total_params"], "fast_path": {k: v["on"] for k, v in info["fast_path"].items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "OUT"))
    ap.add_argument("--result-file", type=Path, default=RESULTS / "methods.json")
    a = ap.parse_args()
    if a.worker:
        Path(a.worker[1]).write_text(json.dumps(run(a.worker[0], a.steps, a.batch_size)))
        return
    global MATMUL
    MATMUL = matmul_ceiling()
    configs = a.configs.split(",")
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for r in range(a.repeats):
        for c in (configs if r % 2 == 0 else configs[::-1]):  # alternate the order
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                subprocess.run([sys.executable, __file__, "--steps", str(a.steps), "--batch-size",
                                str(a.batch_size), "--worker", c, out.name], check=True, env=env,
                               cwd=Path(__file__).parent)
                res = json.loads(Path(out.name).read_text())
            runs[c].append(res)
            print(f"{c:17s} repeat {r}: {res['tokens_per_second']:.0f} tok/s, {res['seconds_per_step']:.2f} s/step, "
                  f"peak {res['peak_memory_bytes'] / 1e9:.2f} GB", flush=True)
            summary = write(a, runs)  # after every run: a cut-short benchmark keeps what it measured
    for c, s in summary.items():
        print(f"{c:17s} {s['tokens_per_second_median']:7.0f} tok/s  peak {s['peak_memory_gb_max']:.2f} GB  "
              f"trainable {s['trainable_params']:,}/{s['total_params']:,}")


def write(a, runs: dict[str, list[dict]]) -> dict:
    summary = {}
    for c, rs in runs.items():
        if not rs:
            continue
        summary[c] = {"tokens_per_second_median": statistics.median(r["tokens_per_second"] for r in rs),
                      "seconds_per_step_median": statistics.median(r["seconds_per_step"] for r in rs),
                      "peak_memory_gb_max": max(r["peak_memory_bytes"] for r in rs) / 1e9,
                      "trainable_params": rs[0]["trainable_params"], "total_params": rs[0]["total_params"],
                      "dtype": rs[0]["dtype"], "device": rs[0]["device"], "fast_path": rs[0]["fast_path"]}
    if "lora" in summary:
        for c in summary:
            summary[c]["tokens_per_second_vs_lora"] = (summary[c]["tokens_per_second_median"]
                                                       / summary["lora"]["tokens_per_second_median"])
            summary[c]["peak_memory_vs_lora"] = summary[c]["peak_memory_gb_max"] / summary["lora"]["peak_memory_gb_max"]
    result = {"model": MODEL, "complete": all(len(rs) == a.repeats for rs in runs.values()), "data": "small-train.jsonl (5 labels, short inputs)", "steps": a.steps,
              "batch_size": a.batch_size, "repeats": a.repeats, "cpu": cpu_model(),
              "matmul_flops": MATMUL, "load_average_1_5_15": os.getloadavg(), "summary": summary, "runs": runs,
              "note": "tokens/s counts real tokens after the first (warm-up) step; DPO counts chosen and rejected "
                      "sequences (its reference pass is extra work not counted); peak memory includes the model "
                      "load; on a shared 2-core machine figures are noisy."}
    RESULTS.mkdir(parents=True, exist_ok=True)
    a.result_file.parent.mkdir(parents=True, exist_ok=True)
    a.result_file.write_text(json.dumps(result, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
