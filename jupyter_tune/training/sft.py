"""Supervised tuning (method="lora", "qlora" or "full"): the answer tokens' loss, or a label head's with
task="classification" (classifier.py), through TuningTrainer (trainer.py)."""

from __future__ import annotations

from typing import Any

from ..models.arch import pad_id
from .log import log
from .methods import Method


class Supervised(Method):
    def __init__(self, params):
        super().__init__(params)
        self.head = None  # task="classification": a label head in place of the answer tokens (classifier.py)
        self.block: dict[str, Any] = {}  # the model's job.json block, from setup.load_for_training

    @property
    def padding_free(self) -> bool:
        return self.params.padding_free

    def data(self, tokenizer, train, val, epochs):
        from ..data.stats import encode_dataset, split_stats
        from .selection import plan_task_metric

        params = self.params
        if params.task == "classification":
            from .classifier import plan_classification

            head = self.head = plan_classification(params, train, val, tokenizer)
            log(f"Classification head: a new score layer for {len(head.labels)} labels ("
                f"{', '.join(head.labels[:6])}{', ...' if len(head.labels) > 6 else ''})"
                + ("; balanced class weights" if head.weights else ""))
        encode = self.head.encode if self.head else encode_dataset
        train_enc, train_dropped = encode(tokenizer, train, params.max_seq_length)
        if not train_enc:
            raise ValueError("Every training example was dropped (no answer tokens left); see dataset_stats.json.")
        self.train_rows = train_enc
        stats = {"train": split_stats(tokenizer, train, params.max_seq_length, epochs, params.batch_size,
                                      train_enc, train_dropped),
                 "validation": None}
        if val is not None:
            val_enc, val_dropped = encode(tokenizer, val, params.max_seq_length)
            stats["validation"] = split_stats(tokenizer, val, params.max_seq_length, 1, params.batch_size,
                                              val_enc, val_dropped)
            self.val_rows = val_enc[: params.max_eval_examples or None]
        if self.head:
            self.task_metric = self.head.task_metric(params, self.val_rows)
        elif self.val_rows:
            self.task_metric = plan_task_metric(params, train, val, tokenizer)
        return stats

    def load_model(self, hw, model_path, merge):
        from .setup import load_for_training

        model, self.block = load_for_training(str(model_path), self.params, hw, merge,
                                              head=self.head.head if self.head else None)
        return model

    def arguments(self, shared):
        from transformers import TrainingArguments

        return TrainingArguments(
            **shared,
            remove_unused_columns=False,
            label_names=["labels"],
            prediction_loss_only=True,
            save_only_model=False,
            ddp_find_unused_parameters=False,  # every adapter weight gets a gradient each step: no graph walk
        )

    def trainer(self, model, args, tokenizer, hw):
        from .collator import PaddedCollator, PaddingFreeCollator
        from .trainer import TuningTrainer

        params = self.params
        collator = PaddingFreeCollator() if params.padding_free else PaddedCollator(pad_id(tokenizer))
        as_rows = lambda encs: [{"input_ids": e.input_ids, "labels": e.labels} for e in encs]  # noqa: E731
        trainer_class, extra = TuningTrainer, {}
        if self.head:
            from .classifier import ClassifierTrainer

            collator, as_rows, trainer_class, extra = (self.head.collator(params), self.head.rows,
                                                       ClassifierTrainer, self.head.trainer_kwargs())
        return trainer_class(model=model, args=args, train_dataset=as_rows(self.train_rows),
                             eval_dataset=as_rows(self.val_rows) if self.val_rows else None,
                             data_collator=collator, fast_path=self.block["fast_path"],
                             task_metric=self.task_metric, **extra)

    def model_info(self, trainer, hw):
        info = dict(self.block)
        if self.head:
            info["method"] += f" + a {len(self.head.labels)}-label classification head"
        return info

    def info(self):
        return self.head.info() if self.head else {"task": "generation"}
