"""Tools for AI agents: the project's operations as MCP tools, served by ``jupyter-server-mcp``.

jupyter-server-mcp (``pip install 'jupyter_tune[mcp]'``) runs an MCP server inside the Jupyter server's process
and registers the functions named by the ``jupyter_server_mcp.tools`` entry points; ours (pyproject.toml) is
`TOOLS`. Without jupyter-server-mcp nothing here is imported and the extension works as before.

- **Authentication.** The MCP server listens on a port of its own, outside the Jupyter server's token check.
  Every tool here therefore checks the request itself, as the REST routes' ``@authenticated`` does: the
  Jupyter server's token, sent as ``Authorization: token <token>`` (or ``Bearer``) or ``?token=`` in the URL.
  A server with no token and no password (authentication off) serves the tools as it serves the routes.
- **Validation.** Each tool checks its arguments with the panel's checks: ``cells.render_cells`` for tune,
  evaluate, export and compare (TuningParams.from_json, ActionParams, the actions' rules), the gate's
  declarations for check_dataset. A refusal is a tool error whose text lists each problem under the name of
  its parameter (``ParameterError``).
- **Never blocking.** Store work runs in a worker thread, never on the server's event loop. What needs a
  model, and so torch (which the server never imports), runs as an agent task in a process of its own
  (jobs/tasks.py, api/task_worker.py): ``tuning_start_job`` waits only for jt.tune's checks (seconds; the job
  then runs in its own process) and returns the job id; ``tuning_evaluate`` and ``tuning_export`` return a
  task id at once, which the agent polls with ``tuning_task_state`` (or ``tuning_job_state``, which lists a
  job's tasks).

Relative paths (datasets, a base model folder, an export's destination) are read from the Jupyter server's
root folder, as the file browser shows them. Torch-free: the server imports it.
"""

import asyncio
import dataclasses
import functools
import hmac
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..cells import render_cells
from ..jobs.handle import cancel_job
from ..jobs.records import RecordNotFoundError, json_safe
from ..jobs.states import FINAL_STATES, JobState
from ..jobs.store import JobStore, validate_job_id
from ..jobs.tasks import TaskStore, spawn, task_summary
from ..params import ParameterError, TuningParams, field_default, main_fields

log = logging.getLogger(__name__)

# How long tuning_start_job waits for jt.tune's checks (reading and checking the data, finding the model)
# before answering with the task to poll instead: under the 60 s after which MCP clients commonly give up.
TUNE_WAIT_S = 50.0
_POLL_S = 0.25
_AUTH_HEADER = re.compile(r"(token|bearer)\s+(.+)", re.IGNORECASE)  # as jupyter_server's IdentityProvider


class ToolRefused(Exception):
    """A tool call refused (bad arguments, an unknown job, no credentials); its text is what the agent reads.
    Raised to the MCP server as fastmcp's ToolError, so the agent gets it as the tool's error result."""


def _tool_error(message: str) -> Exception:
    try:
        from fastmcp.exceptions import ToolError
    except ImportError:  # called without jupyter-server-mcp (tests of this module)
        return ToolRefused(message)
    return ToolError(message)


# -- the Jupyter server this process runs --
def _server_app() -> Any:
    from jupyter_server.serverapp import ServerApp

    return ServerApp.instance() if ServerApp.initialized() else None


def _settings() -> dict[str, Any]:
    app = _server_app()
    web_app = getattr(app, "web_app", None)
    return web_app.settings if web_app is not None else {}


def _root_dir() -> Path:
    app = _server_app()
    root = getattr(app, "root_dir", None) if app is not None else None
    return Path(root).expanduser().resolve() if root else Path.cwd()


def _store() -> JobStore:
    """The server's one JobStore (routes.setup_route_handlers), its reconciler started as a route starts it."""
    from .routes import RECONCILER_SETTING, STORE_SETTING

    settings = _settings()
    reconciler = settings.get(RECONCILER_SETTING)
    if reconciler is not None:
        reconciler.start()  # on the event loop: the tools' coroutines run there
    return settings.get(STORE_SETTING) or JobStore()


def _request_token() -> str:
    """The token the current MCP request carries (URL ``?token=`` first, then the Authorization header), as
    jupyter_server's IdentityProvider.get_token reads a REST request's."""
    try:
        from fastmcp.server.dependencies import get_http_request

        request = get_http_request()
    except (ImportError, RuntimeError):  # no HTTP request: nothing to authenticate with
        return ""
    token = request.query_params.get("token", "")
    if not token:
        m = _AUTH_HEADER.match(request.headers.get("authorization", ""))
        token = m.group(2).strip() if m else ""
    return token


def _authorize() -> None:
    """Refuse a call without the Jupyter server's token, as the REST routes refuse one (403)."""
    app = _server_app()
    provider = getattr(app, "identity_provider", None)
    if provider is None:
        raise ToolRefused("Forbidden: no Jupyter server to authenticate against; jupyter_tune's tools are "
                          "served by a Jupyter server with jupyter-server-mcp enabled.")
    if not provider.auth_enabled:  # no token and no password: the routes serve anyone, so do the tools
        return
    expected, given = provider.token or "", _request_token()
    if not (expected and given and hmac.compare_digest(given.encode(), expected.encode())):
        raise ToolRefused("Forbidden: jupyter_tune's tools need the Jupyter server's token, as its REST API does. "
                          "Send it as the header 'Authorization: token <token>' (or append ?token=<token> to "
                          "the MCP URL).")


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _tool(fn: F) -> F:
    """A tool: authorized first; every refusal and failure becomes the tool's error text (fields named)."""

    @functools.wraps(fn)
    async def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            _authorize()
            return json_safe(await fn(*args, **kwargs))
        except (ToolRefused, ParameterError) as e:
            raise _tool_error(str(e)) from None
        except Exception as e:  # noqa: BLE001 - said to the agent; logged with its traceback for the user
            log.warning("jupyter_tune tool %s failed", fn.__name__, exc_info=True)
            raise _tool_error(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None

    return inner  # type: ignore[return-value]


def _job_id(value: Any, store: JobStore, name: str = "job_id") -> str:
    """A job id that names a job in the store, or ParameterError naming the argument."""
    try:
        validate_job_id(value)
    except ValueError as e:
        raise ParameterError(f"{name}: {e}") from None
    if not store.exists(value):
        raise ParameterError(f"{name}: no tuning job {value!r} in {store.jobs_dir}; tuning_list_jobs lists them")
    return value


def _resolve(path: str | None) -> str | None:
    """A relative path read from the server's root folder (what the file browser shows)."""
    if not isinstance(path, str) or not path.strip():
        return path
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else _root_dir() / p)


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _latest_metrics(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last logged step, its train and eval lines merged (as GET jobs/<id> reports it)."""
    if not rows:
        return None
    last = rows[-1].get("step")
    merged: dict[str, Any] = {}
    for row in rows:
        if row.get("step") == last:
            merged.update(row)
    return merged


async def _start_task(kind: str, request: dict[str, Any], job_id: str | None, store: JobStore) -> dict[str, Any]:
    tasks = TaskStore(store.root)

    def start() -> str:
        task_id = tasks.new_task(kind, request, cwd=_root_dir(), job_id=job_id)
        spawn(tasks, task_id, store.root)
        return task_id

    return task_summary(await asyncio.to_thread(tasks.read, await asyncio.to_thread(start)))


# -- the tools --
@_tool
async def tuning_list_jobs() -> dict[str, Any]:
    """List every tuning job, newest first: id, display name, state (JOB_STATE_QUEUED, _PENDING, _RUNNING,
    _SUCCEEDED, _FAILED, _CANCELLING, _CANCELLED), base model, times, progress (step, total_steps, epoch),
    queue position, error and the end-of-job evaluation's headline."""
    store = _store()
    jobs = await asyncio.to_thread(lambda: [store.summary(r) for r in store.list()])
    return {"jobs": jobs, "count": len(jobs)}


@_tool
async def tuning_job_state(job_id: str) -> dict[str, Any]:
    """A job's state and metrics, to poll a job started with tuning_start_job until its state is final
    (JOB_STATE_SUCCEEDED, JOB_STATE_FAILED or JOB_STATE_CANCELLED; poll every few seconds).

    Returns the job's summary (state, progress, error), latest_metrics (the last logged step: train and
    validation loss, accuracy, macro F1...), recent_metrics (the last 10 logged rows), best (the best
    checkpoint), evaluation (the end-of-job report: base vs tuned model on the validation rows), warnings,
    the job's parameters, its files (paths), exports, the last log lines once it failed, and tasks: the
    evaluations and exports an agent started on this job, with their state and result."""
    store = _store()

    def read() -> dict[str, Any]:
        _job_id(job_id, store)
        record = store.read(job_id)
        rows = store.read_metrics(job_id)
        out = store.summary(record)
        out.update(latest_metrics=_latest_metrics(rows), recent_metrics=rows[-10:], metrics_rows=len(rows),
                   best=record.get("best"), evaluation=record.get("evaluation"),
                   warnings=record.get("warnings") or [], params=record.get("params"),
                   num_train_examples=record.get("num_train_examples"),
                   num_validation_examples=record.get("num_validation_examples"),
                   paths=record.get("paths"), exports=record.get("exports") or [],
                   is_final=record.get("state") in FINAL_STATES,
                   tasks=[task_summary(t) for t in TaskStore(store.root).list(job_id)])
        if record.get("state") == JobState.FAILED:
            out["log_tail"] = store.log_tail(job_id, 20)
        return out

    return await asyncio.to_thread(read)


@_tool
async def tuning_check_dataset(train_dataset: str, validation_dataset: str | None = None,
                               prompt_template: str | None = None, min_examples: int = 1) -> dict[str, Any]:
    """Check datasets before tuning, as jt.check_dataset does (no model, no job, changes nothing): each file
    (JSONL, JSON, CSV or Parquet; paths relative to the Jupyter root folder) is read and validated as
    tuning_start_job would (a bad file is refused naming file, line and field), then its health is
    reported: duplicate and near-duplicate inputs, inputs under different labels (conflicts), training rows
    that leak into validation, and the label counts.

    Arguments: train_dataset (path); validation_dataset (path, optional); prompt_template (optional,
    {field} placeholders turn a row's fields into the prompt); min_examples (refuse fewer rows, default 1)."""
    from ..data.health import check_dataset  # torch-free; pandas loads on the first check

    def check() -> dict[str, Any]:
        report = check_dataset(_resolve(train_dataset), _resolve(validation_dataset), prompt_template,
                               min_examples)
        return {"summary": str(report), **report.to_json()}

    return await asyncio.to_thread(check)


@_tool
async def tuning_start_job(params: dict[str, Any]) -> dict[str, Any]:
    """(The description is built from TuningParams below: _start_doc.)"""
    store = _store()
    if not isinstance(params, dict):
        raise ParameterError.listing([f"params: must be a JSON object of parameter names and values, got "
                                      f"{type(params).__name__}"], "parameters")
    await asyncio.to_thread(render_cells, "tune", params, store)  # the panel's checks, each problem named
    started = await _start_task("tune", {"params": params}, None, store)
    tasks, task_id = TaskStore(store.root), started["task_id"]
    deadline = time.monotonic() + TUNE_WAIT_S
    while True:  # jt.tune's own checks (the data read, the model found), then the job's own process starts
        record = await asyncio.to_thread(tasks.read, task_id)
        if record["state"] != JobState.RUNNING or time.monotonic() > deadline:
            break
        await asyncio.sleep(_POLL_S)
    if record["state"] == JobState.FAILED:
        error = record.get("error") or {}
        raise ToolRefused(error.get("message") or "jt.tune failed")
    if record["state"] == JobState.RUNNING:
        return {**task_summary(record), "message": f"jt.tune is still checking the data after {TUNE_WAIT_S:.0f} s; "
                                                   "poll tuning_task_state(task_id) for the job id"}
    result = dict(record.get("result") or {})
    return {**result, "task_id": task_id,
            "next": f"poll tuning_job_state(job_id={result.get('job_id')!r}) until the state is final"}


def _start_doc() -> str:
    lines = []
    for f in main_fields():
        extra = ""
        if f.metadata.get("choices"):
            extra = f" One of {', '.join(map(str, f.metadata['choices']))}."
        lines.append(f"- {f.name} (default {field_default(f)!r}): {' '.join(f.metadata['help'].split())}{extra}")
    main = {f.name for f in main_fields()}
    advanced = ", ".join(f.name for f in dataclasses.fields(TuningParams) if f.name not in main)
    return f"""Start a tuning job (LoRA by default) and return its job id at once; the job runs in its own
process. Poll it with tuning_job_state(job_id) until its state is final.

params is a JSON object of tuning parameters, the same as the JupyterLab Tuning panel's form and
jt.tune's arguments (jt.TuningParams). Every value is checked first, as the panel checks it: a refusal lists
each problem under the parameter's name and starts nothing. Dataset paths are relative to the Jupyter root
folder (JSONL, JSON, CSV or Parquet; rows with input_text and output_text, or chat messages; check them first
with tuning_check_dataset). Main parameters:
{chr(10).join(lines)}
- holdout (default None): when no validation_dataset is given, the share of the training rows (0.05 to 0.5)
  held out for validation, stratified by label with no input on both sides.
Advanced parameters (see jt.TuningParams for each one's help): {advanced}."""


tuning_start_job.__doc__ = _start_doc()


@_tool
async def tuning_cancel_job(job_id: str) -> dict[str, Any]:
    """Cancel a job. A queued job is CANCELLED at once; a running one becomes JOB_STATE_CANCELLING and stops at
    its next step (keeping a checkpoint and the adapter so far); poll tuning_job_state until it is
    JOB_STATE_CANCELLED. A job that already ended is left as it is. Returns the job's summary."""
    store = _store()

    def cancel() -> dict[str, Any]:
        _job_id(job_id, store)
        cancel_job(store, job_id)
        return store.summary(store.read(job_id))

    return await asyncio.to_thread(cancel)


@_tool
async def tuning_evaluate(dataset: str | None = None, job_id: str | None = None, base_model: str | None = None,
                          validation_dataset: str | None = None, prompt_template: str | None = None,
                          task_type: str = "classification") -> dict[str, Any]:
    """Evaluate a tuned job's model (job_id) or a base model (base_model: a Hugging Face id or a model folder;
    default the panel's) on labelled rows, as the panel's Evaluate does. Runs as a background task in its own
    process and returns its task_id at once: poll tuning_task_state(task_id) (or tuning_job_state(job_id),
    which lists the job's tasks) until the state is JOB_STATE_SUCCEEDED; its result holds the summary, the
    metrics (classification: precision, recall and F1 per label, macro F1, accuracy, the confusion matrix;
    text_generation: BLEU-4, ROUGE-L, exact match) and report_path, the full report with every prediction.
    A tiny model takes seconds, a 1B model on a CPU minutes.

    Arguments: dataset (path of the rows to score, relative to the Jupyter root folder; or
    validation_dataset: one of them is required, never the training data); job_id or base_model;
    prompt_template ({field} placeholders); task_type: classification (rank the labels) or text_generation."""
    store = _store()
    params = _given(dataset=dataset, job_id=job_id, base_model=base_model, validation_dataset=validation_dataset,
                    prompt_template=prompt_template, task_type=task_type)
    await asyncio.to_thread(render_cells, "evaluate", params, store)  # the panel's checks
    request = {"job_id": job_id, "base_model": base_model, "data": dataset or validation_dataset,
               "task_type": task_type, "prompt_template": prompt_template}
    started = await _start_task("evaluate", request, job_id, store)
    return {**started, "next": f"poll tuning_task_state(task_id={started['task_id']!r}) until the state is final"}


@_tool
async def tuning_compare_jobs(job_ids: list[str], metric: str | None = None) -> dict[str, Any]:
    """Compare tuning jobs side by side, as the panel's Compare does: for each job its state, the parameters
    that differ between the jobs, its final and best losses and scores (validation loss, macro F1, accuracy)
    and steps; and the best job by `metric` (default: validation macro F1, else validation loss, else training
    loss). Reads the job store only: it answers at once, for running jobs too.

    Arguments: job_ids (a list of one or more job ids); metric (optional, a logged metric such as
    eval_total_loss or eval_macro_f1)."""
    from ..experiments.compare import Run, best_run, choose_objective, differing_params, summary_rows

    store = _store()
    await asyncio.to_thread(render_cells, "compare", {"job_ids": job_ids}, store)  # the panel's checks
    if metric is not None and (not isinstance(metric, str) or not metric.strip()):
        raise ParameterError(f"metric: expected a metric name such as 'eval_total_loss', got {metric!r}")

    def compare() -> dict[str, Any]:
        runs = []
        for i, jid in enumerate(dict.fromkeys(job_ids)):
            _job_id(jid, store, f"job_ids[{i}]")
            record = store.read(jid)
            runs.append(Run(jid, record.get("display_name") or jid, JobState.of(record), record.get("params") or {},
                            store.read_metrics(jid)))
        params = differing_params(runs)
        objective, greater = choose_objective(runs, metric)
        best = best_run(runs, objective, greater)
        return {"jobs": summary_rows(runs, params, objective), "differing_params": params, "objective": objective,
                "greater_is_better": greater, "best_job_id": best.id if best else None}

    return await asyncio.to_thread(compare)


@_tool
async def tuning_export(job_id: str, dest: str | None = None, format: str = "merged") -> dict[str, Any]:
    """Export a succeeded job's tuned model, as the panel's Export does, and check that the export answers as
    the job's model does (greedy answers on the validation rows). Runs as a background task in its own
    process and returns its task_id at once: poll tuning_task_state(task_id) until the state is final; its
    result holds the destination, the files and the parity check. A tiny model takes seconds, a 1B model
    minutes (GGUF longer).

    Arguments: job_id; format: merged (a plain transformers folder), adapter (the PEFT adapter with a model
    card) or gguf (llama.cpp / Ollama, with a Modelfile); dest: a new folder, relative to the Jupyter root
    folder (default exports/<job_id>-<format>); an existing folder is refused, never overwritten."""
    store = _store()
    target = _resolve(dest) if dest is not None else _resolve(f"exports/{job_id}-{format}")
    params = _given(job_id=job_id, dest=target, format=format)
    await asyncio.to_thread(render_cells, "export", params, store)  # the panel's checks (the guard on dest)
    started = await _start_task("export", {"job_id": job_id, "dest": target, "format": format}, job_id, store)
    return {**started, "next": f"poll tuning_task_state(task_id={started['task_id']!r}) until the state is final"}


@_tool
async def tuning_task_state(task_id: str) -> dict[str, Any]:
    """The state of a background task that tuning_evaluate, tuning_export or tuning_start_job started:
    JOB_STATE_RUNNING, then JOB_STATE_SUCCEEDED with its result, or JOB_STATE_FAILED with its error (and the
    last lines of its log). Poll it every few seconds until the state is final."""
    tasks = TaskStore(_store().root)

    def read() -> dict[str, Any]:
        try:
            record = tasks.read(task_id)
        except (ValueError, RecordNotFoundError) as e:
            raise ParameterError(f"task_id: {e}") from None
        out = {**task_summary(record), "is_final": record["state"] != JobState.RUNNING}
        if record["state"] == JobState.FAILED:
            out["log_tail"] = tasks.log_tail(task_id, 20)
        return out

    return await asyncio.to_thread(read)


# The jupyter_server_mcp.tools entry point (pyproject.toml): "module:function" for each tool.
TOOL_FUNCTIONS = (tuning_list_jobs, tuning_job_state, tuning_check_dataset, tuning_start_job, tuning_cancel_job,
                  tuning_evaluate, tuning_compare_jobs, tuning_export, tuning_task_state)
TOOLS = [f"{__name__}:{fn.__name__}" for fn in TOOL_FUNCTIONS]


def mcp_status() -> str:
    """One line for the server's log: whether the tools are served, or how to serve them."""
    try:
        import jupyter_server_mcp  # noqa: F401
    except ImportError:
        return ("jupyter_tune: tools for AI agents (MCP) are off; pip install 'jupyter_tune[mcp]' and restart "
                "JupyterLab to serve them (README, Tools for AI agents)")
    return f"jupyter_tune: {len(TOOLS)} tools for AI agents are served by jupyter-server-mcp (its MCP URL, /mcp)"
