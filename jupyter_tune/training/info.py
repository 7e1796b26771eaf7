"""job.json's ``tuning`` block about the model that trains, built in one place for every method (LoRA,
QLoRA, full fine-tuning, DPO, GRPO): what trains, on what hardware, which fast-path pieces run, how it is
saved. The run's schedule (epochs, steps, learning rate ...) is added by the pipeline (build.py)."""

from __future__ import annotations

from typing import Any

from ..jobs.shapes import TuningInfo


def lora_targets(model) -> list[str]:
    """The module names that carry LoRA adapters (q_proj, ...), or [] without adapters."""
    return sorted({name.split(".")[-1] for name, mod in model.named_modules()
                   if hasattr(mod, "lora_A") and hasattr(mod, "base_layer")})


def model_info(model, params, hw, fp, method: str, *, adapters: bool, saved: dict[str, Any],
               quantization: str | None = None) -> TuningInfo:
    """The block for ``model`` as it will train. ``adapters``: LoRA on a frozen base (else every weight)."""
    if adapters:
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = total = sum(p.numel() for p in model.parameters())
    return {
        "method": method,
        "adapter_size": params.adapter_size if adapters else None,
        "lora_alpha": params.effective_lora_alpha if adapters else None,
        "lora_dropout": params.lora_dropout if adapters else None,
        "target_modules": lora_targets(model) if adapters else [],
        "trainable_params": int(trainable),
        "total_params": int(total),
        "trainable_percent": round(100.0 * trainable / max(1, total), 4),
        "quantization": quantization,
        "device": hw.device,
        "dtype": hw.dtype_name,
        "num_threads": hw.num_threads,
        "attn_implementation": model.config._attn_implementation,
        "fast_path": fp.to_json(),
        "saved": saved,
    }
