"""Experiment trackers (``report_to=["tensorboard", "mlflow", "trackio"]``) through the Trainer's own
integrations (TensorBoardCallback, MLflowCallback, TrackioCallback).

metrics.jsonl stays the source of truth: the trackers get the rows MetricsCallback writes there (Vertex
names), not the Trainer's raw logs, so every place shows the same numbers. TensorBoard and trackio file
``train_*`` keys under ``train/`` and ``eval_*`` under ``eval/`` (the integrations' own rewrite_logs, so
``train/total_loss`` sits beside ``eval/total_loss``); MLflow gets the metrics.jsonl names as they are.
Each also receives the tuning parameters (``tuning/<name>``) and, at the end, the final adapter's location.

Where they write, unless the libraries' own environment variables say otherwise: TensorBoard
``<job>/tensorboard`` (TENSORBOARD_LOGGING_DIR), MLflow the SQLite store ``<job>/mlflow.db``
(MLFLOW_TRACKING_URI; experiment MLFLOW_EXPERIMENT_NAME, default "jupyter_tune"), trackio ``<job>/trackio``
(TRACKIO_DIR; project "jupyter_tune"). A tracker that fails to start or to log is a warning in the job log
and is dropped; the job goes on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .log import log

PROJECT = "jupyter_tune"
# The metrics.jsonl bookkeeping fields that are not metrics.
_NOT_METRICS = ("step", "epoch", "time")


def _start(name: str, job_dir: Path):
    """The integration's callback for `name`, its output under the job folder by default."""
    if name == "tensorboard":
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(job_dir / "tensorboard"))
        from transformers.integrations import TensorBoardCallback

        return TensorBoardCallback()
    if name == "mlflow":
        # MLflow 3 keeps its file store in maintenance mode (it refuses new runs): a SQLite store instead.
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{(job_dir / 'mlflow.db').resolve()}")
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", PROJECT)
        from transformers.integrations import MLflowCallback

        return MLflowCallback()
    if name == "trackio":
        os.environ.setdefault("TRACKIO_DIR", str(job_dir / "trackio"))  # read when trackio is imported
        from transformers.integrations import TrackioCallback

        return TrackioCallback()
    raise ValueError(f"unknown tracker {name!r}")


def _logs_for(name: str, row: dict[str, Any]) -> dict[str, float]:
    metrics = {k: v for k, v in row.items() if k not in _NOT_METRICS and isinstance(v, (int, float))
               and not isinstance(v, bool)}
    if name == "mlflow":
        return metrics
    # rewrite_logs puts every key not starting with eval_ under train/: drop our own train_ prefix first.
    return {k.removeprefix("train_"): v for k, v in metrics.items()}


class TrackerRelay(TrainerCallback):
    """Drives the trackers' callbacks: their setup at train begin, our metric rows as their logs, and their
    end only once the final adapter is saved (``close``), so its location reaches them."""

    def __init__(self, names: list[str], job_dir: Path, job_id: str, params: dict[str, Any]):
        self.job_dir, self.job_id, self.params = job_dir, job_id, params
        self.trackers: dict[str, TrainerCallback] = {}
        self._last: tuple | None = None  # (args, state, control) for close()
        for name in dict.fromkeys(names):
            try:
                self.trackers[name] = _start(name, job_dir)
            except Exception as e:  # noqa: BLE001 - a tracker never fails the job
                self._warn(name, "could not start", e)

    def _warn(self, name: str, what: str, e: BaseException) -> None:
        log(f"Warning: tracker {name} {what} ({type(e).__name__}: {e}); the job goes on without it, "
            "metrics.jsonl has every metric")
        self.trackers.pop(name, None)

    def _each(self, what: str, fn) -> None:
        for name, cb in list(self.trackers.items()):
            try:
                fn(name, cb)
            except Exception as e:  # noqa: BLE001
                self._warn(name, what, e)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._last = (args, state, control)
        if not args.run_name or args.run_name == args.output_dir:
            args.run_name = self.job_id
        if getattr(args, "project", None) in (None, "", "huggingface"):
            args.project = PROJECT

        def begin(name, cb):
            cb.on_train_begin(args, state, control, model=model, **kwargs)
            self._log_params(name, cb)

        self._each("could not start", begin)

    def _log_params(self, name: str, cb) -> None:
        flat = {f"tuning/{k}": (json.dumps(v) if isinstance(v, (list, dict)) else v)
                for k, v in self.params.items()}
        flat["tuning/job_id"] = self.job_id
        if name == "tensorboard":
            table = "\n".join(f"| {k} | {v} |" for k, v in flat.items())
            cb.tb_writer.add_text("tuning/params", "| parameter | value |\n| --- | --- |\n" + table)
            cb.tb_writer.flush()
        elif name == "mlflow":
            cb._ml_flow.log_params({k: ("" if v is None else str(v))[:250] for k, v in flat.items()})
            cb._ml_flow.set_tag("jupyter_tune.job_id", self.job_id)
        elif name == "trackio":
            cb._trackio.config.update(flat, allow_val_change=True)

    def relay(self, row: dict[str, Any], args, state, control) -> None:
        """One metrics.jsonl row, as each tracker's logs at the row's step."""
        self._last = (args, state, control)
        self._each("could not log", lambda name, cb: cb.on_log(args, state, control, logs=_logs_for(name, row)))

    def close(self, adapter: Path | None, final_state: str) -> None:
        """Report the final adapter's location and the job's state, then end each tracker's run."""
        if self._last is None:
            return
        args, state, control = self._last
        # A full fine-tuning job saves model/ where a LoRA job saves adapter/.
        found = [p for p in (adapter, adapter and adapter.with_name("model")) if p is not None and p.exists()]
        where = str(found[0]) if found else ""

        def finish(name, cb):
            if name == "tensorboard" and cb.tb_writer is not None:
                cb.tb_writer.add_text("tuning/adapter", where or "(none)", state.global_step)
                cb.tb_writer.add_text("tuning/state", final_state, state.global_step)
            elif name == "mlflow" and cb._initialized:
                cb._ml_flow.set_tags({"jupyter_tune.adapter": where, "jupyter_tune.state": final_state})
            elif name == "trackio" and cb._initialized:
                # trackio stores its config with the run's first log: the end goes in as one more log
                cb._trackio.log({"tuning/adapter": where, "tuning/state": final_state,
                                 "train/global_step": state.global_step})
            cb.on_train_end(args, state, control)

        self._each("could not finish", finish)
        self.trackers.clear()
        self._last = None

    # The Trainer's own end of training comes before the adapter is saved: close() ends the runs instead.
    def on_train_end(self, args, state, control, **kwargs):
        return control


def tracker_relay(metrics_callback, names: list[str] | None, job_dir: Path, job_id: str,
                  params: dict[str, Any]) -> TrackerRelay | None:
    """The trackers of ``report_to`` as one callback, fed each row ``metrics_callback`` writes to
    metrics.jsonl (None without trackers)."""
    if not names:
        return None
    relay = TrackerRelay(list(names), job_dir, job_id, params)
    metrics_callback.listeners.append(relay.relay)
    return relay
