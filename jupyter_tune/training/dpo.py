"""Preference tuning (method="dpo"): TRL's DPOTrainer with LoRA on the policy.

The loss is TRL's; the reference model is the base itself (TRL runs it with the adapter disabled), so no
second copy of the weights is held. The job around it is the same as a supervised one: the job process,
metrics.jsonl (TRL's rewards and log-probabilities under clear names, see callbacks.py), checkpoints,
cancel, resume and the best checkpoint. TRL is imported here only, never by ``import jupyter_tune``.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from ..data.loader import Dataset
from ..params import TuningParams, choose_epochs
from .arguments import shared_arguments
from .log import log
from .trainer import TokenCounts
from .trl_policy import load_policy, start


def preference_rows(dataset: Dataset, tokenizer) -> list[dict]:
    """The examples in TRL's form: conversational (message lists) for a tokenizer with a chat template,
    else the prompt rendered as plain text turns (the same rendering as supervised tuning)."""
    from ..data.tokenize import has_chat_template, render_prompt

    rows = []
    for ex in dataset.examples:
        if has_chat_template(tokenizer):
            rows.append({"prompt": ex.prompt_messages,
                         "chosen": [{"role": "assistant", "content": ex.answer}],
                         "rejected": [{"role": "assistant", "content": ex.rejected}]})
        else:
            rows.append({"prompt": render_prompt(tokenizer, ex.prompt_messages), "chosen": ex.answer,
                         "rejected": ex.rejected})
    return rows


def dpo_stats(tokenizer, dataset: Dataset, params: TuningParams, epochs: int) -> dict:
    """The Vertex-shaped statistics (prompt as input, chosen as output) plus prompt / chosen / rejected
    token distributions."""
    from ..data.stats import preference_stats, split_stats

    out = split_stats(tokenizer, dataset, params.max_seq_length, epochs, params.batch_size)
    out.update(preference_stats(tokenizer, dataset.examples, params.max_seq_length))
    # DPO reads each prompt twice, with the chosen and with the rejected answer
    rejected = out["rejected_token_distribution"]["sum"]
    out["total_token_count"] = out["total_token_count"] + out["user_input_token_distribution"]["sum"] + rejected
    out["total_billable_token_count"] = out["total_token_count"] * epochs
    return out


def answer_only_hook() -> str | None:
    """Why TRL's fused LM head cannot be told to score only the answer positions (None: it can).

    TRL's head scores only labelled positions on CUDA, but every position elsewhere (fixed tile shapes for
    compilers). On CPU that puts every prompt token through the 49k-262k wide LM head and its softmax, three
    times a step (policy, reference, backward), for the few answer tokens DPO reads."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError as e:  # pragma: no cover - trl is a dependency
        return f"trl not importable: {e}"
    if not callable(getattr(trl_utils, "_use_triton", None)):
        return "this trl's fused LM head has no switch for it (trl.trainer.utils._use_triton)"
    return None


@contextmanager
def answer_positions_only():
    """Within: TRL's fused LM head scores only the labelled positions on every device, as it does on CUDA.
    Its `compact` branch is the one `_use_triton` selects; the tiles are still folded in torch off CUDA."""
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original


def make_trainer_class():
    from trl import DPOTrainer

    from .optim import MasterWeightCheckpoints

    class JobDPOTrainer(MasterWeightCheckpoints, DPOTrainer):
        """TRL's DPOTrainer plus the token counts the job's metrics read, and fp32 master weights for
        half-precision adapters (as TuningTrainer)."""

        task_metric = None

        def __init__(self, *args, half_adapters: torch.dtype | None = None, answer_only: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.answer_only = answer_only
            self.counts = {"train": TokenCounts(), "eval": TokenCounts()}
            if half_adapters is not None:  # bf16 adapters: no cast of every activation to fp32
                for p in self.model.parameters():
                    if p.requires_grad:
                        p.data = p.data.to(half_adapters)
            self.adapter_dtype = next(p.dtype for p in self.model.parameters() if p.requires_grad)

        def _load_from_checkpoint(self, *args, **kwargs):
            super()._load_from_checkpoint(*args, **kwargs)
            for p in self.model.parameters():  # peft loads adapters in fp32
                if p.requires_grad and p.dtype != self.adapter_dtype:
                    p.data = p.data.to(self.adapter_dtype)

        def create_optimizer(self, *args, **kwargs):
            if self.optimizer is None and self.adapter_dtype != torch.float32:
                from .optim import MasterWeightAdamW

                params = [p for p in self.model.parameters() if p.requires_grad]
                self.optimizer = MasterWeightAdamW(
                    [{"params": params, "weight_decay": self.args.weight_decay}], lr=self.args.learning_rate,
                    betas=(self.args.adam_beta1, self.args.adam_beta2), eps=self.args.adam_epsilon)
                return self.optimizer
            return super().create_optimizer(*args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            with answer_positions_only() if self.answer_only else nullcontext():
                out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            # the chosen half of the batch: its answer tokens are the "predictions" (TRL's token accuracy)
            chosen = inputs["completion_mask"].chunk(2, dim=0)[0][..., 1:]
            predictions = int(chosen.sum())
            accuracy = (self._metrics[mode].get("mean_token_accuracy") or [0.0])[-1]
            self.counts[mode].add(round(accuracy * predictions), predictions, int(inputs["attention_mask"].sum()))
            return out

    return JobDPOTrainer


def build_dpo_trainer(params: TuningParams, train: Dataset, val: Dataset | None, output_dir: Path):
    """(trainer, tokenizer, info for job.json, dataset stats), as build.build_trainer."""
    from datasets import Dataset as HFDataset
    from trl import DPOConfig

    from .fastpath import FastPath, plan_master_weights
    from .info import model_info
    from .methods import METHOD_NAMES
    from .optim import saved_precision
    from .selection import EarlyStopping, EvaluateAtEnd, resolve_select_best

    if not train.is_preference or (val is not None and len(val) and not val.is_preference):
        raise ValueError("method='dpo' needs preference rows (prompt, chosen, rejected)")
    hw, model_path, merge, tokenizer = start(params)
    epochs = params.epochs or choose_epochs(len(train))
    stats = {"max_seq_length": params.max_seq_length, "epochs": epochs, "method": "dpo",
             "train": dpo_stats(tokenizer, train, params, epochs),
             "validation": dpo_stats(tokenizer, val, params, 1) if val is not None else None}
    val_rows = preference_rows(val, tokenizer)[: params.max_eval_examples or None] if val is not None else None

    fp = FastPath()
    fp.set("packed_attention", False, "DPO: TRL pads each chosen/rejected pair (its padding-free path is "
                                      "disabled in trl 1.16)")
    if not params.answer_only_logits:
        fp.set("answer_only_logits", False, "switched off by answer_only_logits=False: TRL scores every position")
    elif hw.device == "cuda":
        fp.set("answer_only_logits", True, "TRL's fused LM head scores only the answer positions on CUDA itself")
    else:
        why = answer_only_hook()
        fp.set("answer_only_logits", why is None, why or "TRL's fused LM head on the answer positions only "
                                                         "(on CUDA it does so itself; elsewhere it scores all)")
    fp.set("fused_lora", False, "DPO: the reference pass disables the adapter through peft's own forward")
    half = plan_master_weights(params, hw, fp)
    model, lora = load_policy(params, hw, model_path, merge, use_cache=False)

    select = resolve_select_best(params, bool(val_rows), None)
    shared, total_steps = shared_arguments(params, len(train), epochs, bool(val_rows), select, hw.device,
                                           output_dir)
    eval_steps, save_steps = shared["eval_steps"], shared["save_steps"]
    best_metric, greater = shared["metric_for_best_model"], shared["greater_is_better"]
    args = DPOConfig(
        **shared,
        beta=params.dpo_beta,
        max_length=params.max_seq_length,
        truncation_mode="keep_end",  # keep the answers, cut the prompt's start (as supervised tuning keeps them)
        disable_tqdm=True,
    )
    trainer_class = make_trainer_class()
    trainer = trainer_class(model=model, args=args, processing_class=tokenizer, peft_config=lora,
                            train_dataset=HFDataset.from_list(preference_rows(train, tokenizer)),
                            eval_dataset=HFDataset.from_list(val_rows) if val_rows else None,
                            half_adapters=hw.dtype if half else None,
                            answer_only=hw.device != "cuda" and fp.on("answer_only_logits"))
    if val_rows:
        trainer.add_callback(EvaluateAtEnd())
    if params.early_stopping_patience and best_metric:
        trainer.add_callback(EarlyStopping(best_metric, greater, params.early_stopping_patience))
    info = {
        **model_info(trainer.model, params, hw, fp, METHOD_NAMES["dpo"], adapters=True,
                     saved=saved_precision(trainer.model, half), quantization=params.effective_quantization),
        "dpo_beta": params.dpo_beta, "reference": "the base model (adapter disabled)",
        "base_model": params.base_model, "resolved_model_path": str(model_path),
        "learning_rate": params.effective_learning_rate, "epochs": epochs, "total_steps": total_steps,
        "batch_size": params.batch_size, "gradient_accumulation_steps": params.gradient_accumulation_steps,
        "max_seq_length": params.max_seq_length, "eval_steps": eval_steps if val_rows else None,
        "save_steps": save_steps, "padding_free": False, "task_metric": None, "select_best": select,
        "early_stopping_patience": params.early_stopping_patience,
    }
    for name, piece in info["fast_path"].items():
        if not piece["on"]:
            log(f"Fast path: {name} off ({piece['why']})")
    return trainer, tokenizer, info, stats
