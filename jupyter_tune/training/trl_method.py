"""What TRL's methods (dpo.py, grpo.py) share as steps of the pipeline (build.py): the tokenizer with a pad
token, the policy model loaded (quantized where asked, job adapters merged) with the LoRA config TRL wraps it
in, the rows handed over as datasets, and the model's job.json block read from TRL's peft-wrapped model."""

from __future__ import annotations

from pathlib import Path

import torch

from ..params import TuningParams
from .methods import Method


class TRLMethod(Method):
    """A Method whose trainer is one of TRL's, with LoRA on the policy (``peft_config``)."""

    pad_token = True
    use_cache = False  # the policy's KV cache (GRPO samples with it)

    def __init__(self, params: TuningParams):
        super().__init__(params)
        self.fp = None  # fastpath.FastPath: which fast-path pieces run under TRL
        self.half = False  # half-precision adapters with fp32 master weights
        self.lora = None

    def plan_fast_path(self, hw):
        """The fast-path plan (a FastPath) for this method on ``hw``; may set ``half``."""
        raise NotImplementedError

    def load_model(self, hw, model_path, merge):
        self.fp = self.plan_fast_path(hw)
        model, self.lora = load_policy(self.params, hw, model_path, merge, use_cache=self.use_cache)
        return model

    def datasets(self, tokenizer) -> dict:
        """The TRL trainer's keywords for the tokenizer, the LoRA config and the rows."""
        from datasets import Dataset as HFDataset

        return dict(processing_class=tokenizer, peft_config=self.lora,
                    train_dataset=HFDataset.from_list(self.train_rows),
                    eval_dataset=HFDataset.from_list(self.val_rows) if self.val_rows else None)

    def model_info(self, trainer, hw):
        from .info import model_info
        from .methods import METHOD_NAMES
        from .optim import saved_precision

        return model_info(trainer.model, self.params, hw, self.fp, METHOD_NAMES[self.params.method],
                          adapters=True, saved=saved_precision(trainer.model, self.half),
                          quantization=self.params.effective_quantization)


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
