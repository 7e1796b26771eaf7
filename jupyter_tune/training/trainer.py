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

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        positions = inputs.pop("logit_positions")
        targets = inputs.pop("target_ids")
        num_tokens = int(inputs.pop("num_tokens"))
        inputs.pop("labels", None)
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
