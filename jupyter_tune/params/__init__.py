"""The tuning parameters: one dataclass that the engine validates with, the REST schema describes,
the side panel's form is built from and the generated cells are filled from.

Torch-free on purpose: the server imports this module.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .kinds import _short, kind_problems

DEFAULT_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
ADAPTER_SIZES = (1, 2, 4, 8, 16, 32)
QUANTIZATIONS = (None, "8bit", "4bit")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SELECT_BEST = (None, "eval_macro_f1", "eval_total_loss", "eval_reward", "eval_rouge_l")
SHARDINGS = (None, "fsdp")
# Experiment trackers report_to= sends each job's metrics to (through the Trainer's own integrations).
TRACKERS = ("tensorboard", "mlflow", "trackio")
# Tuning methods (training/methods.py): LoRA adapters, LoRA on a 4/8-bit base, every weight, preference (DPO),
# reinforcement from graders (GRPO).
METHODS = ("lora", "qlora", "full", "dpo", "grpo")
# The grader kinds a job's `graders` specs may name (graders/spec.py builds them in the job process). A
# model grader (score_model) needs a judge callable, which cannot be written into job.json.
GRADER_KINDS = ("label_match", "string_check", "text_similarity", "python", "multi")
# What the model learns (training/classifier.py for "classification"): to write each row's answer, or to
# pick it among the training set's labels with a classification head.
TASKS = ("generation", "classification")
# The fast-path pieces (training/fastpath.py): each one a TuningParams switch.
FAST_PATH_SWITCHES = ("packed_attention", "answer_only_logits", "fused_lora", "master_weights")
# The rate that learning_rate_multiplier scales: a good LoRA rate for small instruct models.
RECOMMENDED_LEARNING_RATE = 1e-3
# Per method: every weight moving needs a far smaller step than an adapter; DPO on an adapter sits between.
# GRPO on an adapter: 5e-5, below DPO's. Its gradient is a policy gradient on a few sampled completions per
# prompt, far noisier than DPO's fixed pairs, and a too-large step collapses the sampling (every completion
# alike, no group signal left); TRL's examples use 1e-6..1e-5 for every weight, and LoRA takes about ten
# times a full-weight rate, which puts 5e-5 inside the 1e-5..2e-4 range used for LoRA GRPO.
RECOMMENDED_LEARNING_RATES = {"lora": RECOMMENDED_LEARNING_RATE, "qlora": RECOMMENDED_LEARNING_RATE,
                              "full": 2e-5, "dpo": 2e-4, "grpo": 5e-5}
# Vertex refuses fewer than 16 training examples; so do we unless told otherwise.
MIN_TRAIN_EXAMPLES = 16
# Tokens generated per prompt unless told otherwise: jt.generate_text, the Test tab, the panel's cells.
DEFAULT_MAX_OUTPUT_TOKENS = 64
# The most tokens one answer may ask for anywhere (jt.generate_text, the cells): a typo such as 10**12 is
# refused before a model loads.
MAX_OUTPUT_TOKENS = 32768
# Sample answers at each evaluation (training/samples.py): rows sampled when sample_prompts is left empty.
DEFAULT_SAMPLE_PROMPTS = 4
# Evaluations without improvement before a job with a validation set stops (about 10 evaluations a run: a
# run that stopped improving for its last 30 % ends; the adapter is the best checkpoint either way).
DEFAULT_EARLY_STOPPING_PATIENCE = 3
MAX_SAMPLE_PROMPTS = 64
# jt.export's formats: a plain transformers folder, the PEFT adapter, a llama.cpp / Ollama file.
EXPORT_FORMATS = ("merged", "adapter", "gguf")
# The group of the main parameters: jt.tune's named arguments, the panel's form, the parameters cell.
MAIN_GROUP = "basic"


def _f(default: Any, help: str, *, label: str | None = None, group: str = "advanced",
       choices: tuple | None = None, minimum: float | None = None, maximum: float | None = None,
       kind: str | None = None, exclusive: bool = False) -> Any:
    """A field with its metadata; ``label`` is the form's short name (default: the name in words);
    ``exclusive``: the value must lie strictly between minimum and maximum."""
    meta = {"label": label, "help": help, "group": group, "choices": choices, "minimum": minimum,
            "maximum": maximum, "kind": kind, "exclusive": exclusive}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


class ParameterError(ValueError):
    """A tuning parameter is out of range; the message names it and says what is allowed. ``.problems``
    lists each one."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems if problems is not None else [message]

    @classmethod
    def listing(cls, problems: list[str], what: str = "tuning parameters") -> ParameterError:
        return cls(f"Invalid {what}:\n" + "\n".join(f"  - {p}" for p in problems), problems)


@dataclass
class TuningParams:
    # -- the main parameters (group "basic"): jt.tune's named arguments, the panel's form, the cells --
    base_model: str = _f(DEFAULT_BASE_MODEL, "Hugging Face model id, local model folder, or .gguf file.",
                         label="Base model", group="basic", kind="model")
    method: str = _f("lora", "lora, qlora (LoRA on a 4-bit base, CPU or CUDA), full (every weight), dpo "
                             "(preference pairs) or grpo (rewards from graders). Full fine-tuning saves a plain "
                             "model folder; DPO trains LoRA adapters on prompt, chosen and rejected rows with the "
                             "base as the reference; GRPO trains LoRA adapters on sampled answers scored by "
                             "`graders`.",
                     label="Method", group="basic", choices=METHODS)
    task: str = _f("generation", "generation: the model learns to write each row's answer (labels are then "
                                 "ranked by their likelihood as answers). classification: a label head on the "
                                 "prompt's last token, trained with cross-entropy over the training set's labels "
                                 "(each row's answer is its label); one forward pass per row ranks them. Not with "
                                 "method='dpo' or 'grpo'.", label="Task", group="basic", choices=TASKS)
    train_dataset: str | None = _f(None, "Training data: JSONL, JSON, CSV or Parquet file (in Python also a "
                                         "list of dicts or a pandas DataFrame).", label="Training data",
                                   group="basic", kind="dataset")
    validation_dataset: str | None = _f(None, "Optional validation data in the same formats.",
                                        label="Validation data", group="basic", kind="dataset")
    tuned_model_display_name: str | None = _f(None, "A name for the job and the tuned model.",
                                              label="Display name", group="basic")
    epochs: int | None = _f(None, "Passes over the training data; None: chosen from the dataset size.",
                            label="Epochs", group="basic", minimum=1, maximum=100)
    adapter_size: int = _f(8, "LoRA rank: 1, 2, 4, 8, 16 or 32 (alpha is twice the rank).",
                           label="Adapter size", group="basic", choices=ADAPTER_SIZES)
    learning_rate_multiplier: float = _f(1.0, f"Scales the recommended learning rate "
                                              f"({RECOMMENDED_LEARNING_RATE:g}; full: "
                                              f"{RECOMMENDED_LEARNING_RATES['full']:g}, dpo: "
                                              f"{RECOMMENDED_LEARNING_RATES['dpo']:g}, grpo: "
                                              f"{RECOMMENDED_LEARNING_RATES['grpo']:g}).", label="LR multiplier",
                                         group="basic", minimum=1e-3, maximum=100.0)
    prompt_template: str | None = _f(None, "Turns each row into a prompt, e.g. 'Assign a label ... "
                                           "{input_text}'; {field} placeholders take the row's fields.",
                                     label="Prompt template", group="basic", kind="template")
    quantization: str | None = _f(None, "Load the base model in 4 or 8 bits with bitsandbytes (QLoRA; CPU or CUDA).",
                                  label="Quantization", group="basic", choices=QUANTIZATIONS)
    # -- advanced --
    max_seq_length: int = _f(1024, "Longer examples are truncated (counted in the dataset statistics).",
                             minimum=16, maximum=131072)
    batch_size: int = _f(8, "Examples per optimizer step (per accumulation step).", minimum=1, maximum=4096)
    gradient_accumulation_steps: int = _f(1, "Batches summed before each optimizer step.", minimum=1,
                                          maximum=1024)
    lora_alpha: int | None = _f(None, "LoRA alpha; empty for 2 x adapter_size.", minimum=1, maximum=4096)
    lora_dropout: float = _f(0.0, "Dropout on the LoRA path.", minimum=0.0, maximum=0.9)
    target_modules: list[str] | None = _f(None, "Modules that get adapters; empty for every attention and "
                                               "MLP projection.")
    learning_rate: float | None = _f(None, "Absolute learning rate; overrides the multiplier when set.",
                                     minimum=1e-9, maximum=1.0)
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule.",
                                choices=("linear", "cosine", "constant", "constant_with_warmup"))
    warmup_ratio: float = _f(0.05, "Share of the steps spent warming up.", minimum=0.0, maximum=0.5)
    weight_decay: float = _f(0.0, "AdamW weight decay.", minimum=0.0, maximum=1.0)
    max_steps: int | None = _f(None, "Stop after this many optimizer steps (overrides epochs).", minimum=1,
                                maximum=10**8)
    logging_steps: int = _f(1, "Log metrics every N steps.", minimum=1, maximum=10**8)
    eval_steps: int | None = _f(None, "Evaluate on the validation set every N steps; empty for ~10 times "
                                      "a run.", minimum=1, maximum=10**8)
    save_steps: int | None = _f(None, "Checkpoint every N steps; empty for ~5 times a run.", minimum=1,
                                 maximum=10**8)
    max_eval_examples: int | None = _f(256, "Validation examples used for the periodic evaluation.",
                                       minimum=1, maximum=10**7)
    seed: int = _f(0, "Seed for shuffling and adapter initialisation: same seed, same run.", minimum=0,
                   maximum=2**32 - 1)
    precision: str = _f("auto", "auto: bf16 where the hardware runs it fast, else fp32.", choices=PRECISIONS)
    padding_free: bool = _f(True, "Pack each batch into one row without padding.")
    activation_checkpointing: bool = _f(False, "Gradient checkpointing: recompute each layer's activations in "
                                               "the backward pass. Much less memory on long documents for about "
                                               "a third more compute.")
    num_threads: int | None = _f(None, "CPU threads for training; empty for one per physical core.",
                                 minimum=1, maximum=1024)
    min_train_examples: int = _f(MIN_TRAIN_EXAMPLES, "Refuse training sets smaller than this.", minimum=1,
                                 maximum=10**7)
    data_checks: str = _f("warn", "Dataset health (duplicates, conflicting labels, train/validation leakage): "
                                  "'warn' lists them and starts the job, 'error' refuses to start, 'off' skips "
                                  "the checks.", choices=("warn", "error", "off"))
    class_weights: bool = _f(False, "task='classification': weight each row's cross-entropy by its label's "
                                    "balanced weight, rows / (labels x rows with that label), so that rare labels "
                                    "count as much as common ones.")
    dpo_beta: float = _f(0.1, "DPO's beta: how far the tuned model may move from the reference (higher: "
                              "closer to it).", minimum=1e-4, maximum=100.0)
    # -- method="grpo" (training/grpo.py): TRL's GRPOTrainer, rewards from graders --
    graders: list[dict] | None = _f(None, "method='grpo': the graders whose scores are the rewards, as specs "
                                          "(dicts): {'kind': 'label_match'}, {'kind': 'string_check', "
                                          "'operation': 'ilike', 'reference': '{{ item.reference }}'}, "
                                          "{'kind': 'text_similarity', 'evaluation_metric': 'rouge_l'}, "
                                          "{'kind': 'python', 'source': 'def grade(sample, item): ...'}, "
                                          "{'kind': 'multi', 'graders': [...]}; 'type' may stand for 'kind' "
                                          "(OpenAI's spelling) and grader objects are taken too (their "
                                          "to_json()). One reward per grader; empty: label_match.")
    num_generations: int = _f(4, "method='grpo': answers sampled per prompt (the group whose rewards are "
                                 "compared); must divide batch_size, which counts answers.", minimum=2,
                              maximum=256)
    max_completion_length: int = _f(32, "method='grpo': most tokens sampled per answer (short answers such as "
                                        "labels need few; longer ones cost generation time).", minimum=1,
                                    maximum=MAX_OUTPUT_TOKENS)
    kl_beta: float = _f(0.0, "method='grpo': weight of the KL penalty to the base model (adapter disabled). 0 "
                             "as in TRL 1.x: no reference pass; raise it (e.g. 0.04) to hold the model near the "
                             "base.", minimum=0.0, maximum=100.0)
    # -- the task metric during training, the best checkpoint --
    eval_task_metric: bool | None = _f(None, "Score the validation rows with the task's metric at every "
                                             "evaluation; empty: the labels (eval_macro_f1 / eval_accuracy) of a "
                                             "classification set (few distinct answers; always for "
                                             "task='classification'), else ROUGE-L F1 of greedy answers to up "
                                             "to 32 rows (eval_rouge_l); True: label scoring; False: off (the "
                                             "loss chooses).")
    sample_prompts: int | None = _f(None, "Validation rows whose greedy answers are recorded at every "
                                          "evaluation (samples.jsonl, the Supervise tab); 0: off; empty: "
                                          f"{DEFAULT_SAMPLE_PROMPTS} with a validation set, off for dpo.",
                                    minimum=0, maximum=MAX_SAMPLE_PROMPTS)
    select_best: str | None = _f(None, "The job's adapter is the best checkpoint by this metric; empty: the "
                                       "task's own metric with a validation set: eval_macro_f1 for a "
                                       "classification set, eval_rouge_l (ROUGE-L F1 of greedy answers) for "
                                       "generation, eval_total_loss with eval_task_metric=False; "
                                       "method='grpo': eval_reward, the mean reward on the validation prompts.",
                                 choices=SELECT_BEST)
    early_stopping_patience: int | None = _f(None, "End the job after this many evaluations without "
                                                   "improvement of the select_best metric; 0: never; empty: "
                                                   f"{DEFAULT_EARLY_STOPPING_PATIENCE} with a validation set "
                                                   "(off for dpo and grpo, whose validation metrics are noisy).",
                                             minimum=0, maximum=1000)
    evaluate_after: bool | None = _f(None, "After training, evaluate the base and the tuned model (and a "
                                           "TF-IDF baseline) on the validation set and store the comparison "
                                           "(job.evaluation, the Evaluate tab); empty: on when the validation "
                                           "set is labelled and a classification or short-answer set, off "
                                           "for dpo.")
    test_dataset: str | None = _f(None, "Rows kept out of training and of the checkpoint's choice (same "
                                        "formats as the training data): the end-of-job report scores base, "
                                        "tuned and baseline on them, so its headline is not measured on the "
                                        "validation rows that chose the checkpoint.", kind="dataset")
    # -- experiment trackers (training/trackers.py) --
    report_to: list[str] | None = _f(None, "Also send the metrics, parameters and the adapter's location to "
                                           "these trackers: tensorboard, mlflow, trackio (each writes under "
                                           "the job folder unless its own environment variable points "
                                           "elsewhere).", group="experiments")
    # -- more than one device (training/distributed.py: torchrun, data parallel) --
    num_processes: int = _f(1, "Training processes, one per device (torchrun data parallel; Gloo on CPU, NCCL "
                               "on CUDA); 0 or 'auto': one per visible GPU, 1 on CPU.", group="distributed",
                            minimum=0, maximum=1024)
    nnodes: int = _f(1, "Machines taking part (torchrun --nnodes); each runs the job with its node_rank.",
                     group="distributed", minimum=1, maximum=4096)
    node_rank: int = _f(0, "This machine's rank among nnodes (torchrun --node-rank).", group="distributed",
                        minimum=0, maximum=4095)
    rdzv_endpoint: str | None = _f(None, "host:port where the machines meet (torchrun --rdzv-endpoint); "
                                         "needed when nnodes > 1.", group="distributed")
    sharding: str | None = _f(None, "'fsdp': shard the model over the processes (Trainer's FSDP) for models "
                                    "that do not fit one device.", group="distributed", choices=SHARDINGS)
    # -- the fast path: each piece checks what it supports and falls back to the library path --
    packed_attention: bool = _f(True, "Per-example attention for packed rows (exact; off for models whose "
                                      "attention it does not support).", group="fast path")
    answer_only_logits: bool = _f(True, "Compute the output layer only where answers are trained on "
                                        "(through the model's own forward and logits_to_keep).",
                                  group="fast path")
    fused_lora: bool = _f(False, "One addmm for base + LoRA (never with dropout, DoRA, quantized bases). Off by "
                                 "default: it measured 0.81x-0.97x end to end on every CPU benchmarked.",
                          group="fast path")
    master_weights: bool = _f(True, "Half-precision adapters with fp32 master weights in the optimizer "
                                    "(off: fp32 adapters).", group="fast path")

    def __post_init__(self) -> None:
        if self.num_processes == "auto":  # the contract's spelling; stored as 0
            self.num_processes = 0
        if isinstance(self.base_model, os.PathLike):  # a pathlib.Path is a path, not a type error
            self.base_model = os.fspath(self.base_model)
        if isinstance(self.report_to, str):  # Trainer's own spelling for one tracker
            self.report_to = [self.report_to]
        if isinstance(self.graders, (list, tuple)):  # grader objects (jt.graders) as their specs
            self.graders = [g.to_json() if not isinstance(g, dict) and callable(getattr(g, "to_json", None))
                            else g for g in self.graders]
        problems = validate_params(self)
        if problems:
            raise ParameterError.listing(problems)

    @property
    def effective_lora_alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.adapter_size

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return RECOMMENDED_LEARNING_RATES[self.method] * self.learning_rate_multiplier

    @property
    def effective_method(self) -> str:
        """The method that runs: ``quantization=`` on a LoRA job keeps meaning QLoRA."""
        return "qlora" if self.method == "lora" and self.quantization else self.method

    @property
    def effective_sample_prompts(self) -> int:
        """Validation rows sampled at each evaluation: the default is off for DPO (asked for, it samples)."""
        if self.sample_prompts is not None:
            return self.sample_prompts
        return 0 if self.method == "dpo" else DEFAULT_SAMPLE_PROMPTS

    @property
    def effective_quantization(self) -> str | None:
        """The base model's quantization: method="qlora" alone means 4 bits."""
        return self.quantization or ("4bit" if self.method == "qlora" else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TuningParams:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ParameterError(f"Unknown tuning parameter(s): {', '.join(map(repr, unknown))}. "
                                 f"Known: {', '.join(sorted(names))}.")
        return cls(**d)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TuningParams:
        """From JSON values (the panel, REST, generated cells): as from_dict, and the dataset fields must be
        file paths (the Python API also takes lists of dicts and DataFrames). Every problem is listed."""
        hints = _hints()
        paths = {f.name: field_problems(f.name, d.get(f.name), hints[f.name], f.metadata, python_data=False)
                 for f in dataclasses.fields(cls) if f.metadata.get("kind") == "dataset"}
        bad = [name for name, found in paths.items() if found]
        try:
            params = cls.from_dict({k: (None if k in bad else v) for k, v in d.items()})
            others: list[str] = []
        except ParameterError as e:
            others = e.problems
        problems = [p for name in bad for p in paths[name]] + others
        if problems:
            raise ParameterError.listing(problems)
        return params


@dataclass
class ActionParams:
    """The panel's parameters that are not tuning parameters (which job, which data, what to ask, where to
    export), declared like TuningParams so that the REST API and the cells check them the same way."""
    job_id: str | None = _f(None, "A tuning job id; its tuned model is used instead of the base model.",
                            kind="job")
    dataset: str | None = _f(None, "Data to evaluate or generate on (path); when empty, validation_dataset. "
                                   "One of them is needed: the training data is never used.", kind="dataset")
    task_type: str | None = _f(None, "'classification' or 'text_generation'.",
                               choices=("classification", "text_generation"))
    prompt: str | None = _f(None, "The prompt sent to the tuned model.")
    max_output_tokens: int | None = _f(None, "Most tokens generated per row.", minimum=1,
                                       maximum=MAX_OUTPUT_TOKENS)
    dest: str | None = _f(None, "The new folder an export is written to.", kind="path")
    format: str | None = _f(None, "Export format: 'merged' (plain transformers folder), 'adapter' (PEFT) or "
                                  "'gguf' (llama.cpp, Ollama).", choices=EXPORT_FORMATS)
    job_ids: list[str] | None = _f(None, "Tuning job ids to compare side by side.")
    holdout: float | None = _f(None, "Share of the training rows held out for validation when no validation "
                                     "dataset is given (jt.split: stratified by label, no input or near-"
                                     "duplicate on both sides).", minimum=0.05, maximum=0.5)
    # the same choices as jt.split's `conflicts` (arguments.CONFLICTS; tests/cells check they agree)
    holdout_conflicts: str | None = _f(None, "With holdout: what jt.split does with an input found under two "
                                             "labels: 'report' it, 'drop' its rows, or 'merge' them under its "
                                             "most frequent label.", choices=("report", "drop", "merge"))


def check_action_value(name: str, value: Any) -> None:
    """Raise ParameterError when one of ActionParams' values is wrong (the Python API's check of what the
    cells check: jt.generate_text's max_output_tokens, ...)."""
    problems = action_params_problems({name: value})
    if problems:
        raise ParameterError(problems[0], problems)


def action_params_problems(values: dict[str, Any]) -> list[str]:
    """Every problem of the panel's non-tuning parameters, as they arrive from JSON."""
    hints = typing.get_type_hints(ActionParams)
    return [p for f in dataclasses.fields(ActionParams) if f.name in values
            for p in field_problems(f.name, values[f.name], hints[f.name], f.metadata, python_data=False)]


def field_label(f: dataclasses.Field) -> str:
    """A field's short name for forms: its ``label``, else its name in words ("max_seq_length" ->
    "Max seq length")."""
    return f.metadata.get("label") or f.name.replace("_", " ").capitalize()


def main_fields() -> list[dataclasses.Field]:
    """The main parameters, in declaration order (jt.tune's named arguments, the form, the cells)."""
    return [f for f in dataclasses.fields(TuningParams) if f.metadata["group"] == MAIN_GROUP]


def field_default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def choose_epochs(num_examples: int) -> int:
    """Epochs when the user leaves it empty: about 1,000 examples seen, between 1 and 10 passes."""
    return max(1, min(10, math.ceil(1000 / max(1, num_examples))))


def _type_name(tp: Any) -> str:
    """The schema's name for a field's type: bool, int, float, str, list[str], list[dict] or any."""
    args = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    if len(args) != 1:
        return "any"
    t = args[0]
    if typing.get_origin(t) in (list, tuple):
        if typing.get_args(t) in ((dict,), (dict, Ellipsis)):
            return "list[dict]"  # JSON objects (grader specs): the server checks their contents
        return "list[str]" if typing.get_args(t) in ((str,), (str, Ellipsis)) else "any"
    if t is dict or typing.get_origin(t) is dict:
        return "dict"
    return t.__name__ if t in (bool, int, float, str) else "any"


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _nullable(tp: Any) -> bool:
    return tp is Any or (_is_union(tp) and type(None) in typing.get_args(tp))


@functools.cache
def _hints() -> dict[str, Any]:
    # Real types, not the strings that `from __future__ import annotations` leaves in f.type.
    return typing.get_type_hints(TuningParams)


def _type_ok(tname: str, value: Any) -> bool:
    if tname == "bool":
        return isinstance(value, bool)
    if tname == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tname == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tname == "str":
        return isinstance(value, str)
    if tname == "list[str]":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)
    if tname == "list[dict]":
        return isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value)
    if tname == "dict":
        return isinstance(value, dict)
    return True


def field_problems(name: str, value: Any, tp: Any, meta: Any, *, python_data: bool = True) -> list[str]:
    """What is wrong with one value of a declared field (type, choices, finiteness, range): the one check
    every path runs, for TuningParams and for the panel's other parameters (ActionParams).

    python_data: dataset fields may also be lists of dicts or DataFrames (the Python API); from JSON (the
    panel, REST, cells) they are paths."""
    if value is None:
        return [] if _nullable(tp) else [f"{name}: must be set"]
    by_kind = kind_problems(name, value, meta.get("kind"), python_data=python_data)
    if by_kind is not None:
        return by_kind
    tname = _type_name(tp)
    if not _type_ok(tname, value):
        return [f"{name}: expected {tname}, got {type(value).__name__} {_short(value)}"]
    if meta.get("choices") is not None and value not in meta["choices"]:
        allowed = ", ".join(repr(c) for c in meta["choices"])
        return [f"{name}: {_short(value)} is not one of {allowed}"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{name}: {value!r} is not a finite number"]
    problems = []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("minimum"), meta.get("maximum")
        if meta.get("exclusive"):
            if (lo is not None and value <= lo) or (hi is not None and value >= hi):
                problems.append(f"{name}: {value} must lie strictly between {lo} and {hi}")
        else:
            if lo is not None and value < lo:
                problems.append(f"{name}: {value} is below the minimum {lo}")
            if hi is not None and value > hi:
                problems.append(f"{name}: {value} is above the maximum {hi}")
    if isinstance(value, str) and meta.get("kind") == "model" and not value.strip():
        problems.append(f"{name}: empty; {meta['help']}")
    return problems


def fields_problems(obj: Any, hints: dict[str, Any], *, python_data: bool = True) -> list[str]:
    """field_problems for every field of a dataclass instance."""
    return [p for f in dataclasses.fields(obj)
            for p in field_problems(f.name, getattr(obj, f.name), hints[f.name], f.metadata,
                                    python_data=python_data)]


def _host_port(text: str) -> bool:
    """Whether ``text`` is host:port as torchrun's --rdzv-endpoint takes it: a host name or IPv4 address (or
    an IPv6 one in brackets), a colon, and a port from 1 to 65535."""
    import re

    m = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}[A-Za-z0-9])?):([0-9]{1,5})", text)
    return m is not None and 1 <= int(m.group(2)) <= 65535


def validate_params(p: TuningParams, *, python_data: bool = True) -> list[str]:
    """Every problem of a parameter set: each field's own, then the rules between fields (only over
    fields that passed their own check, so a wrong type is reported as such, never as a crash)."""
    problems = fields_problems(p, _hints(), python_data=python_data)
    if problems:
        return problems
    if p.sharding == "fsdp" and p.quantization:
        problems.append(f"sharding: 'fsdp' cannot shard a {p.quantization} (QLoRA) base: bitsandbytes' quantized "
                        "weights do not shard with FSDP here. Use quantization=None with FSDP, or QLoRA "
                        "without sharding.")
    if p.method == "full" and p.quantization:
        problems.append(f"method: 'full' trains every weight, which a {p.quantization} base cannot hold; use "
                        "method='qlora' (adapters on a quantized base) or quantization=None")
    if p.task == "classification" and p.method == "dpo":
        problems.append("task: 'classification' trains a label head on labelled rows; method='dpo' trains on "
                        "preference pairs and has no head. Use method='lora', 'qlora' or 'full' with "
                        "task='classification', or task='generation' with DPO.")
    if p.class_weights and p.task != "classification":
        problems.append("class_weights: only for task='classification' (a label head's cross-entropy); the "
                        "generative loss is over answer tokens")
    if p.method == "dpo" and p.sharding:
        problems.append("method: 'dpo' does not run with sharding='fsdp' here; leave sharding=None")
    problems += grpo_problems(p)
    unknown_trackers = [t for t in (p.report_to or []) if t not in TRACKERS]
    if unknown_trackers:
        problems.append(f"report_to: {', '.join(map(repr, unknown_trackers))} not among "
                        f"{', '.join(map(repr, TRACKERS))}")
    if p.select_best in ("eval_macro_f1", "eval_rouge_l") and p.eval_task_metric is False:
        problems.append(f"select_best: {p.select_best!r} needs eval_task_metric left on (None or True)")
    if p.select_best == "eval_rouge_l" and (p.method in ("dpo", "grpo") or p.task == "classification"):
        problems.append("select_best: 'eval_rouge_l' (ROUGE-L of greedy answers) is for generation jobs of "
                        f"method 'lora', 'qlora' or 'full'; this job is {p.method!r} / task {p.task!r}")
    if p.nnodes > 1 and not p.rdzv_endpoint:
        problems.append("rdzv_endpoint: needed when nnodes > 1 (host:port of the first machine, the same on "
                        "every machine)")
    if p.rdzv_endpoint and not _host_port(p.rdzv_endpoint):
        problems.append(f"rdzv_endpoint: {_short(p.rdzv_endpoint)} is not host:port (the first machine's name or "
                        "address and a port from 1 to 65535, e.g. 'node0:29500', '10.0.0.1:29500' or "
                        "'[fd00::1]:29500')")
    if p.node_rank >= p.nnodes:
        problems.append(f"node_rank: {p.node_rank} must be below nnodes ({p.nnodes})")
    return problems


def inapplicable(p: TuningParams, *, has_validation: bool) -> list[str]:
    """The values set that cannot apply to this job: each one a warning on the job (job.json, the view), so
    that nothing the user asked for is dropped silently."""
    notes = []
    if not has_validation:
        asked = {"sample_prompts": p.sample_prompts not in (None, 0), "eval_steps": p.eval_steps is not None,
                 "select_best": p.select_best is not None,
                 "early_stopping_patience": p.early_stopping_patience not in (None, 0),
                 "evaluate_after": p.evaluate_after is True, "eval_task_metric": p.eval_task_metric is True}
        for name in (n for n, on in asked.items() if on):
            notes.append(f"{name}={getattr(p, name)!r} does not apply: the job has no validation set (give "
                         "validation_dataset=, or hold out a share with jt.split)")
    if p.nnodes == 1 and p.rdzv_endpoint:
        notes.append(f"rdzv_endpoint={p.rdzv_endpoint!r} does not apply with nnodes=1 (one machine)")
    return notes


def grpo_problems(p: TuningParams) -> list[str]:
    """The rules of method="grpo" and its fields: the grader specs' shape (graders/spec.py builds them, and
    jt.tune builds them once before a job exists), the group size against the batch (TRL's rule)."""
    problems = []
    if p.method != "grpo":
        if p.graders:
            problems.append(f"graders: only for method='grpo' (rewards while training); method is {p.method!r}. "
                            "To score a model with graders, use jt.evaluate(..., graders=[...]).")
        if p.select_best == "eval_reward":
            problems.append("select_best: 'eval_reward' is method='grpo''s mean validation reward")
        return problems
    if p.task == "classification":
        problems.append("task: 'classification' trains a label head; method='grpo' samples answers and scores "
                        "them with graders. Use task='generation' with GRPO (a label_match grader rewards the "
                        "right label).")
    if p.sharding:
        problems.append("method: 'grpo' does not run with sharding='fsdp' here; leave sharding=None")
    if p.batch_size % p.num_generations:
        problems.append(f"num_generations: {p.num_generations} must divide batch_size ({p.batch_size}): with "
                        "GRPO a batch holds whole groups of answers to one prompt (TRL's rule, for the "
                        "evaluation batch too); batch_size counts answers, so batch_size=8 with "
                        "num_generations=4 is two prompts a step")
    if p.select_best == "eval_macro_f1":
        problems.append("select_best: 'eval_macro_f1' is not computed for method='grpo'; use 'eval_reward' "
                        "(the default)")
    if p.graders is not None and not isinstance(p.graders, (list, tuple)):
        problems.append(f"graders: expected a list of grader specs (dicts), got {type(p.graders).__name__}")
    else:
        for i, spec in enumerate(p.graders or []):
            problems += [f"graders[{i}]: {m}" for m in grader_spec_problems(spec)]
    return problems


def grader_spec_problems(spec: Any) -> list[str]:
    """The shape of one grader spec (a dict with a known kind); options are checked when it is built."""
    if not isinstance(spec, dict):
        return [f"expected a grader spec (a dict such as {{'kind': 'label_match'}}), got {_short(spec)}"]
    key = "kind" if "kind" in spec else "type"  # the spelling the user wrote is the one named
    kind = spec.get(key)
    if kind in ("score_model", "model"):
        return [f"{key}: {kind!r}: a model grader needs a judge callable, which cannot be stored in the job; use a "
                "python grader (its source is stored) or score with jt.evaluate(..., graders=[...])"]
    if kind not in GRADER_KINDS:
        return [f"{key}: {_short(kind)} is not one of {', '.join(map(repr, GRADER_KINDS))}"]
    if "name" in spec and (not isinstance(spec["name"], str) or not spec["name"].strip()):
        return [f"name: expected a non-empty str, got {_short(spec['name'])}"]
    if kind == "python" and not (isinstance(spec.get("source"), str) and spec["source"].strip()):
        return ["a python grader needs 'source': the text of def grade(sample, item) -> float"]
    if kind == "multi":
        subs = spec.get("graders")
        if not isinstance(subs, (list, tuple)) or not subs:
            return ["a multi grader needs 'graders': a non-empty list of grader specs"]
        return [f"graders[{j}]: {m}" for j, s in enumerate(subs) for m in grader_spec_problems(s)]
    return []


def _describe(cls: type, hints: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        out.append({
            "name": f.name,
            "label": field_label(f),
            "type": _type_name(hints[f.name]),
            "nullable": _nullable(hints[f.name]),
            "default": field_default(f),
            "help": meta["help"],
            "group": meta["group"],
            "choices": list(meta["choices"]) if meta.get("choices") else None,
            "minimum": meta.get("minimum"),
            "maximum": meta.get("maximum"),
            "exclusive": bool(meta.get("exclusive")),
            "kind": meta.get("kind"),
        })
    return out


def schema() -> dict[str, Any]:
    """The parameters as JSON for the REST API and the panel's form: the tuning parameters and the
    actions' other parameters, checked against the same declarations on every path."""
    from .arguments import ENTRY_POINTS

    return {"parameters": _describe(TuningParams, _hints()),
            "action_parameters": _describe(ActionParams, typing.get_type_hints(ActionParams)),
            "entry_points": {name: _describe(spec, typing.get_type_hints(spec)) for name, spec in ENTRY_POINTS.items()},
            "recommended_learning_rate": RECOMMENDED_LEARNING_RATE,
            "recommended_learning_rates": dict(RECOMMENDED_LEARNING_RATES)}


__all__ = ["TuningParams", "ActionParams", "ParameterError", "MAX_OUTPUT_TOKENS", "schema", "choose_epochs", "main_fields", "field_label",
           "field_default", "DEFAULT_BASE_MODEL", "DEFAULT_MAX_OUTPUT_TOKENS", "ADAPTER_SIZES", "METHODS", "TASKS", "GRADER_KINDS"]
