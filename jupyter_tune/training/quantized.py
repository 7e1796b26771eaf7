"""QLoRA's quantized base: bitsandbytes 4-bit (NF4) or 8-bit weights, on a CPU or a CUDA GPU.

bitsandbytes >= 0.50 runs its 4-bit and 8-bit layers on a CPU through its torch fallback (it prints a
notice that the optional ``kernels`` package is missing); older releases need CUDA. The check here is
torch-free so the launch can refuse a job before any process starts.
"""

from __future__ import annotations

from typing import Any

# The first bitsandbytes whose quantized layers run forward and backward on a CPU.
MIN_CPU_VERSION = (0, 50)


def bitsandbytes_problem(cuda: bool) -> str | None:
    """None when a quantized base can load here, else what is missing and what to do (no torch import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("bitsandbytes")
    except PackageNotFoundError:
        return ("quantization needs bitsandbytes, which is not installed: pip install 'bitsandbytes>=0.50' "
                "(make install does), or use quantization=None.")
    if cuda:
        return None
    try:
        parts = tuple(int(x) for x in found.split(".")[:2])
    except ValueError:
        return None
    if parts < MIN_CPU_VERSION:
        return (f"quantization on a CPU needs bitsandbytes >= 0.50 (installed: {found}, CUDA only): "
                "pip install -U 'bitsandbytes>=0.50', or use quantization=None.")
    return None


def quantization_config(quantization: str, compute_dtype) -> Any:
    """transformers' BitsAndBytesConfig: NF4 with double quantization (the QLoRA paper's), computing in the
    hardware's dtype; or LLM.int8()."""
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype)
    return BitsAndBytesConfig(load_in_8bit=True)


def device_map(device: str) -> dict[str, Any]:
    """Where the quantized weights go: this rank's GPU, or the CPU (bitsandbytes quantizes on load)."""
    import torch

    return {"": torch.cuda.current_device()} if device == "cuda" else {"": "cpu"}


def keep_training_layout(model) -> int:
    """Stop bitsandbytes repacking 4-bit weights for its CPU inference kernel; returns the layers touched.

    On a CPU with AVX512-BF16, a Linear4bit in eval mode under no_grad rewrites its weight into a packed
    layout once and from then on multiplies with a kernel that passes no gradient to its input (the LoRA
    layers below it would silently stop learning after the first evaluation) and that needs in_features
    >= 64. Training keeps the one layout that backward supports; the values are the same.
    """
    n = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n
