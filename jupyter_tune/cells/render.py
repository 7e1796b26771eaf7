"""The panel's actions and ``render_cells(action, params)``."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from ..jobs.states import JobState
from ..jobs.store import JobStore, validate_job_id
from ..params import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    ActionParams,
    ParameterError,
    TuningParams,
    action_params_problems,
    main_fields,
)

# The main parameters (TuningParams' "basic" group): the panel's form and the parameters cell of "Tune a model".
MAIN_PARAMS = tuple(f.name for f in main_fields())
TUNING_FIELDS = frozenset(f.name for f in dataclasses.fields(TuningParams))


def _cell_comment(f: dataclasses.Field) -> str:
    """The parameters cell's comment for a field: the first sentence of its help."""
    first = re.split(r"\.\s+(?=[A-Z])", f.metadata["help"], maxsplit=1)[0].rstrip(".")
    return " ".join(first.split())  # one line, whatever the help holds


class CellsError(ValueError):
    """The action or its parameters cannot make cells; the message says why."""


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
    # when none is given); "none" for actions that take no job_id.
    job: str = "none"


# Extras that are not tuning parameters (params.ActionParams: which model or job, which data, what to ask).
EXTRAS = {f.name: f.metadata["help"] for f in dataclasses.fields(ActionParams)}

ACTIONS: dict[str, Action] = {a.id: a for a in (
    Action("tune", "Tune a model",
           "Insert a parameters cell and a cell that starts a LoRA tuning job and shows it live.",
           MAIN_PARAMS + ("holdout",), ("tune_params.py.j2", "tune_run.py.j2")),
    Action("evaluate", "Evaluate a model",
           "Insert a cell that scores the base model (or a tuned job's model) on a labelled dataset.",
           ("base_model", "job_id", "dataset", "validation_dataset", "train_dataset", "prompt_template",
            "task_type"),
           ("evaluate.py.j2",), defaults=(("task_type", "classification"),), job="optional"),
    Action("generate", "Generate text",
           "Insert a cell that generates a response for every row of a dataset.",
           ("base_model", "job_id", "dataset", "validation_dataset", "train_dataset", "prompt_template",
            "max_output_tokens"),
           ("generate.py.j2",), defaults=(("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS),), job="optional"),
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
             "button": a.button, "defaults": dict(a.defaults), "job": a.job} for a in ACTIONS.values()]


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


def _checked_params(action: Action, params: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise CellsError("params must be a JSON object")
    unknown = sorted(set(params) - TUNING_FIELDS - set(EXTRAS))
    if unknown:
        raise CellsError(f"Unknown parameter(s): {', '.join(unknown)}. Tuning parameters are "
                         f"{', '.join(sorted(TUNING_FIELDS))}; the actions also take {', '.join(EXTRAS)}.")
    for name, value in params.items():
        _check_literal(value, name)
    # Tuning parameters are checked by the dataclass the engine uses (types, ranges, choices).
    # Every value is checked against the declarations jt.tune uses (params.py): the tuning parameters by
    # TuningParams (types, ranges, choices, the rules between them; datasets as paths), the others by
    # ActionParams. A cell that would fail in the kernel is never made.
    tuning = {k: v for k, v in params.items() if k in TUNING_FIELDS}
    problems = action_params_problems({k: v for k, v in params.items() if k in EXTRAS})
    try:
        full = TuningParams.from_json(tuning).to_dict()
    except ParameterError as e:
        problems = e.problems + problems
    if problems:
        raise CellsError("Invalid parameters:\n" + "\n".join(f"  - {p}" for p in problems))
    # A float parameter typed as 1 in a form reads 1.0 in the cell, as the dataclass declares it.
    for f in dataclasses.fields(TuningParams):
        if "float" in str(f.type) and type(full[f.name]) is int:
            full[f.name] = float(full[f.name])
    values = {**full, **dict.fromkeys(EXTRAS), **dict(action.defaults)}
    values.update({k: v for k, v in params.items() if k in EXTRAS and v not in (None, "")})
    if values.get("job_id") is not None:
        try:
            validate_job_id(values["job_id"])
        except ValueError as e:
            raise CellsError(str(e)) from None
    if action.id == "tune" and values.get("holdout") is not None:
        _check_holdout(values)
    if action.id == "compare":
        ids = values.get("job_ids")
        if not isinstance(ids, list) or not ids:
            raise CellsError("The 'compare' action needs job_ids: a list of one or more job ids")
        for job_id in ids:
            try:
                validate_job_id(job_id)
            except ValueError as e:
                raise CellsError(str(e)) from None
    # Advanced tuning parameters the user set away from their defaults go into jt.tune(...) too.
    defaults = TuningParams().to_dict()
    values["advanced"] = {k: v for k, v in tuning.items()
                          if k not in MAIN_PARAMS and v != defaults.get(k)}
    return values


def _check_holdout(values: dict[str, Any]) -> None:
    """holdout splits the training file (jt.split) only when there is no validation file to use instead."""
    if values.get("validation_dataset"):
        raise CellsError(f"holdout={values['holdout']!r} and validation_dataset={values['validation_dataset']!r} "
                         "both give validation rows: clear validation_dataset to hold out a share of the "
                         "training rows, or leave holdout empty to validate on that file.")
    if values.get("method") == "dpo":
        raise CellsError("holdout: jt.split splits labelled rows, not preference pairs (method='dpo'); give a "
                         "validation_dataset of pairs, or leave holdout empty.")


def latest_succeeded_job(store: JobStore) -> str | None:
    """The newest succeeded job's id, or None."""
    return next((r["id"] for r in store.list() if r.get("state") == JobState.SUCCEEDED), None)


def render_cells(action: str, params: dict[str, Any] | None = None,
                 store: JobStore | None = None) -> list[dict[str, str]]:
    """Cells for one panel action: ``[{"cell_type": "code", "source": "..."}, ...]``.

    ``store`` is read only for an action whose job defaults to the newest succeeded one (Test) when no
    job_id is given. Raises CellsError for an unknown action, an unknown parameter, a value out of range
    or a missing job.
    """
    if action not in ACTIONS:
        raise CellsError(f"Unknown action {action!r}; known: {', '.join(ACTIONS)}")
    spec = ACTIONS[action]
    values = _checked_params(spec, params or {})
    if spec.job == "latest" and not values.get("job_id"):
        values["job_id"] = latest_succeeded_job(store or JobStore())
        if not values["job_id"]:
            raise CellsError("No tuned model yet: tune a model first, then test it once the job has succeeded.")
    if spec.job == "required" and not values.get("job_id"):
        raise CellsError(f"The {action!r} action needs a job_id")
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
