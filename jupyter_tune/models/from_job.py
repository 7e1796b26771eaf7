"""A finished job as the base of another: ``jt.tune(base_model=<job id>, ...)`` (e.g. DPO after SFT).

A full fine-tuning job's ``model/`` folder is a plain model; a LoRA job is its own base plus its adapter,
which the next job merges into the weights before it adds its own. Jobs on jobs chain: the adapters are
merged in order. Torch-free (the launch checks it before any model loads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# The folder a full fine-tuning job saves its model to (a plain Hugging Face folder), beside adapter/.
FULL_MODEL_DIR = "model"


@dataclass
class JobBase:
    job_id: str
    base_path: Path                                        # a plain model folder
    adapters: list[Path] = field(default_factory=list)     # merged into it, in order


class JobBaseError(ValueError):
    """base_model names a job that has no finished model to start from."""


def job_base(name: str, store=None) -> JobBase | None:
    """The model a job id stands for, or None when ``name`` is not a job id in the store."""
    from ..jobs.states import JobState
    from ..jobs.store import JOB_ID_RE, JobStore

    if not isinstance(name, str) or not JOB_ID_RE.fullmatch(name) or Path(name).exists():
        return None
    store = store or JobStore()
    if not store.exists(name):
        return None
    record = store.read(name)
    job_dir = store.job_dir(name)
    from .head import is_classification

    if is_classification(record):
        raise JobBaseError(f"base_model={name!r} is a classification-head job (task='classification'): its model "
                           "is a classifier, not a language model another job can start from. Start from its "
                           "base model instead.")
    if record.get("state") != JobState.SUCCEEDED:
        raise JobBaseError(f"base_model={name!r} is a tuning job in {record.get('state')}, not "
                           "JOB_STATE_SUCCEEDED: start from a job once it has succeeded.")
    from ..jobs.choice import chosen_path

    chosen = chosen_path(name, job_dir, record)  # job.use_checkpoint(step): that checkpoint is the job's model
    full = chosen if chosen is not None and (chosen / "config.json").is_file() else job_dir / FULL_MODEL_DIR
    if (full / "config.json").is_file():
        return JobBase(name, full)
    adapter = chosen or job_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise JobBaseError(f"base_model={name!r}: the job has neither model/ nor adapter/ in {job_dir}.")
    inner = model_base((record.get("params") or {}).get("base_model"), store)
    return JobBase(name, inner.base_path, inner.adapters + [adapter])


def model_base(name: str, store=None) -> JobBase:
    """What ``base_model=name`` starts from: a finished job's model (job_base; ``job_id`` set) or a model
    (resolve_model: an HF id, folder or GGUF file; ``job_id`` empty, no adapters)."""
    from_job = job_base(name, store)
    if from_job is not None:
        return from_job
    from .resolve import resolve_model

    return JobBase("", resolve_model(name))


def job_is_full(job_dir: Path) -> bool:
    """A full fine-tuning job (its model is model/, not adapter/)."""
    try:
        record = json.loads((Path(job_dir) / "job.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (Path(job_dir) / FULL_MODEL_DIR / "config.json").is_file()
    return (record.get("params") or {}).get("method") == "full"


def load_merged(base: JobBase, head=None, **kwargs):
    """The job's model with its adapters merged in (a plain transformers model). ``head``: (labels,
    pad_token_id) to load it as a classifier with a new head for those labels (models/head.py)."""
    if head is not None:
        from .head import load_classifier

        model = load_classifier(base.base_path, *head, **kwargs)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(base.base_path), **kwargs)
    for adapter in base.adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), autocast_adapter_dtype=False).merge_and_unload()
    return model
