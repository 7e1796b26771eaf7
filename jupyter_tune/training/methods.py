"""What differs between the tuning methods once the base model is loaded.

- lora / qlora: peft adapters (training/setup.py)
- full: every weight trains; the fast-path pieces that do not depend on adapters stay on (packed attention,
  answer-only logits, and bf16 weights with fp32 master copies in AdamW); fused LoRA is off
- dpo: TRL's DPOTrainer with LoRA on the policy and the base (adapter disabled) as reference (training/dpo.py)
- grpo: TRL's GRPOTrainer with LoRA on the policy and the graders' scores as rewards (training/grpo.py)
"""

from __future__ import annotations

from typing import Any

METHOD_NAMES = {"lora": "LoRA", "qlora": "QLoRA", "full": "Full fine-tuning",
                "dpo": "DPO (LoRA, base as reference)", "grpo": "GRPO (LoRA, graders as rewards)"}


def prepare_full(model, params, hw, fp) -> tuple[Any, dict[str, Any]]:
    """Every weight of ``model`` trainable; the fast-path decisions for full fine-tuning; job.json's info."""
    import torch

    from .fastpath import plan_logits
    from .info import model_info
    from .optim import saved_precision

    for p in model.parameters():
        p.requires_grad_(True)
    fp.set("fused_lora", False, "full fine-tuning: no LoRA layers to fuse")
    if hw.dtype == torch.float32:
        fp.set("master_weights", False, "fp32 weights: AdamW updates them directly")
    elif not params.master_weights:
        fp.set("master_weights", False, f"switched off by master_weights=False: AdamW updates the "
                                        f"{hw.dtype_name} weights directly (small updates round away)")
    else:
        # TuningTrainer.create_optimizer uses MasterWeightAdamW whenever the trainable weights are half precision
        fp.set("master_weights", True, f"{hw.dtype_name} weights, fp32 master weights in AdamW")
    if hw.device == "cuda":
        model = model.to("cuda")
    plan_logits(params, model, fp)
    info = model_info(model, params, hw, fp, METHOD_NAMES["full"], adapters=False,
                      saved=saved_precision(model, fp.on("master_weights")))
    return model, info


def save_full_model(model, tokenizer, folder, state_dict=None) -> None:
    """A plain Hugging Face folder (safetensors, config, generation config, tokenizer) that
    ``AutoModelForCausalLM.from_pretrained`` loads alone. ``state_dict``: the weights to write instead of the
    model's own (optim.full_precision_state_dict: the fp32 masters of bf16 weights); config.json's dtype
    then says float32, so a plain ``from_pretrained`` loads them as trained rather than rounded to bf16."""
    from pathlib import Path

    model = getattr(model, "module", model)
    model.save_pretrained(folder, state_dict=state_dict, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    dtypes = {str(t.dtype).replace("torch.", "") for t in (state_dict or model.state_dict()).values()
              if t.is_floating_point()}
    # the file's own dtype: a model kept in fp32 after its last checkpoint, or masters
    clean_saved_config(Path(folder) / "config.json", dtypes.pop() if len(dtypes) == 1 else None)


def clean_saved_config(path, dtype: str | None = None) -> None:
    """A config.json written from the training model, made right for loading elsewhere: the KV cache back
    on, the trainer's own attention kernel (which exists only in the job process) removed, ``dtype`` set."""
    import json

    from .attention import NAME

    config = json.loads(path.read_text(encoding="utf-8"))
    config["use_cache"] = True  # off only while training packed rows
    if dtype is not None:
        config["dtype"] = dtype
    for key in ("attn_implementation", "_attn_implementation"):
        if config.get(key) == NAME:
            del config[key]
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
