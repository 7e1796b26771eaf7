"""The end-of-job report (``evaluate_after``): the base and the tuned model, and a model-free baseline, on a
job's validation rows, stored in the job folder and read back as a Comparison (``job.evaluation``).

The job process runs it after saving the tuned model (training/end_report.py). Files, under
``<job>/evaluation/``: base.json, tuned.json and baseline.json (EvaluationReport.to_json): classification's
TF-IDF baseline with its majority class, or generation's better of nearest neighbour and lead words with
the other as its ``runner_up``. The base model's report depends only on the model, the rows, the template
and the scoring, so it is cached under ``cache_dir()/base-reports/``: a second job on the same data does not
pay for it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .report import EvaluationReport

EVAL_DIR = "evaluation"
REPORTS = ("base", "tuned", "baseline")
# "Short generation": answers averaging at most this many tokens, counted as characters / 4 (no tokenizer
# needed, so the pre-flight estimate and the job decide alike).
SHORT_ANSWER_TOKENS = 32
CHARS_PER_TOKEN = 4
CACHE_VERSION = 1  # bump when a report's content changes for the same inputs


def mean_answer_tokens(answers: list[str]) -> float:
    return sum(len(a) for a in answers) / max(1, len(answers)) / CHARS_PER_TOKEN


def plan(params, train_answers: list[str | None], val_answers: list[str | None] | None) -> tuple[str | None, str]:
    """(task_type or None to skip, the reason, for the job log). Auto (evaluate_after=None): on for a
    labelled classification-like validation set or short answers; off for dpo and without validation."""
    from .classification import looks_like_classification

    if params.evaluate_after is False:
        return None, "evaluate_after=False: no end-of-job report"
    if val_answers is None:
        return None, ("evaluate_after=True but there is no validation set: no end-of-job report; give "
                      "validation_dataset=" if params.evaluate_after else "")
    if params.method == "dpo":
        return None, "No end-of-job report for method='dpo' (preference pairs have no single right answer)"
    answers = [a for a in val_answers if a is not None]
    if not answers:
        return None, ("The validation set has no labels (no row ends with an answer): no end-of-job report; "
                      "add output_text / label to its rows to get one")
    if getattr(params, "task", None) == "classification":  # the tuned model is a label head
        return "classification", f"classification report on {len(answers)} validation rows (label head)"
    if looks_like_classification(answers, [a for a in train_answers if a is not None]):
        return "classification", f"classification report on {len(answers)} validation rows"
    tokens = mean_answer_tokens(answers)
    if tokens <= SHORT_ANSWER_TOKENS or params.evaluate_after:
        return "text_generation", f"text generation report on {len(answers)} validation rows"
    return None, (f"The validation answers are not class labels and not short (about {tokens:.0f} tokens on "
                  f"average; short is <= {SHORT_ANSWER_TOKENS}): no end-of-job report. Set "
                  "evaluate_after=True to run one anyway")


def eval_rows(datasets: list, template: str | None) -> tuple[list[list[dict[str, Any]]], str]:
    """Each dataset's rows with an answer in a form ``jt.evaluate`` reads, and the template to pass: the
    user's fields and template for text / BigQuery rows (their columns show in the examples), else the
    chat turns with the template already applied ("": apply none). One form for all, so a baseline trained
    on one and scored on another reads the same text."""
    sets = [[ex for ex in ds.examples if ex.answer is not None] for ds in datasets]
    if not all("output_text" in ex.fields or "label" in ex.fields for exs in sets for ex in exs):
        return [[{"messages": ex.messages} for ex in exs] for exs in sets], ""
    out = []
    for exs in sets:
        rows = []
        for ex in exs:
            row = dict(ex.fields)
            twin = ("prompt", "label") if "output_text" in row else ("input_text", "output_text")
            for key in twin:  # the loader's alias of the other format would make the row ambiguous
                row.pop(key, None)
            rows.append(row)
        out.append(rows)
    return out, template or ""


def _fingerprint(base_model: str) -> list[Any]:
    """The base model's files (name, size, mtime): a changed model is a new cache entry."""
    from ..models.from_job import model_base

    base = model_base(base_model)
    folders = [base.base_path, *base.adapters]
    out: list[Any] = []
    for folder in folders:
        for f in sorted(Path(folder).iterdir()):
            if f.is_file():
                st = f.stat()
                out.append([str(f), st.st_size, st.st_mtime_ns])
    return out


def evaluate_options(params) -> dict[str, Any]:
    """How a job's models are evaluated beyond the rows: a GRPO job is judged as it was trained, on its
    greedy answers (mode "generate", at most max_completion_length tokens) scored by its own graders beside
    the usual metrics; other jobs rank the labels (score mode) and run no graders."""
    if getattr(params, "method", None) != "grpo":
        return {}
    from ..graders import graders_from_specs

    return {"mode": "generate", "max_output_tokens": params.max_completion_length,
            "graders": graders_from_specs(params.graders)}


def _options_key(options: dict[str, Any]) -> list[Any]:
    graders = [g.to_json() if hasattr(g, "to_json") else g.name for g in options.get("graders") or []]
    return [options.get("mode"), options.get("max_output_tokens"), graders]


def base_cache_path(base_model: str, rows: list[dict], template: str, task_type: str, scoring: str,
                    options: dict[str, Any] | None = None) -> Path:
    from ..models.resolve import cache_dir

    key = [CACHE_VERSION, base_model, _fingerprint(base_model), rows, template, task_type, scoring]
    if options:  # a key without options stays what it was: earlier jobs' cached reports still serve
        key.append(_options_key(options))
    key = json.dumps(key, sort_keys=True, default=str)
    return cache_dir() / "base-reports" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def write_report(path: Path, report: EvaluationReport) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report.to_json(), default=_plain), encoding="utf-8")
    os.replace(tmp, path)


def read_report(path: Path) -> EvaluationReport | None:
    try:
        return EvaluationReport.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def _plain(x: Any) -> Any:
    """numpy scalars (and anything else JSON lacks) as Python values."""
    return x.item() if hasattr(x, "item") else str(x)


def base_report(base_model: str, rows, template: str, task_type: str,
                **options: Any) -> tuple[EvaluationReport, bool]:
    """The base model's report and whether it came from the cache; `options`: evaluate_options(params)."""
    from . import scoring as label_scoring
    from .run import evaluate

    path = base_cache_path(base_model, rows, template, task_type, label_scoring.AUTO, options)
    try:
        cached = read_report(path)
    except (OSError, ValueError, KeyError, TypeError):  # a torn or old entry: evaluate again
        cached = None
    if cached is not None:
        return cached, True
    report = evaluate(base_model, rows, task_type=task_type, prompt_template=template, progress=False, **options)
    try:
        write_report(path, report)
    except OSError:  # no cache is slower, not wrong
        pass
    return report, False


def tuned_report(model_dir: Path, rows, template: str, task_type: str, **options: Any) -> EvaluationReport:
    """The tuned model (its adapter or full model folder), with the scoring auto picks for a tuned model;
    `options`: evaluate_options(params)."""
    from . import scoring as label_scoring
    from .run import evaluate

    how = label_scoring.resolve_scoring(label_scoring.AUTO, tuned=True)
    report = evaluate(str(model_dir), rows, task_type=task_type, prompt_template=template, progress=False,
                      scoring=how, overlap="ignore", **options)  # the headline names its rows (rows_note)
    report.scoring_auto = report.mode == "score"  # what scoring="auto" picks for a tuned model
    return report


# What the report's progress says while the baseline runs, by task.
BASELINE_WHAT = {"classification": "TF-IDF baseline", "text_generation": "nearest-neighbour and lead baselines"}
# The job list's short name of a generation baseline (its report's model_name).
_SHORT = {"baseline: nearest neighbour (TF-IDF)": "nearest-neighbour baseline",
          "baseline: lead words": "lead-words baseline"}


def baseline_report(train_rows, rows, template: str, task_type: str = "classification") -> EvaluationReport:
    """Classification: TF-IDF + linear SVM (with the majority class); text generation: both generation
    baselines, the better by ROUGE-L F1 with the other as ``runner_up`` (jt.baseline)."""
    from ..data.loader import load_dataset
    from .baseline import baseline, generation_baseline

    if task_type == "classification":
        return baseline(train_rows, rows, prompt_template=template, kind="tfidf")
    # The plan already judged these rows generation: no second guess by kind="auto".
    load = [load_dataset(r, template, require_answer=True, what=w)
            for r, w in ((train_rows, "baseline training data"), (rows, "evaluation data"))]
    return generation_baseline(*load)


def headline(base: EvaluationReport, tuned: EvaluationReport, baseline: EvaluationReport | None) -> str:
    """One line for the job list, e.g. "macro F1 0.29 -> 0.84, baseline 0.79", or "ROUGE-L F1 0.20 -> 0.47,
    nearest-neighbour baseline 0.49 (tuning did not pay)"."""
    classification = base.task_type == "classification"
    name = "macro F1" if classification else "ROUGE-L F1"

    def score(r: EvaluationReport) -> float:
        return r.macro_f1 if classification else r.rouge_l

    line = f"{name} {score(base):.2f} -> {score(tuned):.2f}"
    if baseline is not None:
        which = "baseline" if classification else _SHORT.get(baseline.model_name, "baseline")
        line += f", {which} {score(baseline):.2f}"
        if score(tuned) <= score(baseline):
            line += " (tuning did not pay)"
    return line + _graders_line(base, tuned)


def grader_means(base: EvaluationReport, tuned: EvaluationReport) -> dict[str, dict[str, float]]:
    """{grader: {"base": mean, "tuned": mean}} for the graders both reports ran (a GRPO job's)."""
    before = {g["name"]: g["mean"] for g in base.graders}
    return {g["name"]: {"base": before[g["name"]], "tuned": g["mean"]} for g in tuned.graders if g["name"] in before}


def _graders_line(base: EvaluationReport, tuned: EvaluationReport) -> str:
    return "".join(f"; {name} {m['base']:.2f} -> {m['tuned']:.2f}" for name, m in grader_means(base, tuned).items())


def rows_note(which: dict[str, Any] | None) -> str:
    """Which rows a headline is measured on, e.g. "on the 24 validation rows that chose the checkpoint"."""
    if not which:
        return ""
    n, part = which.get("count"), which.get("rows")
    if part == "test":
        return f"on {n} test rows (no part in training or the choice)"
    if which.get("chose_checkpoint"):
        return f"on the {n} validation rows that chose the checkpoint"
    return f"on {n} validation rows"


def summary(reports: dict[str, EvaluationReport], seconds: float, error: str | None,
            base_cached: bool, which: dict[str, Any] | None = None) -> dict[str, Any]:
    """job.json's ``evaluation`` block: the headline (saying which rows it is on: `which`, {"rows": "test" or
    "validation", "count", "chose_checkpoint"}), the macro F1s (text generation: ROUGE-L F1s, and
    ``baselines``: each generation baseline's), the time and any error."""
    base, tuned, bl = (reports.get(k) for k in REPORTS)
    line = headline(base, tuned, bl) if base and tuned else None
    note = rows_note(which)
    out: dict[str, Any] = {"task_type": (base or tuned).task_type if (base or tuned) else None,
                           "headline": f"{line} · {note}" if line and note else line, "rows": which,
                           "seconds": round(seconds, 2), "error": error, "base_cached": base_cached,
                           "reports": sorted(reports)}
    for name in REPORTS:
        r = reports.get(name)
        out[f"{name}_macro_f1"] = r.macro_f1 if r is not None else None
        if out["task_type"] == "text_generation":
            out[f"{name}_rouge_l_f1"] = r.rouge_l if r is not None else None
    if bl is not None and bl.task_type == "text_generation":
        out["baselines"] = {r.model_name.removeprefix("baseline: "): r.rouge_l for r in (bl, bl.runner_up) if r}
    if base and tuned and tuned.graders:
        out["graders"] = grader_means(base, tuned)
    return out


def load_comparison(job_dir: Path):
    """The Comparison stored in a job folder (base vs tuned, with the baseline where there is one), or None
    before the report exists."""
    from .compare import compare

    folder = Path(job_dir) / EVAL_DIR
    base, tuned = read_report(folder / "base.json"), read_report(folder / "tuned.json")
    if base is None or tuned is None:
        return None
    return compare(base, tuned, baseline=read_report(folder / "baseline.json"))


def estimate_seconds(task_type: str | None, rows: int, seconds_per_example: float | None,
                     answer_tokens: float = 1.0) -> float | None:
    """A rough time for the end-of-job report: two models (base and tuned) over the validation rows, each
    row one forward pass (a third of a training example's forward + backward) in score mode; generation
    also decodes the answer (about an eighth of a forward per token, from the KV cache). A cached base
    report halves it; the baselines take seconds and are left out."""
    if task_type is None or seconds_per_example is None:
        return None
    per_row = seconds_per_example / 3
    if task_type == "text_generation":
        per_row *= 1 + answer_tokens / 8
    return 2 * rows * per_row
