"""One rule for a model's context length (models/context.py), read the same way by the launch's pre-flight
check (config.json, no torch), label scoring, generation and the export."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from jupyter_tune.models.context import (
    FALLBACK,
    config_context_length,
    context_length,
    model_dir_context_length,
)


@pytest.mark.parametrize("config,expected", [
    ({"max_position_embeddings": 8192}, 8192),
    ({"n_positions": 1024}, 1024),                                    # GPT-2
    ({"text_config": {"max_position_embeddings": 32768}}, 32768),     # a multimodal config (Gemma 3)
    ({"max_position_embeddings": True}, None),                        # not a length
    ({"max_position_embeddings": 0}, None),
    ({}, None),
])
def test_config_context_length(config, expected):
    assert config_context_length(config) == expected


def test_a_transformers_config_and_a_model_folder(tmp_path):
    from transformers import LlamaConfig

    assert config_context_length(LlamaConfig(max_position_embeddings=4096)) == 4096
    (tmp_path / "config.json").write_text(json.dumps({"n_ctx": 2048}))
    assert model_dir_context_length(tmp_path) == 2048
    assert model_dir_context_length(tmp_path / "missing") is None
    (tmp_path / "config.json").write_text("[1, 2]")
    assert model_dir_context_length(tmp_path) is None


def test_a_loaded_model_falls_back_to_its_tokenizer_then_the_default():
    model = SimpleNamespace(config=SimpleNamespace())
    assert context_length(model, SimpleNamespace(model_max_length=512)) == 512
    assert context_length(model, SimpleNamespace(model_max_length=int(1e30))) == FALLBACK  # "no limit"
    assert context_length(model) == FALLBACK
