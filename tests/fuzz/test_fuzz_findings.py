"""The fuzzer's findings in code that others were changing at the time (issue 33), one minimal reproduction
each, all closed by their owners since (they were xfail(strict=False) while known.py tolerated them in the
property tests). A new finding of that kind goes here with ``gap(...)`` and a Gap in known.py until it is closed.

The findings fixed with the fuzzer itself are beside their property tests (test_fuzz_data.py: jt.split's
threshold, jt.baseline without words; test_fuzz_models.py: jt.export's ``self=``).
"""

from __future__ import annotations

import json

import pytest

import jupyter_tune as jt
from jupyter_tune.params import ParameterError

from .known import GAPS
from .outcomes import names
from .rows import TRAIN_ROWS

OWNER = {g.id: g.owner for g in GAPS}


def gap(gap_id: str):
    """Mark the reproduction of a gap listed in known.py (xfail until its owner closes it)."""
    return pytest.mark.xfail(strict=False, reason=f"known gap {gap_id!r}, to be fixed in {OWNER[gap_id]}")


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TRAIN_ROWS))
    return path


@pytest.mark.parametrize("bad", [5, [1, 2], {"input_text": "a"}, b"train.jsonl"])
def test_tune_refuses_a_dataset_of_the_wrong_type_by_name(bad, tune_home, tiny_model_dir):
    """Found: jt.tune(train_dataset=5) was a DatasetError about "<list>: Unsupported dataset type int" (tune
    handed TuningParams describe_source(5) == "<list>", a string, so the dataset kind's check never saw the 5).
    Fixed in api/launch.py."""
    with pytest.raises(ParameterError, match=r"train_dataset: .*int|train_dataset: .*list|train_dataset: .*dict|"
                                             r"train_dataset: .*bytes"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=bad)
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


def test_tune_names_an_empty_keyword(tune_home, train_file, tiny_model_dir):
    """Found: jt.tune(..., **{"": 1}) said "Unknown tuning parameter(s): . Known: ...", the empty name not
    shown. Fixed in params/__init__.py (TuningParams.from_dict)."""
    with pytest.raises(ParameterError, match="''"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=str(train_file), **{"": 1})


@pytest.mark.parametrize("kind", ["python", None, 5])
def test_a_grader_object_refuses_another_kind(kind):
    """Found: LabelMatch(kind="python") was accepted, and its to_json() then named a python grader without
    source. Fixed in graders/*.py."""
    from jupyter_tune.graders import LabelMatch

    with pytest.raises(ParameterError, match="kind"):
        LabelMatch(kind=kind)


@pytest.mark.parametrize("option", ["zz_unknown", "self", "threshold"])
def test_a_grader_object_refuses_an_unknown_option_by_name(option):
    """Found: LabelMatch(zz_unknown=1) was the dataclass's own TypeError, not a ParameterError naming the
    option (grader_from_spec refused the same option as a ParameterError). Fixed in graders/*.py."""
    from jupyter_tune.graders import LabelMatch

    with pytest.raises(ParameterError, match=option):
        LabelMatch(**{option: 1})


@pytest.mark.parametrize(("spec", "field"), [({"kind": "score_model"}, "kind"), ({"type": "model"}, "type"),
                                             ({"type": "nope"}, "type")])
def test_a_grader_spec_refusal_names_its_kind_field(spec, field):
    """Found: {"kind": "score_model"} was refused naming the value only, {"type": "nope"} as "kind 'nope'".
    Fixed in params/__init__.py (grader_spec_problems)."""
    from jupyter_tune.graders import grader_from_spec

    with pytest.raises(ParameterError) as e:
        grader_from_spec(spec)
    assert names(str(e.value), field), str(e.value)


def test_compare_cells_refuse_a_job_that_does_not_exist(tune_home):
    """Found: POST cells compare {"job_ids": ["no-such-job"]} answered 200, and the cell's jt.compare_jobs
    raised JobNotFoundError in the kernel (the ids' format was checked, not that each job exists). Fixed in
    cells/render.py."""
    from jupyter_tune.cells import render_cells
    from jupyter_tune.jobs.store import JobStore

    with pytest.raises(ParameterError, match="job_ids"):
        render_cells("compare", {"job_ids": ["no-such-job"]}, JobStore())


@pytest.fixture
def no_spawn(monkeypatch):
    """No job process nor sweep driver starts."""
    from jupyter_tune.api import launch, sweep

    monkeypatch.setattr(launch, "_spawn", lambda *a: None)
    monkeypatch.setattr(sweep.Sweep, "_start_driver", lambda self, *a, **k: None)


def test_sweep_refuses_preference_pairs_without_dpo(tune_home, tmp_path, no_spawn):
    """Found: jt.sweep({"train_dataset": pairs}, {"epochs": [1, 2]}) made a sweep whose two points were both
    refused when submitted ("preference data trains with method='dpo'"): sweep.py validated the data without
    preference=, so pairs passed as rows, where jt.tune refuses them before anything is written. Fixed in
    api/sweep.py."""
    from jupyter_tune.data.errors import DatasetError
    from tests.support.store_digest import folder_digest

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"q {i}", "chosen": "good", "rejected": "bad"}) + "\n"
                             for i in range(20)))
    tune_home.mkdir(parents=True, exist_ok=True)
    before = folder_digest(tune_home)
    with pytest.raises(DatasetError, match="method='dpo'"):
        jt.sweep({"train_dataset": str(pairs)}, {"epochs": [1, 2]})
    assert folder_digest(tune_home) == before


def test_sweep_names_the_base_for_a_bad_base_value(tune_home, train_file, no_spawn):
    """Found: jt.sweep({"train_dataset": ..., "epochs": 0}, {"adapter_size": [4]}) was refused as "grid: the
    point {'adapter_size': 4} is not a valid job: epochs: 0 is below the minimum 1", the grid blamed for the
    base's value. Fixed in params/arguments.py (sweep_rules)."""
    with pytest.raises(ParameterError, match=r"base\b.*epochs"):
        jt.sweep({"train_dataset": str(train_file), "epochs": 0}, {"adapter_size": [4]})
