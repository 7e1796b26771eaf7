"""What differs between the tuning methods.

``Method``: the steps of the one training pipeline (build.py) that a method fills in for itself. build_trainer
takes every method through data -> stats -> model -> arguments -> trainer -> info; a method is a subclass in a
module of its own (sft.py; dpo.py and grpo.py through trl_method.py), the way TRL pairs a config with a
trainer. One instance is one job's build, so a step leaves on ``self`` what a later one reads (the rows, the
fast-path plan, the classification head ...).

- lora / qlora: peft adapters (training/setup.py), through sft.py
- full: every weight trains (sft.py, prepare_full below); the fast-path pieces that do not depend on
  adapters stay on (packed attention, answer-only logits, and bf16 weights with fp32 master copies in AdamW);
  fused LoRA is off
- dpo: TRL's DPOTrainer with LoRA on the policy and the base (adapter disabled) as reference (training/dpo.py)
- grpo: TRL's GRPOTrainer with LoRA on the policy and the graders' scores as rewards (training/grpo.py)
"""

from __future__ import annotations

from typing import Any

from ..data.loader import Dataset
from ..params import TuningParams

METHOD_NAMES = {"lora": "LoRA", "qlora": "QLoRA", "full": "Full fine-tuning",
                "dpo": "DPO (LoRA, base as reference)", "grpo": "GRPO (LoRA, graders as rewards)"}


class Method:
    """A tuning method's steps. The pipeline calls them in this order."""

    pad_token = False  # the tokenizer gets eos as its pad token where it has none (TRL pads with it)
    padding_free = False  # job.json's ``padding_free``: rows packed without padding

    def __init__(self, params: TuningParams):
        self.params = params
        self.train_rows: list = []  # what the trainer trains on
        self.val_rows: list | None = None  # what it evaluates on, cut to max_eval_examples; None: no evaluation
        self.task_metric = None  # selection.TaskMetric (or the head's) when the validation set is classified

    def check(self, train: Dataset, val: Dataset | None) -> None:
        """Refuse data this method cannot train on, before any model loads."""

    def data(self, tokenizer, train: Dataset, val: Dataset | None, epochs: int) -> dict[str, Any]:
        """Set train_rows, val_rows (and task_metric); return dataset_stats.json's ``train`` and
        ``validation`` (and anything else of the method's)."""
        raise NotImplementedError

    def epoch_examples(self) -> int:
        """How many examples an epoch's optimizer steps are counted from."""
        return len(self.train_rows)

    def select_best(self) -> str | None:
        """The metric the job's best checkpoint is chosen by (None without a validation set)."""
        from .selection import resolve_select_best

        return resolve_select_best(self.params, bool(self.val_rows), self.task_metric)

    def load_model(self, hw, model_path, merge: list):
        """The model to train: ``model_path`` with the finished jobs' adapters ``merge`` merged in."""
        raise NotImplementedError

    def arguments(self, shared: dict[str, Any]):
        """The trainer's arguments: its arguments class filled with ``shared`` (arguments.shared_arguments)
        and the method's own."""
        raise NotImplementedError

    def trainer(self, model, args, tokenizer, hw):
        """The trainer, ready to train."""
        raise NotImplementedError

    def model_info(self, trainer, hw) -> dict[str, Any]:
        """job.json's ``tuning`` block about the model that trains (info.model_info)."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """The method's own fields of job.json's ``tuning`` block."""
        return {}


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
