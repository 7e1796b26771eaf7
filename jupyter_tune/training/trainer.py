"""The Trainer: transformers' own, with a loss computed only where answers are trained on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Trainer


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


class TuningTrainer(Trainer):
    """Computes the output layer only at the positions whose next token is trained on.

    With the loss on answers only, most positions' logits are never used; skipping them removes most of
    the vocabulary projection's work (forward and backward) and its memory.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts = {"train": TokenCounts(), "eval": TokenCounts()}
        self.model_accepts_loss_kwargs = False  # we return a per-batch mean; Trainer scales accumulation
        self.adapter_dtype = next(p.dtype for p in self.model.parameters() if p.requires_grad)

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

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        positions = inputs.pop("logit_positions")
        targets = inputs.pop("target_ids")
        num_tokens = int(inputs.pop("num_tokens"))
        inputs.pop("labels", None)
        bounds = inputs.pop("cu_seqlens", None)
        if bounds is not None:  # padding-free: each example attends to itself only (attention.py)
            b = bounds.tolist()
            inputs["jt_segments"] = list(zip(b[:-1], b[1:]))
        base = self.accelerator.unwrap_model(model)
        base = base.get_base_model() if hasattr(base, "get_base_model") else base
        decoder = getattr(base, base.base_model_prefix)
        hidden = decoder(**inputs, use_cache=False).last_hidden_state
        hidden = hidden.flatten(0, 1).index_select(0, positions)
        logits = base.get_output_embeddings()(hidden).float()
        loss = F.cross_entropy(logits, targets)
        with torch.no_grad():
            correct = int((logits.argmax(-1) == targets).sum())
        self.counts["train" if model.training else "eval"].add(correct, int(targets.numel()), num_tokens)
        return (loss, {"logits": logits}) if return_outputs else loss
