"""Evaluation and generation speed on the default model (SmolLM2-135M-Instruct) over small-eval.

Measures, alternating the compared runs (the machine has 2 cores and other work may be running, so the
ratios are what to read, not the absolute times):
  1. score mode vs generate mode of jt.evaluate (time, share of valid labels, macro F1);
  2. the two ways to compute label scores: the prompt once with its KV cache shared by the labels
     (what score mode does) vs one prompt+label sequence per label;
  3. batched generation vs one prompt at a time (generated tokens per second).
Writes benchmarks/results/evaluation.json and generation.json and prints a table with the ratios.

    python benchmarks/bench_eval.py [--rows 80] [--repeats 2] [--max-output-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mtsamples" / "small-eval.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / Pulmonary, "
            "Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def per_label_sequences(lm, prompts, batch_size: int) -> list[list[float]]:
    """The alternative to the shared prompt cache: every prompt+label as its own sequence, batched."""
    import torch

    from jupyter_tune.generation.prompts import left_padded

    seqs = [(b, k, p.ids, c) for b, p in enumerate(prompts) for k, c in enumerate(p.continuations)]
    scores = [[0.0] * len(prompts[0].continuations) for _ in prompts]
    seqs.sort(key=lambda s: len(s[2]) + len(s[3]))
    with torch.inference_mode():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i: i + batch_size]
            ids, mask, pos = left_padded([s[2] + s[3] for s in chunk], lm.tokenizer.pad_token_id, lm.device)
            width = max(len(s[3]) for s in chunk)
            logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=width + 1).logits
            lp = torch.log_softmax(logits[:, :-1].float(), -1)  # position j predicts token j+1
            for r, (b, k, _, cont) in enumerate(chunk):
                tail = lp[r, width - len(cont):]
                scores[b][k] = tail.gather(1, torch.tensor(cont)[:, None]).sum().item()
    return scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-output-tokens", type=int, default=32, help="for the generation comparison")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    import pandas as pd
    import torch

    import jupyter_tune as jt
    from jupyter_tune.evaluation import scoring
    from jupyter_tune.generation.generate import generate_for
    from jupyter_tune.generation.prompts import length_batches, load_rows

    rows = pd.read_json(DATA, lines=True).head(args.rows)
    labels = sorted(set(rows["output_text"]))
    lm = jt.load_model(MODEL)
    env = {"model": MODEL, "dtype": lm.dtype, "device": lm.device, "rows": len(rows), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
           "load_average_start": os.getloadavg()}
    print(f"{MODEL} ({lm.dtype}, {lm.device}, {torch.get_num_threads()} threads), {len(rows)} rows; "
          f"load average {env['load_average_start'][0]:.1f}", flush=True)

    # 1. score vs generate mode, alternating
    runs: dict[str, list[float]] = {"score": [], "generate": []}
    reports = {}
    for rep in range(args.repeats):
        for mode in ("score", "generate"):
            t, r = timed(lambda mode=mode: jt.evaluate(lm, rows, prompt_template=TEMPLATE, mode=mode,
                                                       batch_size=args.batch_size, progress=False))
            runs[mode].append(t)
            reports[mode] = r
            print(f"  evaluate mode={mode:<8} run {rep + 1}: {t:6.1f} s  macro F1 {r.macro_f1:.3f}", flush=True)

    def valid_share(r):
        p = r.predictions
        return float(sum(isinstance(x, str) and x in labels for x in p["prediction"]) / len(p))

    # 2. how label scores are computed: shared prompt cache vs one sequence per label
    dataset = load_rows(lm, rows, TEMPLATE, require_answer=True, what="data")
    prompts = scoring.prepare(lm, dataset, labels)
    impl: dict[str, list[float]] = {"shared_prompt_cache": [], "sequence_per_label": []}
    agree = None
    for _ in range(args.repeats):
        t, cached = timed(lambda: {p.index: s for b in length_batches(prompts, args.batch_size)
                                   for p, s in zip(b, scoring.score_batch(lm, b), strict=True)})
        impl["shared_prompt_cache"].append(t)
        t, naive = timed(lambda: per_label_sequences(lm, prompts, args.batch_size * len(labels)))
        impl["sequence_per_label"].append(t)
        agree = sum(max(range(len(labels)), key=cached[i].__getitem__) == max(range(len(labels)), key=naive[i].__getitem__)
                    for i in range(len(prompts))) / len(prompts)
        print(f"  label scores: shared cache {impl['shared_prompt_cache'][-1]:.1f} s, "
              f"one sequence per label {impl['sequence_per_label'][-1]:.1f} s", flush=True)

    med = {k: statistics.median(v) for k, v in runs.items()}
    med_impl = {k: statistics.median(v) for k, v in impl.items()}
    evaluation = {
        "environment": env,
        "score_mode": {"seconds": runs["score"], "median_s": med["score"], "valid_label_share": valid_share(reports["score"]),
                       "macro_f1": reports["score"].macro_f1, "accuracy": reports["score"].accuracy},
        "generate_mode": {"seconds": runs["generate"], "median_s": med["generate"],
                          "valid_label_share": valid_share(reports["generate"]),
                          "macro_f1": reports["generate"].macro_f1, "accuracy": reports["generate"].accuracy,
                          "unmapped_answers_sample": [a for a, p in zip(reports["generate"].predictions["raw_answer"],
                                                                        reports["generate"].predictions["prediction"], strict=True)
                                                      if not isinstance(p, str)][:5]},
        "score_vs_generate_speedup": med["generate"] / med["score"],
        "label_scoring_implementations": {"seconds": impl, "median_s": med_impl,
                                          "speedup_shared_cache": med_impl["sequence_per_label"] / med_impl["shared_prompt_cache"],
                                          "same_predictions_share": agree},
    }

    # 3. batched generation vs one prompt at a time
    gen_data = load_rows(lm, rows, TEMPLATE, require_answer=False, what="data")
    gen: dict[str, list[dict]] = {"batched": [], "one_at_a_time": []}
    for _ in range(args.repeats):
        for name, bs in (("batched", args.batch_size), ("one_at_a_time", 1)):
            t, (texts, status, tokens) = timed(lambda bs=bs: generate_for(lm, gen_data, max_output_tokens=args.max_output_tokens,
                                                                          batch_size=bs, progress=False))
            gen[name].append({"seconds": t, "tokens": tokens, "tokens_per_s": tokens / t,
                              "failed_rows": sum(1 for s in status if s)})
            print(f"  generate {name:<14} {t:6.1f} s  {tokens} tokens  {tokens / t:6.1f} tokens/s", flush=True)
    tps = {k: statistics.median(r["tokens_per_s"] for r in v) for k, v in gen.items()}
    generation = {"environment": env, "max_output_tokens": args.max_output_tokens, "batch_size": args.batch_size,
                  "runs": gen, "median_tokens_per_s": tps, "batched_speedup": tps["batched"] / tps["one_at_a_time"]}
    env["load_average_end"] = os.getloadavg()

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    (RESULTS / "generation.json").write_text(json.dumps(generation, indent=2) + "\n")

    sm, gm = evaluation["score_mode"], evaluation["generate_mode"]
    li = evaluation["label_scoring_implementations"]
    print()
    print(f"{'measure':<44}{'median':>12}{'ratio':>10}  target")
    print(f"{'evaluate, score mode (s)':<44}{sm['median_s']:>12.1f}")
    print(f"{'evaluate, generate mode (s)':<44}{gm['median_s']:>12.1f}{evaluation['score_vs_generate_speedup']:>9.1f}x  >= 5x")
    print(f"{'  valid labels: score / generate':<44}{sm['valid_label_share']:>6.0%} / {gm['valid_label_share']:.0%}")
    print(f"{'  macro F1: score / generate':<44}{sm['macro_f1']:>6.3f} / {gm['macro_f1']:.3f}")
    print(f"{'label scores, shared prompt cache (s)':<44}{li['median_s']['shared_prompt_cache']:>12.1f}")
    print(f"{'label scores, one sequence per label (s)':<44}{li['median_s']['sequence_per_label']:>12.1f}{li['speedup_shared_cache']:>9.1f}x")
    print(f"{'generation, batched (tokens/s)':<44}{tps['batched']:>12.1f}{generation['batched_speedup']:>9.1f}x  >= 4x")
    print(f"{'generation, one prompt at a time (tokens/s)':<44}{tps['one_at_a_time']:>12.1f}")
    print(f"\nwrote {RESULTS / 'evaluation.json'} and {RESULTS / 'generation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
