"""AdamW with fp32 master copies of half-precision trainable weights.

The adapters compute in the base model's bf16 (measured here: 25% faster steps than fp32 adapters, which
cast every activation), while the optimizer keeps and updates fp32 copies, so late, small updates are
not rounded away.

What is saved keeps those masters too: checkpoints and the final adapter or model hold the fp32 values
(rounding them to bf16 would lose every update smaller than bf16's resolution, e.g. a norm weight near 1.0
moving by 1e-4), and resume and the best checkpoint put them back into the masters.
"""

from __future__ import annotations

import torch


class MasterWeightAdamW(torch.optim.AdamW):
    def __init__(self, params, **kwargs):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.model_params: list[torch.Tensor] = []
        master_groups = []
        for g in groups:
            model_ps = list(g["params"])
            self.model_params += model_ps
            masters = [p.detach().float().clone().requires_grad_(True) for p in model_ps]
            master_groups.append({**g, "params": masters})
        super().__init__(master_groups, **kwargs)
        self._masters = [m for g in self.param_groups for m in g["params"]]

    @torch.no_grad()
    def step(self, closure=None):
        for p, m in zip(self.model_params, self._masters):
            m.grad = None if p.grad is None else p.grad.float()
        loss = super().step(closure)
        for p, m in zip(self.model_params, self._masters):
            p.copy_(m)
        return loss

    def zero_grad(self, set_to_none: bool = True):
        for p in self.model_params:
            p.grad = None
        super().zero_grad(set_to_none)


def masters_by_param(optimizer) -> dict[int, torch.Tensor]:
    """id(trainable weight) -> its fp32 master, for a MasterWeightAdamW (as accelerate wraps it or bare);
    empty for any other optimizer or none."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer
    if not isinstance(inner, MasterWeightAdamW):
        return {}
    return {id(p): m for p, m in zip(inner.model_params, inner._masters)}


def full_precision_state_dict(model, optimizer) -> dict[str, torch.Tensor] | None:
    """``model``'s state dict with each half-precision trainable weight replaced by its fp32 master (tied
    weights share one master, so they stay tied); None without master weights (the weights are what trained)."""
    masters = masters_by_param(optimizer)
    if not masters:
        return None
    return {k: masters.get(id(v), v).detach() for k, v in model.state_dict(keep_vars=True).items()}


def saved_precision(model, master_weights: bool) -> dict[str, str]:
    """job.json's ``tuning.saved``: the dtype the trained weights are written in (checkpoints and the final
    adapter or model), and why."""
    trained = next(p.dtype for p in model.parameters() if p.requires_grad)
    name = str(trained).replace("torch.", "")
    if master_weights and trained != torch.float32:
        return {"dtype": "float32", "why": f"the fp32 master weights: the {name} copy the model computes with "
                                          f"would round away updates smaller than {name}'s resolution"}
    if trained == torch.float32:
        return {"dtype": "float32", "why": "the weights trained in float32"}
    return {"dtype": name, "why": f"master_weights=False: the weights trained in {name} themselves"}


class MasterWeightCheckpoints:
    """Trainer methods (mixed in before the Trainer class): checkpoints hold the fp32 masters, and a resume
    puts the checkpoint's fp32 values back into the masters (the optimizer state holds only the moments)."""

    def _save(self, output_dir=None, state_dict=None):
        if state_dict is None:
            state_dict = full_precision_state_dict(self.accelerator.unwrap_model(self.model), self.optimizer)
        return super()._save(output_dir, state_dict=state_dict)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None and masters_by_param(self.optimizer):
            from pathlib import Path

            load_adapter_weights(self, Path(checkpoint))


def load_adapter_weights(trainer, checkpoint) -> None:
    """A checkpoint's adapter weights (or, for full fine-tuning, all its weights) into the trainer's model,
    each kept in the dtype it trains in.

    Half-precision weights with fp32 masters (optim.py) are checkpointed as their fp32 masters: those values
    go into the masters unrounded. Without an optimizer (a job whose last checkpoint is its last step: nothing
    trains after) the trainable weights stay in fp32, so the final save keeps them."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    model = trainer.accelerator.unwrap_model(trainer.model)
    device = str(next(model.parameters()).device)
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    masters = masters_by_param(trainer.optimizer)
    keep_fp32 = trainer.optimizer is None
    for p in model.parameters():  # load into fp32 so that an fp32 checkpoint is not rounded on the way
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    if not (checkpoint / "adapter_model.safetensors").is_file():  # a full model's checkpoint
        missing, unexpected = model.load_state_dict(load_file(str(checkpoint / "model.safetensors"), device=device),
                                                    strict=False)
        tied = {n for n in missing if n.endswith("lm_head.weight")}  # tied to the embeddings, saved once
        if set(missing) - tied or unexpected:
            raise RuntimeError(f"{checkpoint.name} does not match the model: missing {sorted(set(missing) - tied)[:5]}, "
                               f"unexpected {sorted(unexpected)[:5]}")
    else:
        set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors"), device=device))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if id(p) in masters:
                masters[id(p)].copy_(p.data)
            if p.dtype != dtypes[n] and not (keep_fp32 and p.requires_grad):
                p.data = p.data.to(dtypes[n])
