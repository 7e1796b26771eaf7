"""The arguments of every public entry point other than jt.tune (whose are TuningParams), declared once.

Each dataclass mirrors one function's signature (``gate.checked`` asserts that they agree at import) and is
checked by the same ``field_problems`` as TuningParams; ``rules`` add what lies between arguments. Torch-free:
the server's cells endpoint and the schema read these declarations too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import EXPORT_FORMATS, MAX_OUTPUT_TOKENS, _f

# jt.split's conflict handling, jt.baseline's kinds, jt.evaluate's choices (their modules import these).
CONFLICTS = ("report", "drop", "merge")
BASELINE_KINDS = ("tfidf", "majority")
TASK_TYPES = ("classification", "text_generation")
EVAL_MODES = ("score", "generate")
SCORINGS = ("auto", "sum", "mean", "calibrated", "calibrated_mean")
LONG_INPUTS = ("auto", "whole", "cut", "chunks")
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
    kind: str = _f("tfidf", "tfidf (TF-IDF + linear SVM) or majority.", choices=BASELINE_KINDS)


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
