"""jt.sweep through the one gate (issue 33): the whole sweep is checked before its first job or folder (its
size against max_jobs, every grid value and range against the TuningParams field it names, the objective,
the pruner's arguments, seed, parallel, n_trials), a refused sweep leaves the store as it was, and a sweep
that failed says why. Also TuningParams' rdzv_endpoint, which must be host:port.

No training: refusals need none, accepted grids submit through a stand-in, and the one driver started
runs against a model folder that does not exist (every trial is refused before a job exists)."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest

import jupyter_tune as jt
from jupyter_tune.api import sweep as sweep_module
from jupyter_tune.api.sweep import SweepStore, distributions
from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import JobStore, process_alive
from jupyter_tune.params import ParameterError, TuningParams, schema
from jupyter_tune.params.arguments import SweepArgs
from tests.support.store_digest import folder_digest

ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(12)
        for t in ("Urology", "Neurology")]
VAL = [{"input_text": f"Another case {i} of {t}.", "output_text": t} for i in range(4) for t in ("Urology", "Neurology")]
MISSING_MODEL = "/nonexistent/jupyter-tune-test-model"
BASE = dict(base_model=MISSING_MODEL, train_dataset=ROWS)
# The grid: 594,000 points (it wrote 908 job folders in 9 minutes before it blocked).
HUGE = {"learning_rate": [1e-4 * (i + 1) for i in range(10)], "max_steps": list(range(1, 100)),
        "warmup_ratio": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "seed": list(range(100))}


@pytest.fixture
def home(tune_home):
    """An empty store (created, so that its digest is of a folder) whose processes die with the test."""
    (tune_home / "sweeps").mkdir(parents=True)
    yield tune_home
    for record in JobStore().list():
        if process_alive(record.get("pid"), record.get("pid_create_time")):
            os.kill(record["pid"], signal.SIGKILL)
    store = SweepStore()
    for sweep_id in store.ids():
        driver = store.read(sweep_id).get("driver") or {}
        if process_alive(driver.get("pid"), driver.get("create_time")):
            os.kill(driver["pid"], signal.SIGKILL)


def optuna(**kw):
    return dict(search="optuna", n_trials=2, **kw)


# (jt.sweep's arguments beside base, what the refusal says): each passed through to the driver before, and
# failed there with a raw Optuna error, or (the grid) wrote job folders for minutes.
REFUSED = [
    (dict(grid=HUGE), r"grid: 594,000 points \(10 learning_rate x 99 max_steps x 6 warmup_ratio x 100 seed\) is "
                      r"more than max_jobs=64.*pass max_jobs=594000"),
    (dict(grid={"learning_rate": (1e-3, 1e-4)}, **optuna()), r"grid\['learning_rate'\]: \(0.001, 0.0001\): low "
                                                              r"must be below high"),
    (dict(grid={"lr_scheduler_type": ("linear", "cosine")}, **optuna()),
     r"grid\['lr_scheduler_type'\]: a \(low, high\) range is for a numeric parameter without choices"),
    (dict(grid={"adapter_size": (4, 16)}, **optuna()),
     r"grid\['adapter_size'\]: a \(low, high\) range is for a numeric parameter without choices; adapter_size is "
     r"one of 1, 2, 4, 8, 16, 32"),
    (dict(grid={"epochs": (1, 2.5)}, **optuna()), r"grid\['epochs'\]: epochs is a whole number"),
    (dict(grid={"learning_rate": (0, 1e-3)}, **optuna()), r"grid\['learning_rate'\]: 0 is below the minimum"),
    (dict(grid={"learning_rate": (1e-4, 1e-3, 1e-2)}, **optuna()), r"a range is a \(low, high\) pair"),
    (dict(grid={"learning_rate": (1e-4, float("nan"))}, **optuna()), r"finite numbers, got nan"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(objective="eval_f1")),
     r"objective: 'eval_f1' is not a metric a job logs; they log 'train_total_loss'"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(objective="train_reward")),
     r"objective: 'train_reward' is not logged by method='lora' jobs"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(objective="eval_macro_f1")),
     r"objective: 'eval_macro_f1' is measured on a validation set, and the sweep's jobs have none"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(pruner={"type": "median", "n_startup": 2})),
     r"pruner\['n_startup'\]: not an argument of the median pruner; its arguments: interval_steps, "
     r"min_evaluations, n_min_trials, n_startup_trials, n_warmup_steps"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(pruner={"type": "median", "n_startup_trials": "2"})),
     r"pruner\['n_startup_trials'\]: '2' is not a whole number"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(pruner={"type": "percentile", "percentile": 150})),
     r"pruner\['percentile'\]: 150 is outside from 0.0 to 100.0"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(pruner={"type": "hyperband", "bootstrap_count": 2})),
     r"pruner: Optuna refuses .*bootstrap_count"),  # beyond the declared types: Optuna's own check, run early
    (dict(grid={"adapter_size": [4, 8]}, **optuna(pruner="mean")), r"pruner: 'mean' is not None, one of"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(seed="x")), r"seed: expected int, got str 'x'"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(parallel=-1)), r"parallel: -1 is below the minimum 1"),
    (dict(grid={"adapter_size": [4, 8]}, search="optuna", n_trials=500),
     r"n_trials: 500 is more than max_jobs=64.*pass max_jobs=500"),
    (dict(grid={"adapter_size": [4, 8]}, search="optuna", n_trials=0), r"n_trials: 0 is below the minimum 1"),
    (dict(grid={"adapter_size": [4, 8]}, **optuna(enqueue=[{"adapter_size": 4}, {"adapter_size": 8},
                                                            {"adapter_size": 4}])),
     r"enqueue: 3 points to try first, but n_trials=2"),
    (dict(grid={"target_modules": [["q_proj"], ["v_proj"]]}, **optuna()),
     r"grid\['target_modules'\]: Optuna's choices are None, bool, int, float or str, not list"),
    (dict(grid={"adapter_size": [4, 8]}, parallel=2), r"parallel: 2 is for search='optuna'"),
    (dict(grid={"adapter_size": [4, 8]}, enqueue=[{"adapter_size": 4}]), r"enqueue: .* is for search='optuna'"),
    (dict(grid={"adapter_size": [4, 8, 4]}), r"grid\['adapter_size'\]: 4 is listed twice"),
    (dict(grid={"adapter_size": 4}), r"grid\['adapter_size'\]: expected a non-empty list of values, got int 4"),
    (dict(grid={"adapter_size": (4, 8)}), r"a \(low, high\) range is for search='optuna'"),
    (dict(grid={"bogus": [1, 2]}), r"grid: 'bogus' is not a tuning parameter"),
    (dict(grid={"tuned_model_display_name": ["a", "b"]}), r"each job is named after the sweep"),
    (dict(grid={"num_generations": [3, 4]}, base=dict(BASE, method="grpo", batch_size=8)),
     r"grid: the point \{'num_generations': 3\} is not a valid job: num_generations: 3 must divide batch_size"),
    (dict(grid={"adapter_size": [4, 8]}, base=dict(BASE, bogus=1)), r"base: 'bogus' is not a tuning parameter"),
    (dict(grid={"adapter_size": [4, 8]}, base={"base_model": MISSING_MODEL}),
     r"base\['train_dataset'\]: required"),
    (dict(grid={"adapter_size": [4, 8]}, base=dict(BASE, train_dataset=5)),
     r"base\['train_dataset'\]: expected a file path, a list of dicts or a pandas DataFrame, got int 5"),
    (dict(grid={"adapter_size": [4, 8]}, max_jobs=0), r"max_jobs: 0 is below the minimum 1"),
    (dict(grid={"adapter_size": [4, 8]}, name=" "), r"name: empty"),
    (dict(grid=5), r"grid: expected dict, got int 5"),
]


@pytest.mark.parametrize("kwargs, says", REFUSED, ids=[f"refused-{i}" for i in range(len(REFUSED))])
def test_a_bad_sweep_is_refused_whole_before_anything_exists(home, kwargs, says):
    before = folder_digest(home)
    t = time.perf_counter()
    with pytest.raises(ParameterError, match=says) as e:
        jt.sweep(**{"base": BASE, **kwargs})
    assert time.perf_counter() - t < 20  # the 594,000 points are counted, never listed
    assert str(e.value).startswith("Invalid arguments of jt.sweep:")
    assert folder_digest(home) == before  # nothing written: no sweep folder, no job, no data file
    assert JobStore().ids() == [] and SweepStore().ids() == []


def test_raising_max_jobs_lets_a_larger_grid_through(home, monkeypatch):
    """max_jobs= is the way past the limit that the refusal names; points are submitted through a stand-in
    (no job starts)."""
    submitted = []

    def stand_in(record, params, number):
        submitted.append(params)
        return SimpleNamespace(id=f"stand-in-{number}")

    monkeypatch.setattr(sweep_module, "submit", stand_in)
    grid = {"learning_rate": [1e-4 * (i + 1) for i in range(10)], "adapter_size": [1, 2, 4, 8, 16, 32, 8][:6],
            "lora_dropout": [0.0, 0.1]}  # 120 points
    with pytest.raises(ParameterError, match="pass max_jobs=120"):
        jt.sweep(base=BASE, grid=grid)
    assert submitted == [] and SweepStore().ids() == []
    s = jt.sweep(base=BASE, grid=grid, max_jobs=120)
    assert len(submitted) == 120 and len(s.trials) == 120
    assert s.record["n_trials"] == 120 and s.record["max_jobs"] == 120


def test_a_grid_sweep_whose_every_point_failed_says_why(home, monkeypatch):
    """It read FAILED with error=None."""
    def refuse(record, params, number):
        raise RuntimeError(f"not enough memory for adapter_size={params['adapter_size']}")

    monkeypatch.setattr(sweep_module, "submit", refuse)
    s = jt.sweep(base=BASE, grid={"adapter_size": [4, 8]}, name="refused")
    error = jt.get_sweep(s.id).error  # read first, before anything asked for its state
    assert error is not None and "No job of the sweep gave a value of train_total_loss (2 failed)" in error
    assert "trial 0 {'adapter_size': 4}: RuntimeError: not enough memory for adapter_size=4" in error
    assert s.state is JobState.FAILED and s.record["error"] == error


def test_a_search_whose_every_trial_failed_carries_the_reason(home):
    """The driver records why: each trial's job was refused (the base model does not exist)."""
    s = jt.sweep(base=BASE, grid={"adapter_size": [4, 8]}, search="optuna", n_trials=2, parallel=1, pruner=None,
                 name="doomed")
    assert s.wait(timeout=300, poll=0.5) is JobState.FAILED, (home / "sweeps" / s.id / "driver.log").read_text()
    assert "No job of the sweep gave a value of train_total_loss (2 failed)" in s.error
    assert MISSING_MODEL in s.error, s.error  # the refused job's own error, not just "no value"
    assert s.record["error"] == s.error and jt.list_jobs() == []


def test_a_driver_that_stops_records_why(home):
    """A search whose driver raised (here a record from before the gate, with a reversed range) reads FAILED
    with the driver's reason, where to read its log, and that resume() continues it."""
    from jupyter_tune.api import sweep_driver

    store = SweepStore()
    record = {"id": "old-search", "name": "old-search", "search": "optuna", "state": JobState.RUNNING.value,
              "create_time": "2026-01-01T00:00:00+00:00", "create_unix": time.time(), "end_time": None,
              "error": None, "base": {"train_dataset": "/data/train.jsonl", "validation_dataset": None},
              "grid": {"learning_rate": [1e-3, 1e-4]}, "ranges": ["learning_rate"],
              "objective": {"metric": "train_total_loss", "direction": "minimize"}, "n_trials": 2,
              "parallel": 1, "pruner": None, "seed": 0, "enqueue": [], "trials": [],
              "driver": None}
    folder = store.create("old-search", record)
    assert sweep_driver.main([str(folder)]) == 1
    s = jt.get_sweep("old-search")
    assert s.state is JobState.FAILED
    assert s.error.startswith("The sweep's driver stopped: ValueError: ")
    assert str(folder / "driver.log") in s.error and "sweep.resume()" in s.error
    assert JobStore().ids() == []


def test_the_search_space_follows_the_fields_types():
    """A whole-number field's range takes whole numbers; a float field's range stays a float range even with
    whole ends (learning_rate_multiplier (1, 3) is not the choice 1, 2 or 3); rates span decades on a log scale."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = distributions({"epochs": [1, 3], "learning_rate_multiplier": [1, 3], "learning_rate": [1e-5, 1e-3],
                           "adapter_size": [4, 8]}, ["epochs", "learning_rate_multiplier", "learning_rate"])
    assert space["epochs"] == IntDistribution(1, 3)
    assert space["learning_rate_multiplier"] == FloatDistribution(1.0, 3.0)
    assert space["learning_rate"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert space["adapter_size"] == CategoricalDistribution([4, 8])


def test_sweep_is_behind_the_gate_and_in_the_schema():
    assert jt.sweep.__gate__ is SweepArgs
    described = {p["name"]: p for p in schema()["entry_points"]["sweep"]}
    assert described["max_jobs"]["default"] == 64 and described["search"]["choices"] == ["grid", "optuna"]
    assert described["parallel"]["minimum"] == 1


@pytest.mark.parametrize("endpoint", ["not a host", "node0", "node0:0", "node0:65536", "node0:port", ":29500",
                                      "node 0:29500", "http://node0:29500"])
def test_an_rdzv_endpoint_that_is_not_host_port_is_refused(endpoint):
    """It was accepted and dropped."""
    with pytest.raises(ParameterError, match=r"rdzv_endpoint: .* is not host:port"):
        TuningParams(nnodes=2, rdzv_endpoint=endpoint)
    with pytest.raises(ParameterError, match=r"rdzv_endpoint: .* is not host:port"):
        TuningParams(rdzv_endpoint=endpoint)


@pytest.mark.parametrize("endpoint", ["10.0.0.1:29500", "node0:29500", "node-0.cluster.local:1", "[fd00::1]:65535"])
def test_a_host_port_rdzv_endpoint_is_taken(endpoint):
    assert TuningParams(nnodes=2, rdzv_endpoint=endpoint).rdzv_endpoint == endpoint
