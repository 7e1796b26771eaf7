"""The panel's actions and ``render_cells(action, params)``."""

from __future__ import annotations

import ast
import dataclasses
import math
import os
import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from ..graders.spec import grader_from_spec
from ..jobs.guard import UnsafeDestinationError, check_destination
from ..jobs.states import JobState
from ..jobs.store import JobStore, validate_job_id
from ..params import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    ActionParams,
    ParameterError,
    TuningParams,
    main_fields,
)
from ..params.gate import declared_problems
from ..params.kinds import _short

# The main parameters (TuningParams' "basic" group): the panel's form and the parameters cell of "Tune a model".
MAIN_PARAMS = tuple(f.name for f in main_fields())
TUNING_FIELDS = frozenset(f.name for f in dataclasses.fields(TuningParams))


def _cell_comment(f: dataclasses.Field) -> str:
    """The parameters cell's comment for a field: the first sentence of its help."""
    first = re.split(r"\.\s+(?=[A-Z])", f.metadata["help"], maxsplit=1)[0].rstrip(".")
    return " ".join(first.split())  # one line, whatever the help holds


class CellsError(ParameterError):
    """The action or its parameters cannot make cells; the message says why (a ParameterError, the one
    refusal every entry point raises: ``.problems`` lists each problem, each naming its parameter)."""


@dataclass(frozen=True)
class Action:
    id: str
    label: str
    description: str
    params: tuple[str, ...]            # the parameters it reads (TuningParams fields and the extras)
    templates: tuple[str, ...]         # one template per cell, in order
    button: bool = True                # shown as a button in the panel (view is per job)
    defaults: tuple[tuple[str, Any], ...] = ()  # defaults for the extras
    # job_id: "optional" (the base model without one), "required", or "latest" (the newest succeeded job
    # when none is given); "none" for actions that take no job_id. A given job_id must name a job in the store.
    job: str = "none"
    # The parameters that name the rows the action runs on, the first one given wins; one is required
    # (never the training data: scores on rows the model trained on would mislead).
    data: tuple[str, ...] = ()


# Extras that are not tuning parameters (params.ActionParams: which model or job, which data, what to ask).
EXTRAS = {f.name: f.metadata["help"] for f in dataclasses.fields(ActionParams)}

ACTIONS: dict[str, Action] = {a.id: a for a in (
    Action("tune", "Tune a model",
           "Insert a parameters cell and a cell that starts a LoRA tuning job and shows it live.",
           MAIN_PARAMS + ("holdout", "holdout_conflicts", "test_dataset"), ("tune_params.py.j2", "tune_run.py.j2"),
           defaults=(("holdout_conflicts", "report"),)),
    Action("evaluate", "Evaluate a model",
           "Insert a cell that scores the base model (or a tuned job's model) on a labelled dataset.",
           ("base_model", "job_id", "dataset", "validation_dataset", "prompt_template", "task_type"),
           ("evaluate.py.j2",), defaults=(("task_type", "classification"),), job="optional",
           data=("dataset", "validation_dataset")),
    Action("generate", "Generate text",
           "Insert a cell that generates a response for every row of a dataset.",
           ("base_model", "job_id", "dataset", "validation_dataset", "prompt_template", "max_output_tokens"),
           ("generate.py.j2",), defaults=(("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS),), job="optional",
           data=("dataset", "validation_dataset")),
    Action("test", "Test a tuned model",
           "Insert a cell that loads a tuned job's model (the newest succeeded job unless one is chosen) and "
           "answers one prompt.",
           ("job_id", "prompt", "max_output_tokens"), ("test.py.j2",),
           defaults=(("prompt", "Hello! What can you do?"), ("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)),
           job="latest"),
    Action("export", "Export a tuned model",
           "Insert a cell that exports a tuned job's model (merged, adapter or GGUF) and checks it answers alike.",
           ("job_id", "dest", "format"), ("export.py.j2",), button=False, defaults=(("format", "merged"),),
           job="required"),
    Action("view", "View a job", "Insert a cell that shows a job's live view.", ("job_id",),
           ("view.py.j2",), button=False, job="required"),
    Action("compare", "Compare jobs", "Insert a cell that compares jobs side by side (curves, differing "
           "parameters, best run).", ("job_ids",), ("compare.py.j2",), button=False),
)}


def actions() -> list[dict[str, Any]]:
    """The actions as JSON for ``GET /jupyter-tune/templates``."""
    return [{"id": a.id, "label": a.label, "description": a.description, "params": list(a.params),
             "button": a.button, "defaults": dict(a.defaults), "job": a.job, "data": list(a.data)}
            for a in ACTIONS.values()]


def _check_literal(value: Any, path: str = "value") -> None:
    """Accept only what JSON can carry, so repr() is always a valid Python literal."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CellsError(f"{path}: {value!r} is not a finite number")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_literal(v, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CellsError(f"{path}: keys must be strings, got {k!r}")
            _check_literal(v, f"{path}[{k!r}]")
        return
    raise CellsError(f"{path}: {type(value).__name__} values cannot go into a cell")


def pylit(value: Any) -> str:
    """The Python literal for a JSON value (the only way user values enter a template)."""
    _check_literal(value)
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jupyter_tune.cells", "templates"),
        autoescape=False,  # the output is Python, not HTML; pylit does the quoting
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["pylit"] = pylit
    return env


def _reads(action: Action) -> frozenset[str]:
    """The parameters an action reads: "tune" every tuning parameter (those away from their defaults go into
    jt.tune(...)) and holdout; the others the ones they list. Any other key is refused, never dropped."""
    return TUNING_FIELDS | set(action.params) if action.id == "tune" else frozenset(action.params)


def _not_read(name: Any, action: Action) -> str:
    if not isinstance(name, str) or name not in TUNING_FIELDS | set(EXTRAS):
        also = (f"the tuning parameters (jt.TuningParams, GET /jupyter-tune/schema) and "
                f"{', '.join(sorted(set(action.params) - TUNING_FIELDS))}" if action.id == "tune"
                else ", ".join(action.params))
        shown = name if isinstance(name, str) and name.isidentifier() else _short(name)
        return f"{shown}: unknown parameter; the {action.id!r} action reads {also}"
    return (f"{name}: the {action.id!r} action does not read it (it reads {', '.join(action.params)}); leave it "
            "out rather than have it ignored")


def _checked_params(action: Action, params: Any, store: JobStore) -> dict[str, Any]:
    """The values a template is filled with, or CellsError listing every problem, each naming its parameter.

    Each value is checked against the declarations the Python API uses (params.py): the tuning parameters by
    TuningParams (types, ranges, choices, kinds such as datasets as paths and prompt templates, the rules
    between them), the others by ActionParams through the gate (params/gate.py). Then, once every value
    passed its own check, the rules of the action (_action_problems): a named job exists, the rows to
    evaluate are named, an export stays out of the job store, grader specs build. A cell that the engine
    would refuse in the kernel is never made."""
    if not isinstance(params, dict):
        raise CellsError.listing([f"params: must be a JSON object of parameter names and values, got "
                                  f"{type(params).__name__} {_short(params)}"], "parameters")
    reads = _reads(action)
    unread = [_not_read(name, action) for name in params if name not in reads]
    problems: list[str] = []
    known: dict[str, Any] = {}
    for name, value in params.items():
        if name not in reads:
            continue
        try:
            _check_literal(value, name)
            known[name] = value
        except CellsError as e:
            problems.append(str(e))
    tuning = {k: v for k, v in known.items() if k in TUNING_FIELDS}
    problems += declared_problems(ActionParams, {k: v for k, v in known.items() if k in EXTRAS}, python_data=False)
    try:
        full = TuningParams.from_json(tuning).to_dict()
    except ParameterError as e:
        problems = e.problems + problems
    if problems:
        raise CellsError.listing(unread + problems, "parameters")
    # A float parameter typed as 1 in a form reads 1.0 in the cell, as the dataclass declares it.
    for f in dataclasses.fields(TuningParams):
        if "float" in str(f.type) and type(full[f.name]) is int:
            full[f.name] = float(full[f.name])
    values = {**full, **dict.fromkeys(EXTRAS), **dict(action.defaults)}
    values.update({k: v for k, v in known.items() if k in EXTRAS and v not in (None, "")})
    problems = unread + _action_problems(action, values, store)
    if problems:
        raise CellsError.listing(problems, "parameters")
    values["data"] = next((values[n] for n in action.data if values.get(n)), None)
    # Advanced tuning parameters the user set away from their defaults go into jt.tune(...) too.
    defaults = TuningParams().to_dict()
    values["advanced"] = {k: v for k, v in tuning.items()
                          if k not in MAIN_PARAMS and v != defaults.get(k)}
    return values


def _action_problems(action: Action, values: dict[str, Any], store: JobStore) -> list[str]:
    """The rules of one action over values that each passed their own check (the gate's ``rules``)."""
    problems: list[str] = []
    job_id = values.get("job_id")
    if job_id is not None and action.job != "none" and not store.exists(job_id):
        problems.append(f"job_id: no tuning job {job_id!r} in {store.jobs_dir}; choose one of jt.list_jobs() (the "
                        "panel's job list)")
    elif job_id is None and action.job == "latest":
        values["job_id"] = latest_succeeded_job(store)
        if not values["job_id"]:
            problems.append("job_id: no tuned model yet: tune a model first, then test it once the job has "
                            "succeeded (or give a job_id)")
    elif job_id is None and action.job == "required":
        problems.append(f"job_id: the {action.id!r} action needs a job_id (one of jt.list_jobs())")
    if action.data and not any(values.get(n) for n in action.data):
        problems.append(f"{action.data[0]}: the {action.id!r} action needs the rows to run on: give "
                        f"{' or '.join(action.data)} (a file path); the training data is never used, since "
                        "answers on rows the model trained on would mislead")
    if action.id == "tune":
        if values.get("holdout") is not None:
            problems += _holdout_problems(values)
        if values.get("method") == "grpo":
            problems += [f"graders[{i}]: {m}" for i, spec in enumerate(values.get("graders") or [])
                         for m in grader_problems(spec)]
    if action.id == "export" and values.get("job_id"):
        dest = values.get("dest") or f"exports/{values['job_id']}-{values['format']}"
        problems += _dest_problems(dest, store)
    if action.id == "compare":
        ids = values.get("job_ids")
        if not isinstance(ids, list) or not ids:
            problems.append("job_ids: the 'compare' action needs job_ids: a list of one or more job ids")
        else:
            for i, job_id in enumerate(ids):
                try:
                    validate_job_id(job_id)
                except ValueError as e:
                    problems.append(f"job_ids: {e}")
                    continue
                if not store.exists(job_id):  # jt.compare_jobs would refuse it in the kernel
                    problems.append(f"job_ids[{i}]: no tuning job {job_id!r} in {store.jobs_dir}; choose among "
                                    "jt.list_jobs() (the panel's job list)")
    return problems


def _holdout_problems(values: dict[str, Any]) -> list[str]:
    """holdout splits the training file (jt.split: labelled rows, stratified by label) only when there is no
    validation file to use instead, and only for methods trained on labelled rows."""
    if values.get("validation_dataset"):
        return [f"holdout: {values['holdout']!r} and validation_dataset={values['validation_dataset']!r} both give "
                "validation rows: clear validation_dataset to hold out a share of the training rows, or leave "
                "holdout empty to validate on that file."]
    if values.get("method") == "dpo":
        return ["holdout: jt.split splits labelled rows, not preference pairs (method='dpo'); give a "
                "validation_dataset of pairs, or leave holdout empty."]
    if values.get("method") == "grpo":
        return ["holdout: jt.split splits labelled rows, stratified by label; method='grpo' trains on prompts "
                "that graders score, which need carry no label, so it has no labelled validation split. Give a "
                "validation_dataset of prompts, or leave holdout empty."]
    return []


def _dest_problems(dest: str, store: JobStore) -> list[str]:
    """The export cell's destination against the guard every export goes through (jobs/guard.py): never in
    the job store or a job's folder; an existing absolute folder is refused too, since the cell exports with
    overwrite=False. (A relative one is resolved against the kernel's folder, which the server cannot know.)"""
    try:
        check_destination(dest, kind="folder", overwrite=False, store_root=store.root)
    except UnsafeDestinationError as e:
        return [f"dest: {e}"]
    except FileExistsError as e:
        if os.path.isabs(os.path.expanduser(dest)):
            return [f"dest: {e}"]
    except (OSError, ValueError, RuntimeError) as e:  # an embedded NUL, a symlink loop ...
        return [f"dest: {_short(dest)} is not a usable folder: {e}"]
    return []


# A python grader's source is compiled here but never run: the server does not execute the user's code. The
# spec is then built by graders.spec.grader_from_spec (the Python API's own check of kinds, options and their
# values) with this source in place of the user's.
_STUB_SOURCE = "def grade(sample, item):\n    return 0.0\n"


def grader_problems(spec: Any) -> list[str]:
    """What is wrong with one grader spec (shape, options, a python source), found without running any of
    the user's code; [] when jt.tune would build it."""
    problems: list[str] = []
    stub = _stubbed(spec, problems)
    if problems:
        return problems
    try:
        grader_from_spec(stub)
    except Exception as e:  # noqa: BLE001 - whatever the builder refuses, said as a problem of this spec
        return [str(e) or type(e).__name__]
    return []


def _stubbed(spec: Any, problems: list[str], where: str = "") -> Any:
    """``spec`` with every python grader's source checked (problems appended) and replaced by a stub."""
    if not isinstance(spec, dict):
        return spec
    kind = spec.get("kind", spec.get("type"))
    if kind == "python" and isinstance(spec.get("source"), str):
        problem = python_source_problem(spec["source"])
        if problem:
            problems.append(f"{where}{problem}")
        return {**spec, "source": _STUB_SOURCE}
    if kind == "multi" and isinstance(spec.get("graders"), list):
        return {**spec, "graders": [_stubbed(s, problems, f"{where}graders[{j}]: ")
                                    for j, s in enumerate(spec["graders"])]}
    return spec


def python_source_problem(source: str) -> str | None:
    """Why a python grader's source cannot be used, found by compiling it (never running it): a syntax error,
    no function at all, or a grade() that cannot be called as grade(sample, item). None: it may be used (a
    failing top level still shows when jt.tune builds it)."""
    text = textwrap.dedent(source)
    try:
        compile(text, "<grader python>", "exec")
        tree = ast.parse(text)
    except SyntaxError as e:
        return f"python grader: its source does not compile: {e.msg} (line {e.lineno})"
    except (ValueError, RecursionError, MemoryError) as e:
        return f"python grader: its source does not compile: {type(e).__name__}: {e}"
    defs = {n.name: n for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("__")}
    bound = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
             for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    opaque = any(isinstance(n, (ast.Import, ast.ImportFrom, ast.If, ast.Try, ast.With, ast.For, ast.While,
                                ast.ClassDef)) for n in tree.body)  # may bind functions a static look misses
    if "grade" in defs and "grade" not in bound:
        fn = defs["grade"]
    elif "grade" in bound or opaque:
        return None  # grade = ..., or functions made at run time: checked when jt.tune builds it
    elif len(defs) == 1:
        fn = next(iter(defs.values()))
    elif not defs:
        return "python grader: its source defines no function; define grade(sample, item) -> float"
    else:
        return (f"python grader: its source defines {len(defs)} functions ({', '.join(defs)}) and none named "
                "grade; name the one to call grade(sample, item)")
    if isinstance(fn, ast.AsyncFunctionDef):
        return f"python grader: {fn.name} is an async def; a grader is a plain def {fn.name}(sample, item) -> float"
    args = fn.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    kw_required = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    if required > 2 or (positional < 2 and args.vararg is None) or kw_required:
        shown = ", ".join([a.arg for a in (*args.posonlyargs, *args.args)] + kw_required)
        return (f"python grader: {fn.name}({shown}) cannot be called as {fn.name}(sample, item): it must take the "
                "answer and the row, two positional arguments")
    return None


def latest_succeeded_job(store: JobStore) -> str | None:
    """The newest succeeded job's id, or None."""
    return next((r["id"] for r in store.list() if r.get("state") == JobState.SUCCEEDED), None)


def render_cells(action: str, params: dict[str, Any] | None = None,
                 store: JobStore | None = None) -> list[dict[str, str]]:
    """Cells for one panel action: ``[{"cell_type": "code", "source": "..."}, ...]``.

    ``store`` (default: the job store of $JUPYTER_TUNE_HOME) is read to check that a given job_id names a
    job, for an action whose job defaults to the newest succeeded one (Test) when no job_id is given, and to
    keep an export out of it. Raises CellsError (a ParameterError) for an unknown action, and, listing each
    problem under its parameter's name, for params that is not a dict, an unknown parameter or one the
    action does not read, a value the declarations refuse, a missing job, missing rows to evaluate on...
    """
    if not isinstance(action, str) or action not in ACTIONS:
        raise CellsError(f"Unknown action {_short(action)}; known: {', '.join(ACTIONS)}")
    spec = ACTIONS[action]
    values = _checked_params(spec, {} if params is None else params, store or JobStore())
    templates = spec.templates
    if action == "tune" and values.get("method") == "dpo":  # preference tuning: a cell that reads the pairs
        templates = ("tune_params.py.j2", "tune_dpo.py.j2")
    if action == "tune":
        values["main"] = [{"name": f.name, "value": values[f.name], "comment": _cell_comment(f)}
                          for f in main_fields()]
    cells = []
    for name in templates:
        source = _env().get_template(name).render(**values).strip()
        cells.append({"cell_type": "markdown" if name.endswith(".md.j2") else "code", "source": source})
    return cells
