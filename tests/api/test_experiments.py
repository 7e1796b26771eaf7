"""Experiments (issue 15) on a tiny local model: three jobs compared side by side, a 2x2 grid sweep that
names its best point, an Optuna search whose pruner stops a bad trial early, and a sweep record that
outlives its handle and is cancelled as a whole."""

from __future__ import annotations

import os
import signal

import pytest

import jupyter_tune as jt
from jupyter_tune.api.sweep import SweepError, SweepStore
from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import JobStore, process_alive
from tests.support.waiting import wait_for

LABELS = ("Urology", "Neurology")
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(12) for t in LABELS]
VAL = [{"input_text": f"Another case {i} of {t}.", "output_text": t} for i in range(4) for t in LABELS]
FAST = dict(batch_size=4, num_threads=1, max_seq_length=128, eval_task_metric=False)


@pytest.fixture
def home(tune_home):
    yield tune_home
    for record in JobStore().list():  # no job process outlives the test
        if process_alive(record.get("pid"), record.get("pid_create_time")):
            os.kill(record["pid"], signal.SIGKILL)
    store = SweepStore()
    for sweep_id in store.ids():
        driver = store.read(sweep_id).get("driver") or {}
        if process_alive(driver.get("pid"), driver.get("create_time")):
            os.kill(driver["pid"], signal.SIGKILL)


def test_compare_three_tiny_jobs(home, tiny_model_dir):
    jobs = [jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=VAL, evaluate_after=False, sample_prompts=0,
                    tuned_model_display_name=f"run-{i}", adapter_size=size, learning_rate=lr, max_steps=6,
                    eval_steps=3, **FAST)
            for i, (size, lr) in enumerate([(4, 0.05), (8, 0.05), (8, 1e-6)])]
    view = jt.compare_jobs([jobs[0], jobs[1].id, jobs[2]], poll_interval=0.2)
    try:
        assert view.live  # the jobs run: it polls
        for job in jobs:
            assert job.wait(timeout=600) is JobState.SUCCEEDED, job.log(60)
        wait_for(lambda: not view.live, timeout=60, what="the view to see every job final")
        drawn = {job_id for job_id, key in view.series if key == "train_total_loss"}
        assert drawn == {j.id for j in jobs}  # three curves
        assert {job_id for job_id, key in view.series if key == "eval_total_loss"} == drawn
        assert view.differing == ["adapter_size", "learning_rate"]
        assert view.objective == ("eval_total_loss", False)
        assert view.best.id != jobs[2].id  # the run that barely learns is not the best
        html = view._repr_html_()
        assert html.count('class="jt-compare-row"') == 3 and "learning_rate" in html
    finally:
        view.stop()


def test_grid_sweep_runs_every_point_and_names_the_best(home, tiny_model_dir):
    s = jt.sweep(base=dict(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=VAL, evaluate_after=False, sample_prompts=0,
                           max_steps=4, eval_steps=2, **FAST),
                 grid={"adapter_size": [4, 8], "learning_rate": [0.05, 1e-6]}, name="grid")
    assert len(s.jobs) == 4
    assert sorted((t["params"]["adapter_size"], t["params"]["learning_rate"]) for t in s.trials) == [
        (4, 1e-6), (4, 0.05), (8, 1e-6), (8, 0.05)]
    assert s.objective == {"metric": "eval_total_loss", "direction": "minimize"}
    assert (home / "sweeps" / s.id / "sweep.json").is_file()
    assert s.wait(timeout=900) is JobState.SUCCEEDED, [j.log(30) for j in s.jobs]
    assert all(j.state is JobState.SUCCEEDED for j in s.jobs)
    best = s.best
    assert best["params"]["learning_rate"] == 0.05
    # The record outlives this handle (a kernel restart): found by id and listed.
    again = jt.get_sweep(s.id)
    assert again.best == best and again.state is JobState.SUCCEEDED
    assert [x.id for x in jt.list_sweeps()] == [s.id]
    view = s.view()
    assert view.best.id == best["job_id"] and f"★ {view.best.name}" in view.title.value
    assert len({job_id for job_id, _ in view.series}) == 4


def test_optuna_search_prunes_a_bad_trial_early(home, tiny_model_dir):
    good, bad = 0.05, 1e-7
    # Early stopping is off: the bad trial's loss barely moves, so patience could end it (SUCCEEDED) before the
    # pruner's cancel lands, which is what this test is about.
    s = jt.sweep(base=dict(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=VAL, evaluate_after=False, sample_prompts=0,
                           eval_steps=2, early_stopping_patience=0, **FAST),
                 # The bad trial is given far more steps than pruning needs, so the cancel always lands
                 # before it could finish (with 30 it once ran to the end first on a loaded CI machine).
                 grid={"learning_rate": [good, bad], "max_steps": [30, 3000]}, search="optuna", n_trials=2,
                 parallel=1, enqueue=[{"learning_rate": good, "max_steps": 30},
                                      {"learning_rate": bad, "max_steps": 3000}],
                 pruner={"type": "median", "n_startup_trials": 1}, name="search")
    assert s.record["driver"]["pid"]
    # Its own name, not the grid's last key (the check loop once reused the variable).
    assert s.id.startswith("search-") and s.record["name"] == "search"
    state = s.wait(timeout=900)
    log = (home / "sweeps" / s.id / "driver.log").read_text()
    assert state is JobState.SUCCEEDED, log
    first, second = sorted(s.trials, key=lambda t: t["number"])
    assert first["params"] == {"learning_rate": good, "max_steps": 30} and first["status"] == "complete", log
    assert second["params"] == {"learning_rate": bad, "max_steps": 3000} and second["status"] == "pruned", log
    pruned_job = jt.get_job(second["job_id"])
    assert pruned_job.wait(timeout=300) is JobState.CANCELLED
    assert pruned_job.metrics["step"].max() < 3000  # stopped early
    assert second["pruned_step"] >= 6, log  # judged from its third evaluation (eval_steps=2), not its first
    assert "pruned at step" in s.view(live=False).table.value
    assert s.best["job_id"] == first["job_id"]
    assert s.record["optuna_best"]["params"] == {"learning_rate": good, "max_steps": 30}


def test_a_sweep_is_cancelled_as_a_whole(home, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("JUPYTER_TUNE_SLOTS", "1")  # one runs, the others wait in the queue
    s = jt.sweep(base=dict(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=5000, save_steps=5000,
                           **FAST), grid={"adapter_size": [4, 8, 16]})
    assert [j.state for j in s.jobs][1:] == [JobState.QUEUED] * 2
    assert s.cancel() is JobState.CANCELLED
    for job in s.jobs:
        assert job.wait(timeout=300) is JobState.CANCELLED
    assert jt.get_sweep(s.id).state is JobState.CANCELLED


def test_bad_sweeps_are_refused_before_any_job(home, tiny_model_dir):
    base = dict(base_model=str(tiny_model_dir), train_dataset=ROWS)
    with pytest.raises(jt.ParameterError, match="adapter_size"):
        jt.sweep(base=base, grid={"adapter_size": [4, 5]})
    with pytest.raises(jt.ParameterError, match="n_trials"):
        jt.sweep(base=base, grid={"adapter_size": [4, 8]}, search="optuna")
    with pytest.raises(jt.ParameterError, match="grid"):
        jt.sweep(base=base, grid={})
    with pytest.raises(jt.ParameterError, match=r"pruner\['min_evaluations'\]: -1"):
        jt.sweep(base=base, grid={"adapter_size": [4, 8]}, search="optuna", n_trials=2,
                 pruner={"type": "median", "min_evaluations": -1})
    # A point to try first that lies outside the search space: Optuna would refuse it only in the driver.
    space = {"epochs": [1, 2], "learning_rate": (1e-4, 1e-3)}
    for point, says in (({"epochs": 6}, r"enqueue\[0\]: epochs=6 is not one of the grid's choices \[1, 2\]"),
                        ({"learning_rate": 1e-2}, r"enqueue\[0\]: learning_rate=0.01 is outside the grid's range"),
                        ({"adapter_size": 8}, r"enqueue\[0\]: 'adapter_size' is not searched")):
        with pytest.raises(jt.ParameterError, match=says):
            jt.sweep(base=base, grid=space, search="optuna", n_trials=2, enqueue=[point])
    assert jt.list_jobs() == [] and jt.list_sweeps() == []
    # The gate's refusals and SweepError are one type to catch.
    assert issubclass(SweepError, jt.ParameterError)


def test_a_search_whose_driver_died_resumes_from_its_record(home, tiny_model_dir):
    s = jt.sweep(base=dict(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=VAL, evaluate_after=False, sample_prompts=0,
                           max_steps=4, eval_steps=2, **FAST),
                 grid={"adapter_size": [4, 8]}, search="optuna", n_trials=2, parallel=1, pruner=None)
    wait_for(lambda: any(t.get("job_id") for t in s.trials), what="the first trial's job")
    driver = s.record["driver"]
    os.kill(driver["pid"], signal.SIGKILL)
    wait_for(lambda: not process_alive(driver["pid"], driver["create_time"]), what="the driver to die")
    assert s.state is JobState.FAILED and "resume()" in s.error
    first_job = s.trials[0]["job_id"]
    again = jt.get_sweep(s.id).resume()  # as from a new kernel
    assert again.wait(timeout=900) is JobState.SUCCEEDED, (home / "sweeps" / s.id / "driver.log").read_text()
    trials = sorted(again.trials, key=lambda t: t["number"])
    assert [t["status"] for t in trials] == ["complete", "complete"]
    assert trials[0]["job_id"] == first_job  # the running trial was picked up, not started again
    assert len(jt.list_jobs()) == 2
