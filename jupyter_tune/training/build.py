"""Building a ready Trainer from parameters and data: shared by the job process and the cost estimate."""

from __future__ import annotations

from pathlib import Path

from ..data.loader import Dataset
from ..models.arch import pad_id
from ..params import TuningParams, choose_epochs
from .arguments import shared_arguments, training_base
from .log import log


def build_trainer(params: TuningParams, train: Dataset, val: Dataset | None, output_dir: Path):
    """Everything up to a ready Trainer: (trainer, tokenizer, info for job.json, dataset stats)."""
    if params.method == "dpo":  # TRL's DPOTrainer on preference rows
        from .dpo import build_dpo_trainer

        return build_dpo_trainer(params, train, val, output_dir)
    if params.method == "grpo":  # TRL's GRPOTrainer, rewards from graders
        from .grpo import build_grpo_trainer

        return build_grpo_trainer(params, train, val, output_dir)
    import torch
    from transformers import AutoTokenizer, TrainingArguments, set_seed

    from ..data.stats import encode_dataset, split_stats
    from .collator import PaddedCollator, PaddingFreeCollator
    from .setup import choose_hardware, load_for_training
    from .trainer import TuningTrainer

    hw = choose_hardware(params)
    torch.set_num_threads(hw.num_threads)
    set_seed(params.seed)
    model_path, merge = training_base(params.base_model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    epochs = params.epochs or choose_epochs(len(train))
    head = None  # task="classification": a label head in place of the answer tokens (training/classifier.py)
    if params.task == "classification":
        from .classifier import plan_classification

        head = plan_classification(params, train, val, tokenizer)
        log(f"Classification head: a new score layer for {len(head.labels)} labels ("
            f"{', '.join(head.labels[:6])}{', ...' if len(head.labels) > 6 else ''})"
            + ("; balanced class weights" if head.weights else ""))
    encode = head.encode if head else encode_dataset
    train_enc, train_dropped = encode(tokenizer, train, params.max_seq_length)
    if not train_enc:
        raise ValueError("Every training example was dropped (no answer tokens left); see dataset_stats.json.")
    stats = {"max_seq_length": params.max_seq_length, "epochs": epochs,
             "train": split_stats(tokenizer, train, params.max_seq_length, epochs, params.batch_size,
                                  train_enc, train_dropped),
             "validation": None}
    val_enc = None
    if val is not None:
        val_enc, val_dropped = encode(tokenizer, val, params.max_seq_length)
        stats["validation"] = split_stats(tokenizer, val, params.max_seq_length, 1, params.batch_size,
                                          val_enc, val_dropped)
        val_enc = val_enc[: params.max_eval_examples or None]

    from .selection import (
        EarlyStopping,
        EvaluateAtEnd,
        plan_task_metric,
        resolve_select_best,
    )

    if head:
        task_metric = head.task_metric(params, val_enc)
    else:
        task_metric = plan_task_metric(params, train, val, tokenizer) if val_enc else None
    select = resolve_select_best(params, bool(val_enc), task_metric)

    model, info = load_for_training(str(model_path), params, hw, merge, head=head.head if head else None)
    for name, piece in info["fast_path"].items():
        if not piece["on"]:
            log(f"Fast path: {name} off ({piece['why']})")
    shared, total_steps = shared_arguments(params, len(train_enc), epochs, bool(val_enc), select, hw.device,
                                           output_dir)
    eval_steps, save_steps = shared["eval_steps"], shared["save_steps"]
    best_metric, greater = shared["metric_for_best_model"], shared["greater_is_better"]
    args = TrainingArguments(
        **shared,
        remove_unused_columns=False,
        label_names=["labels"],
        prediction_loss_only=True,
        save_only_model=False,
        ddp_find_unused_parameters=False,  # every adapter weight gets a gradient each step: no graph walk
    )
    collator = PaddingFreeCollator() if params.padding_free else PaddedCollator(pad_id(tokenizer))
    as_rows = lambda encs: [{"input_ids": e.input_ids, "labels": e.labels} for e in encs]  # noqa: E731
    trainer_class, extra = TuningTrainer, {}
    if head:
        from .classifier import ClassifierTrainer

        collator, as_rows, trainer_class, extra = (head.collator(params), head.rows, ClassifierTrainer,
                                                   head.trainer_kwargs())
    trainer = trainer_class(model=model, args=args, train_dataset=as_rows(train_enc),
                            eval_dataset=as_rows(val_enc) if val_enc else None, data_collator=collator,
                            fast_path=info["fast_path"], task_metric=task_metric, **extra)
    if val_enc:
        trainer.add_callback(EvaluateAtEnd())
    if params.early_stopping_patience and best_metric:
        trainer.add_callback(EarlyStopping(best_metric, greater, params.early_stopping_patience))
    info.update(base_model=params.base_model, resolved_model_path=str(model_path),
                learning_rate=params.effective_learning_rate, epochs=epochs, total_steps=total_steps,
                batch_size=params.batch_size, gradient_accumulation_steps=params.gradient_accumulation_steps,
                max_seq_length=params.max_seq_length, eval_steps=eval_steps if val_enc else None,
                save_steps=save_steps, padding_free=params.padding_free,
                task_metric=({"labels": len(task_metric.labels), "examples": len(task_metric.examples)}
                             if task_metric else None),
                select_best=select, early_stopping_patience=params.early_stopping_patience,
                **(head.info() if head else {"task": "generation"}))
    if head:
        info["method"] += f" + a {len(head.labels)}-label classification head"
    return trainer, tokenizer, info, stats
