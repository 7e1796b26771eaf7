"""The process of one agent task (jobs/tasks.py): ``python -m jupyter_tune.api.task_worker <task folder>``.

The server's tools (server/mcp_tools.py) check a request as the panel does, create the task and start this
process, which runs what the panel's cell would run in a kernel, with torch where it needs it (the server
never imports torch):

- ``tune``: ``jt.tune(**params)`` (after ``jt.split`` for a ``holdout`` share, as the Tune cell does); the job
  then runs in its own process, so this one ends within seconds with the job's id;
- ``evaluate``: ``jt.evaluate(jt.load_model(job or base model), data, ...)``; the full report (predictions
  included) is written to ``report.json`` in the task's folder, its metrics go into the task's result;
- ``export``: ``jt.get_job(job_id).export(dest, format=..., overwrite=False)`` with its parity check.

It runs in the task's ``cwd`` (the Jupyter server's root folder), so relative paths resolve as the file
browser shows them. Its last act is writing the task's final state: SUCCEEDED with ``result``, or FAILED with
``error`` (``problems`` listing each refused parameter by name, for a ParameterError).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from ..jobs.records import dumps, json_safe
from ..jobs.tasks import TaskStore
from ..params import ParameterError, TuningParams


def _tune(request: dict[str, Any], folder: Path) -> dict[str, Any]:
    from ..data.split import split
    from .launch import tune

    params = dict(request["params"])
    holdout = params.pop("holdout", None)
    if holdout and not params.get("validation_dataset"):  # the Tune cell's hold-out (cells/templates/tune_run)
        parts = split(params.get("train_dataset"), test_size=holdout, prompt_template=params.get("prompt_template"),
                      seed=0)
        print(parts, flush=True)
        params["train_dataset"], params["validation_dataset"] = parts.train, parts.validation
    job = tune(**params)
    record = job.record
    return {"job_id": job.id, "display_name": record.get("display_name"), "state": record.get("state"),
            "num_train_examples": record.get("num_train_examples"),
            "num_validation_examples": record.get("num_validation_examples"),
            "warnings": list(record.get("warnings") or [])}


def _frame(df: Any) -> Any:
    """A metrics DataFrame as {row: {column: value}}."""
    if df is None:
        return None
    return {str(index): {str(k): v for k, v in row.items()} for index, row in df.to_dict(orient="index").items()}


def _evaluate(request: dict[str, Any], folder: Path) -> dict[str, Any]:
    from ..evaluation import evaluate
    from ..models.loading import load_model

    job_id = request.get("job_id")
    model = load_model(job_id or request.get("base_model") or TuningParams().base_model)
    report = evaluate(model, request["data"], task_type=request.get("task_type") or "classification",
                      prompt_template=request.get("prompt_template"), progress=False)
    path = folder / "report.json"
    path.write_text(dumps(report.to_json()), encoding="utf-8")
    out = {"model": job_id or request.get("base_model"), "summary": report.summary(),
           "task_type": report.task_type, "mode": report.mode, "metrics": _frame(report.metrics),
           "evaluation_status": dict(report.evaluation_status), "labels": list(report.labels),
           "report_path": str(path)}
    if report.task_type == "classification":
        out.update(macro_f1=report.macro_f1, accuracy=report.accuracy,
                   confusion_matrix=_frame(report.confusion_matrix))
    return out


def _export(request: dict[str, Any], folder: Path) -> dict[str, Any]:
    from .job import get_job

    job = get_job(request["job_id"])
    report = job.export(request["dest"], format=request.get("format") or "merged", overwrite=False, progress=False)
    return {"job_id": job.id, "format": report.format, "dest": report.dest, "artifact": report.artifact,
            "parity_ok": report.ok, "parity": report.summary(), "files": list(report.files), "dtype": report.dtype,
            "seconds": report.seconds}


RUNNERS = {"tune": _tune, "evaluate": _evaluate, "export": _export}


def run(folder: Path) -> int:
    store, task_id = TaskStore(folder.parent.parent), folder.name
    record = store.read_raw(task_id)
    try:
        result = RUNNERS[record["kind"]](record["request"], folder)
    except ParameterError as e:
        store.finish(task_id, error={"message": str(e), "problems": list(e.problems), "reason": type(e).__name__})
        return 1
    except Exception as e:  # noqa: BLE001 - every failure is the task's error, said to the agent
        traceback.print_exc()
        store.finish(task_id, error={"message": str(e) or type(e).__name__, "reason": type(e).__name__})
        return 1
    store.finish(task_id, result=json_safe(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m jupyter_tune.api.task_worker <task folder>", file=sys.stderr)
        return 2
    return run(Path(args[0]).resolve())


if __name__ == "__main__":
    sys.exit(main())
