"""Batches without padding waste.

Padding-free: a batch's examples are laid end to end in one row, with position_ids restarting at 0 for
each; with no attention mask and no KV cache the model builds the block-diagonal mask from them, so the
examples do not see each other (tests/test_packing.py checks the logits against separate runs).

Both collators also name the positions whose next token is trained on, so the trainer computes the
output layer (a fifth of SmolLM2's forward work) only there.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100


def _targets(labels, torch):
    # position p predicts token p+1: keep positions whose next label is trained on
    nxt = labels[..., 1:]
    mask = nxt != IGNORE_INDEX
    return mask.nonzero(as_tuple=False), nxt[mask]


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
        where, target_ids = _targets(lab, torch)
        return {"input_ids": input_ids, "position_ids": torch.tensor([pos]), "labels": lab,
                "logit_positions": where[:, 1], "target_ids": target_ids,
                "cu_seqlens": torch.tensor(bounds), "num_tokens": torch.tensor(input_ids.numel())}


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
        where, target_ids = _targets(lab, torch)
        # Flattened (row * length + position) indices into the hidden states.
        flat = where[:, 0] * n + where[:, 1]
        return {"input_ids": ids, "attention_mask": att, "labels": lab, "logit_positions": flat,
                "target_ids": target_ids, "num_tokens": att.sum()}
