"""TuningParams: every field's type read from the real type hints, ranges, non-finite numbers."""

import dataclasses
import math
import typing

import pytest

from jupyter_tune.params import ParameterError, TuningParams, schema

# A valid value and a wrong-typed one for each schema type.
SAMPLES = {
    "bool": (False, "yes"),
    "int": (3, 2.5),
    "float": (0.5, "0.5"),
    "str": ("x", 3),
    "list[str]": (["q_proj", "v_proj"], "q_proj"),
    "list[dict]": ([], ["label_match"]),
}
# Fields whose valid values are narrower than their type's sample.
GOOD = {"report_to": ["tensorboard", "mlflow"], "nnodes": 1, "node_rank": 0, "rdzv_endpoint": "node0:29500",
        "prompt_template": "Label: {input_text}"}  # the rules between fields hold


def _fields():
    hints = typing.get_type_hints(TuningParams)
    return [(f, hints[f.name]) for f in dataclasses.fields(TuningParams)]


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TuningParams)])
def test_every_field_type_is_checked(name):
    spec = next(p for p in schema()["parameters"] if p["name"] == name)
    assert spec["type"] in SAMPLES, f"{name}: schema type {spec['type']} is not one the panel knows"
    if name in ("train_dataset", "validation_dataset"):
        return  # the Python API also takes lists of dicts and DataFrames
    good, bad = SAMPLES[spec["type"]]
    if name in GOOD:
        good = GOOD[name]
    elif spec["choices"]:
        good = next(c for c in spec["choices"] if c is not None)
    elif isinstance(good, (int, float)) and not isinstance(good, bool):
        lo, hi = spec["minimum"], spec["maximum"]
        good = type(good)(lo if lo is not None else good) if hi is None or good > hi or (lo and good < lo) else good
    TuningParams(**{name: good})
    with pytest.raises(ParameterError, match=name):
        TuningParams(**{name: bad})
    if spec["nullable"]:
        TuningParams(**{name: None})
    elif name != "base_model":
        with pytest.raises(ParameterError, match=f"{name}: must be set"):
            TuningParams(**{name: None})


def test_target_modules_list_accepted():
    assert TuningParams(target_modules=["q_proj", "v_proj"]).target_modules == ["q_proj", "v_proj"]


@pytest.mark.parametrize("name", ["learning_rate", "learning_rate_multiplier", "lora_dropout", "warmup_ratio",
                                  "weight_decay"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_refused(name, value):
    with pytest.raises(ParameterError, match=f"{name}: .* not a finite number"):
        TuningParams(**{name: value})


@pytest.mark.parametrize("kw", [dict(seed=-1), dict(seed=2**32), dict(learning_rate=0.0), dict(lora_alpha=0),
                                dict(max_steps=0), dict(num_threads=0), dict(base_model="  ")])
def test_ranges(kw):
    with pytest.raises(ParameterError):
        TuningParams(**kw)


def test_select_best_needs_task_metric():
    with pytest.raises(ParameterError, match="select_best"):
        TuningParams(select_best="eval_macro_f1", eval_task_metric=False)


def test_report_to_names_known_trackers():
    assert TuningParams(report_to=["trackio"]).report_to == ["trackio"]
    with pytest.raises(ParameterError, match="report_to: 'wandb' not among"):
        TuningParams(report_to=["wandb"])


def test_one_source_for_the_main_parameters():
    """The "basic" group drives jt.tune's named arguments, the panel's form (schema labels) and the cells."""
    import inspect

    import jupyter_tune as jt
    from jupyter_tune.cells.render import ACTIONS, MAIN_PARAMS, render_cells
    from jupyter_tune.params import field_default, main_fields

    main = [f.name for f in main_fields()]
    assert list(MAIN_PARAMS) == main and list(ACTIONS["tune"].params) == [*main, "holdout", "holdout_conflicts",
                                                                         "test_dataset"]  # + jt.split's, the report's rows
    sig = inspect.signature(jt.tune)
    for f in main_fields():
        assert sig.parameters[f.name].default == field_default(f), f.name
        assert f.name in jt.tune.__doc__
    assert all(p["label"] for p in schema()["parameters"])
    params_cell, run_cell = (c["source"] for c in render_cells("tune", {"train_dataset": "t.jsonl"}))
    for name in main:
        assert f"\n{name} = " in "\n" + params_cell and f"{name}={name}," in run_cell


def test_effective_values_are_the_details_tabs():
    """The Details tab shows the dataclass's effective alpha and learning rate before the job reports them."""
    from jupyter_tune.widgets.details import details_rows

    p = TuningParams(method="dpo", adapter_size=4, learning_rate_multiplier=2.0)
    rows = dict(details_rows({"params": p.to_dict()}))
    assert rows["LoRA alpha"] == p.effective_lora_alpha == 8
    assert rows["Learning rate"].startswith(f"{p.effective_learning_rate:.3g}")
