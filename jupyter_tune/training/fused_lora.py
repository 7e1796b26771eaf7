"""A fused LoRA forward for training: ``base(x) + scale * (x A^T) B^T`` as one addmm.

peft computes the LoRA term, scales it and adds it in three passes over the (tokens x out_features)
output; on the MLP's 1536-wide outputs those passes cost as much as the adapter's matmuls (profiled
here). The fused form gives the same values and gradients. Modules with dropout, DoRA, several
adapters or merged weights keep peft's own forward.
"""

from __future__ import annotations

import types

import torch


def _fused_forward(self, x, *args, **kwargs):
    name = self.active_adapters[0] if len(self.active_adapters) == 1 else None
    if (args or kwargs or name is None or self.disable_adapters or self.merged or name not in self.lora_A
            or self.use_dora.get(name, False) or not isinstance(self.lora_dropout[name], torch.nn.Identity)
            or getattr(self, "lora_bias", {}).get(name, False)):
        return type(self).forward(self, x, *args, **kwargs)
    result = self.base_layer(x)
    a, b = self.lora_A[name].weight, self.lora_B[name].weight
    if a.dtype != x.dtype:  # fp32 adapters on a half-precision base: peft's forward handles the casts
        return type(self).forward(self, x, *args, **kwargs)
    flat = x.reshape(-1, x.shape[-1])
    out = torch.addmm(result.reshape(-1, result.shape[-1]), flat @ a.t(), b.t(), alpha=self.scaling[name])
    return out.view(result.shape)


def unsupported(model) -> str | None:
    """None when every LoRA config on `model` is one the fused forward computes exactly, else why not."""
    for name, cfg in (getattr(model, "peft_config", None) or {}).items():
        if getattr(cfg, "use_dora", False):
            return f"adapter {name!r} uses DoRA"
        if getattr(cfg, "lora_dropout", 0.0):
            return f"adapter {name!r} has lora_dropout={cfg.lora_dropout}"
        if getattr(cfg, "lora_bias", False):
            return f"adapter {name!r} has a LoRA bias"
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False) or getattr(
            getattr(model, "config", None), "quantization_config", None):
        return "quantized base: peft's bitsandbytes LoRA layers (the fused addmm needs a plain weight)"
    return None


def fuse_lora(model) -> int:
    """Give every peft LoRA Linear in `model` the fused forward; returns how many were patched."""
    from peft.tuners.lora.layer import Linear

    n = 0
    for module in model.modules():
        if type(module) is Linear:
            module.forward = types.MethodType(_fused_forward, module)
            n += 1
    return n

