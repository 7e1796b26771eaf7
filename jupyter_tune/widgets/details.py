"""The Details tab: how the job tunes (method, model, adapter, schedule, parameters, hardware), its times,
id and store paths."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..jobs.kept import kept_model
from ..params import ParameterError, TuningParams
from .format import Markup, count, esc, local_time, table_html


def _requested(params: dict[str, Any]) -> TuningParams | None:
    """The job's requested parameters as the dataclass, or None when they no longer validate (a record
    from an older version)."""
    try:
        return TuningParams.from_dict(params)
    except (ParameterError, TypeError):
        return None


def _percent(t: dict[str, Any]) -> str:
    pct = t.get("trainable_percent")
    if pct is None and t.get("trainable_params") and t.get("total_params"):
        pct = 100.0 * t["trainable_params"] / t["total_params"]
    return "—" if pct is None else f"{pct:.3f} %"


def _python_graders(specs: list) -> list[dict]:
    """The python grader specs among a job's graders, those inside a multi grader included."""
    out = []
    for spec in specs:
        if not isinstance(spec, dict):
            continue
        kind = spec.get("kind") or spec.get("type")
        if kind == "python":
            out.append(spec)
        elif kind == "multi":
            out += _python_graders(spec.get("graders") or [])
    return out


def details_rows(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) pairs; before training starts the values come from the requested parameters."""
    t = record.get("tuning") or {}
    p = record.get("params") or {}
    paths = record.get("paths") or {}

    def pick(tk: str, pk: str | None = None) -> Any:
        v = t.get(tk)
        return v if v is not None else p.get(pk or tk)

    requested = _requested(p)
    method = t.get("method") or {"full": "Full fine-tuning", "dpo": "DPO (LoRA, base as reference)",
                                 "grpo": "GRPO (LoRA, graders as rewards)", "qlora": "QLoRA"}.get(requested.effective_method if requested else None, "LoRA")
    full = p.get("method") == "full"
    # Before the job process records them (tuning.*), the values the parameters will give: the
    # dataclass's effective_* properties, the same ones the trainer uses.
    alpha = pick("lora_alpha")
    if alpha is None and requested:
        alpha = requested.effective_lora_alpha
    targets = pick("target_modules")
    lr = t.get("learning_rate")
    if lr is None and requested:
        lr = requested.effective_learning_rate
    base = pick("base_model")
    resolved = t.get("resolved_model_path")
    rows: list[tuple[str, Any]] = [
        ("Tuning method", method),
        ("Base model", base if not resolved or resolved == base else f"{base} ({resolved})"),
        ("Adapter size (rank)", "— (every weight trains)" if full else pick("adapter_size")),
        ("LoRA alpha", "—" if full else alpha),
        ("Target modules", "all weights" if full else ", ".join(targets) if targets
         else "all attention and MLP projections"),
        ("Learning rate", "—" if lr is None else f"{lr:.3g}" + (f" (multiplier {p['learning_rate_multiplier']:g})"
                                         if p.get("learning_rate_multiplier") not in (None, 1, 1.0) else "")),
        ("Epochs", pick("epochs") or "chosen from the dataset size"),
        ("Steps", count(pick("total_steps", "max_steps"))),
        ("Batch size", pick("batch_size")),
        ("Gradient accumulation steps", pick("gradient_accumulation_steps")),
        ("Max sequence length", pick("max_seq_length")),
        ("Trainable parameters", f"{count(t.get('trainable_params'))} ({_percent(t)})"
         if t.get("trainable_params") is not None else "—"),
        ("Total parameters", count(t.get("total_params"))),
        ("Quantization", pick("quantization") or "none"),
        ("Device", t.get("device") or "—"),
        ("Dtype", t.get("dtype") or p.get("precision") or "—"),
    ]
    if p.get("task") == "classification":
        labels = t.get("labels")
        rows.insert(1, ("Task", "classification: a label head" + (f" of {len(labels)} labels ({', '.join(labels[:8])}"
                                                                   f"{', ...' if len(labels) > 8 else ''})" if labels
                                                                   else "")
                        + ("; balanced class weights" if p.get("class_weights") else "")))
    if t.get("dpo_beta") is not None:
        rows.append(("DPO beta", f"{t['dpo_beta']:g}; reference: {t.get('reference') or 'the base model'}"))
    if t.get("num_generations") is not None:  # method="grpo"
        graders = ", ".join(f"{g['name']} ({g['kind']})" for g in t.get("graders") or [])
        rows.append(("GRPO", f"{t['num_generations']} answers per prompt of at most "
                             f"{t.get('max_completion_length')} tokens; KL beta {t.get('kl_beta') or 0:g}; "
                             f"graders: {graders or 'label_match'}"))
    for spec in _python_graders(p.get("graders") or []):  # the code that scores the answers, as the user wrote it
        rows.append((f"Python grader {spec.get('name') or 'python'}",
                     Markup(f'<pre style="margin:0;white-space:pre-wrap">{esc(spec.get("source") or "")}</pre>')))
    if record.get("memory_estimate"):
        m = record["memory_estimate"]
        rows.append(("Memory estimate", f"{m['total_bytes'] / 1e9:.2f} GB (weights {m['weights_bytes'] / 1e9:.2f}, "
                                        f"gradients {m['gradients_bytes'] / 1e9:.2f}, optimizer state "
                                        f"{m['optimizer_bytes'] / 1e9:.2f} GB; activations on top)"))
    if t.get("num_threads"):
        rows.append(("CPU threads", t["num_threads"]))
    fast = t.get("fast_path") or {}
    if fast:
        rows.append(("Fast path", "; ".join(f"{n} {'on' if v.get('on') else 'off'}"
                                          + ("" if v.get("on") else f" ({v.get('why')})") for n, v in fast.items())))
    tm = t.get("task_metric")
    if tm and tm.get("metric") == "eval_rouge_l":  # a generation job (training/selection.py)
        rows.append(("Task metric", f"eval_rouge_l: ROUGE-L F1 of greedy answers (at most {tm.get('max_new_tokens')} "
                                    f"tokens) to {tm['examples']} validation rows"))
    elif tm:
        rows.append(("Task metric", f"eval_macro_f1 / eval_accuracy over {tm['examples']} validation "
                                    f"rows, {tm['labels']} labels"))
    if t.get("select_best"):
        best = record.get("best")
        rows.append(("Best checkpoint", f"step {best['step']}: {best['metric']} {best['value']:.4g}" if best
                     else f"chosen by {t['select_best']}"))
    if record.get("stopped_early"):
        rows.append(("Stopped early", record["stopped_early"].get("reason")))
    kept = kept_model(record)
    if kept:
        rows.insert(0, ("Job's model", kept["text"]))  # first: which weights every number below is about
    # what the job said about itself: values that could not apply, graders that errored, data findings
    rows += [("Warning", text) for text in record.get("warnings") or []]
    if p.get("prompt_template"):
        rows.append(("Prompt template", p["prompt_template"]))
    rows += [
        ("Train dataset", p.get("train_dataset") or "—"),
        ("Validation dataset", p.get("validation_dataset") or "none"),
        ("Created", local_time(record.get("create_time"))),
        ("Started", local_time(record.get("start_time"))),
        ("Ended", local_time(record.get("end_time"))),
        ("Job id", record.get("id")),
        ("Job folder", paths.get("job_dir") or "—"),
        ("Model" if full else "Adapter", (paths.get("model") if full else paths.get("adapter")) or "—"),
        ("Checkpoints", paths.get("checkpoints") or "—"),
        ("Log", paths.get("log") or "—"),
    ]
    rows += [(f"Export ({e.get('format')})", export_line(e)) for e in record.get("exports") or []]
    return [(k, "—" if v is None else v) for k, v in rows]


def export_line(entry: dict[str, Any]) -> str:
    """One past export (job.json's ``exports``): where, when, and its parity check's result."""
    p = entry.get("parity") or {}
    if p.get("error"):
        check = f"parity check failed to run: {p['error']}"
    elif p.get("num_prompts"):
        lp = p.get("max_first_token_logprob_diff")
        check = (f"{p.get('num_identical')}/{p.get('num_prompts')} identical answers"
                 + (f", first-token log-prob diff ≤ {lp:.2g}" if lp is not None else ""))
    else:
        check = "no parity check"
    flags = "; ".join(p.get("mismatches") or [])
    return f"{entry.get('dest')} ({local_time(entry.get('time'))}; {check}{'; ' + flags if flags else ''})"


class DetailsTab(w.VBox):
    """The details table, below the checkpoint table and chooser (widgets/checkpoints.py) when given."""

    def __init__(self, checkpoints: w.Widget | None = None):
        self.content = w.HTML()
        super().__init__([c for c in (checkpoints, self.content) if c is not None])

    def update(self, record: dict[str, Any]) -> None:
        value = table_html(details_rows(record))
        if value != self.content.value:
            self.content.value = value
