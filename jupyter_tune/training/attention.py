"""Attention for padding-free batches on any device: each packed example attends only to itself.

SDPA over a packed row with a block-diagonal mask computes the whole (total x total) score matrix and
cannot use the causal fast path; on this CPU that was half of each training step. Running SDPA once per
example with ``is_causal=True`` does only the work each example needs. The segment boundaries come in
transformers' standard varlen kwargs (``cu_seq_lens_q``/``cu_seq_lens_k``, as DataCollatorWithFlattening
and flash-attention use them). Sliding-window layers get a banded mask on the examples longer than their
window, so training computes the same function as inference. Anything this function does not model
(soft-capping, attention sinks) is refused by ``supports()`` at load time, and an unexpected argument at
run time sends the call to the library's SDPA with the block mask transformers built (exact, slower).
Without segment boundaries (generation, padded batches) it is plain SDPA.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

NAME = "jt_packed_sdpa"
log = logging.getLogger(__name__)

# Keyword arguments that models pass to every attention function and that do not change what it computes
# here (positions are already applied to q/k; the varlen kwargs are read below).
_HARMLESS = {"position_ids", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "is_causal",
             "output_attentions", "use_cache", "cache_position", "past_key_values", "layer_idx", "softcap",
             "sliding_window", "head_mask", "token_type_ids", "return_dict", "logits_to_keep"}
_SINK_MODELS = {"gpt_oss"}  # learned per-head sinks join the softmax
_fallbacks: set[str] = set()  # argument names already reported (one log line each)
_segments_memo: list = [None, None]  # (tensor, [(start, end), ...]) of the last batch: one .tolist() a step


def supports(config) -> str | None:
    """None when per-example SDPA computes exactly what `config`'s attention does, else the reason."""
    from ..models.arch import eager_reason

    reason = eager_reason(config)
    if reason:
        return reason
    if getattr(config, "model_type", "") in _SINK_MODELS:
        return "the model has attention sinks (SDPA cannot model them)"
    return None


def _segments(cu: torch.Tensor) -> list[tuple[int, int]]:
    if _segments_memo[0] is not cu:
        b = cu.tolist()
        _segments_memo[:] = [cu, list(zip(b[:-1], b[1:]))]
    return _segments_memo[1]


def _window_mask(n: int, window: int, device) -> torch.Tensor:
    """Causal and within the last `window` keys: kv > q - window (masking_utils' sliding_window_overlay)."""
    q = torch.arange(n, device=device)[:, None]
    k = torch.arange(n, device=device)[None, :]
    return (k <= q) & (k > q - window)


def packed_sdpa_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                        is_causal=None, **kwargs):
    cu = kwargs.get("cu_seq_lens_q")
    unexpected = sorted(k for k, v in kwargs.items() if v is not None and k not in _HARMLESS)
    if kwargs.get("softcap"):
        unexpected.append("softcap")
    if cu is None or query.shape[0] != 1 or unexpected or key.shape[2] != query.shape[2]:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        new = set(unexpected) - _fallbacks
        if new:
            _fallbacks.update(new)
            log.warning("packed attention: %s not supported per example; this call uses the library's SDPA "
                        "with the block mask", ", ".join(sorted(new)))
        for k in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"):
            kwargs.pop(k, None)
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    window = kwargs.get("sliding_window")
    gqa = getattr(module, "num_key_value_groups", 1) > 1
    dtype = query.dtype
    if query.device.type == "cpu" and dtype != torch.float32:
        # CPU flash attention's bf16 backward is ~9x slower than its fp32 one (measured here).
        query, key, value = query.float(), key.float(), value.float()
    p = dropout if module.training else 0.0
    outs = []
    for s, e in _segments(cu):
        q, k, v = query[:, :, s:e], key[:, :, s:e], value[:, :, s:e]
        if window and e - s > window:
            outs.append(F.scaled_dot_product_attention(q, k, v, attn_mask=_window_mask(e - s, window, q.device),
                                                       dropout_p=p, scale=scaling, enable_gqa=gqa))
        else:
            outs.append(F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=scaling, is_causal=True,
                                                       enable_gqa=gqa))
    return torch.cat(outs, dim=2).to(dtype).transpose(1, 2).contiguous(), None


def register() -> str:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    return NAME
