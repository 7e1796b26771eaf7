"""Models and jobs for generation/evaluation tests: a tiny model that says varied things, tuned jobs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def build_chatty_model(tiny_dir: Path, out: Path) -> Path:
    """The tiny model with large random weights: its greedy answers vary (the stock one only says '\\n')."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    model.save_pretrained(out)
    for f in tiny_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, out / f.name)
    return out


def save_lora_adapter(base_dir: Path, out: Path, seed: int = 1) -> Path:
    """A LoRA adapter on the base with non-zero B (so it changes the outputs), saved in PEFT format."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft.save_pretrained(out)
    return out


def make_job(store_root: Path, job_id: str, base_dir: Path, state: str = "JOB_STATE_SUCCEEDED",
             prompt_template: str | None = None, adapter: bool = True, checkpoint: bool = False,
             error: str | None = None) -> Path:
    """A job folder in the store as the trainer leaves it: job.json, adapter/ and/or a checkpoint."""
    from jupyter_tune.jobs.store import JobStore

    record = {"id": job_id, "state": state, "create_unix": time.time(),
              "params": {"base_model": str(base_dir), "prompt_template": prompt_template}}
    if error:
        record["error"] = {"message": error}
    d = JobStore(store_root).create(job_id, record)
    if adapter:
        save_lora_adapter(base_dir, d / "adapter")
    if checkpoint:
        ck = d / "checkpoints" / "checkpoint-4"
        save_lora_adapter(base_dir, ck, seed=2)
        (ck / "trainer_state.json").write_text("{}")
    return d
