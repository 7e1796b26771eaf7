"""The one training pipeline: parameters and data to a ready trainer, for every method. Shared by the job
process (worker.py, which then attaches callbacks.job_callbacks) and the cost estimate (estimate.py).

Every method takes the same steps: start (hardware, seed, base model, tokenizer) -> data and dataset stats ->
model -> arguments -> trainer -> job.json's info. What differs is the method's (methods.Method): sft.py
(lora, qlora, full; generation or a classification head), dpo.py and grpo.py (TRL's, through trl_method.py).
"""

from __future__ import annotations

from pathlib import Path

from ..data.loader import Dataset
from ..jobs.shapes import DatasetStats
from ..params import TuningParams, choose_epochs
from .arguments import shared_arguments, training_base
from .log import log
from .methods import Method


def method_for(params: TuningParams) -> Method:
    """The Method that builds a job of ``params.method``."""
    if params.method == "dpo":  # TRL's DPOTrainer on preference rows
        from .dpo import DPO

        return DPO(params)
    if params.method == "grpo":  # TRL's GRPOTrainer, rewards from graders
        from .grpo import GRPO

        return GRPO(params)
    from .sft import Supervised  # lora, qlora, full

    return Supervised(params)


def start(params: TuningParams, pad_token: bool):
    """(hardware, model folder, adapters to merge into it, tokenizer), with the process's threads and seed set.
    ``pad_token``: give a tokenizer without one eos as its pad token."""
    import torch
    from transformers import AutoTokenizer, set_seed

    from .setup import choose_hardware

    hw = choose_hardware(params)
    torch.set_num_threads(hw.num_threads)
    set_seed(params.seed)
    model_path, merge = training_base(params.base_model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if pad_token and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return hw, model_path, merge, tokenizer


def build_trainer(params: TuningParams, train: Dataset, val: Dataset | None, output_dir: Path):
    """Everything up to a ready trainer: (trainer, tokenizer, info for job.json, dataset stats). The job's
    callbacks are not attached here: callbacks.job_callbacks lists them, the worker attaches them."""
    method = method_for(params)
    method.check(train, val)
    hw, model_path, merge, tokenizer = start(params, method.pad_token)
    epochs = params.epochs or choose_epochs(len(train))

    stats: DatasetStats = {"max_seq_length": params.max_seq_length, "epochs": epochs,  # dataset_stats.json
                           **method.data(tokenizer, train, val, epochs)}
    evaluate = bool(method.val_rows)
    select = method.select_best()

    model = method.load_model(hw, model_path, merge)
    shared, total_steps = shared_arguments(params, method.epoch_examples(), epochs, evaluate, select, hw.device,
                                           output_dir)
    trainer = method.trainer(model, method.arguments(shared), tokenizer, hw)

    from .selection import early_stopping_patience

    task_metric = method.task_metric
    info = {**method.model_info(trainer, hw),
            "base_model": params.base_model, "resolved_model_path": str(model_path),
            "learning_rate": params.effective_learning_rate, "epochs": epochs, "total_steps": total_steps,
            "batch_size": params.batch_size, "gradient_accumulation_steps": params.gradient_accumulation_steps,
            "max_seq_length": params.max_seq_length, "eval_steps": shared["eval_steps"] if evaluate else None,
            "save_steps": shared["save_steps"], "padding_free": method.padding_free,
            "task_metric": (({"metric": "eval_rouge_l", "examples": len(task_metric.examples),
                              "max_new_tokens": task_metric.max_new_tokens} if not hasattr(task_metric, "labels")
                             else {"labels": len(task_metric.labels), "examples": len(task_metric.examples)})
                            if task_metric else None),
            "select_best": select, "early_stopping_patience": early_stopping_patience(params, select),
            **method.info()}
    for name, piece in info["fast_path"].items():
        if not piece["on"]:
            log(f"Fast path: {name} off ({piece['why']})")
    return trainer, tokenizer, info, stats
