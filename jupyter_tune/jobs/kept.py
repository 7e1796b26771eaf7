"""Which weights a job's model is, said once for every place that shows the job (header, job list, Details,
charts): a succeeded job with a validation set keeps its best checkpoint (training/worker.py
``_finish_selection``), a user's choice overrides it (jobs/choice.py), a cancelled or failed one keeps its
latest weights. Without this a job that stopped early at step 104 but kept step 65 reads "step 104 / 135"."""

from __future__ import annotations

from typing import Any

from .states import JobState

# select_best's Trainer names, as people say them
METRIC_NAMES = {"eval_macro_f1": "macro F1", "eval_accuracy": "accuracy", "eval_total_loss": "validation loss",
                "eval_loss": "validation loss", "eval_reward": "reward", "eval_rouge_l": "ROUGE-L",
                "eval_rougeL": "ROUGE-L", "eval_rewards_accuracy": "reward accuracy"}


def metric_name(key: str | None) -> str:
    return METRIC_NAMES.get(key or "", (key or "").removeprefix("eval_").replace("_", " "))


def kept_model(record: dict[str, Any]) -> dict[str, Any] | None:
    """{"step": the kept weights' step or None, "stopped_at": the early stop's step or None, "text": one line}
    for a job that ended; None while it runs or when there is nothing to say (no selection, no stop)."""
    state = record.get("state")
    stop = record.get("stopped_early") or {}
    best = record.get("best") or {}
    chosen = record.get("chosen_checkpoint") or {}
    step = (record.get("progress") or {}).get("step")
    stopped_at = stop.get("step")
    prefix = f"Stopped early at step {stopped_at}; " if stopped_at else ""
    if chosen.get("step") is not None:
        return {"step": chosen["step"], "stopped_at": stopped_at,
                "text": f"{prefix}model = checkpoint {chosen['step']} (your choice)"}
    if state == JobState.SUCCEEDED and best.get("step") is not None:
        value = best.get("value")
        score = f" ({metric_name(best.get('metric'))} {value:.3g})" if isinstance(value, (int, float)) else ""
        return {"step": best["step"], "stopped_at": stopped_at,
                "text": f"{prefix}model = checkpoint {best['step']}{score}, the best evaluation"}
    if state in (JobState.CANCELLED, JobState.FAILED) and step:
        kept = "its weights at the stop" if state == JobState.CANCELLED else "its last checkpoint"
        hint = (f"; its best evaluation was checkpoint {best['step']}: choose it under Details"
                if best.get("step") not in (None, step) else "")
        return {"step": None, "stopped_at": None,
                "text": f"{'Cancelled' if state == JobState.CANCELLED else 'Failed'} at step {step}; model = {kept}{hint}"}
    if stopped_at:
        return {"step": stopped_at, "stopped_at": stopped_at, "text": f"{prefix}model = its final weights"}
    return None
