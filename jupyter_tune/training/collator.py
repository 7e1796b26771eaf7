"""Batches without padding waste.

Padding-free: a batch's examples are laid end to end in one row, with position_ids restarting at 0 for
each; with no attention mask and no KV cache the model builds the block-diagonal mask from them, so the
examples do not see each other (tests/training/test_packing.py checks the logits against separate runs).

The packed row's example boundaries go out in transformers' standard varlen kwargs (``cu_seq_lens_q``/
``cu_seq_lens_k``, ``max_length_q``/``max_length_k``, as DataCollatorWithFlattening names them).
Both collators also mark the positions whose next token is trained on (``logit_mask``), which the trainer
passes to the model's own forward as ``logits_to_keep``: the output layer (a fifth of SmolLM2's forward
work) runs only there, and the model's own logit processing (soft-capping, scaling) still applies.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def _targets(labels, torch):
    """(bool mask of the positions whose next token is trained on, those next tokens in row-major order)."""
    nxt = labels[..., 1:]
    trained = nxt != IGNORE_INDEX
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[..., :-1] = trained
    return mask, nxt[trained]


class PaddingFreeCollator:
    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids, pos, labels, bounds = [], [], [], [0]
        for f in features:
            ids += f["input_ids"]
            labels += f["labels"]
            pos += range(len(f["input_ids"]))
            bounds.append(len(ids))
        input_ids = torch.tensor([ids])
        lab = torch.tensor([labels])
        keep, target_ids = _targets(lab, torch)
        cu = torch.tensor(bounds, dtype=torch.int32)
        longest = int(cu.diff().max())
        return {"input_ids": input_ids, "position_ids": torch.tensor([pos]), "labels": lab,
                "logit_mask": keep, "target_ids": target_ids, "cu_seq_lens_q": cu, "cu_seq_lens_k": cu,
                "max_length_q": longest, "max_length_k": longest, "num_tokens": torch.tensor(input_ids.numel())}


class PaddedCollator:
    """Right padding to the longest example of the batch (for models that cannot take packed rows)."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        n = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), n), self.pad)
        att = torch.zeros((len(features), n), dtype=torch.long)
        lab = torch.full((len(features), n), IGNORE_INDEX)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"])
            att[i, :k] = 1
            lab[i, :k] = torch.tensor(f["labels"])
        keep, target_ids = _targets(lab, torch)
        return {"input_ids": ids, "attention_mask": att, "labels": lab, "logit_mask": keep,
                "target_ids": target_ids, "num_tokens": att.sum()}
