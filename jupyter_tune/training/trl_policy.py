"""What TRL's trainers (dpo.py, grpo.py) share before their own config: the hardware, the seed, the tokenizer,
and the policy model loaded (quantized where asked) with the LoRA config TRL wraps it in."""

from __future__ import annotations

from pathlib import Path

import torch

from ..params import TuningParams
from .arguments import training_base


def start(params: TuningParams):
    """(hardware, model path, adapters to merge, tokenizer with a pad token) for a TRL-trained job."""
    from transformers import AutoTokenizer, set_seed

    from .setup import choose_hardware

    hw = choose_hardware(params)
    torch.set_num_threads(hw.num_threads)
    set_seed(params.seed)
    model_path, merge = training_base(params.base_model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return hw, model_path, merge, tokenizer


def load_policy(params: TuningParams, hw, model_path, merge, *, use_cache: bool):
    """(the base with any job adapters merged, in the hardware's dtype or quantized, and the LoRA config)."""
    from peft import LoraConfig
    from transformers import AutoConfig

    from ..models.arch import library_attention
    from ..models.from_job import JobBase, load_merged

    config = AutoConfig.from_pretrained(model_path)
    kwargs = {"dtype": hw.dtype, "attn_implementation": library_attention(config)}
    quantization = params.effective_quantization
    if quantization:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                            bnb_4bit_compute_dtype=hw.dtype)
                                         if quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = load_merged(JobBase("", Path(model_path), list(merge)), **kwargs)
    if not use_cache:
        model.config.use_cache = False
    if hw.device == "cuda" and not quantization:
        model = model.to("cuda")
    lora = LoraConfig(r=params.adapter_size, lora_alpha=params.effective_lora_alpha,
                      lora_dropout=params.lora_dropout, target_modules=params.target_modules or "all-linear",
                      task_type="CAUSAL_LM", bias="none")
    return model, lora
