"""One gate (issue 33): every public entry point checks its arguments against declarations before anything is
read, written or started, and refuses with one exception type naming the argument, its value and what is
allowed. The reproductions from the issue, and the values that cannot apply said as warnings on the job."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import jupyter_tune as jt
from jupyter_tune.api import launch
from jupyter_tune.jobs import queue
from jupyter_tune.jobs.handle import JobHandle
from jupyter_tune.params import ParameterError, TuningParams, inapplicable, schema
from jupyter_tune.params import arguments as declared
from tests.support.store_digest import folder_digest

ROWS = [{"input_text": f"note {i} about the knee", "output_text": "Orthopedic" if i % 2 else "Neurology"}
        for i in range(40)]


def test_every_public_entry_point_is_behind_the_gate():
    from jupyter_tune.export.api import export  # jt.export may be the callable package that calls it

    gated = {jt.split: declared.SplitArgs, jt.check_dataset: declared.CheckDatasetArgs,
             jt.baseline: declared.BaselineArgs, jt.evaluate: declared.EvaluateArgs,
             jt.generate_text: declared.GenerateArgs, export: declared.ExportArgs, jt.sweep: declared.SweepArgs,
             JobHandle.use_checkpoint: declared.UseCheckpointArgs}
    for fn, spec in gated.items():
        assert getattr(fn, "__gate__", None) is spec, fn.__name__
        # every declaration is in the schema's vocabulary: a type, choices, a range or a kind
        for f in dataclasses.fields(spec):
            assert {"help", "choices", "minimum", "maximum", "kind", "exclusive"} <= set(f.metadata), f.name
    # GET schema sends the same declarations (what the panel and an agent read)
    described = schema()["entry_points"]
    assert set(described) == set(declared.ENTRY_POINTS)
    assert {p["name"] for p in described["split"]} == {f.name for f in dataclasses.fields(declared.SplitArgs)}


# (call, the argument the refusal must name): the reproductions that raised raw errors
REFUSED = [
    (lambda: jt.split(ROWS, test_size="0.2"), "test_size: expected float, got str '0.2'"),
    (lambda: jt.split(ROWS, threshold=float("nan")), "threshold: nan is not a finite number"),
    (lambda: jt.split(ROWS, test_size=float("inf")), "test_size: inf is not a finite number"),
    (lambda: jt.split(ROWS, seed="x"), "seed: expected int"),
    (lambda: jt.split(ROWS, prompt_template="X {input_text"), "prompt_template"),
    (lambda: jt.split(5), "data: expected a file path, a list of dicts or a pandas DataFrame, got int 5"),
    (lambda: jt.split([1, 2]), "data: row 0 is int"),
    (lambda: jt.check_dataset(ROWS, min_examples="a"), "min_examples: expected int, got str 'a'"),
    (lambda: jt.check_dataset(ROWS, bogus=1), "has no argument 'bogus'"),
    (lambda: jt.export("some-job", 5), "dest: expected a non-empty path"),
    (lambda: jt.export("Not A Job!", "out"), "job_or_id: 'Not A Job!' is not a job or a job id"),
    (lambda: jt.export("some-job", "out", max_prompts=0), "max_prompts: 0 is below the minimum 1"),
    (lambda: jt.evaluate("m", ROWS, graders=5), "graders: expected a list of graders"),
    (lambda: jt.evaluate("m", ROWS, batch_size=0), "batch_size: 0 is below the minimum 1"),
    (lambda: jt.evaluate(5, ROWS), "model: expected a model id"),
    (lambda: jt.generate_text("m", ROWS, top_p=0.0), "top_p: 0.0 must be above 0"),
    (lambda: jt.generate_text("m", ROWS, stop_sequences=[""]), "stop_sequences"),
    (lambda: jt.generate_text("m", ROWS, temperature=float("nan")), "temperature: nan is not a finite number"),
    (lambda: jt.baseline(ROWS, ROWS, labels="Neurology"), "labels: expected list[str]"),
    (lambda: jt.tune("m", ROWS, "x", "y"), "jt.tune: too many positional arguments"),
    (lambda: jt.tune("m"), "train_dataset: required"),
]


@pytest.mark.parametrize(("call", "named"), REFUSED, ids=[n.split(":")[0][:30] for _, n in REFUSED])
def test_a_bad_argument_is_refused_by_name_and_nothing_is_written(call, named, tune_home):
    before = folder_digest(tune_home)
    with pytest.raises(ParameterError) as refused:
        call()
    assert named in str(refused.value)
    assert isinstance(refused.value, ValueError)  # catchable as before
    assert folder_digest(tune_home) == before


@pytest.fixture
def unstarted(monkeypatch):
    """jt.tune writes the job and starts no process."""
    monkeypatch.setattr(launch, "_spawn", lambda *a: None)
    monkeypatch.setattr(queue, "spawn_worker", lambda *a: None)


def test_use_checkpoint_refuses_a_step_that_is_not_one(tune_home, tiny_model_dir, unstarted):
    job = jt.tune(str(tiny_model_dir), ROWS)
    before = folder_digest(tune_home)
    for step in ("4", -1, 1.5, True):
        with pytest.raises(ParameterError, match="step: .* is not a checkpoint step"):
            job.use_checkpoint(step)
    assert folder_digest(tune_home) == before
    job.cancel()


def test_the_schema_carries_the_same_rules_the_gate_runs():
    by_name = {p["name"]: p for p in schema()["parameters"]}
    assert by_name["prompt_template"]["kind"] == "template"
    with pytest.raises(ParameterError, match="prompt_template: 'X {input_text'"):
        TuningParams(prompt_template="X {input_text")
    holdout = {p["name"]: p for p in schema()["action_parameters"]}["holdout"]
    assert (holdout["minimum"], holdout["maximum"]) == (0.05, 0.5)


def test_values_that_cannot_apply_are_warned_on_the_job(tune_home, tiny_model_dir, unstarted):
    params = TuningParams(sample_prompts=2, eval_steps=5, select_best="eval_total_loss")
    notes = inapplicable(params, has_validation=False)
    assert [n.split("=")[0] for n in notes] == ["sample_prompts", "eval_steps", "select_best"]
    assert inapplicable(params, has_validation=True) == []
    job = jt.tune(str(tiny_model_dir), ROWS, eval_steps=5, sample_prompts=2)
    record = json.loads((Path(tune_home) / "jobs" / job.id / "job.json").read_text())
    said = " ".join(record["warnings"])
    assert "eval_steps=5 does not apply" in said and "sample_prompts=2 does not apply" in said
    from jupyter_tune.widgets.details import details_rows

    shown = [v for k, v in details_rows(record) if k == "Warning"]  # the Details tab says it too
    assert any("eval_steps=5 does not apply" in v for v in shown)
    job.cancel()
