"""Tiny models of the families users bring, built locally from the real config classes (seconds, no network).

Each has what makes its family different from Llama: sliding windows shorter than the test sequences
(Mistral, Qwen2/3 with use_sliding_window, Gemma 2/3, Phi-3), attention and final-logit soft-capping
(Gemma 2), Gemma 3's mixed sliding/full layers and scaled embeddings, Phi-3's fused projections,
GPT-2's Conv1D projections, learned positions and no chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

WINDOW = 8  # shorter than every test example, so the sliding layers really slide

COMMON = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512)


def _config(arch: str, vocab: int, tok):
    import transformers as t

    ids = dict(vocab_size=vocab, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.pad_token_id)
    if arch == "llama":
        return t.LlamaConfig(**COMMON, **ids, tie_word_embeddings=True)
    if arch == "mistral":
        return t.MistralConfig(**COMMON, **ids, sliding_window=WINDOW, head_dim=8)
    if arch == "qwen2":
        return t.Qwen2Config(**COMMON, **ids, use_sliding_window=True, sliding_window=WINDOW,
                             max_window_layers=1, layer_types=["full_attention", "sliding_attention"])
    if arch == "qwen3":
        return t.Qwen3Config(**COMMON, **ids, head_dim=8, use_sliding_window=True, sliding_window=WINDOW,
                             max_window_layers=1, layer_types=["full_attention", "sliding_attention"])
    if arch == "gemma2":
        return t.Gemma2Config(**COMMON, **ids, head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW,
                              attn_logit_softcapping=50.0, final_logit_softcapping=30.0)
    if arch == "gemma3":
        return t.Gemma3TextConfig(**COMMON, **ids, head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW,
                                  layer_types=["sliding_attention", "full_attention"])
    if arch == "phi3":
        return t.Phi3Config(**COMMON, **ids, sliding_window=WINDOW, original_max_position_embeddings=512)
    if arch == "gpt2":
        return t.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=512, n_inner=64, **ids)
    raise ValueError(arch)


ARCHITECTURES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "gpt2")


def build_arch_model(arch: str, tokenizer_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer model of family `arch` with the tiny ChatML tokenizer (GPT-2: none, plain text turns)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if arch == "gpt2":
        tok.chat_template = None
    tok.save_pretrained(out)
    if arch == "gpt2":  # save_pretrained may keep the template in a side file
        for f in out.glob("chat_template*"):
            f.unlink()
        cfg = json.loads((out / "tokenizer_config.json").read_text())
        cfg.pop("chat_template", None)
        (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(arch, len(tok), tok))
    model.save_pretrained(out)
    return out
