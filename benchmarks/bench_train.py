"""Training speed: jupyter_tune's trainer against B0, the seed guide's recipe, in the same run.

B0: transformers Trainer + peft LoRA r16 / alpha 32 on q_proj, v_proj, DataCollatorForLanguageModeling(mlm=False)
on examples padded to a fixed length (256), default precision (fp32). Ours: jupyter_tune's defaults.
Same model, same examples, same number of optimizer steps, each run in a fresh process, the order
alternating over repeats. Reports real (non-pad) tokens per second, wall time, peak RSS (CPU) or
allocated memory (CUDA), the eval loss on answer tokens of small-eval after training, and the
achieved FLOP/s against this machine's bf16 matmul ceiling measured in the same run.

    python benchmarks/bench_train.py [--steps 12] [--repeats 2] [--batch-size 8]
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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mtsamples"
if not DATA.is_dir():
    DATA = ROOT / "notebooks" / "data"
RESULTS = ROOT / "benchmarks" / "results"
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / "
            "Pulmonary, Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")
B0_LENGTH = 256
EVAL_ROWS = 40


class CountingCollator:
    """Counts the real (non-pad) tokens that reach the model."""

    def __init__(self, inner):
        self.inner, self.tokens = inner, 0

    def __call__(self, features):
        batch = self.inner(features)
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        return batch


def eval_loss(model, tokenizer, device) -> float:
    """Mean cross-entropy over the answer tokens of the first EVAL_ROWS of small-eval (same for both)."""
    import torch
    import torch.nn.functional as F

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.data.tokenize import encode_example

    ds = load_dataset(DATA / "small-eval.jsonl", TEMPLATE)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in ds.examples[:EVAL_ROWS]:
            enc = encode_example(tokenizer, ex, 1024)
            ids = torch.tensor([enc.input_ids], device=device)
            labels = torch.tensor([enc.labels[1:]], device=device)
            logits = model(input_ids=ids).logits[:, :-1].float()
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
            total += float(loss)
            count += int((labels != -100).sum())
    return total / count


def peak_memory() -> int:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_ours(steps: int, batch_size: int) -> dict:
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer

    params = TuningParams(train_dataset=str(DATA / "small-train.jsonl"), prompt_template=TEMPLATE,
                          max_steps=steps, batch_size=batch_size, save_steps=10**6, seed=0)
    train = load_dataset(DATA / "small-train.jsonl", TEMPLATE)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, tok, info, _ = build_trainer(params, train, None, tmp)
        trainer.args.disable_tqdm = True
        trainer.data_collator = CountingCollator(trainer.data_collator)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        model = trainer.model
    return {"tokens": trainer.data_collator.tokens, "train_seconds": wall, "dtype": info["dtype"],
            "device": info["device"], "params": info["total_params"],
            "eval_loss": eval_loss(model, tok, model.device), "peak_memory_bytes": peak_memory()}


def run_b0(steps: int, batch_size: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.models.resolve import resolve_model

    path = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)  # default precision: fp32
    if torch.cuda.is_available():
        model = model.to("cuda")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                             lora_dropout=0.05, task_type="CAUSAL_LM"))
    train = load_dataset(DATA / "small-train.jsonl", TEMPLATE)
    texts = [tok.apply_chat_template(e.messages, tokenize=False) for e in train.examples]
    rows = [dict(tok(t, padding="max_length", truncation=True, max_length=B0_LENGTH)) for t in texts]
    collator = CountingCollator(DataCollatorForLanguageModeling(tok, mlm=False))
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch_size, max_steps=steps,
                                 learning_rate=2e-4, logging_steps=1, save_strategy="no", report_to=[],
                                 seed=0, disable_tqdm=True, use_cpu=not torch.cuda.is_available())
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    return {"tokens": collator.tokens, "train_seconds": wall, "dtype": "float32",
            "device": str(model.device), "params": sum(p.numel() for p in model.parameters()),
            "eval_loss": eval_loss(model, tok, model.device), "peak_memory_bytes": peak_memory()}


def matmul_ceiling() -> dict:
    """bf16 and fp32 matmul FLOP/s on this machine, for the utilisation figure."""
    import torch

    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        n = 8192 if dev == "cuda" else 1024
        a, b = torch.randn(n, n, dtype=dtype, device=dev), torch.randn(n, n, dtype=dtype, device=dev)
        for _ in range(3):
            a @ b
        reps = 50 if dev == "cuda" else 10
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        out[name] = 2 * n**3 * reps / (time.perf_counter() - t0)
    return out


def worker(which: str, steps: int, batch_size: int, out: str) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    res = (run_ours if which == "ours" else run_b0)(steps, batch_size)
    res["tokens_per_second"] = res["tokens"] / res["train_seconds"]
    Path(out).write_text(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--worker", choices=["ours", "b0"])
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.steps, a.batch_size, a.out)

    runs: dict[str, list[dict]] = {"ours": [], "b0": []}
    for r in range(a.repeats):
        order = ["b0", "ours"] if r % 2 == 0 else ["ours", "b0"]
        for which in order:
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                t0 = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--worker", which, "--steps", str(a.steps),
                                "--batch-size", str(a.batch_size), "--out", f.name], check=True,
                               stdout=subprocess.DEVNULL)
                res = json.loads(Path(f.name).read_text())
                res["process_seconds"] = time.perf_counter() - t0
            runs[which].append(res)
            print(f"  repeat {r + 1} {which:>4}: {res['tokens_per_second']:7.1f} real tokens/s, "
                  f"{res['train_seconds']:6.1f} s training, eval loss {res['eval_loss']:.3f}", flush=True)

    ceiling = matmul_ceiling()
    med = {k: {m: statistics.median(x[m] for x in v) for m in
               ("tokens_per_second", "train_seconds", "peak_memory_bytes", "eval_loss", "process_seconds")}
           for k, v in runs.items()}
    n_params = runs["ours"][0]["params"]
    for k in med:
        med[k]["achieved_flops"] = 4 * n_params * med[k]["tokens_per_second"]
        med[k]["fraction_of_bf16_ceiling"] = med[k]["achieved_flops"] / ceiling["bf16"]
    result = {
        "name": "train", "steps": a.steps, "batch_size": a.batch_size, "repeats": a.repeats,
        "device": runs["ours"][0]["device"], "ours_dtype": runs["ours"][0]["dtype"],
        "ours": med["ours"], "b0": med["b0"], "runs": runs, "matmul_ceiling_flops": ceiling,
        "tokens_per_second_ratio": med["ours"]["tokens_per_second"] / med["b0"]["tokens_per_second"],
        "peak_memory_ratio": med["ours"]["peak_memory_bytes"] / med["b0"]["peak_memory_bytes"],
        "eval_loss_delta": med["ours"]["eval_loss"] - med["b0"]["eval_loss"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(result, indent=2))
    print(f"\ntrain benchmark: {a.steps} steps x batch {a.batch_size}, median of {a.repeats} "
          f"({result['device']}; bf16 matmul ceiling {ceiling['bf16'] / 1e9:.0f} GFLOP/s)")
    print(f"{'':>6} {'real tok/s':>11} {'train s':>8} {'peak mem':>9} {'eval loss':>9} {'GFLOP/s':>8} {'of ceil':>7}")
    for k in ("b0", "ours"):
        m = med[k]
        print(f"{k:>6} {m['tokens_per_second']:11.1f} {m['train_seconds']:8.1f} "
              f"{m['peak_memory_bytes'] / 2**30:8.2f}G {m['eval_loss']:9.3f} {m['achieved_flops'] / 1e9:8.1f} "
              f"{100 * m['fraction_of_bf16_ceiling']:6.1f}%")
    print(f" ratio {result['tokens_per_second_ratio']:10.2f}x {'':>8} {result['peak_memory_ratio']:8.2f}x")


if __name__ == "__main__":
    main()
