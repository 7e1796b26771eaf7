"""Evaluation and generation speed on the default model (SmolLM2-135M-Instruct) over small-eval.

Measures, alternating the compared runs (the machine has 2 cores and other work may be running, so the
ratios are what to read, not the absolute times):
  1. score mode vs generate mode of jt.evaluate (time, share of valid labels, macro F1);
  2. the ways to compute label scores (evaluation/scoring.py): "cached" (the prompts once into a KV cache
     the labels attend to; what score mode does), "one_pass" (prompt and labels in one forward pass with a
     4-D mask) and "separate" (one prompt+label sequence per label);
  3. batched generation vs one prompt at a time (generated tokens per second).
Writes benchmarks/results/evaluation.json and generation.json and prints a table with the ratios.

--full: score mode on long prompts (eval.jsonl: ~700-token transcripts, 38 labels; --full-rows rows drawn
  with a fixed seed) against one plain forward pass over the same prompts (same batches, right-padded,
  no cache, the last position's logits only), alternating; wall and process CPU time. Writes
  benchmarks/results/evaluation_full.json.
--scoring MODEL: macro F1 / accuracy of every label scoring (sum, mean, calibrated, calibrated_mean), of
  always answering the majority label and of the TF-IDF + linear SVM baseline (jt.baseline, trained on
  small-train / train.jsonl), on small-eval (all rows) and eval.jsonl (--full-rows rows), for
  MODEL (a base model, job id or adapter folder; tag it with --tag). Merges into
  benchmarks/results/scoring.json and rewrites scoring.md.

    python benchmarks/bench_eval.py [--rows 80] [--repeats 2] [--max-output-tokens 32]
    python benchmarks/bench_eval.py --full [--full-rows 32] [--repeats 3] [--model default|gemma3]
        [--passes cached one_pass]
    python benchmarks/bench_eval.py --scoring HuggingFaceTB/SmolLM2-135M-Instruct --tag base [--full-rows 48]
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

from bench_quality import MODELS, PROMPTS, source_labels_check
from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "notebooks" / "data" / "small-eval.jsonl"  # the repo's own data: a fresh clone runs it
FULL_DATA = DATA.with_name("eval.jsonl")
TRAIN = {False: DATA.with_name("small-train.jsonl"), True: DATA.with_name("train.jsonl")}  # by full
LABELS_FILE = DATA.with_name("labels.txt")
RESULTS = ROOT / "benchmarks" / "results"
MODEL = MODELS["default"]
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / Pulmonary, "
            "Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def full_template(labels: list[str]) -> str:
    return PROMPTS["labels"].replace("{labels}", ", ".join(labels))


def full_rows(n: int):
    import pandas as pd

    rows = pd.read_json(FULL_DATA, lines=True)
    return rows if n >= len(rows) else rows.sample(n, random_state=0).sort_index()


def plain_forward(lm, prompts, batch_size: int) -> None:
    """The floor: the prompts' forward pass alone, batched as score mode batches them, right-padded (the
    causal mask alone holds, no padding mask), no cache, the last position's logits only."""
    import torch

    from jupyter_tune.evaluation import scoring

    with torch.inference_mode():
        for b in scoring.batches(prompts, batch_size):
            n = max(len(p.ids) for p in b)
            ids = torch.full((len(b), n), lm.tokenizer.pad_token_id, dtype=torch.long)
            for r, p in enumerate(b):
                ids[r, : len(p.ids)] = torch.tensor(p.ids)
            lm.model(input_ids=ids.to(lm.device), use_cache=False, logits_to_keep=1)


def score_all(lm, prompts, batch_size: int, how: str) -> dict[int, list[float]]:
    from jupyter_tune.evaluation import scoring

    vocab = scoring.vocab_size(lm.model)
    out = {}
    for b in scoring.batches(prompts, batch_size, vocab):
        for p, s in zip(b, scoring.score_rows(lm.model, lm.tokenizer, b) if how == scoring.PASS else
                        _score_with(lm, b, how), strict=True):
            out[p.index] = s
    return out


def _score_with(lm, batch, how: str) -> list[list[float]]:
    import torch

    from jupyter_tune.evaluation import scoring

    with torch.inference_mode():
        return scoring.score_labels(lm.model, batch, lm.tokenizer.pad_token_id, how).tolist()


def bench_full(args) -> int:
    """Score mode vs one plain forward pass over the same long prompts (issue 10: at most 1.5x)."""
    import torch

    import jupyter_tune as jt
    from jupyter_tune.evaluation import scoring
    from jupyter_tune.generation.prompts import load_rows

    labels = [x.strip() for x in open(LABELS_FILE) if x.strip()]
    rows = full_rows(args.full_rows)
    model_id = MODELS[args.model]
    lm = jt.load_model(model_id)
    dataset = load_rows(lm, rows, full_template(labels), require_answer=True, what="data")
    t = time.perf_counter()
    prompts = scoring.prepare(lm, dataset, labels)
    prepare_s = time.perf_counter() - t
    runnable = [p for p in prompts if not p.error]
    n_prompt = sum(len(p.ids) for p in runnable)
    n_label = sum(len(c) for c in runnable[0].continuations)
    print(f"{model_id} ({lm.dtype}, {torch.get_num_threads()} threads), {len(runnable)} rows of eval.jsonl, "
          f"{n_prompt} prompt tokens (median {statistics.median(len(p.ids) for p in runnable)}), "
          f"{len(labels)} labels = {n_label} answer tokens per row; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    cases = {"plain_forward": lambda: plain_forward(lm, runnable, args.batch_size),
             "score_cached": lambda: score_all(lm, runnable, args.batch_size, "cached"),
             "score_one_pass": lambda: score_all(lm, runnable, args.batch_size, "one_pass")}
    cases = {k: f for k, f in cases.items() if k == "plain_forward" or k.removeprefix("score_") in args.passes}
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    scores = {}
    for rep in range(args.repeats):
        for name, fn in cases.items():
            c, t = time.process_time(), time.perf_counter()
            out = fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            if out is not None:
                scores[name] = out
            print(f"  run {rep + 1} {name:<16} wall {wall[name][-1]:7.1f} s  cpu {cpu[name][-1]:7.1f} s  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    med_wall = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    diff = max((abs(a - b) for i in scores.get("score_one_pass", {})
                for a, b in zip(scores["score_cached"][i], scores["score_one_pass"][i], strict=True)), default=None)
    result = {
        "environment": {"model": model_id, "dtype": lm.dtype, "cpu": cpu_model(), "threads": torch.get_num_threads(),
                        "torch": torch.__version__, "load_average_end": os.getloadavg(),
                        "note": "read the ratios (the compared runs alternate); load_average_end says how busy the "
                                "machine was"},
        "data": {"file": "eval.jsonl", "rows": len(runnable), "rows_total": 243, "sample": "pandas sample, seed 0",
                 "labels": len(labels), "prompt_tokens": n_prompt, "answer_tokens_per_row": n_label,
                 "batch_size": args.batch_size, "prepare_s": prepare_s},
        "wall_s": wall, "cpu_s": cpu, "median_wall_s": med_wall, "median_cpu_s": med_cpu,
        "ratio_to_plain_forward": {
            "wall": {k: med_wall[k] / med_wall["plain_forward"] for k in cases},
            "cpu": {k: med_cpu[k] / med_cpu["plain_forward"] for k in cases}},
        "target": "score mode <= 1.5x one plain forward pass",
        "max_abs_difference_cached_vs_one_pass": diff,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "evaluation_full" + ("" if args.model == "default" else f"-{args.model}") + ".json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'':<18}{'wall (s)':>10}{'ratio':>8}{'cpu (s)':>10}{'ratio':>8}")
    for k in cases:
        print(f"{k:<18}{med_wall[k]:>10.1f}{result['ratio_to_plain_forward']['wall'][k]:>8.2f}"
              f"{med_cpu[k]:>10.1f}{result['ratio_to_plain_forward']['cpu'][k]:>8.2f}")
    if diff is not None:
        print(f"max |cached - one_pass| {diff:.3g} nats")
    print(f"wrote {RESULTS / name}")
    return 0


def scoring_table(lm, rows, template: str | None, labels: list[str], full: bool = False) -> dict:
    """Macro F1 and accuracy of every scoring from one calibrated evaluation, and of the majority label."""
    from collections import Counter

    import jupyter_tune as jt
    from jupyter_tune.evaluation import scoring
    from jupyter_tune.evaluation.classification import classification_metrics
    from jupyter_tune.generation.prompts import load_rows

    t = time.perf_counter()
    report = jt.evaluate(lm, rows, prompt_template=template, labels=labels, scoring="calibrated", progress=False)
    elapsed = time.perf_counter() - t
    dataset = load_rows(lm, rows.head(1), template, require_answer=True, what="data")
    counts = [len(c) for c in scoring.prepare(lm, dataset, labels)[0].continuations]
    free = [report.content_free_logprobs[k] for k in labels]
    p = report.predictions[report.predictions["status"] == ""]
    truth = list(p["ground_truth"])
    out = {"rows": len(p), "labels": len(labels), "evaluate_s": elapsed}
    for how in scoring.SCORINGS:
        preds = []
        for sums in p["label_logprobs"]:
            s = scoring.to_scores([sums[k] for k in labels], counts, how, free)
            preds.append(labels[max(range(len(labels)), key=s.__getitem__)])
        m = classification_metrics(truth, preds, labels)
        out[how] = {"macro_f1": float(m.loc["macro avg", "f1_score"]),
                    "accuracy": sum(a == b for a, b in zip(truth, preds, strict=True)) / len(truth),
                    "distinct_predictions": len(set(preds)),
                    "most_predicted": Counter(preds).most_common(1)[0]}
    if full:  # the full task: its label noise, measured
        if (noise := source_labels_check(rows, {"calibrated": report})) is not None:
            out["source_labels"] = noise
    major = Counter(truth).most_common(1)[0][0]
    m = classification_metrics(truth, [major] * len(truth), labels)
    out["always_majority"] = {"macro_f1": float(m.loc["macro avg", "f1_score"]),
                              "accuracy": truth.count(major) / len(truth), "label": major}
    # The same rows and labels, a TF-IDF + linear SVM trained on the task's training file (the model's own
    # template: its constant words barely move TF-IDF).
    base = jt.baseline(TRAIN[full], rows.iloc[list(p.index)], prompt_template=template, labels=labels)
    out["tfidf_baseline"] = {"macro_f1": base.macro_f1, "accuracy": base.accuracy, "train": TRAIN[full].name}
    return out


def bench_scoring(args) -> int:
    import pandas as pd
    import torch

    import jupyter_tune as jt

    lm = jt.load_model(args.scoring)
    path = RESULTS / "scoring.json"
    small = pd.read_json(DATA, lines=True)
    labels_full = [x.strip() for x in open(LABELS_FILE) if x.strip()]
    run = {"model": args.scoring, "model_name": lm.name, "dtype": lm.dtype, "cpu": cpu_model(),
           "threads": torch.get_num_threads()}
    if args.scoring_data in ("both", "small"):
        run["small-eval"] = scoring_table(lm, small, TEMPLATE, sorted(set(small["output_text"])))
        print(args.tag, "small-eval", json.dumps(run["small-eval"]), flush=True)
    if args.scoring_data in ("both", "full"):
        rows = full_rows(args.full_rows)
        # A tuned job is scored with the prompt it was trained on (--job-prompt); else the walkthrough's.
        run["eval"] = scoring_table(lm, rows, None if args.job_prompt else full_template(labels_full), labels_full,
                                    full=True)
        run["eval"]["sample"] = f"{len(rows)} of 243 rows (pandas sample, seed 0)"
        print(args.tag, "eval", json.dumps(run["eval"]), flush=True)
    # Read only now: another --scoring run may have written its results meanwhile.
    table = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    table["runs"].setdefault(args.tag, {}).update(run)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=2) + "\n")
    (RESULTS / "scoring.md").write_text(scoring_markdown(table))
    print(f"wrote {path} and scoring.md")
    return 0


def scoring_markdown(table: dict) -> str:
    from jupyter_tune.evaluation import scoring

    lines = ["# Label scoring choices (score mode), measured", "",
             "Macro F1 (accuracy) of ranking the labels by each scoring; written by "
             "`benchmarks/bench_eval.py --scoring`. Default: `" + scoring.DEFAULT_SCORING + "`.", "",
             "| model | data | rows x labels | " + " | ".join(scoring.SCORINGS) + " | always majority | TF-IDF "
             "baseline |",
             "| --- | --- | --- | " + " | ".join("---" for _ in scoring.SCORINGS) + " | --- | --- |"]
    for tag, run in table["runs"].items():
        for data in ("small-eval", "eval"):
            if data not in run:
                continue
            r = run[data]
            cells = [f"{r[h]['macro_f1']:.3f} ({r[h]['accuracy']:.2f})" for h in scoring.SCORINGS]
            cells.append(f"{r['always_majority']['macro_f1']:.3f} ({r['always_majority']['accuracy']:.2f})")
            tf = r.get("tfidf_baseline")  # runs measured before the baseline existed lack it
            cells.append(f"{tf['macro_f1']:.3f} ({tf['accuracy']:.2f})" if tf else "—")
            lines.append(f"| {tag} | {data} | {r['rows']} x {r['labels']} | " + " | ".join(cells) + " |")
    noise = [(t, r["eval"]) for t, r in table["runs"].items() if "source_labels" in r.get("eval", {})]
    if noise:
        lines += ["", "Label noise on eval.jsonl: most transcripts are listed under several specialties in "
                  "mtsamples.csv and the file keeps one. Share of calibrated predictions that are one of the "
                  "transcript's source specialties (beside the exact-label accuracy):"]
        lines += [f"- {t}: {r['source_labels']['calibrated']:.2f} (exact {r['calibrated']['accuracy']:.2f}; "
                  f"{r['source_labels']['rows_with_several_source_labels']} of {r['rows']} rows have several)"
                  for t, r in noise]
    lines += ["", "Models: " + "; ".join(f"{t}: {r['model_name']} ({r['dtype']})" for t, r in table["runs"].items()),
              "", table.get("note", "")]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-output-tokens", type=int, default=32, help="for the generation comparison")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--full", action="store_true", help="score mode vs a plain forward pass on eval.jsonl")
    ap.add_argument("--full-rows", type=int, default=32, help="rows of eval.jsonl for --full / --scoring")
    ap.add_argument("--model", choices=sorted(MODELS), default="default", help="for --full")
    ap.add_argument("--passes", nargs="+", choices=["cached", "one_pass"], default=["cached", "one_pass"],
                    help="for --full: the label-scoring passes timed against the plain forward pass")
    ap.add_argument("--scoring", metavar="MODEL", help="measure every label scoring with MODEL")
    ap.add_argument("--scoring-data", choices=["both", "small", "full"], default="both")
    ap.add_argument("--tag", default="base", help="the name of the --scoring run in scoring.json")
    ap.add_argument("--job-prompt", action="store_true",
                    help="for --scoring with a tuned job: its own prompt template on eval.jsonl")
    args = ap.parse_args()
    if args.full:
        return bench_full(args)
    if args.scoring:
        return bench_scoring(args)

    import pandas as pd
    import torch

    import jupyter_tune as jt
    from jupyter_tune.evaluation import scoring
    from jupyter_tune.generation.generate import generate_for
    from jupyter_tune.generation.prompts import load_rows

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

    baseline = jt.baseline(TRAIN[False], rows, prompt_template=TEMPLATE)  # seconds: TF-IDF + linear SVM
    print(f"  baseline (TF-IDF + linear SVM) macro F1 {baseline.macro_f1:.3f}", flush=True)

    def valid_share(r):
        p = r.predictions
        return float(sum(isinstance(x, str) and x in labels for x in p["prediction"]) / len(p))

    # 2. how label scores are computed: the prompts' KV cache, one 4-D-masked pass, one sequence per label
    dataset = load_rows(lm, rows, TEMPLATE, require_answer=True, what="data")
    prompts = scoring.prepare(lm, dataset, labels)
    impl: dict[str, list[float]] = {"cached": [], "one_pass": [], "separate": []}
    got = {}
    for _ in range(args.repeats):
        for how in impl:
            t, got[how] = timed(lambda how=how: score_all(lm, prompts, args.batch_size, how))
            impl[how].append(t)
        print("  label scores: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in impl.items()), flush=True)

    def top(s):
        return max(range(len(labels)), key=s.__getitem__)

    agree = sum(top(got["cached"][i]) == top(got["separate"][i]) for i in got["cached"]) / len(prompts)
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
        "baseline": {"name": baseline.model_name, "macro_f1": baseline.macro_f1, "accuracy": baseline.accuracy,
                     "majority_macro_f1": baseline.majority.macro_f1},
        "score_vs_generate_speedup": med["generate"] / med["score"],
        "label_scoring_implementations": {"seconds": impl, "median_s": med_impl,
                                          "speedup_cached_vs_separate": med_impl["separate"] / med_impl["cached"],
                                          "speedup_cached_vs_one_pass": med_impl["one_pass"] / med_impl["cached"],
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
    print(f"{'  macro F1: TF-IDF baseline / majority':<44}{baseline.macro_f1:>6.3f} / "
          f"{baseline.majority.macro_f1:.3f}")
    print(f"{'label scores, prompt cache (s)':<44}{li['median_s']['cached']:>12.1f}")
    print(f"{'label scores, one 4-D-masked pass (s)':<44}{li['median_s']['one_pass']:>12.1f}"
          f"{li['speedup_cached_vs_one_pass']:>9.1f}x")
    print(f"{'label scores, one sequence per label (s)':<44}{li['median_s']['separate']:>12.1f}"
          f"{li['speedup_cached_vs_separate']:>9.1f}x")
    print(f"{'generation, batched (tokens/s)':<44}{tps['batched']:>12.1f}{generation['batched_speedup']:>9.1f}x  >= 4x")
    print(f"{'generation, one prompt at a time (tokens/s)':<44}{tps['one_at_a_time']:>12.1f}")
    print(f"\nwrote {RESULTS / 'evaluation.json'} and {RESULTS / 'generation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
