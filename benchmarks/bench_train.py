"""Training speed: jupyter_tune's trainer against the libraries' recipes, in the same run.

B0: the seed guide's recipe: transformers Trainer + peft LoRA r16 / alpha 32 on q_proj, v_proj,
    DataCollatorForLanguageModeling(mlm=False) on examples padded to a fixed length (256), fp32.
B1: the best the libraries give without our code: transformers Trainer, the base in bf16 where the
    hardware runs it fast (peft's fp32 adapters), DataCollatorWithFlattening (padding-free rows; the model
    builds the block mask), LoRA on all linear layers with our rank/alpha/learning rate, loss on the answers.
ours: jupyter_tune's defaults; and one ablation row per fast-path piece (that piece switched off).
Same model, same examples, same number of optimizer steps, each run in a fresh process, the order
alternating over repeats. Reports real (non-pad) tokens per second, wall time, peak RSS (CPU) or
allocated memory (CUDA), the eval loss on answer tokens after training, and the achieved FLOP/s against
this machine's bf16 matmul ceiling measured in the same run.

    python benchmarks/bench_train.py [--model default|gemma3] [--length short|long] [--steps N]
                                     [--repeats 2] [--batch-size 8] [--configs b1,ours,...]
    python benchmarks/bench_train.py --processes 2 [--model ...] [--length ...]
--processes N: ours as real jobs (jt.tune) on 1 and on N processes (torchrun data parallel, Gloo on CPU,
NCCL on CUDA) with the same global batch and steps; reports the scaling (N-process tokens/s over 1-process).
short: small-train.jsonl (descriptions); long: train.jsonl (full transcripts, max_seq_length 1024).
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

from jupyter_tune.params import TuningParams  # torch-free: the switches' defaults

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "notebooks" / "data"  # the repo's own data: a fresh clone runs it
RESULTS = ROOT / "benchmarks" / "results"
SMALL_LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
MODELS = {"default": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3": "google/gemma-3-270m"}
B0_LENGTH = 256
LONG_MAX_SEQ = 1024
SWITCHES = ("packed_attention", "answer_only_logits", "fused_lora", "master_weights")
# Each piece against ours with it flipped: "ours-no-X" for a piece on by default, "ours-with-X" for one off
# by default (fused_lora: it did not pay on the CPUs measured).
_DEFAULTS = {name: getattr(TuningParams(), name) for name in SWITCHES}
ABLATIONS = tuple(f"ours-{'no' if _DEFAULTS[s] else 'with'}-{s}" for s in SWITCHES)


def _flipped(which: str) -> str | None:
    """The switch an ablation flips ("ours-no-X" / "ours-with-X" -> "X"), None for "ours"."""
    return which.split("-", 2)[2] if which.startswith(("ours-no-", "ours-with-")) else None


def task(length: str) -> tuple[Path, Path, str, int, int]:
    """(train file, eval file, prompt template, max_seq_length, eval rows) for short or long inputs."""
    if length == "long":
        labels = [x.strip() for x in open(DATA / "labels.txt") if x.strip()]
        train, evald, max_len, rows = DATA / "train.jsonl", DATA / "eval.jsonl", LONG_MAX_SEQ, 16
    else:
        labels, train, evald, max_len, rows = SMALL_LABELS, DATA / "small-train.jsonl", DATA / "small-eval.jsonl", 1024, 40
    template = ("Assign a label to the given medical transcript from among these labels: ["
                + ", ".join(labels) + "]. TRANSCRIPT: {input_text}")
    return train, evald, template, max_len, rows


class CountingCollator:
    """Counts the real (non-pad) tokens that reach the model."""

    def __init__(self, inner):
        self.inner, self.tokens = inner, 0

    def __call__(self, features):
        batch = self.inner(features)
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        return batch


def eval_loss(model, tokenizer, device, length: str) -> float:
    """Mean cross-entropy over the answer tokens of the first eval rows (the same for every config)."""
    import torch
    import torch.nn.functional as F

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.data.tokenize import encode_example

    _, evald, template, max_len, rows = task(length)
    ds = load_dataset(evald, template)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in ds.examples[:rows]:
            enc = encode_example(tokenizer, ex, max_len)
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


def run_ours(steps: int, batch_size: int, model_id: str, length: str, off: str | None = None,
             method: str = "lora") -> dict:
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer

    train_file, _, template, max_len, _ = task(length)
    params = TuningParams(base_model=model_id, train_dataset=str(train_file), prompt_template=template,
                          max_steps=steps, batch_size=batch_size, save_steps=10**6, seed=0,
                          max_seq_length=max_len, method=method, **({off: not _DEFAULTS[off]} if off else {}))
    train = load_dataset(train_file, template)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, tok, info, _ = build_trainer(params, train, None, tmp)
        trainer.args.disable_tqdm = True
        trainer.data_collator = CountingCollator(trainer.data_collator)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        model = trainer.model
    return {"tokens": trainer.data_collator.tokens, "train_seconds": wall, "dtype": info["dtype"],
            "device": info["device"], "params": info["total_params"], "fast_path": info["fast_path"],
            "eval_loss": eval_loss(model, tok, model.device, length), "peak_memory_bytes": peak_memory()}


def run_b1(steps: int, batch_size: int, model_id: str, length: str) -> dict:
    """The libraries' best without our code (see the module docstring)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorWithFlattening,
        Trainer,
        TrainingArguments,
    )

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.data.tokenize import encode_example
    from jupyter_tune.models.arch import library_attention
    from jupyter_tune.models.resolve import resolve_model
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.setup import choose_hardware

    defaults = TuningParams()
    train_file, _, template, max_len, _ = task(length)
    path = resolve_model(model_id)
    tok = AutoTokenizer.from_pretrained(path)
    dtype = choose_hardware(defaults).dtype  # bf16 where the hardware runs it fast
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.set_attn_implementation(library_attention(model.config))
    if torch.cuda.is_available():
        model = model.to("cuda")
    model = get_peft_model(model, LoraConfig(r=defaults.adapter_size, lora_alpha=defaults.effective_lora_alpha,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    train = load_dataset(train_file, template)
    rows = []
    for ex in train.examples:
        enc = encode_example(tok, ex, max_len)  # the same examples, truncation and trained tokens as ours
        rows.append({"input_ids": enc.input_ids, "labels": enc.labels})
    collator = CountingCollator(DataCollatorWithFlattening())
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch_size, max_steps=steps,
                                 learning_rate=defaults.effective_learning_rate, logging_steps=1,
                                 save_strategy="no", report_to=[], seed=0, data_seed=0, disable_tqdm=True,
                                 remove_unused_columns=False, warmup_steps=1,
                                 use_cpu=not torch.cuda.is_available())
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    return {"tokens": collator.tokens, "train_seconds": wall, "dtype": str(dtype).replace("torch.", ""),
            "device": str(model.device), "params": sum(p.numel() for p in model.parameters()),
            "eval_loss": eval_loss(model, tok, model.device, length), "peak_memory_bytes": peak_memory()}


def run_b0(steps: int, batch_size: int, model_id: str, length: str) -> dict:
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

    path = resolve_model(model_id)
    train_file, _, template, max_len, _ = task(length)
    pad_to = B0_LENGTH if length == "short" else max_len
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path)  # default precision: fp32
    if torch.cuda.is_available():
        model = model.to("cuda")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                             lora_dropout=0.05, task_type="CAUSAL_LM"))
    train = load_dataset(train_file, template)
    texts = [tok.apply_chat_template(e.messages, tokenize=False) if tok.chat_template else
             "\n".join(m["content"] for m in e.messages) for e in train.examples]
    rows = [dict(tok(t, padding="max_length", truncation=True, max_length=pad_to)) for t in texts]
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
            "eval_loss": eval_loss(model, tok, model.device, length), "peak_memory_bytes": peak_memory()}


def worker(which: str, steps: int, batch_size: int, model: str, length: str, out: str,
           model_dir: str | None = None) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    model_id = model_dir or MODELS[model]
    if which == "qlora":  # ours on a 4-bit (NF4) base
        res = run_ours(steps, batch_size, model_id, length, method="qlora")
    elif which == "b0":
        res = run_b0(steps, batch_size, model_id, length)
    elif which == "b1":
        res = run_b1(steps, batch_size, model_id, length)
    else:
        res = run_ours(steps, batch_size, model_id, length, _flipped(which))
    res["tokens_per_second"] = res["tokens"] / res["train_seconds"]
    Path(out).write_text(json.dumps(res))


def run_processes(a, steps: int) -> None:
    """ours as jobs on 1 and on a.processes processes, same global batch; results in train-processes.json."""
    os.environ.setdefault("JUPYTER_TUNE_HOME", tempfile.mkdtemp(prefix="jt-bench-"))
    os.environ["JUPYTER_TUNE_SLOTS"] = "1"  # one job at a time: they must not share the cores
    import jupyter_tune as jt

    train_file, _, template, max_len, _ = task(a.length)
    runs: dict[int, list[dict]] = {1: [], a.processes: []}
    for r in range(a.repeats):
        for n in ((1, a.processes) if r % 2 == 0 else (a.processes, 1)):
            job = jt.tune(base_model=MODELS[a.model], train_dataset=str(train_file), prompt_template=template,
                          max_steps=steps, batch_size=max(1, a.batch_size // n), num_processes=n, seed=0,
                          max_seq_length=max_len, save_steps=10**6, tuned_model_display_name=f"bench-{n}proc")
            t0 = time.perf_counter()
            state = job.wait()
            wall = time.perf_counter() - t0
            if state is not jt.JobState.SUCCEEDED:
                raise SystemExit(f"job {job.id} on {n} processes ended {state.value}: {job.error}")
            m = job.metrics
            tps = m["tokens_per_second"].dropna().iloc[1:]  # the first step pays the start-up
            res = {"processes": n, "per_process_batch": max(1, a.batch_size // n), "job_seconds": wall,
                   "tokens_per_second": float(statistics.median(tps)),
                   "final_train_loss": float(m["train_total_loss"].dropna().iloc[-1])}
            runs[n].append(res)
            print(f"  repeat {r + 1} {n} process(es): {res['tokens_per_second']:7.1f} real tokens/s, "
                  f"job {wall:6.1f} s, final loss {res['final_train_loss']:.3f}", flush=True)
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("tokens_per_second", "job_seconds",
                                                               "final_train_loss")} for n, v in runs.items()}
    ceiling = matmul_ceiling()
    scaling = med[a.processes]["tokens_per_second"] / med[1]["tokens_per_second"]
    result = {"name": "train-processes", "model": MODELS[a.model], "length": a.length, "steps": steps,
              "global_batch": a.batch_size, "processes": a.processes, "cpu": cpu_model(),
              "cpu_count": os.cpu_count(), "matmul_ceiling_flops": ceiling, "median": med,
              "scaling": scaling, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train-processes.json").write_text(json.dumps(result, indent=2))
    print(f"\n{MODELS[a.model]}, {a.length}, {steps} steps, global batch {a.batch_size} ({result['cpu']}, "
          f"{os.cpu_count()} cores; bf16 {ceiling['bf16'] / 1e9:.0f}, fp32 {ceiling['fp32'] / 1e9:.0f} GFLOP/s)")
    for n, m in med.items():
        print(f"  {n} process(es): {m['tokens_per_second']:7.1f} real tokens/s, job {m['job_seconds']:.0f} s, "
              f"final loss {m['final_train_loss']:.3f}")
    print(f"  scaling {a.processes} vs 1: {scaling:.2f}x")


def embedding_params(model_id: str) -> int:
    """vocab_size x hidden_size of the model's input embedding, from its config."""
    from transformers import AutoConfig

    from jupyter_tune.models.resolve import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(model_id))
    config = getattr(config, "text_config", None) or config
    return int(config.vocab_size) * int(config.hidden_size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="default")
    ap.add_argument("--length", choices=["short", "long"], default="short")
    ap.add_argument("--steps", type=int, default=None, help="default: 12 short, 6 long")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ablation-repeats", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--configs", default=None,
                    help="comma-separated from b0, b1, ours, qlora, " + ", ".join(ABLATIONS) + " (default: b0 on the default "
                         "model's short inputs, b1, ours and every ablation)")
    ap.add_argument("--processes", type=int, default=None,
                    help="compare ours on 1 and on N processes (torchrun data parallel), as jobs")
    ap.add_argument("--model-dir", help="a local model folder in place of --model's offline model (make gpu-check: "
                                        "the architecture with random weights)")
    ap.add_argument("--result-file", help="where the result JSON goes (default: benchmarks/results/train*.json)")
    ap.add_argument("--worker")
    ap.add_argument("--out")
    a = ap.parse_args()
    steps = a.steps or (12 if a.length == "short" else 6)
    if a.processes:
        return run_processes(a, steps)
    if a.worker:
        return worker(a.worker, steps, a.batch_size, a.model, a.length, a.out, a.model_dir)
    if a.configs:
        configs = a.configs.split(",")
    else:
        configs = (["b0"] if a.model == "default" and a.length == "short" else []) + ["b1", "ours", *ABLATIONS]
    main_configs = [c for c in configs if _flipped(c) is None]
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for r in range(max(a.repeats, a.ablation_repeats)):
        todo = [c for c in configs if r < (a.ablation_repeats if c in ABLATIONS else a.repeats)]
        for which in (todo if r % 2 == 0 else todo[::-1]):
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                t0 = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--worker", which, "--steps", str(steps),
                                "--batch-size", str(a.batch_size), "--model", a.model, "--length", a.length,
                                "--out", f.name, *(["--model-dir", a.model_dir] if a.model_dir else [])],
                               check=True, stdout=subprocess.DEVNULL)
                res = json.loads(Path(f.name).read_text())
                res["process_seconds"] = time.perf_counter() - t0
            runs[which].append(res)
            print(f"  repeat {r + 1} {which:>26}: {res['tokens_per_second']:7.1f} real tokens/s, "
                  f"{res['train_seconds']:6.1f} s training, eval loss {res['eval_loss']:.3f}", flush=True)

    ceiling = matmul_ceiling()
    med = {k: {m: statistics.median(x[m] for x in v) for m in
               ("tokens_per_second", "train_seconds", "peak_memory_bytes", "eval_loss", "process_seconds")}
           for k, v in runs.items() if v}
    n_params = runs["ours"][0]["params"] if runs.get("ours") else next(iter(runs.values()))[0]["params"]
    # Only matmuls count: the embedding table is a lookup (tied, it is also the LM head, which ours runs on the
    # answer tokens alone: left out, so the figure errs low). Per token: forward 2N, backward 2N (input
    # gradients; the frozen base has no weight gradients).
    n_params -= embedding_params(a.model_dir or MODELS[a.model])
    for k in med:
        med[k]["achieved_flops"] = 4 * n_params * med[k]["tokens_per_second"]
        med[k]["fraction_of_bf16_ceiling"] = med[k]["achieved_flops"] / ceiling["bf16"]
    ratios = {}
    if "qlora" in med and "ours" in med:  # QLoRA beside LoRA (ours): speed, memory and loss of the 4-bit base
        ratios["qlora_vs_ours"] = {
            "tokens_per_second": med["qlora"]["tokens_per_second"] / med["ours"]["tokens_per_second"],
            "peak_memory": med["qlora"]["peak_memory_bytes"] / med["ours"]["peak_memory_bytes"],
            "eval_loss_delta": med["qlora"]["eval_loss"] - med["ours"]["eval_loss"]}
    if "ours" in med:
        for base in ("b0", "b1"):
            if base in med:
                ratios[f"ours_vs_{base}"] = {
                    "tokens_per_second": med["ours"]["tokens_per_second"] / med[base]["tokens_per_second"],
                    "peak_memory": med["ours"]["peak_memory_bytes"] / med[base]["peak_memory_bytes"],
                    "eval_loss_delta": med["ours"]["eval_loss"] - med[base]["eval_loss"]}
        for abl in ABLATIONS:
            if abl in med:  # how much each piece pays: with it over without it
                with_it, without = ("ours", abl) if abl.startswith("ours-no-") else (abl, "ours")
                ratios[f"{_flipped(abl)}_speedup"] = (
                    med[with_it]["tokens_per_second"] / med[without]["tokens_per_second"])
    result = {
        "name": "train", "model": MODELS[a.model], "length": a.length, "steps": steps, "batch_size": a.batch_size,
        "repeats": a.repeats, "ablation_repeats": a.ablation_repeats, "cpu": cpu_model(),
        "device": next(iter(runs.values()))[0]["device"], "configs": configs, "median": med, "ratios": ratios,
        "runs": runs, "matmul_ceiling_flops": ceiling,
        "fast_path": runs["ours"][0].get("fast_path") if runs.get("ours") else None,
    }
    if a.model_dir:
        result["model_dir"] = a.model_dir
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "train.json" if (a.model, a.length) == ("default", "short") else f"train-{a.model}-{a.length}.json"
    out_file = Path(a.result_file) if a.result_file else RESULTS / name
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2))
    print(f"\ntrain benchmark: {MODELS[a.model]}, {a.length} inputs, {steps} steps x batch {a.batch_size}, "
          f"median of {a.repeats} ({result['device']}, {result['cpu']}; matmul ceilings bf16 "
          f"{ceiling['bf16'] / 1e9:.0f}, fp32 {ceiling['fp32'] / 1e9:.0f} GFLOP/s)")
    print(f"{'':>26} {'real tok/s':>11} {'train s':>8} {'peak mem':>9} {'eval loss':>9} {'GFLOP/s':>8} {'of ceil':>7}")
    for k in main_configs + [c for c in configs if c in ABLATIONS]:
        if k not in med:
            continue
        m = med[k]
        print(f"{k:>26} {m['tokens_per_second']:11.1f} {m['train_seconds']:8.1f} "
              f"{m['peak_memory_bytes'] / 2**30:8.2f}G {m['eval_loss']:9.3f} {m['achieved_flops'] / 1e9:8.1f} "
              f"{100 * m['fraction_of_bf16_ceiling']:6.1f}%")
    for k, v in ratios.items():
        print(f"  {k}: " + (", ".join(f"{n} {x:.2f}" for n, x in v.items()) if isinstance(v, dict) else f"{v:.2f}x"))


if __name__ == "__main__":
    main()
