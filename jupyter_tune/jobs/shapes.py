"""The shapes of job.json and its blocks, as TypedDicts: what each key holds and which layer writes it.
job.json stays plain JSON (the server and the panel read it without this package's classes); these types
say what a reader may find, for readers and for type checkers. Every key may be missing in a job written
by an older version or still starting, hence ``total=False``."""

from __future__ import annotations

from typing import Any, TypedDict


class FastPathPiece(TypedDict):
    on: bool
    why: str


class TuningInfo(TypedDict, total=False):
    """job.json ``tuning``: what trains (training/info.model_info) and the run's schedule (training/build.py,
    the same for every method)."""

    method: str                      # "LoRA", "QLoRA", "Full fine-tuning", "DPO (...)", "+ a N-label ... head"
    task: str                        # "generation" or "classification"
    labels: list[str]                # classification: the head's classes, in order
    num_labels: int
    class_weights: dict[str, float] | None
    adapter_size: int | None
    lora_alpha: int | None
    lora_dropout: float | None
    target_modules: list[str]
    trainable_params: int
    total_params: int
    trainable_percent: float
    quantization: str | None
    device: str
    dtype: str
    num_threads: int
    attn_implementation: str
    fast_path: dict[str, FastPathPiece]
    saved: dict[str, Any]            # the dtype weights are saved in, and why
    base_model: str
    resolved_model_path: str
    learning_rate: float
    epochs: int
    total_steps: int
    batch_size: int
    gradient_accumulation_steps: int
    max_seq_length: int
    eval_steps: int | None
    save_steps: int
    padding_free: bool
    task_metric: dict[str, int] | None
    select_best: str | None
    early_stopping_patience: int | None
    num_processes: int
    dpo_beta: float                  # method="dpo" (training/dpo.py)
    reference: str | None            # dpo, grpo with kl_beta > 0: the reference model
    graders: list[dict[str, str]]    # method="grpo": each grader's name and kind (training/grpo.py)
    num_generations: int
    max_completion_length: int
    kl_beta: float


class SplitStats(TypedDict, total=False):
    """One split of dataset_stats.json (data/stats.split_stats; Vertex's tuning dataset statistics)."""

    source: str
    tuning_dataset_example_count: int
    total_tuning_character_count: int
    total_token_count: int
    total_billable_token_count: int
    tuning_step_count: int
    user_input_token_distribution: dict[str, Any]
    user_output_token_distribution: dict[str, Any]
    user_message_per_example_distribution: dict[str, Any]
    truncated_example_count: int
    truncated_example_indices: list[int]
    dropped_example_count: int
    dropped_examples: list[dict[str, Any]]
    warnings: list[str]
    user_dataset_examples: list[dict[str, Any]]
    long_prompt_count: int           # method="grpo": prompts that leave < max_completion_length tokens


class DatasetStats(TypedDict, total=False):
    """dataset_stats.json, beside job.json: written once by the job process (training/build.py's pipeline)."""

    max_seq_length: int
    epochs: int
    method: str
    train: SplitStats
    validation: SplitStats | None
    health: dict[str, Any]           # data/health.py's findings, checked by jt.tune


class Progress(TypedDict, total=False):
    step: int
    total_steps: int
    epoch: float
    eta_seconds: float | None
    phase: str                       # "evaluating" during the end-of-job report
    evaluating: str


class BestCheckpoint(TypedDict, total=False):
    step: int
    metric: str
    value: float
    checkpoint: str


class EvaluationSummary(TypedDict, total=False):
    """job.json ``evaluation``: the end-of-job report (evaluation/job_report.py), or why there is none."""

    task_type: str
    headline: str
    seconds: float
    error: str | None
    skipped: str
    base_cached: bool
    reports: dict[str, str]
    base_macro_f1: float
    tuned_macro_f1: float
    baseline_macro_f1: float | None
    base_rouge_l_f1: float      # a generation job: ROUGE-L F1 of the base, tuned model and better baseline
    tuned_rouge_l_f1: float
    baseline_rouge_l_f1: float | None
    rows: dict[str, Any] | None  # which rows: {"rows": "test" | "validation", "count", "chose_checkpoint"}
    baselines: dict[str, float]  # each generation baseline's ROUGE-L F1 (nearest neighbour, lead words)
    graders: dict[str, dict[str, float]]  # a GRPO job: {grader: {"base": mean, "tuned": mean}}


class JobRecord(TypedDict, total=False):
    """job.json: written by the launch (api/launch.py), the job process (training/worker.py) and the store."""

    id: str
    display_name: str
    state: str                       # a JobState value
    create_time: str
    create_unix: float
    queued_unix: float
    start_time: str | None
    end_time: str | None
    update_time: str
    error: dict[str, Any] | None     # {"message", ...}
    pid: int | None
    pid_create_time: float | None
    params: dict[str, Any]           # TuningParams as JSON (params.py)
    warnings: list[str]
    num_train_examples: int
    num_validation_examples: int | None
    progress: Progress
    data_health: dict[str, Any]
    paths: dict[str, str]
    tuning: TuningInfo
    samples: dict[str, Any]
    best: BestCheckpoint | None
    stopped_early: dict[str, Any] | None
    chosen_checkpoint: dict[str, Any] | None
    evaluation: EvaluationSummary
    queue_position: int | None
    pending_since: float | None
