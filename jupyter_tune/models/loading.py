"""Load a base or tuned model for generation and evaluation: ``jt.load_model``.

A model is named by a base model (Hugging Face id, folder, .gguf), a tuning job (a ``TuningJob`` or its
id: the job's base model plus its ``adapter/``) or a PEFT adapter folder. Loaded models are kept in the
kernel, so asking twice for the same thing returns the same object at once.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..jobs.states import JobState

log = logging.getLogger(__name__)

# Loaded models, keyed by what was resolved and the options (see _cache_key).
_CACHE: dict[tuple, LoadedModel] = {}


class JobNotReadyError(ValueError):
    """A tuning job has no tuned model to load yet (or it failed); the message says its state."""


@dataclass(eq=False)
class LoadedModel:
    """A model ready to generate: the torch model, its tokenizer (left padding, a pad token) and where it
    came from. ``prompt_template`` is the template it was tuned with (a job's), used when a call gives none."""

    model: Any
    tokenizer: Any
    name: str
    prompt_template: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    base_model: str | None = None          # what the base was named (id / folder / .gguf)
    base_path: str | None = None           # the resolved local folder
    adapter_path: str | None = None
    job_id: str | None = None
    merged: bool = False
    notes: list[str] = field(default_factory=list)
    # A classification-head model (task="classification"): its labels by class id; None for a causal LM.
    head_labels: list[str] | None = None
    # A tuned job's max_seq_length: the prompt length it was trained on (a head's prompts are cut to it, as in
    # training; label scoring cuts to it by default, evaluation/long_inputs.py); None for an untuned model.
    max_seq_length: int | None = None

    @property
    def is_classifier(self) -> bool:
        return self.head_labels is not None

    @property
    def context_length(self) -> int:
        from .context import context_length

        return context_length(self.model, self.tokenizer)

    @property
    def eos_token_ids(self) -> list[int]:
        """Tokens that end an answer: the tokenizer's and the generation config's end-of-turn tokens."""
        from .arch import end_of_turn_ids

        return end_of_turn_ids(self.model, self.tokenizer)

    def __repr__(self) -> str:
        what = f"job {self.job_id}" if self.job_id else (f"adapter {self.adapter_path}" if self.adapter_path
                                                         else "base model")
        if self.is_classifier:
            what += f", classifier of {len(self.head_labels)} labels"
        return (f"<LoadedModel {self.name!r} ({what}{', merged' if self.merged else ''}) "
                f"on {self.device}/{self.dtype}>")


def inference_dtype(device: str):
    """bf16 on a GPU with bf16 or a CPU where bf16 matmuls measurably beat fp32 (models/hardware.py), else fp32.

    Measured on SmolLM2-135M over small-eval (80 rows, score mode, 2-core CPU with AVX512-BF16): bf16 ran
    3-5x faster than fp32 and predicted the same label on 80/80 rows; label log-prob gaps moved by 0.2 nats
    (median, max 0.57). Pass dtype="float32" where exact log-probs matter.
    """
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    from .hardware import cpu_has_fast_bf16

    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def _as_dtype(dtype: Any, device: str):
    import torch

    if dtype is None or dtype == "auto":
        return inference_dtype(device)
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "half": "float16", "float": "float32"}
    name = names.get(str(dtype), str(dtype)).replace("torch.", "")
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"dtype={dtype!r} is not a torch dtype; use 'bfloat16', 'float16' or 'float32'.")
    return getattr(torch, name)


def _job_for(x: Any):
    """The job (a JobHandle: a TuningJob or its id) that `x` names, or None when it names something else."""
    from ..jobs.handle import JobHandle
    from ..jobs.store import JOB_ID_RE, JobStore

    if isinstance(x, JobHandle):
        return x
    if isinstance(x, str) and JOB_ID_RE.match(x) and not Path(x).exists():
        store = JobStore()
        if store.exists(x):
            return JobHandle(x, store)
    return None


def _job_record_near(adapter: Path) -> dict[str, Any] | None:
    """job.json of the job an adapter folder belongs to (<job>/adapter, <job>/checkpoints/checkpoint-N)."""
    for d in (adapter.parent, adapter.parent.parent):
        p = d / "job.json"
        if p.is_file():
            try:
                return json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None
    return None


def _is_adapter(path: Path) -> bool:
    return path.is_dir() and (path / "adapter_config.json").is_file()


def job_adapter(job) -> tuple[Path, list[str]]:
    """The adapter folder to load for a job, with notes; JobNotReadyError (saying the state and what to do)
    when there is none. The one rule for load_model, export and the view's Test tab: a succeeded job's
    final adapter; a cancelled or failed one's adapter saved when it stopped, else its latest checkpoint.
    A full fine-tuning job's "adapter" is its model folder (a whole model). A checkpoint the user chose
    (``job.use_checkpoint(step)``) comes first; a torn one raises CheckpointError, never a fallback."""
    from ..jobs.choice import chosen_path
    from .from_job import FULL_MODEL_DIR, job_is_full

    record = job.record
    state = JobState.of(record)
    if state.is_final:
        chosen = chosen_path(job.id, job.dir, record)
        if chosen is not None:
            return chosen, [f"Job {job.id}: loading the checkpoint chosen with use_checkpoint, {chosen.name}."]
    if job_is_full(job.dir) and (job.dir / FULL_MODEL_DIR / "config.json").is_file():
        how = {JobState.SUCCEEDED: [], JobState.CANCELLED: [f"Job {job.id} was cancelled: loading the model it "
                                                            "saved when it stopped."]}
        if state in how:
            return job.dir / FULL_MODEL_DIR, how[state]
    if state is JobState.SUCCEEDED:
        if _is_adapter(job.adapter_path):
            return job.adapter_path, []
        raise JobNotReadyError(f"Job {job.id} is {state} but has no adapter in {job.adapter_path}; "
                               "the job folder is incomplete. Re-run the tuning job.")
    if state in (JobState.CANCELLED, JobState.FAILED):
        how = "was cancelled" if state is JobState.CANCELLED else "failed"
        if _is_adapter(job.adapter_path):
            return job.adapter_path, [f"Job {job.id} {how}: loading the adapter it saved when it stopped."]
        ckpt = job.store.latest_checkpoint(job.id)
        if ckpt is not None and _is_adapter(ckpt):
            return ckpt, [f"Job {job.id} {how}: loading its latest checkpoint, {ckpt.name}."]
        why = f" ({job.error.splitlines()[0]})" if state is JobState.FAILED and job.error else ""
        raise JobNotReadyError(f"Job {job.id} is {state}{why} and saved no adapter or checkpoint: there "
                               f"is no tuned model to load. Tune again (jt.tune) or resume it "
                               f"(jt.resume({job.id!r})).")
    raise JobNotReadyError(f"Job {job.id} is {state}, not JOB_STATE_SUCCEEDED: it has no tuned model "
                           f"to load yet. Wait for it to finish: jt.get_job({job.id!r}).wait(), then load it "
                           "again.")


def _describe(x: Any) -> dict[str, Any]:
    """What `x` names: base model, adapter, job id, template and notes (no weights loaded yet)."""
    from .head import head_of
    from .resolve import resolve_model

    job = _job_for(x)
    if job is not None:
        from .from_job import model_base

        adapter, notes = job_adapter(job)
        record = job.record
        params = record.get("params") or {}
        head = head_of(adapter, record)
        if not _is_adapter(adapter):  # full fine-tuning: the job's model folder is the whole model
            return {"base_model": params.get("base_model"), "base_path": adapter, "adapter": None,
                    "job_id": job.id, "prompt_template": params.get("prompt_template"), "name": job.name,
                    "max_seq_length": params.get("max_seq_length"),
                    "notes": notes, "head": head}
        base = params.get("base_model") or _adapter_base(adapter)
        start = model_base(base)  # tuned from another job: that job's model, adapters merged, is the base
        return {"base_model": base, "base_path": start.base_path, "merge": list(start.adapters),
                "adapter": adapter, "job_id": job.id, "max_seq_length": params.get("max_seq_length"),
                "prompt_template": params.get("prompt_template"), "name": job.name, "notes": notes, "head": head}
    if isinstance(x, (str, os.PathLike)):
        path = Path(x).expanduser()
        if _is_adapter(path):
            record = _job_record_near(path) or {}
            params = record.get("params") or {}
            base = _adapter_base(path)
            try:
                base_path = resolve_model(base)
            except FileNotFoundError:
                if not params.get("base_model"):
                    raise
                base, base_path = params["base_model"], resolve_model(params["base_model"])
            return {"base_model": base, "base_path": base_path, "adapter": path.resolve(),
                    "job_id": record.get("id"), "prompt_template": params.get("prompt_template"),
                    "max_seq_length": params.get("max_seq_length"),
                    "name": record.get("display_name") or record.get("id") or path.name, "notes": [],
                    "head": head_of(path, record)}
        base_path = resolve_model(x)
        # a folder saved as a classifier (an exported merged head job) loads as one
        return {"base_model": str(x), "base_path": base_path, "adapter": None, "job_id": None,
                "prompt_template": None, "name": str(x), "notes": [], "head": head_of(base_path)}
    raise TypeError(f"load_model takes a model id, a model folder, a .gguf file, a tuning job, a job id or an "
                    f"adapter folder, not {type(x).__name__}.")


def _adapter_base(adapter: Path) -> str:
    cfg = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter}/adapter_config.json names no base_model_name_or_path.")
    return base


def _stamp(path: Path | None) -> float | None:
    """Latest modification time of an adapter's weights: a re-saved adapter is loaded afresh."""
    if path is None:
        return None
    times = [p.stat().st_mtime for p in path.glob("adapter_model.*")]
    return max(times) if times else None


def load_model(x: Any, merge: bool = False, dtype: Any = None) -> LoadedModel:
    """Load a model to generate with or evaluate.

    x: a base model (Hugging Face id, local folder, .gguf), a tuning job (``TuningJob`` or job id: its
       base model plus its adapter) or a PEFT adapter folder.
    merge: fold the adapter into the base weights (faster generation, no separate adapter).
    dtype: None for the measured default (bf16 where the hardware runs it natively, else fp32), or a
       torch dtype / name.
    Returns a ``LoadedModel``; the same arguments return the same object (kept in the kernel).
    Raises JobNotReadyError (a ValueError) for a job without a tuned model, with its state.
    """
    if isinstance(x, LoadedModel):
        return x
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = _as_dtype(dtype, device)
    what = _describe(x)
    adapter = what["adapter"]
    key = (str(what["base_path"]), str(adapter) if adapter else None, _stamp(adapter), bool(merge and adapter),
           str(torch_dtype), device)
    if key in _CACHE:
        return _CACHE[key]
    lm = _load(what, device, torch_dtype, bool(merge and adapter))
    _CACHE[key] = lm
    return lm


def clear_cache() -> None:
    """Forget the loaded models (their memory is freed once nothing else holds them)."""
    _CACHE.clear()


def _load(what: dict[str, Any], device: str, dtype, merge: bool) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter: Path | None = what["adapter"]
    tok_dir = adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else what["base_path"]
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    tokenizer.padding_side = "left"  # decoder-only: new tokens follow the prompt directly
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    from transformers import AutoConfig

    from .arch import library_attention

    attn = library_attention(AutoConfig.from_pretrained(what["base_path"]))
    head = what.get("head")
    if head is not None:  # a classifier: the saved one as it is, else the base with a head for its labels
        from .head import head_of, load_classifier

        saved = head_of(what["base_path"]) is not None
        model = load_classifier(what["base_path"], None if saved else head.labels, tokenizer.pad_token_id,
                                dtype=dtype, attn_implementation=attn)
    else:
        model = AutoModelForCausalLM.from_pretrained(what["base_path"], dtype=dtype, attn_implementation=attn)
    for earlier in what.get("merge") or []:  # a job tuned from another job: that job's adapters first
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(earlier), autocast_adapter_dtype=False).merge_and_unload()
    if adapter is not None:
        from peft import PeftModel

        # Adapters in the base's dtype: peft's default fp32 adapters on a bf16 base cast every activation
        # twice per layer (a tuned Gemma 3 scored 3x slower than its base that way, profiled here).
        model = PeftModel.from_pretrained(model, str(adapter), autocast_adapter_dtype=False)
        if merge:
            model = model.merge_and_unload()
    model.to(device)
    model.eval()
    # The trainer turns the cache off for packed rows; generation wants it.
    model.config.use_cache = True
    gen = getattr(model, "generation_config", None)  # a classifier has none
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
    for note in what["notes"]:
        log.warning(note)
    return LoadedModel(model=model, tokenizer=tokenizer, name=what["name"], prompt_template=what["prompt_template"],
                       device=device, dtype=str(dtype).replace("torch.", ""), base_model=str(what["base_model"]),
                       base_path=str(what["base_path"]), adapter_path=str(adapter) if adapter else None,
                       job_id=what["job_id"], merged=merge, notes=list(what["notes"]),
                       head_labels=list(head.labels) if head is not None else None,
                       max_seq_length=head.max_seq_length if head is not None else what.get("max_seq_length"))
