"""What an architecture's config says about how it must be run (shared by training and inference)."""

from __future__ import annotations


def _configs(config) -> list:
    return [config] + [c for c in (getattr(config, "text_config", None),) if c is not None]


def eager_reason(config) -> str | None:
    """Why `config`'s attention cannot run through SDPA (None when it can)."""
    for c in _configs(config):
        if getattr(c, "attn_logit_softcapping", None):
            return "the model soft-caps attention scores (SDPA cannot); using eager attention"
    return None


def library_attention(config) -> str:
    """transformers' attention implementation that computes `config`'s attention exactly."""
    return "eager" if eager_reason(config) else "sdpa"
