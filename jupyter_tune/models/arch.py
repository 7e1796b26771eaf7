"""What an architecture's config says about how it must be run (shared by training and inference),
and which of its modules can take adapters."""

from __future__ import annotations

from ..params import ParameterError


def _configs(config) -> list:
    return [config] + [c for c in (getattr(config, "text_config", None),) if c is not None]


def eager_reason(config) -> str | None:
    """Why `config`'s attention cannot run through SDPA (None when it can)."""
    for c in _configs(config):
        if getattr(c, "attn_logit_softcapping", None):
            return "the model soft-caps attention scores (SDPA cannot); using eager attention"
    return None


def end_of_turn_ids(model, tokenizer) -> list[int]:
    """Tokens that end an answer: the generation config's end-of-turn tokens and the tokenizer's EOS, in
    that order, each once (for generation, label scoring and the sample answers alike)."""
    ids: list[int] = []
    gen = getattr(model, "generation_config", None)
    for x in (getattr(gen, "eos_token_id", None), tokenizer.eos_token_id):
        for i in (x if isinstance(x, (list, tuple)) else [x]):
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


def pad_id(tokenizer, eos: int | None = None) -> int:
    """The id that pads a batch: the tokenizer's pad token, else `eos` (default: the tokenizer's EOS), else 0.
    Padded positions are masked out, so any real id does; a classifier's config records this one."""
    for i in (tokenizer.pad_token_id, tokenizer.eos_token_id if eos is None else eos):
        if i is not None:
            return int(i)
    return 0


def library_attention(config) -> str:
    """transformers' attention implementation that computes `config`'s attention exactly."""
    return "eager" if eager_reason(config) else "sdpa"


class TargetModulesError(ParameterError):
    """target_modules names modules the model does not have; the message lists the ones it has."""


def check_target_modules(model_dir, target_modules: list[str]) -> None:
    """Refuse targets that match no module of the model, before a job exists (peft would refuse them at
    the job's start with NoMatchingPeftModuleError). The model is built on the meta device from its
    config: no weights are read, it takes a fraction of a second."""
    import torch
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = [n for n, _ in model.named_modules() if n]
    missing = [t for t in target_modules
               if not any(check_target_module_exists(LoraConfig(target_modules=[t]), n) for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                         if isinstance(m, torch.nn.Linear) and n != "lm_head"})
        raise TargetModulesError(
            f"target_modules: {', '.join(map(repr, missing))} match no module of {model_dir}. Its linear "
            f"layers are: {', '.join(linear)}. Leave target_modules empty for every attention and MLP "
            "projection.")
