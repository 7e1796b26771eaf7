"""``merged``: the adapter folded into the base weights (peft's ``merge_and_unload``), saved as a plain
Hugging Face folder that ``AutoModelForCausalLM.from_pretrained`` loads alone (a classification-head job's:
``AutoModelForSequenceClassification``, its labels in config.json's id2label)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..models.arch import pad_id
from ..models.context import context_length
from .turns import end_of_turn_ids, read_turn_format


def base_dtype_name(base_path: Path) -> str:
    """The dtype the base checkpoint is stored in (what a merged copy keeps by default)."""
    try:
        cfg = json.loads((Path(base_path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "float32"
    name = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return name if name in ("float32", "bfloat16", "float16") else "float32"


def load_tuned(job, dtype: str):
    """The job's base model with its adapter (a PeftModel) and the tokenizer saved with the adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.loading import _describe

    what = _describe(job)
    adapter = what["adapter"]
    tok_dir = adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else what["base_path"]
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    head = what.get("head")
    if head is not None:  # a classifier: the base with a head for its labels (or a full job's saved classifier)
        from ..models.head import head_of, load_classifier

        saved = head_of(what["base_path"]) is not None
        pad = pad_id(tokenizer)
        base = load_classifier(what["base_path"], None if saved else head.labels, pad, dtype=getattr(torch, dtype))
    else:
        base = AutoModelForCausalLM.from_pretrained(what["base_path"], dtype=getattr(torch, dtype))
    for earlier in what.get("merge") or []:  # tuned from another job: that job's adapters first
        base = PeftModel.from_pretrained(base, str(earlier)).merge_and_unload()
    if adapter is None:  # full fine-tuning: the job's model folder is the whole model
        return base, tokenizer, what
    model = PeftModel.from_pretrained(base, str(adapter))
    return model, tokenizer, what


def write_merged(job, out: Path, dtype: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Write the merged model into ``out`` (an empty folder); returns what was written."""
    from tqdm.auto import tqdm

    from ..models.loading import _describe

    base_path = Path(_describe(job)["base_path"])
    dtype = dtype or base_dtype_name(base_path)
    with tqdm(total=3, desc="Merging the adapter", unit="step", disable=not progress, leave=False) as bar:
        model, tokenizer, what = load_tuned(job, dtype)
        bar.update(1)
        if hasattr(model, "merge_and_unload"):  # a full fine-tuning job's model has nothing to merge
            model = model.merge_and_unload()
        bar.update(1)
        if what.get("head") is not None:  # a classifier: config.json holds its labels; nothing generates
            model.config.use_cache = True
            model.config._name_or_path = str(what["base_model"])
            model.save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)
            bar.update(1)
            return {"dtype": dtype, "tokenizer": tokenizer}
        fmt = read_turn_format(tokenizer)
        eos = end_of_turn_ids(tokenizer, fmt)
        gen = model.generation_config
        for old in (gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]):
            if old is not None and int(old) not in eos:
                eos.append(int(old))
        # The token that closed every trained answer ends generation first: a plain from_pretrained +
        # generate stops where the tuned model stopped.
        gen.eos_token_id = eos if len(eos) > 1 else eos[0]
        if gen.pad_token_id is None:
            gen.pad_token_id = pad_id(tokenizer, eos[0])
        model.config.use_cache = True
        model.config._name_or_path = str(what["base_model"])
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        bar.update(1)
    return {"dtype": dtype, "eos_token_id": eos, "turn_format": fmt, "tokenizer": tokenizer,
            "context_length": context_length(model, tokenizer)}
