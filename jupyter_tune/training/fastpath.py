"""Which of the trainer's fast-path pieces run for a given model, and why the others do not.

Each piece is exact where it runs (tests/training/test_architectures.py checks it against the model's own loss and
gradients, per architecture) and checks what it supports; where it cannot be exact it is turned off and
the library path runs instead. Every piece can also be switched off by its TuningParams field. The
decisions go to the job log (one line per piece turned off) and to job.json (``tuning.fast_path``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..params import FAST_PATH_SWITCHES


@dataclass
class Piece:
    on: bool
    why: str


@dataclass
class FastPath:
    pieces: dict[str, Piece] = field(default_factory=dict)

    def set(self, name: str, on: bool, why: str) -> None:
        assert name in FAST_PATH_SWITCHES, name
        self.pieces[name] = Piece(on, why)

    def on(self, name: str) -> bool:
        return self.pieces[name].on

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {n: {"on": p.on, "why": p.why} for n, p in self.pieces.items()}

    def log_lines(self) -> list[str]:
        return [f"Fast path: {n} off ({p.why})" for n, p in self.pieces.items() if not p.on]


def plan_attention(params, config, fp: FastPath) -> str:
    """The attn_implementation to load the model with; records the packed_attention decision."""
    from ..models.arch import library_attention
    from .attention import register, supports

    if not params.padding_free:
        fp.set("packed_attention", False, "padding_free=False: padded batches use the library's attention "
                                          "with their mask")
        return library_attention(config)
    if not params.packed_attention:
        fp.set("packed_attention", False, "switched off by packed_attention=False; transformers builds the "
                                          "block mask from position_ids")
        return library_attention(config)
    reason = supports(config)
    if reason:
        fp.set("packed_attention", False, reason)
        return library_attention(config)
    fp.set("packed_attention", True, "per-example SDPA (sliding windows masked)")
    return register()




def plan_master_weights(params, hw, fp: FastPath) -> bool:
    """True when the adapters train in the base's half precision with fp32 master weights."""
    import torch

    if params.effective_quantization:
        fp.set("master_weights", False, "quantized base: adapters in fp32 (peft's bitsandbytes layers cast "
                                        "the activations), so AdamW needs no master copies")
    elif hw.dtype == torch.float32:
        fp.set("master_weights", False, "fp32 base: adapters train in fp32")
    elif not params.master_weights:
        fp.set("master_weights", False, "switched off by master_weights=False: fp32 adapters")
    else:
        fp.set("master_weights", True, f"{hw.dtype_name} adapters, fp32 master weights in AdamW")
    return fp.on("master_weights")


# Why fused LoRA is off unless asked for: it did not pay end to end on any machine benchmarked.
FUSED_LORA_OFF = ("off by default: measured 0.81x-0.97x of peft's path end to end on every CPU benchmarked "
                  "(README, Speed); fused_lora=True turns it on")


def plan_fused_lora(params, model, fp: FastPath) -> None:
    from .fused_lora import fuse_lora, unsupported

    if not params.fused_lora:
        fp.set("fused_lora", False, FUSED_LORA_OFF)
        return
    reason = unsupported(model)
    if reason:
        fp.set("fused_lora", False, reason)
        return
    n = fuse_lora(model)
    fp.set("fused_lora", n > 0, f"{n} LoRA layers fused (fused_lora=True)" if n else
           "no plain LoRA Linear layers to fuse")


def probe_logits_to_keep(model) -> str | None:
    """None when the model's forward takes a boolean ``logits_to_keep`` mask and gives the same logits as a
    full forward at those positions (checked on 6 tokens), else the reason."""
    import torch

    was_training = model.training
    model.eval()
    try:
        vocab = model.get_output_embeddings().weight.shape[0]
        device = next(model.parameters()).device
        ids = torch.arange(6, device=device)[None] % vocab + 1
        keep = torch.tensor([[False, True, False, True, True, False]], device=device)
        with torch.no_grad():
            full = model(input_ids=ids, use_cache=False).logits[keep].float()
            part = model(input_ids=ids, use_cache=False, logits_to_keep=keep).logits.float()
        part = part.reshape(-1, part.shape[-1])
        if part.shape != full.shape:
            return f"the model's forward gave logits of shape {tuple(part.shape)} for a logits_to_keep mask"
        # half-precision weights: a matmul over fewer rows may round differently; the shape is the real test
        exact = next(model.parameters()).dtype == torch.float32
        if not torch.allclose(part, full, atol=1e-4 if exact else 0.25, rtol=1e-4 if exact else 0.02):
            return "logits_to_keep changed the logits"
        return None
    except (TypeError, IndexError) as e:  # transformers 5.17 takes no 2-D mask (IndexError)
        return f"the model's forward does not take a logits_to_keep mask ({type(e).__name__}: {e})"
    finally:
        model.train(was_training)


def plan_logits(params, model, fp: FastPath) -> None:
    if params.task == "classification":
        fp.set("answer_only_logits", False, "task='classification': no vocabulary output layer to skip; the label "
                                            "head is read at each example's last token (training/classifier.py)")
        return
    if not params.answer_only_logits:
        fp.set("answer_only_logits", False, "switched off by answer_only_logits=False: full logits")
        return
    reason = probe_logits_to_keep(model)
    fp.set("answer_only_logits", reason is None, reason or "logits_to_keep mask through the model's forward")


def note_quantized_base(fp: FastPath, quantization: str) -> None:
    """What each piece that stays on does with a quantized base, for job.json (those turned off say why)."""
    notes = {"packed_attention": f"unchanged on a {quantization} base: attention holds no quantized weights",
             "answer_only_logits": "the output layer is not quantized (transformers keeps it out of "
                                   "bitsandbytes), so the probe's exact-logits check holds"}
    for name, note in notes.items():
        piece = fp.pieces.get(name)
        if piece is not None and piece.on:
            piece.why = f"{piece.why}; {note}"
    fused = fp.pieces.get("fused_lora")
    if fused is not None and "quantized" not in fused.why:  # off for another reason first
        fused.why = f"{fused.why}; a quantized base keeps peft's bitsandbytes LoRA layers in any case"
