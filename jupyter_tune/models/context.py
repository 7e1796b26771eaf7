"""A model's context length in tokens, one rule for every caller (the launch's pre-flight check, label
scoring, generation, the export's Modelfile). Torch-free: the launch reads config.json before any model loads."""

from __future__ import annotations

import json
import os
from typing import Any

# config keys that name the context across families (GPT-2's n_positions, Falcon's max_sequence_length, ...)
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
# what a model that says nothing gets: the tokenizer's limit, else this
FALLBACK = 2048


def _as_dict(config: Any) -> dict:
    if isinstance(config, dict):
        return config
    return config.to_dict() if hasattr(config, "to_dict") else dict(getattr(config, "__dict__", {}))


def config_context_length(config: Any) -> int | None:
    """The context a config (a dict or a transformers PretrainedConfig, multimodal ones by their text_config)
    declares, or None when it does not say."""
    config = _as_dict(config)
    for cfg in (config, _as_dict(config.get("text_config") or {})):
        for key in CONTEXT_KEYS:
            value = cfg.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def model_dir_context_length(model_dir) -> int | None:
    """The context from a model folder's config.json, or None when it cannot be read or does not say."""
    try:
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    return config_context_length(config) if isinstance(config, dict) else None


def context_length(model: Any, tokenizer: Any = None) -> int:
    """A loaded model's context: its config's, else the tokenizer's model_max_length, else FALLBACK."""
    n = config_context_length(getattr(model, "config", None) or {})
    if n:
        return n
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 10**7 else FALLBACK
