"""Classification-head models (``task="classification"``): what marks a saved model as one, its labels, how
to load it, and how to read its head's logits at the positions that matter.

A head job trains ``AutoModelForSequenceClassification`` (the family's ``...ForSequenceClassification``: the
causal LM's body plus a ``score`` layer of one row per label on the last token) with LoRA
(peft ``task_type="SEQ_CLS"``: the head is trained and saved whole, as ``modules_to_save``) or every weight.
Its labels (the sorted set of the training answers) are in the saved config's ``id2label`` (adapter/config.json
beside the adapter, or the full model's config.json) and in job.json's ``tuning.labels``.

Torch-free at import (the launch and the server-side checks read the markers).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLASSIFICATION = "classification"
# peft's task type for a sequence-classification adapter (adapter_config.json's "task_type").
SEQ_CLS = "SEQ_CLS"
# The head's module names in transformers' ...ForSequenceClassification models (peft saves either whole).
HEAD_MODULES = ("score", "classifier")


class ClassifierError(ValueError):
    """A classification-head model was asked for what it cannot do (generate text); the message says what
    it does instead."""


def not_a_generator(lm) -> ClassifierError:
    return ClassifierError(
        f"{lm.name} is a classifier (a task='classification' job): it has a label head of {len(lm.head_labels)} "
        "labels, not a language-model output, so it cannot generate text. Rank its labels with "
        "jt.evaluate(model, data) (or the Test tab); to generate, tune with task='generation'.")


@dataclass
class Head:
    """A classification-head model's labels (index = class id) and the prompt length it was trained on."""

    labels: list[str]
    max_seq_length: int | None = None


def is_classification(record: dict[str, Any] | None) -> bool:
    """Whether a job (its job.json) is a classification-head job."""
    return ((record or {}).get("params") or {}).get("task") == CLASSIFICATION


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def config_labels(config: dict[str, Any] | None) -> list[str] | None:
    """The labels of a ...ForSequenceClassification config.json (by class id), or None for another model."""
    if not config or not any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return None
    id2label = config.get("id2label") or {}
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        return None


def head_of(folder: str | Path, record: dict[str, Any] | None = None) -> Head | None:
    """The head of the model in ``folder`` (a peft adapter, a checkpoint or a whole model), or None when it
    is a causal LM. ``record``: the job's job.json, where the labels are when the folder does not hold them
    (a Trainer checkpoint)."""
    folder = Path(folder)
    params = (record or {}).get("params") or {}
    max_len = params.get("max_seq_length") if is_classification(record) else None
    adapter = _read_json(folder / "adapter_config.json")
    if adapter is not None:
        if adapter.get("task_type") != SEQ_CLS:
            return None
        labels = config_labels(_read_json(folder / "config.json"))
        labels = labels or ((record or {}).get("tuning") or {}).get("labels")
        if not labels:
            raise ValueError(f"{folder} is a classification-head adapter but neither its config.json nor its job "
                             "names the labels (id2label); load it from its job (jt.load_model(job)).")
        return Head(list(labels), max_len)
    labels = config_labels(_read_json(folder / "config.json"))
    return Head(labels, max_len) if labels else None


def label_config(labels: list[str], pad_token_id: int | None) -> dict[str, Any]:
    """from_pretrained keywords that make a causal LM's folder load as a classifier with these labels."""
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {lab: i for i, lab in enumerate(labels)}, "pad_token_id": pad_token_id}


def load_classifier(path: str | Path, labels: list[str] | None, pad_token_id: int | None, **kwargs):
    """``AutoModelForSequenceClassification.from_pretrained``: a causal LM's folder gets a new head for
    ``labels``; a classifier's folder (``labels`` None) loads as it was saved."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(str(path))
    try:
        if labels is None:
            return AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
        # The new head is "missing from the checkpoint" by design (then trained, or loaded from an adapter):
        # transformers' load report saying so would read as an error in a job log.
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                str(path), **label_config(labels, pad_token_id), **kwargs)
        finally:
            hf_logging.set_verbosity(level)
    except ValueError as e:
        if "Unrecognized configuration class" not in str(e):
            raise
        raise ValueError(f"task='classification': transformers has no ...ForSequenceClassification model for the "
                         f"{config.model_type!r} family of {path}; use task='generation' with this model.") from None


def classification_problem(model_dir: str | Path, answers: list[str | None]) -> str | None:
    """Why a task="classification" job cannot start on this model and data (None when it can): the family
    has no ...ForSequenceClassification in transformers, or the training rows hold fewer than two labels."""
    labels = sorted({a for a in answers if a is not None})
    if len(labels) < 2:
        return (f"task='classification' needs at least two labels in the training data (each row's answer is "
                f"its label); found {len(labels)}{': ' + repr(labels[0]) if labels else ''}.")
    config = _read_json(Path(model_dir) / "config.json") or {}
    model_type = config.get("model_type")
    if model_type:
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

        if model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
            return (f"task='classification': transformers has no ...ForSequenceClassification model for the "
                    f"{model_type!r} family; use task='generation' with this model.")
    return None


def write_head_config(folder: str | Path, base_path: str | Path, labels: list[str], pad_token_id: int | None) -> None:
    """config.json of the classifier beside its adapter: the base model's config with the head's labels
    (``AutoConfig.from_pretrained(adapter folder)`` then reads them)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    config = AutoConfig.from_pretrained(str(base_path), **label_config(labels, pad_token_id))
    name = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(config.model_type)
    config.architectures = [name] if name else None
    config.use_cache = True
    config.save_pretrained(str(folder))


def head_layer(model):
    """The head module (``score``) of a classifier, through DDP and peft wrappers; None for another model."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    for name in HEAD_MODULES:
        layer = getattr(inner, name, None)
        if layer is not None:
            return layer
    return None


@contextlib.contextmanager
def head_outputs(model):
    """The head's logits at every position while the model runs inside the block (``outputs[-1]``: one
    tensor [rows, positions, labels] per forward). The library's own pooling picks each row's last
    non-pad token, which packed rows (several examples in one) do not have; reading the head's output at
    known positions works for packed and padded rows alike, and the forward still goes through the
    (possibly DDP-wrapped) model."""
    layer = head_layer(model)
    if layer is None:
        raise ValueError("The model has no classification head (score layer).")
    outputs: list[Any] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()
