"""Quality: the seed's loop, timed: base evaluation -> tuning -> tuned evaluation -> compare, on small-eval
(or, with --full, full transcripts: --task specialty, the default, is specialty-train/-eval.jsonl, 519 rows and
19 labels, one label per distinct transcript; --task walkthrough38 is the walkthrough's label list, train.jsonl /
eval.jsonl with 38 labels; notebooks/data/README.md says why). Writes per-label F1, macro
F1 (base, tuned, and the jt.baseline ones: TF-IDF + linear SVM and the majority class, trained on the same
training rows), the label scoring used, times and tokens/s to benchmarks/results/quality[_specialty|_full][-MODEL].json.

    python benchmarks/bench_quality.py [--full [--task specialty|walkthrough38]] [--model default|gemma3]
        [--epochs N] [--adapter-size R] [--lr-mult X] [--max-seq-length L] [--val-rows N] [--eval-rows N]
        [--prompt labels|short] [--head] [--tag T] [--all [--only default,default-head,gemma3,gemma3-head]]

--head tunes task="classification" (LoRA and a label head, one forward pass per row) instead of the
generative default; its results file ends in -head.

--val-rows holds out that many training rows as the validation set: the job then logs eval_macro_f1 while it
trains and keeps its best checkpoint (select_best). The evaluation rows are never used for that.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from machine import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "notebooks" / "data"  # what the repo ships: a fresh clone runs every benchmark
# --full's tasks: (train, eval, labels) files in DATA; results file name
TASKS = {"specialty": (("specialty-train.jsonl", "specialty-eval.jsonl", "specialty-labels.txt"), "quality_specialty"),
         "walkthrough38": (("train.jsonl", "eval.jsonl", "labels.txt"), "quality_full")}
RESULTS = ROOT / "benchmarks" / "results"
SMALL_LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
# The walkthrough's prompt lists every label; a tuned model learns them, so the short one spends those tokens
# on the transcript instead (the label scoring offers the same candidates either way).
PROMPTS = {"labels": "Assign a label to the given medical transcript from among these labels: [{labels}]. "
                     "TRANSCRIPT: {input_text}",
           "short": "Medical specialty of this transcript. TRANSCRIPT: {input_text}"}
MODELS = {"default": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3": "google/gemma-3-270m"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="full transcripts (about an hour on a 2-core CPU)")
    ap.add_argument("--task", choices=list(TASKS), default="specialty",
                    help="with --full: specialty (19 labels, one per distinct transcript; default) or walkthrough38 "
                         "(the walkthrough's 38-label list, with its label noise)")
    ap.add_argument("--model", choices=sorted(MODELS), default="default")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--adapter-size", type=int, default=None)
    ap.add_argument("--lr-mult", type=float, default=None)
    ap.add_argument("--max-seq-length", type=int, default=None)
    ap.add_argument("--eval-steps", type=int, default=None, help="evaluate every N steps (default: ~10 times)")
    ap.add_argument("--val-rows", type=int, default=0, help="training rows held out as the validation set")
    ap.add_argument("--holdout", type=float, default=None,
                    help="hold out this share of the training rows with jt.split, as the panel's Tune cell does "
                         "without a validation file (instead of --val-rows)")
    ap.add_argument("--eval-rows", type=int, default=None, help="evaluate on the first N rows only")
    ap.add_argument("--prompt", choices=sorted(PROMPTS), default="labels",
                    help="labels: the walkthrough's prompt with the label list; short: no list (~150 fewer tokens)")
    ap.add_argument("--head", action="store_true", help="task='classification': LoRA plus a label head")
    ap.add_argument("--all", action="store_true",
                    help="one run of every model and method (generative and --head, default and gemma3) with the "
                         "other arguments, one after another, then one 'did it pay' table of their results")
    ap.add_argument("--tag", default=None, help="a suffix for the results file, e.g. 1024 (keeps other runs' files)")
    ap.add_argument("--only", default=None, help="with --all: a comma-separated subset, e.g. default-head,gemma3")
    a = ap.parse_args()
    if a.all:
        return run_all(a)
    os.environ.setdefault("JUPYTER_TUNE_HOME", tempfile.mkdtemp(prefix="jt-bench-"))
    import pandas as pd

    import jupyter_tune as jt

    model_id = MODELS[a.model]
    (train_file, eval_file, labels_file), result_name = TASKS[a.task] if a.full else (
        ("small-train.jsonl", "small-eval.jsonl", None), "quality")
    labels = [x.strip() for x in open(DATA / labels_file) if x.strip()] if labels_file else SMALL_LABELS
    train = pd.read_json(DATA / train_file, lines=True)
    evald = pd.read_json(DATA / eval_file, lines=True)
    if a.eval_rows:
        evald = evald.head(a.eval_rows)
    train, val = hold_out(train, a.val_rows)
    template = PROMPTS[a.prompt].replace("{labels}", ", ".join(labels))
    if a.holdout:  # the panel's Tune cell: a stratified, leak-free share of the training rows
        train, val = (pd.DataFrame(x) for x in jt.split(train, test_size=a.holdout, prompt_template=template, seed=0))
    tune_kw = {k: v for k, v in (("epochs", a.epochs), ("adapter_size", a.adapter_size),
                                 ("learning_rate_multiplier", a.lr_mult), ("max_seq_length", a.max_seq_length),
                                 ("eval_steps", a.eval_steps))
               if v is not None}
    if a.head:
        tune_kw["task"] = "classification"
    if val is not None:  # one row per label is too many distinct answers for the automatic switch
        tune_kw["eval_task_metric"] = True
    times = {}

    t = time.perf_counter()  # seconds, and not part of the loop: timed apart
    baseline = jt.baseline(train, evald, prompt_template=template, labels=labels)
    baseline_s = time.perf_counter() - t
    print(f"baseline (TF-IDF + linear SVM): macro F1 {baseline.macro_f1:.3f}; majority class "
          f"{baseline.majority.macro_f1:.3f} ({baseline_s:.1f} s)", flush=True)

    t = time.perf_counter()
    base = jt.evaluate(jt.load_model(model_id), evald, prompt_template=template, labels=labels, progress=False)
    times["base_evaluation_s"] = time.perf_counter() - t
    print(f"base {model_id}: macro F1 {float(base.metrics.loc['macro avg', 'f1_score']):.3f} on {len(evald)} rows "
          f"({times['base_evaluation_s']:.0f} s); tuning...", flush=True)

    t = time.perf_counter()
    job = jt.tune(base_model=model_id, train_dataset=train, validation_dataset=val, prompt_template=template,
                  tuned_model_display_name="bench-quality", **tune_kw)
    state = job.wait()
    times["tuning_job_s"] = time.perf_counter() - t
    if state is not jt.JobState.SUCCEEDED:
        raise SystemExit(f"job {job.id} ended {state.value}: {job.error}\n{job.log()}")
    m = job.metrics
    first_step_s = float(m["time"].iloc[0]) - job.record.get("create_unix", m["time"].iloc[0])

    print(f"job {job.id}: {time.perf_counter() - t:.0f} s; tuned evaluation...", flush=True)
    t = time.perf_counter()
    tuned = jt.evaluate(jt.load_model(job), evald, prompt_template=template, labels=labels, progress=False)
    times["tuned_evaluation_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cmp = jt.compare(base, tuned, baseline=baseline)
    times["compare_s"] = time.perf_counter() - t
    times["loop_s"] = sum(times.values())

    f1 = lambda r: float(r.metrics.loc["macro avg", "f1_score"])  # noqa: E731
    noisy = a.full and a.task == "walkthrough38"  # None: the specialty task, or no CSV
    ambiguity = source_labels_check(evald, {"base": base, "tuned": tuned}) if noisy else None
    tps = m["tokens_per_second"].dropna()
    result = {
        "name": "quality", "dataset": a.task if a.full else "small", "task": "classification" if a.head else "generation", "files": [train_file, eval_file],
        "model": model_id,
        "eval_rows": int(len(base.predictions)), "scoring": getattr(base, "scoring", None),
        "tuning_parameters": {**tune_kw, "val_rows": a.val_rows, "holdout": a.holdout,
                                                        "train_rows": len(train)}, "prompt": template,
        "best": job.record.get("best"), "stopped_early": job.record.get("stopped_early"),
        "base_macro_f1": f1(base), "tuned_macro_f1": f1(tuned),
        "baseline_macro_f1": f1(baseline), "majority_macro_f1": f1(baseline.majority),
        "tuned_beats_baseline": cmp.beats_baseline, "baseline_s": baseline_s,
        "per_label_f1": {"base": base.metrics["f1_score"].to_dict(), "tuned": tuned.metrics["f1_score"].to_dict(),
                         "baseline": baseline.metrics["f1_score"].to_dict()},
        "job": {"id": job.id, "epochs": job.record["tuning"]["epochs"], "steps": job.record["tuning"]["total_steps"],
                "time_to_first_step_s": first_step_s, "median_tokens_per_second": float(tps.median()),
                "final_train_loss": float(m["train_total_loss"].dropna().iloc[-1]),
                "dtype": job.record["tuning"]["dtype"]},
        "times": times, "machine": machine(), "source_labels": ambiguity,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = result_file(result_name, a.model, a.head, a.tag)
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=float))
    print(f"\nquality ({result['dataset']}, {model_id}, {result['eval_rows']} eval rows, scoring "
          f"{result['scoring']}; loop {times['loop_s'] / 60:.1f} min)")
    print(f"  base  macro F1 {result['base_macro_f1']:.3f}   ({times['base_evaluation_s']:.0f} s)")
    print(f"  tune  {result['job']['epochs']} epochs, {result['job']['steps']} steps, "
          f"{result['job']['median_tokens_per_second']:.0f} tokens/s, first step after "
          f"{first_step_s:.1f} s, job {times['tuning_job_s']:.0f} s")
    print(f"  tuned macro F1 {result['tuned_macro_f1']:.3f}   ({times['tuned_evaluation_s']:.0f} s)")
    print(f"  baseline macro F1 {result['baseline_macro_f1']:.3f} (TF-IDF + linear SVM, {baseline_s:.1f} s); "
          f"majority class {result['majority_macro_f1']:.3f}")
    print(f"  fixed {len(cmp.fixed)} examples, broke {len(cmp.broken)}")
    print(f"  {cmp.summary()}")
    if ambiguity:
        print(f"  {ambiguity['rows_with_several_source_labels']} of {len(evald)} eval transcripts carry several "
              f"specialties in mtsamples.csv; predictions among them: base {ambiguity['base']:.2f}, "
              f"tuned {ambiguity['tuned']:.2f} (exact label: accuracy)")


def result_file(result_name: str, model: str, head: bool, tag: str | None) -> str:
    return (result_name + ("" if model == "default" else f"-{model}") + ("-head" if head else "")
            + (f"-{tag}" if tag else "") + ".json")


def hold_out(train, n: int):
    """(train without them, n rows held out), stratified by label and the same every run; (train, None) for 0."""
    if not n:
        return train, None
    groups = dict(list(train.groupby("output_text")))
    take = {y: max(1, round(n * len(g) / len(train))) for y, g in groups.items()}
    while sum(take.values()) > n and max(take.values()) > 1:  # trim the largest, keep one per label
        take[max(take, key=take.get)] -= 1
    val = train.loc[[i for y, g in groups.items() for i in g.index[:take[y]]]].head(n)
    return train.drop(val.index), val


def run_all(a) -> None:
    """Each model and method in its own process (a clean memory peak and time for each), then one table."""
    import subprocess
    import sys

    from paid_table import rows, table

    configs = [(m, h) for m in ("default", "gemma3") for h in (False, True)]
    if a.only:
        wanted = {x.strip() for x in a.only.split(",")}
        configs = [(m, h) for m, h in configs if f"{m}{'-head' if h else ''}" in wanted]
    passed = [x for x in sys.argv[1:] if x != "--all"]
    if "--only" in passed:  # drop --only and its value
        i = passed.index("--only")
        del passed[i:i + 2]
    passed = [x for x in passed if not x.startswith("--only=")]
    drop = {"--model", "--head"}
    args, skip = [], False
    for x in passed:
        if skip:
            skip = False
            continue
        if x in drop:
            skip = x == "--model"
            continue
        args.append(x)
    started, files = time.perf_counter(), []
    for model, head in configs:
        cmd = [sys.executable, __file__, *args, "--model", model, *(["--head"] if head else [])]
        print(f"\n=== {model}{' head' if head else ''}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True)
        _, result_name = TASKS[a.task] if a.full else (None, "quality")
        files.append(result_file(result_name, model, head, a.tag))
    print(f"\nAll {len(configs)} runs in {(time.perf_counter() - started) / 60:.1f} min:\n")
    print(table([r for r in rows() if r["file"] in files]))


def source_labels_check(evald, reports: dict) -> dict | None:
    """The full task's label noise, measured: mtsamples.csv lists most transcripts under several specialties
    (a surgery note under Surgery and Orthopedic, a consult under its specialty and "Consult - History and
    Phy."), and eval.jsonl keeps one of them. Per report, the share of predictions that are any of the
    transcript's source specialties, beside the exact-label accuracy. Reads the CSV named by $MTSAMPLES_CSV
    (default notebooks/data/mtsamples.csv, not shipped); None without it. The specialty task has one label per
    transcript by construction, so there it measures nothing new."""
    import pandas as pd

    csv = Path(os.environ.get("MTSAMPLES_CSV", DATA / "mtsamples.csv"))
    if not csv.is_file():  # the repo ships the tasks, not their 17 MB source: set MTSAMPLES_CSV to measure this
        return None
    src = pd.read_csv(csv)
    src = src.assign(t=src["transcription"].fillna("").str.strip(), s=src["medical_specialty"].str.strip())
    sets = src.groupby("t")["s"].agg(set).to_dict()
    allowed = [sets.get(t, set()) | {y} for t, y in zip(evald["input_text"], evald["output_text"], strict=True)]
    out = {"rows_with_several_source_labels": sum(len(s) > 1 for s in allowed),
           "mean_source_labels_per_row": sum(len(s) for s in allowed) / len(allowed)}
    for name, r in reports.items():
        preds = list(r.predictions["prediction"])
        out[name] = sum(p in s for p, s in zip(preds, allowed, strict=True)) / len(allowed)
    return out


if __name__ == "__main__":
    main()
