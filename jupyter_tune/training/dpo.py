"""Preference tuning (method="dpo"): TRL's DPOTrainer with LoRA on the policy.

The loss is TRL's; the reference model is the base itself (TRL runs it with the adapter disabled), so no
second copy of the weights is held. ``DPO`` is the method's steps of the one pipeline (build.py), so the job
around it is a supervised one's: the job process, metrics.jsonl (TRL's rewards and log-probabilities under
clear names, see callbacks.py), checkpoints, cancel, resume and the best checkpoint. TRL is imported here
(and in grpo.py) only, never by ``import jupyter_tune``.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

from ..data.loader import Dataset
from ..params import TuningParams
from .trainer import TokenCounts
from .trl_method import TRLMethod


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


class DPO(TRLMethod):
    """method="dpo": preference rows, TRL's DPOConfig and DPOTrainer (JobDPOTrainer)."""

    def check(self, train, val):
        if not train.is_preference or (val is not None and len(val) and not val.is_preference):
            raise ValueError("method='dpo' needs preference rows (prompt, chosen, rejected)")

    def data(self, tokenizer, train, val, epochs):
        params = self.params
        self.train_rows = preference_rows(train, tokenizer)
        if val is not None:
            self.val_rows = preference_rows(val, tokenizer)[: params.max_eval_examples or None]
        return {"method": "dpo", "train": dpo_stats(tokenizer, train, params, epochs),
                "validation": dpo_stats(tokenizer, val, params, 1) if val is not None else None}

    def plan_fast_path(self, hw):
        from .fastpath import FastPath, plan_master_weights

        params, fp = self.params, FastPath()
        fp.set("packed_attention", False, "DPO: TRL pads each chosen/rejected pair (its padding-free path is "
                                          "disabled in trl 1.16)")
        if not params.answer_only_logits:
            fp.set("answer_only_logits", False,
                   "switched off by answer_only_logits=False: TRL scores every position")
        elif hw.device == "cuda":
            fp.set("answer_only_logits", True,
                   "TRL's fused LM head scores only the answer positions on CUDA itself")
        else:
            why = answer_only_hook()
            fp.set("answer_only_logits", why is None, why or "TRL's fused LM head on the answer positions only "
                                                             "(on CUDA it does so itself; elsewhere it scores all)")
        fp.set("fused_lora", False, "DPO: the reference pass disables the adapter through peft's own forward")
        self.half = plan_master_weights(params, hw, fp)
        return fp

    def arguments(self, shared):
        from trl import DPOConfig

        return DPOConfig(
            **shared,
            beta=self.params.dpo_beta,
            max_length=self.params.max_seq_length,
            truncation_mode="keep_end",  # keep the answers, cut the prompt's start (as supervised tuning keeps them)
        )

    def trainer(self, model, args, tokenizer, hw):
        return make_trainer_class()(model=model, args=args, **self.datasets(tokenizer),
                                    half_adapters=hw.dtype if self.half else None,
                                    answer_only=hw.device != "cuda" and self.fp.on("answer_only_logits"))

    def info(self):
        return {"dpo_beta": self.params.dpo_beta, "reference": "the base model (adapter disabled)"}
