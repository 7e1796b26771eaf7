"""The Trainer: transformers' own, with a loss computed only where answers are trained on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Trainer

from .optim import MasterWeightCheckpoints


@dataclass
class TokenCounts:
    """Accumulated between two log lines: what the metrics callback reports."""
    correct: int = 0
    predictions: int = 0
    tokens: int = 0

    def add(self, correct: int, predictions: int, tokens: int) -> None:
        self.correct += correct
        self.predictions += predictions
        self.tokens += tokens

    def take(self) -> TokenCounts:
        out = TokenCounts(self.correct, self.predictions, self.tokens)
        self.correct = self.predictions = self.tokens = 0
        return out


VARLEN_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


class TuningTrainer(MasterWeightCheckpoints, Trainer):
    """transformers' Trainer with the loss on answer tokens, through the model's own forward.

    The collator marks the positions whose next token is trained on; the model computes its output layer
    only there (``logits_to_keep``), so most of the vocabulary projection's work and memory is skipped while
    the model's own logit processing (Gemma 2's soft-capping, logit scaling) still applies. The loss is the
    sum over answer tokens divided by the answer tokens of the whole optimizer step (Trainer's
    ``num_items_in_batch``), so gradient accumulation and data parallelism give the same loss as one batch.
    """

    def __init__(self, *args, fast_path: dict | None = None, task_metric=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_metric = task_metric  # selection.TaskMetric: eval_macro_f1 / eval_accuracy at each evaluation
        self.counts = {"train": TokenCounts(), "eval": TokenCounts()}
        # our loss is normalised by num_items_in_batch: Trainer must not divide it again by accumulation steps
        self.model_accepts_loss_kwargs = True
        self.adapter_dtype = next(p.dtype for p in self.model.parameters() if p.requires_grad)
        fast_path = fast_path or {}
        self.packed_attention = fast_path.get("packed_attention", {}).get("on", False)
        self.answer_only_logits = fast_path.get("answer_only_logits", {}).get("on", False)

    def _load_from_checkpoint(self, *args, **kwargs):
        super()._load_from_checkpoint(*args, **kwargs)
        # peft loads adapters in fp32; put them back in the dtype they train in
        for p in self.model.parameters():
            if p.requires_grad and p.dtype != self.adapter_dtype:
                p.data = p.data.to(self.adapter_dtype)

    def create_optimizer(self, *args, **kwargs):
        if self.optimizer is None and self.adapter_dtype != torch.float32:
            from .optim import MasterWeightAdamW

            decay = [p for n, p in self.model.named_parameters() if p.requires_grad and "bias" not in n]
            rest = [p for n, p in self.model.named_parameters() if p.requires_grad and "bias" in n]
            groups = [{"params": decay, "weight_decay": self.args.weight_decay}]
            if rest:
                groups.append({"params": rest, "weight_decay": 0.0})
            self.optimizer = MasterWeightAdamW(groups, lr=self.args.learning_rate,
                                               betas=(self.args.adam_beta1, self.args.adam_beta2),
                                               eps=self.args.adam_epsilon)
            return self.optimizer
        return super().create_optimizer(*args, **kwargs)

    def evaluation_loop(self, *args, **kwargs):
        out = super().evaluation_loop(*args, **kwargs)
        if self.task_metric is not None:  # before Trainer logs the metrics and picks the best
            prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
            for k, v in self.task_metric(self.model).items():
                out.metrics[f"{prefix}_{k}"] = v
        return out

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, logits, targets, num_tokens = self.summed_loss(model, inputs)
        loss = loss / (num_items_in_batch if num_items_in_batch is not None else max(1, targets.numel()))
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            loss = loss * self.args.world_size  # num_items_in_batch counts every rank; DDP averages gradients
        with torch.no_grad():
            correct = int((logits.argmax(-1) == targets).sum())
        self.counts["train" if model.training else "eval"].add(correct, int(targets.numel()), num_tokens)
        return (loss, {"logits": logits}) if return_outputs else loss

    def summed_loss(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """(the loss summed over the items trained on, their logits, their targets, the batch's tokens): here
        the answer tokens' next-token cross-entropy; a classification head's rows in training/classifier.py."""
        keep = inputs.pop("logit_mask")
        targets = inputs.pop("target_ids")
        num_tokens = int(inputs.pop("num_tokens"))
        inputs.pop("labels", None)
        if not self.packed_attention:  # the library's attention finds packed rows from position_ids
            for k in VARLEN_KEYS:
                inputs.pop(k, None)
        if self.answer_only_logits:
            logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
        else:
            logits = model(**inputs, use_cache=False).logits[keep]
        logits = logits.reshape(-1, logits.shape[-1]).float()
        return F.cross_entropy(logits, targets, reduction="sum"), logits, targets, num_tokens
