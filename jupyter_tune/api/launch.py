"""Starting and resuming jobs: validate everything first, then hand the job to its own process."""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
import os
import sys
import time
import typing
from typing import Any

from ..data.health import check_before_job
from ..data.loader import Dataset, template_fields, validate_dataset
from ..data.readers import describe_source
from ..jobs import queue
from ..jobs.states import JobState
from ..jobs.store import JobStore, now_iso
from ..models.context import model_dir_context_length
from ..params import MAIN_GROUP, ParameterError, TuningParams, field_default, inapplicable, main_fields
from ..params.kinds import kind_problems
from .job import TuningJob


def _model_path(base_model: str):
    """resolve_model, with accurate messages for what it cannot tell apart (a symlink loop)."""
    from ..models.resolve import ModelNotFoundError, resolve_model

    path = os.path.expanduser(base_model)
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as e:
            what = "a symbolic link that loops" if e.errno == errno.ELOOP else "a broken symbolic link"
            raise ModelNotFoundError(f"base_model {base_model!r} is {what}; point it at a model folder "
                                     "or a .gguf file.") from None
    return resolve_model(base_model)


def test_rows(data: Any, train: Dataset, val: Dataset | None, params) -> tuple[Dataset, list[str]]:
    """test_dataset loaded (labelled rows, as the end-of-job report scores them) and the warnings to keep:
    its rows whose input is (nearly) one of the training or validation rows'."""
    from ..data.health import shared_inputs
    from ..data.loader import load_dataset

    test = load_dataset(data, params.prompt_template, require_answer=True, what="test_dataset")
    notes = [str(w) for w in test.warnings]
    for part, other in (("training", train), ("validation", val)):
        lines = shared_inputs(other, test) if other is not None else []
        if lines:
            notes.append(f"test_dataset: {len(lines)} of {len(test)} rows of {test.source} ({test.unit}s "
                         f"{', '.join(map(str, lines[:8]))}{', ...' if len(lines) > 8 else ''}) share their input "
                         f"with {part} rows: the report's scores on them overstate the model")
    return test, notes


def _jsonl(ds: Dataset) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ds.to_records())


# The named arguments of jt.tune are TuningParams' main fields, their defaults the dataclass's: base_model and
# train_dataset may be positional, the rest are keywords; every other field is an advanced keyword.
_POSITIONAL = ("base_model", "train_dataset")
_PYTHON_DATA = ("train_dataset", "validation_dataset")  # also lists of dicts and DataFrames in Python
# the advanced data argument (the end-of-job report's rows), also a list of dicts or a DataFrame
_TEST = "test_dataset"


def _tune_signature() -> inspect.Signature:
    hints = typing.get_type_hints(TuningParams)
    fields = sorted(main_fields(), key=lambda f: f.name not in _POSITIONAL)  # stable: field order kept
    params = [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD if f.name in _POSITIONAL
                                else inspect.Parameter.KEYWORD_ONLY, default=field_default(f),
                                annotation=Any if f.name in _PYTHON_DATA else hints[f.name])
              for f in fields]
    params.append(inspect.Parameter("advanced", inspect.Parameter.VAR_KEYWORD, annotation=Any))
    return inspect.Signature(params, return_annotation=TuningJob)


def _tune_doc() -> str:
    main = "\n".join(f"    {f.name} (default {field_default(f)!r}): {f.metadata['help']}" for f in main_fields())
    advanced = ", ".join(f.name for f in dataclasses.fields(TuningParams) if f.metadata["group"] != MAIN_GROUP)
    return f"""Start a tuning job and return at once; the job runs in its own process.

    ``base_model`` may also be a succeeded job's id: its tuned model is the starting point. On a machine
    whose slots ($JUPYTER_TUNE_SLOTS, default one per GPU, one on CPU) are all taken, the job is
    JOB_STATE_QUEUED with its ``queue_position`` in job.json, and starts when its turn comes.

    Datasets are paths (JSONL, JSON, CSV, Parquet), lists of dicts or DataFrames. Invalid parameters or
    data raise here (every problem listed) and leave nothing in the job store. Returns a TuningJob.

    Main parameters (jupyter_tune.params.TuningParams, which holds them all):

{main}

    Advanced keywords (see TuningParams for each one's help): {advanced}."""


def tune(*args: Any, **kwargs: Any) -> TuningJob:
    try:
        bound = _TUNE_SIGNATURE.bind(*args, **kwargs)
    except TypeError as e:  # too many positional arguments, one given twice: named, as the gate names them
        raise ParameterError(f"jt.tune: {e}") from None
    bound.apply_defaults()
    values = dict(bound.arguments)
    advanced = values.pop("advanced")
    train_dataset, validation_dataset = values["train_dataset"], values["validation_dataset"]
    if train_dataset is None:
        raise ParameterError("train_dataset: required; a path, a list of dicts or a pandas DataFrame.")
    # the data's kind is checked here, before describe_source() turns the data into its description
    test_dataset = advanced.get(_TEST)
    data_problems = [p for name, value in (("train_dataset", train_dataset), ("validation_dataset", validation_dataset),
                                           (_TEST, test_dataset)) if value is not None
                     for p in kind_problems(name, value, "dataset")]
    if data_problems:
        raise ParameterError.listing(data_problems)
    values.update(train_dataset=describe_source(train_dataset),
                  validation_dataset=None if validation_dataset is None else describe_source(validation_dataset))
    if test_dataset is not None:
        advanced[_TEST] = describe_source(test_dataset)
    params = TuningParams.from_dict({**values, **advanced})  # every value checked, every problem listed
    if params.effective_quantization:  # bitsandbytes >= 0.50 quantizes on a CPU too; older ones need CUDA
        import torch

        from ..training.quantized import bitsandbytes_problem

        problem = bitsandbytes_problem(torch.cuda.is_available())
        if problem:
            raise RuntimeError(f"quantization={params.effective_quantization!r}: {problem}")
    if params.prompt_template:
        template_fields(params.prompt_template)  # a bad template fails before the model is looked up
    if params.method == "grpo":  # every grader spec built once (a python grader's source compiled) before a job
        from ..graders.spec import graders_from_specs

        graders_from_specs(params.graders)
    from ..models.from_job import job_base

    from_job = job_base(params.base_model)  # base_model=<job id>: start from a finished job's model
    # an unknown model fails here, naming what was tried
    model_path = from_job.base_path if from_job else _model_path(params.base_model)
    if params.target_modules and params.method != "full":
        from ..models.arch import check_target_modules

        check_target_modules(model_path, params.target_modules)  # before a job exists, not at its first step
    train, val = validate_dataset(train_dataset, validation_dataset, params.prompt_template,
                                  params.min_train_examples, preference=params.method == "dpo",
                                  require_answer=params.method != "grpo")  # grpo: prompts, fields for graders
    if params.method == "grpo" and not params.graders:  # the default grader, label_match, needs a label
        bare = sum(1 for ex in train.examples if ex.answer is None and "label" not in ex.fields)
        if bare:
            raise ValueError(f"graders: empty means label_match, which compares each answer with the row's label or "
                             f"answer; {bare} training rows have neither. Give graders=[...] that read the rows' "
                             "fields, e.g. {'kind': 'string_check', 'reference': '{{ item.reference_answer }}'}.")
    if params.method == "grpo":  # each grader tried on the first training rows: one that errors on all is refused
        from ..graders.spec import probe_graders

        probe_graders(params.graders, train.examples)
    if params.task == "classification":  # a label head for this family, and labels to train it on
        from ..models.head import classification_problem

        problem = classification_problem(model_path, [ex.answer for ex in train.examples])
        if problem:
            raise ValueError(problem)
    health = check_before_job(train, val, params.data_checks)  # data_checks="error" refuses here
    test = test_rows(test_dataset, train, val, params) if test_dataset is not None else None
    memory = None
    if params.method == "full":  # weights + gradients + optimizer state must fit, or nothing starts
        from ..training.memory import check_full_tuning_fits

        memory = check_full_tuning_fits(model_path, params).to_json()
    elif params.effective_quantization:  # QLoRA: the base counted in 4 (or 8) bits
        from ..training.memory import check_adapter_tuning_fits

        estimate = check_adapter_tuning_fits(model_path, params)
        memory = estimate.to_json() if estimate else None
    store = JobStore()
    job_id = store.new_job_id(params.tuned_model_display_name)
    files = {"train.jsonl": _jsonl(train)}
    if val is not None:
        files["validation.jsonl"] = _jsonl(val)
    if test is not None:
        files["test.jsonl"] = _jsonl(test[0])
    warnings = [str(w) for w in train.warnings + (val.warnings if val else [])] + (test[1] if test else [])
    warnings += inapplicable(params, has_validation=val is not None)  # said, never dropped silently
    warnings += health.summary() if health else []
    context = model_dir_context_length(model_path)
    if context is not None and params.max_seq_length > context:
        warnings.append(f"max_seq_length={params.max_seq_length} exceeds the model's context of {context} "
                        f"tokens (config.json of {params.base_model}); positions past it are untrained. "
                        f"Set max_seq_length={context} or lower.")
    record = {
        "display_name": params.tuned_model_display_name or job_id,
        "state": JobState.QUEUED,  # dispatch below starts it at once if a slot is free
        "create_time": now_iso(), "create_unix": (created := time.time()), "queued_unix": created, "start_time": None, "end_time": None,
        "error": None, "pid": None, "params": params.to_dict(), "warnings": warnings,
        "num_train_examples": len(train), "num_validation_examples": len(val) if val else 0,
        "progress": {"step": 0, "total_steps": None, "epoch": 0.0},
    }
    if memory is not None:
        record["memory_estimate"] = memory
    if health is not None:
        record["data_health"] = health.to_json()
    job_dir = store.create(job_id, record, files)
    result = "model" if params.method == "full" else "adapter"  # full: a plain model folder (models/from_job.py)
    store.update(job_id, paths={"job_dir": str(job_dir), result: str(job_dir / result),
                                "checkpoints": str(job_dir / "checkpoints"), "log": str(job_dir / "log.txt")})
    for w in warnings:
        print(f"Warning: {w}", file=sys.stderr)
    queue.dispatch(store, spawn=_spawn)
    return TuningJob(job_id, store)


_TUNE_SIGNATURE = _tune_signature()
tune.__signature__ = _TUNE_SIGNATURE  # type: ignore[attr-defined]  # help(), Shift-Tab and IDEs show it
tune.__doc__ = _tune_doc()


def resume(job_id: str) -> TuningJob:
    """Continue a FAILED or CANCELLED job from its last checkpoint (from the start if it has none).

    The job goes through the queue like a new one (at its end). The state is checked and changed in
    one locked step: of two racing calls, one starts a process and the other raises.
    """
    store = JobStore()
    job = TuningJob(job_id, store)
    with queue.queue_lock(store):  # a racing resume sees the job already started, not half-way
        store.begin_resume(job_id)
        queue.dispatch(store, spawn=_spawn)
    return job


def _spawn(store: JobStore, job_id: str, resume: bool) -> None:
    """Start a claimed job's process (tests replace this to start none)."""
    queue.spawn_worker(store, job_id, resume)


__all__ = ["tune", "resume"]
