"""``adapter``: the PEFT folder with its tokenizer and chat template, ready for ``PeftModel.from_pretrained``
or ``AutoPeftModelForCausalLM`` on the named base model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# Files of an adapter folder that are the job's bookkeeping, not the adapter (peft writes its own README).
# A chosen checkpoint (job.use_checkpoint) adds the Trainer's state and the completion marker.
_SKIP = {"README.md", "training_args.bin", "trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth",
         "scaler.pt", "jupyter_tune_complete.json"}


def write_adapter(job, out: Path) -> dict[str, Any]:
    """Copy the job's adapter into ``out`` with the tokenizer; returns what was written."""
    from transformers import AutoTokenizer

    from ..models.loading import _describe

    what = _describe(job)
    src: Path = what["adapter"]
    if src is None:
        raise ValueError("A full fine-tuning job has no adapter: export it with format='merged' (its model "
                         "folder as it is) or 'gguf'.")
    for f in src.iterdir():
        if f.is_file() and f.name not in _SKIP and not f.name.startswith("rng_state_"):
            shutil.copy2(f, out / f.name)
    # Name the base as the user did (a hub id), not the local folder it was resolved to here.
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = str(what["base_model"])
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    if not (out / "tokenizer_config.json").is_file():
        AutoTokenizer.from_pretrained(what["base_path"]).save_pretrained(out)
    head = what.get("head")
    if head is not None and not (out / "config.json").is_file():  # a checkpoint: the labels from the job
        from ..models.arch import pad_id
        from ..models.head import write_head_config

        tok = AutoTokenizer.from_pretrained(out)
        write_head_config(out, what["base_path"], head.labels, pad_id(tok))
    stats = job.dataset_stats
    if stats is not None:
        (out / "dataset_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return {"tokenizer": AutoTokenizer.from_pretrained(out)}
