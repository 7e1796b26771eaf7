"""Every value the panel can send is checked against the declarations jt.tune uses (issue 21): the cells
endpoint answers 400 naming the field, never 200 with a cell that breaks in the kernel."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient

from jupyter_tune.cells import CellsError, render_cells

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tune_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_tune": True}}}


async def post(jp_fetch, body: str) -> tuple[int, dict]:
    try:
        r = await jp_fetch("jupyter-tune", "cells", method="POST", body=body)
        return r.code, json.loads(r.body)
    except tornado.httpclient.HTTPClientError as e:
        return e.code, json.loads(e.response.body)


# (action, params, the field the refusal must name): the probe's cases that got 200 and a broken cell.
BAD = [
    ("tune", {"train_dataset": 123}, "train_dataset"),
    ("tune", {"train_dataset": ["a.jsonl"]}, "train_dataset"),
    ("tune", {"train_dataset": {"path": "a.jsonl"}}, "train_dataset"),
    ("tune", {"train_dataset": "a.jsonl", "validation_dataset": 5}, "validation_dataset"),
    ("tune", {"train_dataset": "a.jsonl", "validation_dataset": [1]}, "validation_dataset"),
    ("tune", {"train_dataset": "a.jsonl", "report_to": 5}, "report_to"),
    ("tune", {"train_dataset": "a.jsonl", "report_to": True}, "report_to"),
    ("tune", {"train_dataset": "a.jsonl", "report_to": 1.5}, "report_to"),
    ("tune", {"train_dataset": "a.jsonl", "base_model": 123}, "base_model"),
    ("tune", {"train_dataset": "a.jsonl", "base_model": ["x"]}, "base_model"),
    ("tune", {"train_dataset": "a.jsonl", "base_model": True}, "base_model"),
    ("generate", {"max_output_tokens": "abc"}, "max_output_tokens"),
    ("generate", {"max_output_tokens": -5}, "max_output_tokens"),
    ("generate", {"max_output_tokens": 10**12}, "max_output_tokens"),
    ("generate", {"max_output_tokens": [1]}, "max_output_tokens"),
    ("generate", {"max_output_tokens": True}, "max_output_tokens"),
    ("test", {"job_id": "some-job", "prompt": 123}, "prompt"),
    ("export", {"job_id": "some-job", "dest": ["a"]}, "dest"),
    ("export", {"job_id": "some-job", "dest": "out", "format": "zip"}, "format"),
    ("evaluate", {"dataset": {"a": 1}}, "dataset"),
    ("evaluate", {"dataset": "eval.jsonl", "task_type": "regression"}, "task_type"),
    ("compare", {"job_ids": [1, 2]}, "job_ids"),
    ("tune", {"train_dataset": "a.jsonl", "holdout": "0.1"}, "holdout"),
    ("tune", {"train_dataset": "a.jsonl", "holdout": True}, "holdout"),
    ("tune", {"train_dataset": "a.jsonl", "holdout": 0.9}, "holdout"),
    ("tune", {"train_dataset": "a.jsonl", "holdout": 0}, "holdout"),
]


@pytest.mark.parametrize(("action", "params", "field"), BAD, ids=[f"{a}-{f}-{i}" for i, (a, _, f) in enumerate(BAD)])
async def test_a_bad_value_is_refused_naming_its_field(jp_fetch, action, params, field):
    code, body = await post(jp_fetch, json.dumps({"action": action, "params": params}))
    assert code == 400, body
    assert f"  - {field}:" in body["message"], body["message"]


def test_every_problem_is_listed_at_once():
    with pytest.raises(CellsError) as e:
        render_cells("tune", {"train_dataset": 1, "validation_dataset": [2], "epochs": 0, "report_to": 5})
    for name in ("train_dataset", "validation_dataset", "epochs"):
        assert f"  - {name}:" in str(e.value)


def test_good_values_still_make_cells():
    cells = render_cells("generate", {"dataset": "eval.jsonl", "max_output_tokens": 32})
    assert "max_output_tokens=32" in cells[0]["source"]
    cells = render_cells("tune", {"train_dataset": "t.jsonl", "report_to": ["tensorboard"]})
    assert "report_to=['tensorboard']" in cells[1]["source"] or "report_to" in cells[0]["source"] + cells[1]["source"]


async def test_a_body_with_a_repeated_key_is_refused(jp_fetch):
    code, body = await post(jp_fetch, '{"action": "tune", "action": "generate", "params": {}}')
    assert code == 400 and "repeats the key 'action'" in body["message"]
    code, body = await post(jp_fetch, '{"action": "generate", "params": {"max_output_tokens": 5, '
                                      '"max_output_tokens": 6}}')
    assert code == 400 and "max_output_tokens" in body["message"]


async def test_the_schema_declares_the_action_parameters(jp_fetch):
    r = await jp_fetch("jupyter-tune", "schema")
    names = {p["name"]: p for p in json.loads(r.body)["action_parameters"]}
    assert names["max_output_tokens"]["maximum"] >= 1024 and names["format"]["choices"] == ["merged", "adapter", "gguf"]


async def test_holdout_with_a_validation_file_is_refused_naming_both(jp_fetch):
    code, body = await post(jp_fetch, json.dumps({"action": "tune", "params": {
        "train_dataset": "a.jsonl", "validation_dataset": "b.jsonl", "holdout": 0.1}}))
    assert code == 400 and "holdout" in body["message"] and "validation_dataset" in body["message"], body
    with pytest.raises(CellsError, match="preference pairs"):
        render_cells("tune", {"train_dataset": "a.jsonl", "method": "dpo", "holdout": 0.1})


def test_holdout_cells_split_the_training_file_and_tune_on_both_parts(tmp_path, monkeypatch):
    """The cells run as a user would (one namespace), jt.tune replaced by a recorder: jt.split's two parts
    reach jt.tune, and no row (nor input) is on both sides."""
    import jupyter_tune as jt

    rows = [{"input_text": f"note {i} about topic {i % 3}", "output_text": f"label{i % 3}"} for i in range(40)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params_cell, run_cell = (c["source"] for c in render_cells("tune", {"train_dataset": str(data),
                                                                          "holdout": 0.25}))
    assert "holdout = 0.25" in params_cell and "jt.split(train_dataset, test_size=holdout" in run_cell
    seen = {}

    class Job:
        def view(self):
            return None

    monkeypatch.setattr(jt, "tune", lambda **kw: seen.update(kw) or Job())
    namespace: dict = {}
    exec(compile(params_cell, "params", "exec"), namespace)
    exec(compile(run_cell, "run", "exec"), namespace)
    train, val = seen["train_dataset"], seen["validation_dataset"]
    assert len(train) + len(val) == 40 and 5 <= len(val) <= 15
    assert not set(train["input_text"]) & set(val["input_text"])
    assert set(val["output_text"]) == {"label0", "label1", "label2"}  # stratified: every label on both sides
    # Without holdout the cells stay as they were: the files go to jt.tune as given.
    plain = render_cells("tune", {"train_dataset": str(data)})[1]["source"]
    assert "jt.split" not in plain and "train_dataset=train_dataset" in plain


async def test_the_schema_declares_holdout(jp_fetch):
    r = await jp_fetch("jupyter-tune", "schema")
    holdout = {p["name"]: p for p in json.loads(r.body)["action_parameters"]}["holdout"]
    assert (holdout["type"], holdout["minimum"], holdout["maximum"]) == ("float", 0.05, 0.5)
    r = await jp_fetch("jupyter-tune", "templates")
    tune = next(a for a in json.loads(r.body)["actions"] if a["id"] == "tune")
    assert "holdout" in tune["params"]
