"""Fuzz jt.tune (every TuningParams field, main and advanced) and jt.sweep (base, grid, search, trials,
objective, pruner, parallel, enqueue, seed, name).

No job process or sweep driver starts (conftest's ``no_job_starts``). A job that jt.tune makes is checked
(its stored parameters are valid ones) and deleted; a sweep that jt.sweep makes is deleted with its jobs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jupyter_tune as jt
from jupyter_tune.jobs.store import JobStore
from jupyter_tune.params import TuningParams
from tests.support.store_digest import folder_digest

from .declared import Arg, Declared, arguments, declared, fuzz_settings, junk
from .kinds import GRADERS_BAD, TUNE_ALIASES, TUNE_LATE, kinds
from .outcomes import Accepted, call


@pytest.fixture(scope="module")
def tune_kinds(fuzz_data, fuzz_home, tmp_path_factory, tiny_model_dir, no_job_starts):
    # one job made and deleted first: the store's own folders and lock files exist before the fuzzing, so a
    # job made and deleted again leaves the store as it found it
    JobStore().delete(jt.tune(base_model=str(tiny_model_dir), train_dataset=str(fuzz_data["train"])).id)
    _remove_sweep(jt.sweep({"train_dataset": str(fuzz_data["train"])}, {"seed": [0]}))
    return kinds(fuzz_data, store=fuzz_home, out=tmp_path_factory.mktemp("fuzz-out"),
                 models=(str(tiny_model_dir), tiny_model_dir, str(tiny_model_dir), "no-such/model"))


def _grader_specs() -> st.SearchStrategy:
    from jupyter_tune.graders import LabelMatch

    return st.sampled_from([None, [], [{"kind": "label_match"}], [LabelMatch()],
                            [{"kind": "string_check", "operation": "ilike", "reference": "{{ item.label }}"}],
                            [{"kind": "text_similarity", "evaluation_metric": "rouge_l"}]])


# jt.tune requires train_dataset, which TuningParams leaves empty until a job has data
TUNE = [dataclasses.replace(d, nullable=False, required=True) if d.name == "train_dataset" else d
        for d in declared(TuningParams, jt.tune)]


def tune_arguments(tune_kinds, most: int = 4) -> st.SearchStrategy[list[Arg]]:
    return arguments(TUNE, tune_kinds, most=most, aliases=TUNE_ALIASES, late=TUNE_LATE,
                     cheap={"graders": _grader_specs()}, bad={"graders": st.sampled_from(GRADERS_BAD)})


@fuzz_settings(100)
@given(data=st.data())
def test_tune(data, tune_kinds, fuzz_home, no_job_starts):
    args = data.draw(tune_arguments(tune_kinds), label="arguments")
    before = folder_digest(fuzz_home)
    job, refused = call("jt.tune", jt.tune, args, store=fuzz_home, declared=[d.name for d in TUNE],
                        changes_store=True)
    if refused is None:  # a job was made: what it stored is a valid parameter set, and no process started
        record = JobStore().read(job.id)
        TuningParams.from_dict(record["params"])
        assert ("job", job.id) in no_job_starts or record["state"] == "JOB_STATE_QUEUED"
        JobStore().delete(job.id)
        assert folder_digest(fuzz_home) == before, "jt.tune changed the store beyond its new job's folder"


# -- jt.sweep --
def _sweep_declaration() -> list[Declared]:
    """SweepArgs when it is declared (params/arguments.py), else jt.sweep's signature as it reads."""
    from jupyter_tune.params import arguments as declared_arguments

    spec = getattr(declared_arguments, "SweepArgs", None)
    if spec is not None:
        return declared(spec, jt.sweep)

    @dataclasses.dataclass
    class SweepSignature:  # jt.sweep's arguments as its docstring describes them
        base: dict = dataclasses.field(default=None, metadata={"kind": None})
        grid: dict = dataclasses.field(default=None, metadata={})
        search: str | None = dataclasses.field(default=None, metadata={"choices": (None, "grid", "optuna")})
        n_trials: int | None = dataclasses.field(default=None, metadata={"minimum": 1})
        objective: str | None = dataclasses.field(default=None, metadata={})
        pruner: Any = dataclasses.field(default="median", metadata={})
        parallel: int | None = dataclasses.field(default=None, metadata={"minimum": 1})
        enqueue: list | None = dataclasses.field(default=None, metadata={})
        seed: int = dataclasses.field(default=0, metadata={"minimum": 0, "maximum": 2**32 - 1})
        name: str | None = dataclasses.field(default=None, metadata={})

    return declared(SweepSignature, jt.sweep)


SWEEP = _sweep_declaration()
# grid values: fields whose values a sweep varies, each with a few valid values, and ranges for Optuna
GRID_CHOICES = {"adapter_size": [4, 8], "epochs": [1, 2], "learning_rate_multiplier": [0.5, 1.0, 2.0],
                "lora_dropout": [0.0, 0.1], "seed": [0, 1], "batch_size": [4, 8]}
GRID_RANGES = {"learning_rate_multiplier": (0.1, 10.0), "lora_dropout": (0.0, 0.5), "warmup_ratio": (0.0, 0.2)}


@st.composite
def sweep_base(draw, tune_kinds) -> dict:
    rows = draw(tune_kinds["dataset"][0])
    base = {"train_dataset": rows}
    if draw(st.booleans()):
        base["validation_dataset"] = draw(tune_kinds["dataset"][0])
    return base


@st.composite
def sweep_grid(draw) -> dict:
    names = draw(st.lists(st.sampled_from(sorted(GRID_CHOICES)), min_size=1, max_size=2, unique=True))
    grid: dict[str, Any] = {n: draw(st.lists(st.sampled_from(GRID_CHOICES[n]), min_size=1, max_size=2, unique=True))
                            for n in names}
    if draw(st.booleans()):  # a range (Optuna)
        name = draw(st.sampled_from(sorted(GRID_RANGES)))
        grid[name] = GRID_RANGES[name]
    return grid


# grids no search can run: empty, not lists, unknown or unsweepable fields, invalid values, reversed ranges,
# ranges over strings or over a field with choices, and grids far too large to run
BAD_GRIDS = (
    {}, 5, "epochs", [("epochs", [1])], {"epochs": []}, {"epochs": 3}, {"epochs": None}, {"nope": [1, 2]},
    {"epochs": [0]}, {"epochs": [1, float("nan")]}, {"learning_rate_multiplier": [float("inf")]},
    {"learning_rate_multiplier": (10.0, 0.1)}, {"prompt_template": ("a", "b")}, {"adapter_size": (1, 32)},
    {"learning_rate_multiplier": (0.1, float("nan"))}, {"epochs": (1, 2, 3)}, {"method": ["nope"]},
    {"seed": list(range(1000)), "epochs": list(range(1, 101)), "lora_dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]},
    {"seed": list(range(600))},
)
BAD_BASES = (None, 5, "train.jsonl", [], {}, {"epochs": 2}, {"train_dataset": None}, {"train_dataset": 5},
             {"train_dataset": "t.jsonl", "nope": 1}, {"train_dataset": "t.jsonl", "lora_alpha": 0})  # never a grid key
PRUNERS_OK = (None, "median", "percentile", "hyperband", "successive_halving", {"type": "median"},
              {"type": "median", "n_startup_trials": 1, "min_evaluations": 2})
PRUNERS_BAD = ("nope", 5, {"type": "nope"}, {}, {"type": "median", "bogus": 1},
               {"type": "median", "min_evaluations": -1}, {"type": "median", "n_startup_trials": "x"}, ["median"])
OBJECTIVES_OK = (None, "eval_macro_f1", "eval_total_loss", "train_total_loss")


def sweep_arguments(tune_kinds) -> st.SearchStrategy[list[Arg]]:
    return arguments(
        SWEEP, tune_kinds, most=4, always=("base", "grid"),
        cheap={"base": sweep_base(tune_kinds), "grid": sweep_grid(), "n_trials": (1, 3), "parallel": (1, 2),
               "max_jobs": (1, 64),
               "pruner": st.sampled_from(PRUNERS_OK), "objective": st.sampled_from(OBJECTIVES_OK),
               "enqueue": st.sampled_from([None, []]), "search": st.sampled_from([None, "grid", "optuna"]),
               "name": st.one_of(st.none(), st.text(min_size=1, max_size=12).filter(str.strip))},
        bad={"base": st.sampled_from(BAD_BASES), "grid": st.sampled_from(BAD_GRIDS),
             "pruner": st.sampled_from(PRUNERS_BAD), "objective": st.sampled_from(("nope", 5, "", ["eval_loss"])),
             "enqueue": st.sampled_from((5, "x", [5], [None], {"epochs": 1})),
             "search": st.sampled_from(("random", "", 5, "OPTUNA")),
             "parallel": st.sampled_from((-1, 0, "x", 1.5, float("nan"))),
             "n_trials": st.sampled_from((0, -1, "x", 1.5, float("inf"), 10**12)),
             "seed": st.sampled_from((-1, "x", 1.5, float("nan"), 2**64)),
             "name": st.one_of(st.sampled_from((5, [], ["a"], "", "   ")),
                               junk.filter(lambda v: v is not None and not isinstance(v, str)))})


def _remove_sweep(sweep) -> None:
    from jupyter_tune.api.sweep import SweepStore

    store = JobStore()
    for job_id in sweep.job_ids:
        store.delete(job_id)
    SweepStore().delete(sweep.id)


def checked_whole(**kwargs):
    """jt.sweep, and then what it promises: checked whole before its first job, so every point of a grid
    became a job (none refused when it was submitted)."""
    sweep = jt.sweep(**kwargs)
    refused = [t for t in sweep.trials if not t.get("job_id")]
    if refused:
        _remove_sweep(sweep)
        raise Accepted("a sweep", [f"point {t['params']} refused when submitted: {t.get('error')}"
                                   for t in refused[:3]])
    return sweep


def consistent(args: list[Arg], n_trials: int) -> list[Arg]:
    """The valid arguments made valid together, so that a refusal is about the invalid ones: the base, grid,
    objective, pruner and enqueue of jt.sweep are checked by its rules, which run in turn (an objective is
    judged once the grid is right), so a valid value that only another search takes is made one that this
    search takes: ranges become lists and the Optuna-only arguments leave a grid sweep; an Optuna search gets
    its n_trials."""
    search = next((a.value for a in args if a.name == "search"), None)
    optuna = search == "optuna"
    out = []
    for a in args:
        if a.valid and a.name == "grid" and not optuna:
            a = Arg("grid", {k: list(v) if isinstance(v, tuple) else v for k, v in a.value.items()}, True)
        if a.valid and a.name in ("n_trials", "parallel") and not optuna:
            continue
        out.append(a)
    if optuna and not any(a.name == "n_trials" for a in out):
        out.append(Arg("n_trials", n_trials, True))
    return out


@fuzz_settings(80)
@given(data=st.data())
def test_sweep(data, tune_kinds, fuzz_home):
    args = consistent(data.draw(sweep_arguments(tune_kinds), label="arguments"),
                      data.draw(st.integers(1, 3), label="n_trials"))
    before = folder_digest(fuzz_home)
    sweep, refused = call("jt.sweep", checked_whole, args, store=fuzz_home, declared=[d.name for d in SWEEP],
                          changes_store=True, timeout=20)
    if refused is None:  # made: its jobs and its folder are all it added
        _remove_sweep(sweep)
        assert folder_digest(fuzz_home) == before, "jt.sweep changed the store beyond its folder and jobs"
