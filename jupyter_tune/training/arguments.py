"""What every method's trainer is built from: the base model to train (a model or a finished job's), and the
Trainer keywords they share (TrainingArguments and TRL's configs alike)."""

from __future__ import annotations

import math
from pathlib import Path

from ..params import TuningParams
from .distributed import trainer_arguments
from .log import log


def training_base(base_model: str):
    """(model folder, adapters to merge into it first): a base model, or a finished job's model
    (models/from_job.model_base), said in the job log."""
    from ..models.from_job import model_base

    base = model_base(base_model)
    if base.job_id:
        log(f"Base model: job {base.job_id} ({base.base_path}"
            + (f" with {len(base.adapters)} adapter(s) merged)" if base.adapters else ")"))
    else:
        log(f"Base model {base_model} from {base.base_path}")
    return base.base_path, base.adapters


def checkpointing_arguments(on: bool) -> dict:
    """Gradient checkpointing under the name this transformers takes: ``activation_checkpointing`` in recent
    5.x, ``gradient_checkpointing`` in earlier ones (5.17, on the GPU check's machine)."""
    import inspect

    from transformers import TrainingArguments

    name = ("activation" if "activation_checkpointing" in inspect.signature(TrainingArguments).parameters
            else "gradient") + "_checkpointing"
    # non-reentrant: a frozen base's inputs need no requires_grad for the adapters to get gradients
    return {name: on, f"{name}_kwargs": {"use_reentrant": False} if on else None}


def shared_arguments(params: TuningParams, num_examples: int, epochs: int, evaluate: bool, select: str | None,
                     device: str, output_dir: Path) -> tuple[dict, int]:
    """The Trainer keywords every method shares (schedule, evaluation, checkpoints, seeds, precision,
    processes; TrainingArguments and TRL's configs alike) and the run's total optimizer steps."""
    from .selection import SELECT_METRICS

    steps_per_epoch = math.ceil(num_examples / (params.batch_size * params.gradient_accumulation_steps))
    total_steps = params.max_steps or steps_per_epoch * epochs
    eval_steps = params.eval_steps or max(1, total_steps // 10)
    save_steps = params.save_steps or max(1, total_steps // 5)
    if select:  # a checkpoint at every evaluation, so the best one exists to return to
        save_steps = eval_steps
    best_metric, greater = SELECT_METRICS[select] if select else (None, True)
    return dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        num_train_epochs=epochs,
        max_steps=params.max_steps or -1,
        learning_rate=params.effective_learning_rate,
        lr_scheduler_type=params.lr_scheduler_type,
        warmup_steps=math.ceil(params.warmup_ratio * total_steps),
        weight_decay=params.weight_decay,
        logging_steps=params.logging_steps,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,  # with metric_for_best_model, rotation also keeps the best checkpoint
        metric_for_best_model=best_metric,
        greater_is_better=greater,
        load_best_model_at_end=False,  # a cancelled job keeps its latest weights; load_best() picks the best
        seed=params.seed,
        data_seed=params.seed,
        # the base weights are already in their training dtype (no autocast); adapters train in fp32
        bf16=False,
        fp16=False,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        report_to=[],
        # the job's progress is in job.json and the panel; tqdm's bars are carriage-return noise in log.txt
        disable_tqdm=True,
        **checkpointing_arguments(params.activation_checkpointing),
        **trainer_arguments(params),  # FSDP, several machines
    ), total_steps
