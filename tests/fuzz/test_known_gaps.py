"""The fuzzer's findings in code that other people are changing now (issue 33), one minimal reproduction each.

Each is ``xfail(strict=False)`` until its owner closes it: the property tests tolerate exactly these (known.py)
so that they keep looking for new ones. When one of these passes, remove it here and its Gap in known.py.
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
    return pytest.mark.xfail(strict=False, reason=f"known gap {gap_id!r}, to be fixed in {OWNER[gap_id]}")


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TRAIN_ROWS))
    return path


@gap("tune-dataset-not-checked")
@pytest.mark.parametrize("bad", [5, [1, 2], {"input_text": "a"}, b"train.jsonl"])
def test_tune_refuses_a_dataset_of_the_wrong_type_by_name(bad, tune_home, tiny_model_dir):
    """jt.tune(train_dataset=5) is a DatasetError about "<list>: Unsupported dataset type int": tune hands
    TuningParams describe_source(5) == "<list>", a string, so the dataset kind's check never sees the 5."""
    with pytest.raises(ParameterError, match=r"train_dataset: .*int|train_dataset: .*list|train_dataset: .*dict|"
                                             r"train_dataset: .*bytes"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=bad)
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


@gap("empty-keyword-unnamed")
def test_tune_names_an_empty_keyword(tune_home, train_file, tiny_model_dir):
    """jt.tune(..., **{"": 1}) says "Unknown tuning parameter(s): . Known: ...": the empty name is not shown."""
    with pytest.raises(ParameterError, match="''"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=str(train_file), **{"": 1})


@gap("grader-kind-unchecked")
@pytest.mark.parametrize("kind", ["python", None, 5])
def test_a_grader_object_refuses_another_kind(kind):
    """LabelMatch(kind="python") is accepted, and its to_json() then names a python grader without source."""
    from jupyter_tune.graders import LabelMatch

    with pytest.raises(ParameterError, match="kind"):
        LabelMatch(kind=kind)


@gap("grader-unknown-option-typeerror")
@pytest.mark.parametrize("option", ["zz_unknown", "self", "threshold"])
def test_a_grader_object_refuses_an_unknown_option_by_name(option):
    """LabelMatch(zz_unknown=1) is the dataclass's own TypeError, not a ParameterError naming the option
    (grader_from_spec refuses the same option as a ParameterError)."""
    from jupyter_tune.graders import LabelMatch

    with pytest.raises(ParameterError, match=option):
        LabelMatch(**{option: 1})


@gap("spec-kind-unnamed")
@pytest.mark.parametrize(("spec", "field"), [({"kind": "score_model"}, "kind"), ({"type": "model"}, "type"),
                                             ({"type": "nope"}, "type")])
def test_a_grader_spec_refusal_names_its_kind_field(spec, field):
    """{"kind": "score_model"} is refused naming the value only; {"type": "nope"} is refused as "kind 'nope'"."""
    from jupyter_tune.graders import grader_from_spec

    with pytest.raises(ParameterError) as e:
        grader_from_spec(spec)
    assert names(str(e.value), field), str(e.value)


@gap("cells-compare-unknown-job")
def test_compare_cells_refuse_a_job_that_does_not_exist(tune_home):
    """POST cells compare {"job_ids": ["no-such-job"]} answers 200, and the cell's jt.compare_jobs raises
    JobNotFoundError in the kernel: the ids' format is checked, not that each job exists."""
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


@gap("sweep-preference-data-unchecked")
def test_sweep_refuses_preference_pairs_without_dpo(tune_home, tmp_path, no_spawn):
    """jt.sweep({"train_dataset": pairs}, {"epochs": [1, 2]}) makes a sweep whose two points are both refused
    when submitted ("preference data trains with method='dpo'"): sweep.py validates the data without
    preference=, so pairs pass as rows. jt.tune refuses the same data before anything is written."""
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


@gap("sweep-base-blamed-on-grid")
def test_sweep_names_the_base_for_a_bad_base_value(tune_home, train_file, no_spawn):
    """jt.sweep({"train_dataset": ..., "epochs": 0}, {"adapter_size": [4]}) is refused as "grid: the point
    {'adapter_size': 4} is not a valid job: epochs: 0 is below the minimum 1": the grid is blamed for the
    base's value."""
    with pytest.raises(ParameterError, match=r"base\b.*epochs"):
        jt.sweep({"train_dataset": str(train_file), "epochs": 0}, {"adapter_size": [4]})
