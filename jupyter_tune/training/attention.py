"""Attention for padding-free batches on any device: each packed example attends only to itself.

SDPA over a packed row with a block-diagonal mask computes the whole (total x total) score matrix and
cannot use the causal fast path; on this CPU that was half of each training step. Running SDPA once per
example with ``is_causal=True`` does only the work each example needs. Without segment boundaries in
the call (generation, padded batches) it is plain SDPA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "jt_packed_sdpa"


def packed_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                        is_causal=None, **kwargs):
    segments = kwargs.pop("jt_segments", None)
    if segments is None or query.shape[0] != 1:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    gqa = getattr(module, "num_key_value_groups", 1) > 1
    dtype = query.dtype
    if query.device.type == "cpu" and dtype != torch.float32:
        # CPU flash attention's bf16 backward is ~9x slower than its fp32 one (measured here).
        query, key, value = query.float(), key.float(), value.float()
    outs = [F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e],
                                           dropout_p=dropout if module.training else 0.0, scale=scaling,
                                           is_causal=True, enable_gqa=gqa)
            for s, e in segments]
    return torch.cat(outs, dim=2).to(dtype).transpose(1, 2).contiguous(), None


def register() -> str:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    return NAME
