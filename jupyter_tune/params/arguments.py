"""The arguments of every public entry point other than jt.tune (whose are TuningParams), declared once.

Each dataclass mirrors one function's signature (``gate.checked`` asserts that they agree at import) and is
checked by the same ``field_problems`` as TuningParams; ``rules`` add what lies between arguments. Torch-free:
the server's cells endpoint and the schema read these declarations too.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from . import (
    EXPORT_FORMATS,
    MAX_OUTPUT_TOKENS,
    ParameterError,
    TuningParams,
    _f,
    _hints,
    _type_name,
    field_problems,
)
from .kinds import _short

# jt.split's conflict handling, jt.baseline's kinds, jt.evaluate's choices (their modules import these).
CONFLICTS = ("report", "drop", "merge")
BASELINE_KINDS = ("auto", "tfidf", "majority", "nearest", "lead")
TASK_TYPES = ("classification", "text_generation")
EVAL_MODES = ("score", "generate")
SCORINGS = ("auto", "sum", "mean", "calibrated", "calibrated_mean")
LONG_INPUTS = ("auto", "whole", "cut", "chunks")
OVERLAPS = ("warn", "refuse", "ignore")  # jt.evaluate on rows a tuned job trained or chose on
# Jaccard similarity of word-triple sets above which two inputs are "near-duplicates" (data/near.py).
NEAR_THRESHOLD = 0.9
GENERATE_BATCH_SIZE = 16
TEMPLATE_HELP = "Turns each row into a prompt; {field} placeholders take the row's fields."


@dataclass
class SplitArgs:
    data: object = _f(None, "The rows to split: path, list of dicts or DataFrame.", kind="dataset")
    test_size: float = _f(0.2, "The validation share, strictly between 0 and 1.", minimum=0.0, maximum=1.0,
                          exclusive=True)
    stratify: bool = _f(True, "Keep each label's share on both sides.")
    group_duplicates: bool = _f(True, "Same or nearly the same inputs on one side.")
    seed: int = _f(0, "Seed of the split.", minimum=0, maximum=2**32 - 1)
    conflicts: str = _f("report", "Rows of one input under different labels: report, drop or merge.",
                        choices=CONFLICTS)
    prompt_template: str | None = _f(None, TEMPLATE_HELP, kind="template")
    out_dir: str | None = _f(None, "Folder to write train.jsonl and validation.jsonl to.", kind="path")
    overwrite: bool = _f(False, "Replace existing files in out_dir.")
    threshold: float = _f(NEAR_THRESHOLD, "Jaccard similarity above which inputs are near-duplicates.",
                          minimum=0.0, maximum=1.0, exclusive=False)


def split_rules(v: dict[str, Any]) -> list[str]:
    return [] if v["threshold"] > 0 else [f"threshold: {v['threshold']} must be above 0 (a share of shared word "
                                           "triples, e.g. 0.9)"]


@dataclass
class CheckDatasetArgs:
    train_dataset: object = _f(None, "Training data: path, list of dicts or DataFrame.", kind="dataset")
    validation_dataset: Any | None = _f(None, "Optional validation data.", kind="dataset")
    prompt_template: str | None = _f(None, TEMPLATE_HELP, kind="template")
    min_examples: int = _f(1, "Refuse fewer rows than this.", minimum=1, maximum=10**9)


@dataclass
class BaselineArgs:
    train: object = _f(None, "Training rows of the baseline.", kind="dataset")
    eval: object = _f(None, "Evaluation rows.", kind="dataset")
    prompt_template: str | None = _f(None, TEMPLATE_HELP, kind="template")
    labels: list[str] | None = _f(None, "The candidate labels (default: those of the evaluation rows).")
    kind: str = _f("auto", "Classification: tfidf (TF-IDF + linear SVM) or majority; generation: nearest (the "
                   "most similar training input's output) or lead (the input's first words); auto: tfidf for "
                   "labels, else the better of nearest and lead.", choices=BASELINE_KINDS)


@dataclass
class EvaluateArgs:
    model: object = _f(None, "A loaded model, a job, a job id, a model id or folder.", kind="model_like")
    data: object = _f(None, "Labelled rows: path, list of dicts or DataFrame.", kind="dataset")
    task_type: str = _f("classification", "classification or text_generation.", choices=TASK_TYPES)
    prompt_template: str | None = _f(None, TEMPLATE_HELP, kind="template")
    mode: str = _f("score", "score (rank the labels) or generate (decode and match).", choices=EVAL_MODES)
    labels: list[str] | None = _f(None, "The candidate labels (default: those of the ground truth).")
    batch_size: int = _f(GENERATE_BATCH_SIZE, "Rows per forward pass.", minimum=1, maximum=4096)
    max_output_tokens: int | None = _f(None, "Most tokens generated per row.", minimum=1, maximum=MAX_OUTPUT_TOKENS)
    progress: bool = _f(True, "Show a progress bar.")
    scoring: str = _f("auto", "How label log-likelihoods rank the labels.", choices=SCORINGS)
    graders: list | None = _f(None, "Grader objects or specs applied to each answer.", kind="graders")
    long_inputs: str = _f("auto", "What a prompt longer than max_input_tokens becomes.", choices=LONG_INPUTS)
    max_input_tokens: int | None = _f(None, "Token limit of a prompt in score mode.", minimum=16, maximum=10**7)
    overlap: str = _f("warn", "A tuned job's model: rows sharing an input with the job's training or validation "
                              "rows are warned about, refused, or ignored.", choices=OVERLAPS)


@dataclass
class GenerateArgs:
    model: object = _f(None, "A loaded model, a job, a job id, a model id or folder.", kind="model_like")
    data: object = _f(None, "Rows to answer: path, list of dicts or DataFrame.", kind="dataset")
    prompt_template: str | None = _f(None, TEMPLATE_HELP, kind="template")
    temperature: float = _f(0.0, "0: greedy; above 0: sample.", minimum=0.0, maximum=100.0)
    top_p: float | None = _f(None, "Nucleus sampling share, in (0, 1].", minimum=0.0, maximum=1.0)
    top_k: int | None = _f(None, "Sample among the k likeliest tokens.", minimum=1, maximum=10**7)
    max_output_tokens: int = _f(64, "Most tokens generated per row.", minimum=1, maximum=MAX_OUTPUT_TOKENS)
    stop_sequences: Any = _f(None, "A string or list of strings the answer is cut before.", kind="stops")
    batch_size: int = _f(GENERATE_BATCH_SIZE, "Rows per batch.", minimum=1, maximum=4096)
    progress: bool = _f(True, "Show a progress bar.")


def generate_rules(v: dict[str, Any]) -> list[str]:
    return [] if v["top_p"] is None or v["top_p"] > 0 else [f"top_p: {v['top_p']} must be above 0 (a share in "
                                                             "(0, 1]), or None"]


@dataclass
class ExportArgs:
    job_or_id: object = _f(None, "The tuning job or its id.", kind="job")
    dest: object = _f(None, "The new folder the export is written to.", kind="path")
    format: str = _f("merged", "merged, adapter or gguf.", choices=EXPORT_FORMATS)
    dtype: str | None = _f(None, "Merged weights' dtype, or the GGUF type.")
    quantization: str | None = _f(None, "'q8_0' for a quantised GGUF.")
    overwrite: bool = _f(False, "Replace an earlier export at dest.")
    prompts: Any = _f(None, "What the parity check asks both models.", kind="dataset")
    parity: bool = _f(True, "Check the export's answers against the job's model.")
    max_prompts: int = _f(32, "Most prompts of the parity check.", minimum=1, maximum=10**5)
    max_output_tokens: int = _f(48, "Most tokens per parity answer.", minimum=1, maximum=MAX_OUTPUT_TOKENS)
    progress: bool = _f(True, "Show a progress bar.")


@dataclass
class UseCheckpointArgs:
    step: Any = _f(None, "A kept checkpoint's step, or None / 'final' for the job's own model.", kind="step")


# The gated entry points by their public names: GET schema's "entry_points" (what an agent or a form may send).
ENTRY_POINTS = {"split": SplitArgs, "check_dataset": CheckDatasetArgs, "baseline": BaselineArgs,
                "evaluate": EvaluateArgs, "generate_text": GenerateArgs, "export": ExportArgs,
                "use_checkpoint": UseCheckpointArgs}


# -- jt.sweep (api/sweep.py): the sweep checked whole before its first job or folder --
SEARCHES = ("grid", "optuna")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving")
# min_evaluations (ours): a trial is judged only from its third evaluation on. A small validation set's metric is
# noisy, and one early evaluation a hair under one other trial's (0.480 against 0.483 at step 28 in
# benchmarks/bench_sweep.py) pruned a trial as good as the best; Optuna's own warm-up counts global steps,
# which differ between trials of different lengths.
DEFAULT_PRUNER = {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 0, "min_evaluations": 3}
# pruner="percentile" alone: prune a trial below the best 75 % of the others at the same step.
DEFAULT_PERCENTILE = 25.0
# The most jobs a sweep starts (grid points, or n_trials) unless max_jobs= says more: a grid of 594,000 points
# once wrote 908 job folders in 9 minutes before anything refused it.
DEFAULT_MAX_JOBS = 64
# Each pruner's arguments (Optuna's, all keyword) -> (type, least value, greatest value); "int|auto" also takes
# "auto". Ours beside them: "type" and "min_evaluations".
_COMMON_PRUNER_ARGS = {"n_startup_trials": ("int", 0, None), "n_warmup_steps": ("int", 0, None),
                       "interval_steps": ("int", 1, None), "n_min_trials": ("int", 1, None)}
PRUNER_ARGS: dict[str, dict[str, tuple[str, float | None, float | None]]] = {
    "median": dict(_COMMON_PRUNER_ARGS),
    "percentile": {"percentile": ("float", 0.0, 100.0), **_COMMON_PRUNER_ARGS},
    "hyperband": {"min_resource": ("int", 1, None), "max_resource": ("int|auto", 1, None),
                  "reduction_factor": ("int", 2, None), "bootstrap_count": ("int", 0, None)},
    "successive_halving": {"min_resource": ("int|auto", 1, None), "reduction_factor": ("int", 2, None),
                           "min_early_stopping_rate": ("int", 0, None), "bootstrap_count": ("int", 0, None)},
}
_OUR_PRUNER_ARGS = {"type": None, "min_evaluations": ("int", 0, None)}
# The metrics a job logs (metrics.jsonl, training/callbacks.py) that a sweep may rank its jobs by, by who logs
# them; eval_* ones need a validation set. GRPO also logs one reward, error and constant-group share per grader.
_SPLITS = ("train", "eval")
OBJECTIVES_ANY = tuple(f"{s}_total_loss" for s in _SPLITS)
OBJECTIVES_SUPERVISED = tuple(f"{s}_fraction_of_correct_next_step_preds" for s in _SPLITS) + (
    "eval_macro_f1", "eval_accuracy")  # not method="grpo" (its answers are its own samples)
OBJECTIVES_DPO = tuple(f"{s}_{m}" for s in _SPLITS for m in (
    "rewards_margin", "rewards_accuracy", "rewards_chosen", "rewards_rejected", "logps_chosen", "logps_rejected"))
OBJECTIVES_GRPO = tuple(f"{s}_{m}" for s in _SPLITS for m in (
    "reward", "reward_std", "constant_groups", "completion_length", "completion_clipped", "kl", "entropy"))
_PER_GRADER = re.compile(r"(train|eval)_(reward|grader_errors|constant_groups)_[A-Za-z0-9_.-]+")
OBJECTIVES = OBJECTIVES_ANY + OBJECTIVES_SUPERVISED + OBJECTIVES_DPO + OBJECTIVES_GRPO
_DATA_FIELDS = ("train_dataset", "validation_dataset")
# Set by the sweep itself (each job is named after the sweep and its trial): never a base or grid value.
_SWEEP_SETS = ("tuned_model_display_name",)


@dataclass
class SweepArgs:
    base: dict = _f(None, "The jt.tune(...) arguments every job shares; train_dataset required.")
    grid: dict = _f(None, "Parameter -> list of values: one job per combination. With search='optuna' a list is "
                          "a choice and a (low, high) tuple a range of a numeric parameter (log scale when "
                          "high >= 10 x low > 0).")
    search: str | None = _f(None, "None: every point of the grid; 'optuna': n_trials points chosen by Optuna.",
                            choices=SEARCHES)
    n_trials: int | None = _f(None, "search='optuna': how many points Optuna tries (at most max_jobs).",
                              minimum=1, maximum=10**6)
    objective: str | None = _f(None, "The logged metric that ranks the jobs; empty: select_best, else "
                                     "eval_reward for grpo, eval_macro_f1 for a classification validation set, "
                                     "eval_total_loss, else train_total_loss.")
    pruner: str | dict | None = _f("median", "search='optuna': 'median', 'percentile', 'hyperband', "
                                             "'successive_halving', a dict with 'type' and the pruner's "
                                             "arguments (and min_evaluations), or None.")
    parallel: int | None = _f(None, "search='optuna': trials at once; empty: the machine's job slots.",
                              minimum=1, maximum=1024)
    enqueue: list[dict] | None = _f(None, "search='optuna': points to try first, each inside the grid.")
    seed: int = _f(0, "The Optuna sampler's seed.", minimum=0, maximum=2**32 - 1)
    name: str | None = _f(None, "The sweep's name: its id and its jobs' names start with it.")
    max_jobs: int = _f(DEFAULT_MAX_JOBS, "The most jobs the sweep may start (grid points, or n_trials); raise it "
                                         "for a larger sweep.", minimum=1, maximum=10**6)


def sweep_rules(v: dict[str, Any]) -> list[str]:
    """What lies between jt.sweep's arguments: the grid's keys and values against the TuningParams fields they
    name, its size against max_jobs, the objective, the pruner's arguments, the points to try first, and
    every point (or, for Optuna, every choice and both ends of every range) as a job of the base."""
    search = v["search"] or "grid"
    base, grid = v["base"], v["grid"]
    problems = _base_problems(base)
    problems += _grid_problems(grid, search)
    if v["name"] is not None and not v["name"].strip():
        problems.append("name: empty; give the sweep a name, or None")
    if search == "grid":
        for arg in ("n_trials", "parallel", "enqueue"):
            if v[arg] not in (None, []):
                problems.append(f"{arg}: {_short(v[arg])} is for search='optuna'; a grid sweep starts one job per "
                                "point, as job slots allow ($JUPYTER_TUNE_SLOTS)")
        size = _grid_size(grid)
        if size is not None and size > v["max_jobs"]:
            shape = " x ".join(f"{len(values)} {k}" for k, values in grid.items())
            problems.append(f"grid: {size:,} points ({shape}) is more than max_jobs={v['max_jobs']}, the most jobs "
                            f"a sweep starts; pass max_jobs={size} to start them all, give fewer values, or let "
                            "Optuna choose some: search='optuna', n_trials=...")
    else:
        if v["n_trials"] is None:
            problems.append(f"n_trials: how many points Optuna tries: a whole number from 1 to max_jobs="
                            f"{v['max_jobs']}, e.g. n_trials=12")
        elif v["n_trials"] > v["max_jobs"]:
            problems.append(f"n_trials: {v['n_trials']} is more than max_jobs={v['max_jobs']}, the most jobs a "
                            f"sweep starts; pass max_jobs={v['n_trials']} to allow it")
        elif v["enqueue"] and len(v["enqueue"]) > v["n_trials"]:
            problems.append(f"enqueue: {len(v['enqueue'])} points to try first, but n_trials={v['n_trials']}: "
                            "the points past n_trials would never run")
        problems += _enqueue_problems(v["enqueue"] or [], grid if isinstance(grid, dict) else {})
    problems += _pruner_problems(v["pruner"])
    if not problems:
        problems += _objective_problems(v["objective"], base, grid)
    if not problems:  # the base's own values first, so that a bad one is not blamed on every point
        problems += _base_job_problems(base, grid)
    if not problems:
        problems += _point_problems(base, grid, search, v["enqueue"] or [])
    return problems


def _base_job_problems(base: dict[str, Any], grid: dict[str, Any]) -> list[str]:
    """The base's values that no grid key replaces, checked as jt.tune checks them."""
    own = {k: ("<data>" if k in _DATA_FIELDS and not isinstance(x, (str, type(None))) else x)
           for k, x in base.items() if k not in grid}
    try:
        TuningParams(**own)
    except ParameterError as e:
        return [f"base: {p}" for p in e.problems]
    return []


def _field_of(name: Any) -> dataclasses.Field | None:
    return next((f for f in dataclasses.fields(TuningParams) if f.name == name), None)


def _base_problems(base: dict[str, Any]) -> list[str]:
    problems = []
    for key in base:
        if _field_of(key) is None:
            problems.append(f"base: {_short(key)} is not a tuning parameter (the base holds jt.tune's arguments)")
        elif key in _SWEEP_SETS:
            problems.append(f"base['{key}']: each job is named after the sweep and its trial; name the sweep "
                            "with name=...")
    if base.get("train_dataset") is None:
        problems.append("base['train_dataset']: required: the training data every job reads")
    hints = _hints()
    for key in _DATA_FIELDS:
        if base.get(key) is not None:
            f = _field_of(key)
            problems += [f"base['{key}']: {p.split(': ', 1)[-1]}"
                         for p in field_problems(key, base[key], hints[key], f.metadata)]
    return problems


def _grid_problems(grid: dict[str, Any], search: str) -> list[str]:
    if not grid:
        return ["grid: empty; a dict of parameter -> list of values, e.g. {'adapter_size': [4, 8]}"]
    problems, hints = [], _hints()
    for key, values in grid.items():
        where = f"grid[{_short(key)}]"
        f = _field_of(key)
        if f is None:
            problems.append(f"grid: {_short(key)} is not a tuning parameter (a grid's keys are jt.tune's arguments)")
            continue
        if key in _SWEEP_SETS:
            problems.append(f"{where}: each job is named after the sweep and its trial")
            continue
        if isinstance(values, tuple):
            if search != "optuna":
                problems.append(f"{where}: a (low, high) range is for search='optuna'; a grid sweep takes a list "
                                "of values")
            else:
                problems += _range_problems(where, key, values, f, hints[key])
            continue
        if not isinstance(values, list) or not values:
            problems.append(f"{where}: expected a non-empty list of values"
                            + (" or a (low, high) range" if search == "optuna" else "")
                            + f", got {type(values).__name__} {_short(values)}")
            continue
        for value in values:
            problems += [f"{where}: {p.split(': ', 1)[-1]}" for p in field_problems(key, value, hints[key], f.metadata)]
            if search == "optuna" and value is not None and not isinstance(value, (bool, int, float, str)):
                problems.append(f"{where}: Optuna's choices are None, bool, int, float or str, not "
                                f"{type(value).__name__} {_short(value)}; use a grid sweep (search=None) for it")
        seen: list = []
        for value in values:
            if any(type(value) is type(s) and value == s for s in seen):
                problems.append(f"{where}: {_short(value)} is listed twice (one job each time)")
                break
            seen.append(value)
    return problems


def _range_problems(where: str, key: str, values: tuple, f: dataclasses.Field, tp: Any) -> list[str]:
    tname = _type_name(tp)
    if tname not in ("int", "float") or f.metadata.get("choices"):
        allowed = f.metadata.get("choices")
        what = f"one of {', '.join(map(repr, allowed))}" if allowed else f"a {tname}"
        return [f"{where}: a (low, high) range is for a numeric parameter without choices; {key} is {what}: give "
                f"a list of choices, e.g. {[c for c in (allowed or ()) if c is not None][:3] or '[...]'}"]
    if len(values) != 2:
        return [f"{where}: a range is a (low, high) pair, got {len(values)} values {_short(values)}"]
    low, high = values
    for end in values:
        if isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end):
            return [f"{where}: the ends of a range are finite numbers, got {_short(end)}"]
        if tname == "int" and not isinstance(end, int):
            return [f"{where}: {key} is a whole number: give whole ends, got {_short(end)}"]
    problems = [f"{where}: {p.split(': ', 1)[-1]}" for end in values for p in field_problems(key, end, tp, f.metadata)]
    if low >= high:
        problems.append(f"{where}: ({low}, {high}): low must be below high")
    return problems


def _grid_size(grid: Any) -> int | None:
    if not isinstance(grid, dict) or not grid or not all(isinstance(x, list) for x in grid.values()):
        return None
    return math.prod(len(x) for x in grid.values())


def _enqueue_problems(enqueue: list[dict], grid: dict[str, Any]) -> list[str]:
    """Points to try first lie in the search space (Optuna refuses them otherwise, in the driver)."""
    problems = []
    for i, point in enumerate(enqueue):
        for key, value in point.items():
            space = grid.get(key)
            if space is None:
                problems.append(f"enqueue[{i}]: {_short(key)} is not searched (the grid has "
                                f"{', '.join(map(repr, grid))})")
            elif isinstance(space, tuple) and len(space) == 2:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if not ok or not space[0] <= value <= space[1]:
                    problems.append(f"enqueue[{i}]: {key}={value!r} is outside the grid's range {space}")
            elif isinstance(space, list) and not any(type(value) is type(c) and value == c for c in space):
                problems.append(f"enqueue[{i}]: {key}={value!r} is not one of the grid's choices {space}")
    return problems


def _pruner_problems(pruner: Any) -> list[str]:
    if pruner is None or pruner in PRUNERS:
        return []
    known = ", ".join(map(repr, PRUNERS))
    if not isinstance(pruner, dict):
        return [f"pruner: {_short(pruner)} is not None, one of {known}, or a dict with 'type' and the pruner's "
                "arguments"]
    kind = pruner.get("type")
    if kind not in PRUNERS:
        return [f"pruner['type']: {_short(kind)} is not one of {known}"]
    allowed = {**PRUNER_ARGS[kind], **_OUR_PRUNER_ARGS}
    problems = []
    for key, value in pruner.items():
        if key not in allowed:
            problems.append(f"pruner[{_short(key)}]: not an argument of the {kind} pruner; its arguments: "
                            f"{', '.join(sorted(k for k in allowed if k != 'type'))}")
            continue
        if allowed[key] is None:
            continue
        tname, lo, hi = allowed[key]
        if tname == "int|auto" and value == "auto":
            continue
        if tname.startswith("int"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            want = {"int": "a whole number", "int|auto": "a whole number or 'auto'", "float": "a number"}[tname]
            problems.append(f"pruner[{key!r}]: {_short(value)} is not {want}")
        elif (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"from {lo} to {hi}" if hi is not None else f"{lo} or more"
            problems.append(f"pruner[{key!r}]: {value} is outside {span}")
    return problems


def _objective_problems(objective: str | None, base: dict[str, Any], grid: dict[str, Any]) -> list[str]:
    if objective is None:
        return []
    methods = set(grid["method"]) if isinstance(grid.get("method"), list) else {base.get("method", "lora")}
    problems = []
    for method in sorted(methods, key=str):
        logs = OBJECTIVES_ANY + (OBJECTIVES_DPO if method == "dpo" else ()) + (
            OBJECTIVES_GRPO if method == "grpo" else OBJECTIVES_SUPERVISED)
        if objective not in logs and not (method == "grpo" and _PER_GRADER.fullmatch(objective)):
            known = "a metric a job logs" if objective not in OBJECTIVES and not _PER_GRADER.fullmatch(
                objective) else f"logged by method={method!r} jobs"
            graders = ", a grader's train_reward_<name> / eval_reward_<name>" if method == "grpo" else ""
            problems.append(f"objective: {_short(objective)} is not {known}; they log {', '.join(map(repr, logs))}"
                            f"{graders}; or None (chosen from the method and the validation set)")
    if objective.startswith("eval_"):
        vals = grid["validation_dataset"] if isinstance(grid.get("validation_dataset"), list) else [
            base.get("validation_dataset")]
        if any(x is None for x in vals):
            problems.append(f"objective: {objective!r} is measured on a validation set, and the sweep's jobs have "
                            "none: give base['validation_dataset'], or rank by a train_ metric")
        if objective in ("eval_macro_f1", "eval_accuracy") and base.get("eval_task_metric") is False:
            problems.append(f"objective: {objective!r} needs eval_task_metric left on (None or True)")
    return problems


def _point_problems(base: dict[str, Any], grid: dict[str, Any], search: str, enqueue: list[dict]) -> list[str]:
    """Each grid point as a job (Optuna: each choice and each end of each range alone, and each point to try
    first), as jt.tune checks it: its fields and the rules between them. At most five are listed."""
    shared = {k: ("<data>" if k in _DATA_FIELDS and not isinstance(x, (str, type(None))) else x)
              for k, x in base.items()}
    if search == "grid":
        names = list(grid)
        points = (dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names)))
    else:
        points = ({k: x} for k, values in grid.items() for x in values)
    checks = [("grid", p) for p in points] + [(f"enqueue[{i}]", p) for i, p in enumerate(enqueue)]
    problems: list[str] = []
    bad = 0
    for label, point in checks:
        values = {**shared, **{k: ("<data>" if k in _DATA_FIELDS and not isinstance(x, (str, type(None))) else x)
                               for k, x in point.items()}}
        try:
            TuningParams(**values)
        except ParameterError as e:
            bad += 1
            if bad <= 5:
                problems.append(f"{label}: the point {_short(point, 120)} is not a valid job: "
                                + "; ".join(e.problems))
    if bad > 5:
        problems.append(f"grid: {bad - 5} more points are not valid jobs")
    return problems


ENTRY_POINTS["sweep"] = SweepArgs
