"""Hardware choices and the model with its LoRA adapter, ready to train."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ..models.hardware import cpu_has_fast_bf16
from ..params import TuningParams


@dataclass
class Hardware:
    device: str          # "cuda" or "cpu"
    dtype: torch.dtype   # the frozen base weights' dtype
    num_threads: int

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).replace("torch.", "")


def choose_hardware(params: TuningParams) -> Hardware:
    import psutil

    cuda = torch.cuda.is_available()
    if params.effective_quantization:
        from .quantized import bitsandbytes_problem

        problem = bitsandbytes_problem(cuda)
        if problem:
            raise RuntimeError(problem)
    if params.precision == "auto":
        if cuda:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[params.precision]
    threads = params.num_threads or psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return Hardware("cuda" if cuda else "cpu", dtype, threads)


def load_for_training(model_path: str, params: TuningParams, hw: Hardware,
                      merge_adapters: tuple = (), head=None) -> tuple[Any, dict[str, Any]]:
    """The base model with LoRA adapters on it (every weight trainable for method="full"), and a
    description of what was built for job.json (``fast_path``: which fast-path pieces run, and why the
    others do not). ``merge_adapters``: a finished job's adapters, merged into the base first. ``head``:
    (labels, pad_token_id) for task="classification": the family's ...ForSequenceClassification with a new
    head for those labels, trained whole beside the adapters (training/classifier.py)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig

    from .fastpath import FastPath, plan_attention, plan_fused_lora, plan_logits, plan_master_weights
    from .info import model_info
    from .optim import saved_precision

    fp = FastPath()
    attn = plan_attention(params, AutoConfig.from_pretrained(model_path), fp)
    kwargs: dict[str, Any] = {"dtype": hw.dtype, "attn_implementation": attn}
    quantization = params.effective_quantization
    if quantization:
        from .quantized import device_map, quantization_config

        # 4-bit layers dequantize and compute in the probed dtype (bf16 where the hardware runs it fast)
        kwargs["quantization_config"] = quantization_config(quantization, hw.dtype)
        if head is not None:  # the new head trains whole: it must stay a plain layer
            from ..models.head import HEAD_MODULES

            kwargs["quantization_config"].llm_int8_skip_modules = list(HEAD_MODULES)
        kwargs["device_map"] = device_map(hw.device)  # a distributed rank: its own GPU
    from ..models.from_job import JobBase, load_merged

    try:
        model = load_merged(JobBase("", model_path, list(merge_adapters)), head=head, **kwargs)
    except ValueError as e:
        if attn != "sdpa" or "scaled_dot_product_attention" not in str(e):
            raise
        kwargs["attn_implementation"] = "eager"  # an architecture without SDPA support
        model = load_merged(JobBase("", model_path, list(merge_adapters)), head=head, **kwargs)
    model.config.use_cache = False  # packed rows must not share a KV cache (environment.md)
    if params.method == "full":
        from .methods import prepare_full

        return prepare_full(model, params, hw, fp)
    if quantization:
        from peft import prepare_model_for_kbit_training

        from .quantized import keep_training_layout

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        keep_training_layout(model)
    elif hw.device == "cuda":
        model = model.to("cuda")
    lora = LoraConfig(
        r=params.adapter_size, lora_alpha=params.effective_lora_alpha, lora_dropout=params.lora_dropout,
        target_modules=params.target_modules or "all-linear", bias="none",
        task_type="SEQ_CLS" if head is not None else "CAUSAL_LM")  # SEQ_CLS: the head is trained and saved whole
    # Half-precision adapters compute without casting every activation; the optimizer keeps fp32
    # master copies (optim.py). Otherwise peft's fp32 adapters.
    half_adapters = plan_master_weights(params, hw, fp)
    model = get_peft_model(model, lora, autocast_adapter_dtype=not half_adapters)
    if params.fused_lora and not half_adapters and hw.dtype != torch.float32 and not quantization:
        fp.set("fused_lora", False, "fp32 adapters on a half-precision base: peft's forward casts activations")
    else:
        plan_fused_lora(params, model, fp)
    plan_logits(params, model, fp)
    if quantization:
        from .fastpath import note_quantized_base

        note_quantized_base(fp, quantization)
    info = model_info(model, params, hw, fp, "QLoRA" if quantization else "LoRA", adapters=True,
                      saved=saved_precision(model, half_adapters), quantization=quantization)
    return model, info
