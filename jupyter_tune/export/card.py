"""The model card (README.md) of an export: base model, data, parameters, metrics, best checkpoint and
how to load it, from the job's record."""

from __future__ import annotations

import json
from typing import Any

_LOAD = {
    "adapter": ("```python\nfrom peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n"
                "model = AutoPeftModelForCausalLM.from_pretrained({dest!r})\n"
                "tokenizer = AutoTokenizer.from_pretrained({dest!r})\n```\n"
                "or, in a notebook, `jt.load_model({dest!r})`."),
    "merged": ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
               "model = AutoModelForCausalLM.from_pretrained({dest!r})\n"
               "tokenizer = AutoTokenizer.from_pretrained({dest!r})\n```"),
    "gguf": ("llama.cpp: `llama-cli -m {dest}/{gguf} -cnv`; Ollama: `cd {dest} && ollama create my-model -f Modelfile`;\n"
             "transformers: `AutoModelForCausalLM.from_pretrained({dest!r}, gguf_file={gguf!r})`."),
}


_LOAD_HEAD_ADAPTER = (
    "```python\nfrom peft import PeftModel\nfrom transformers import AutoConfig, AutoModelForSequenceClassification, "
    "AutoTokenizer\n\nconfig = AutoConfig.from_pretrained({dest!r})  # the head's labels (id2label)\n"
    "base = AutoModelForSequenceClassification.from_pretrained({base!r}, config=config)\n"
    "model = PeftModel.from_pretrained(base, {dest!r})\ntokenizer = AutoTokenizer.from_pretrained({dest!r})\n```\n"
    "or, in a notebook, `jt.load_model({dest!r})`.")


def _latest(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The last value of every metric the job logged."""
    out: dict[str, Any] = {}
    for row in metrics:
        out.update({k: v for k, v in row.items() if v is not None})
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def model_card(record: dict[str, Any], metrics: list[dict[str, Any]], stats: dict[str, Any] | None,
               fmt: str, dest: str, gguf: str | None = None) -> str:
    params = record.get("params") or {}
    tuning = record.get("tuning") or {}
    base = params.get("base_model") or tuning.get("base_model") or "unknown"
    name = record.get("display_name") or record.get("id")
    lib = "peft" if fmt == "adapter" else ("gguf" if fmt == "gguf" else "transformers")
    classifier = params.get("task") == "classification"
    load = _LOAD[fmt].format(dest=dest, gguf=gguf)
    if classifier and fmt == "adapter":  # the base needs the head's labels (config.json) before the adapter
        load = _LOAD_HEAD_ADAPTER.format(dest=dest, base=base)
    elif classifier:  # a label head: the sequence-classification class, its labels in config.json's id2label
        load = load.replace("ForCausalLM", "ForSequenceClassification")
    lines = ["---", f"base_model: {json.dumps(base)}", f"library_name: {lib}",
             f"pipeline_tag: {'text-classification' if classifier else 'text-generation'}",
             "tags:", "- jupyter_tune", "- lora", f"- {fmt}", "---", "", f"# {name}", "",
             f"Tuned from **{base}** with {tuning.get('method', 'LoRA')} by jupyter_tune (job `{record.get('id')}`); "
             f"exported as **{fmt}**.", "", "## Load it", "", load, ""]
    if classifier and tuning.get("labels"):
        lines += ["## Labels", "", "The head's classes (config.json's id2label): "
                  + ", ".join(f"{i}: {lab}" for i, lab in enumerate(tuning["labels"])), ""]
    if params.get("prompt_template"):
        lines += ["## Prompt template", "", "Prompts were written with this template, then the chat template:",
                  "", "```", params["prompt_template"], "```", ""]
    lines += ["## Data", ""]
    lines.append(f"- Training: `{params.get('train_dataset')}`, {record.get('num_train_examples', '?')} examples")
    if params.get("validation_dataset"):
        lines.append(f"- Validation: `{params.get('validation_dataset')}`, "
                     f"{record.get('num_validation_examples', '?')} examples")
    train = (stats or {}).get("train") or {}
    if train.get("total_billable_token_count") is not None:
        lines.append(f"- Tokens trained on (all epochs): {train['total_billable_token_count']:,}")
    lines += ["", "## Parameters", "", "| parameter | value |", "| --- | --- |"]
    shown = {**{k: v for k, v in params.items() if v is not None},
             **{k: tuning[k] for k in ("adapter_size", "lora_alpha", "target_modules", "total_steps", "dtype",
                                        "device") if tuning.get(k) is not None}}
    for k, v in shown.items():
        lines.append(f"| {k} | {_fmt(v)} |".replace("\n", " "))
    latest = _latest(metrics)
    names = [k for k in latest if k.startswith(("train_", "eval_")) and isinstance(latest[k], (int, float))]
    if names:
        lines += ["", f"## Metrics (step {latest.get('step', '?')})", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(latest[k])} |" for k in names]
    best, chosen = record.get("best"), record.get("chosen_checkpoint")
    if chosen:
        lines += ["", "## Chosen checkpoint", "",
                  f"The adapter is the checkpoint at step {chosen.get('step')}, chosen with use_checkpoint "
                  f"on {chosen.get('time')}" + (f" (the best was step {best.get('step')})." if best else ".")]
    elif best:
        lines += ["", "## Best checkpoint", "",
                  f"The adapter is the best checkpoint: step {best.get('step')}, "
                  f"{best.get('metric')} = {_fmt(best.get('value'))}."]
    return "\n".join(lines) + "\n"
