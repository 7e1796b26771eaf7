"""Every value the panel can send is checked against the declarations jt.tune uses (issue 21): the cells
endpoint answers 400 naming the field, never 200 with a cell that breaks in the kernel."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import tornado.httpclient

from jupyter_tune.cells import CellsError, render_cells
from jupyter_tune.params import ParameterError as jt_ParameterError

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


# Issue 33: cells the engine then refused, each now refused by the declarations and checks the Python API uses.
# "{store}" stands for the job store's folder; "done-job" is a succeeded job in it (the fixture below).
PYTHON_SYNTAX_ERROR = "def grade(sample, item)\n    return 1.0\n"
GRPO = {"train_dataset": "a.jsonl", "method": "grpo"}
BAD_33 = [
    ("tune", {"train_dataset": "a.jsonl", "prompt_template": "X {input_text"}, "prompt_template"),
    ("evaluate", {"dataset": "e.jsonl", "prompt_template": "X {input_text"}, "prompt_template"),
    ("tune", {**GRPO, "graders": [{"kind": "python", "source": PYTHON_SYNTAX_ERROR}]}, "graders[0]"),
    ("tune", {**GRPO, "graders": [{"kind": "label_match"}, {"kind": "python", "source": "return 1.0"}]}, "graders[1]"),
    ("tune", {**GRPO, "graders": [{"kind": "python", "source": "def grade(sample):\n    return 1.0"}]}, "graders[0]"),
    ("tune", {**GRPO, "graders": [{"kind": "string_check", "operation": "ilike", "reference": "x", "refrence": "y"}]},
     "graders[0]"),
    ("tune", {**GRPO, "graders": [{"kind": "python", "source": "def grade(s, i):\n    return 1.0", "timeout": 5}]},
     "graders[0]"),
    ("tune", {**GRPO, "graders": [{"kind": "multi", "graders": [{"kind": "label_match", "bogus": 1}]}]}, "graders[0]"),
    ("tune", {**GRPO, "graders": [{"type": "multi", "graders": [{"type": "python", "source": PYTHON_SYNTAX_ERROR}]}]},
     "graders[0]"),
    ("tune", {**GRPO, "holdout": 0.1}, "holdout"),
    ("evaluate", {"job_id": "no-such-job", "dataset": "e.jsonl"}, "job_id"),
    ("generate", {"job_id": "no-such-job", "dataset": "e.jsonl"}, "job_id"),
    ("test", {"job_id": "no-such-job"}, "job_id"),
    ("export", {"job_id": "no-such-job"}, "job_id"),
    ("view", {"job_id": "no-such-job"}, "job_id"),
    ("export", {"job_id": "done-job", "dest": "{store}"}, "dest"),
    ("export", {"job_id": "done-job", "dest": "{store}/exports/mine"}, "dest"),
    ("export", {"job_id": "done-job", "dest": "{store}/jobs/done-job/merged"}, "dest"),
    ("evaluate", {}, "dataset"),
    ("evaluate", {"job_id": "done-job"}, "dataset"),
    ("generate", {}, "dataset"),
    ("evaluate", {"train_dataset": "t.jsonl"}, "dataset"),  # never the training rows
    ("generate", {"train_dataset": "t.jsonl"}, "dataset"),
    ("evaluate", {"train_dataset": "t.jsonl"}, "train_dataset"),
    ("tune", [], "params"),
    ("tune", ["train_dataset"], "params"),
    ("view", "done-job", "params"),
    ("generate", 5, "params"),
    ("tune", {"train_dataset": "a.jsonl", "no_such_param": 1}, "no_such_param"),
    ("evaluate", {"dataset": "e.jsonl", "epochs": 2}, "epochs"),  # read by no cell of evaluate
    ("view", {"job_id": "done-job", "dest": "out"}, "dest"),
]
IDS_33 = [f"{a}-{f}-{i}" for i, (a, _, f) in enumerate(BAD_33)]


@pytest.fixture
def store(tune_home):
    from jupyter_tune.jobs.states import JobState
    from jupyter_tune.jobs.store import JobStore

    store = JobStore()
    store.create("done-job", {"display_name": "done", "state": JobState.SUCCEEDED.value, "create_unix": 0.0,
                              "params": {"base_model": "tiny"}, "progress": {"step": 3}})
    return store


def _placed(params, store):
    if isinstance(params, dict) and isinstance(params.get("dest"), str):
        return {**params, "dest": params["dest"].replace("{store}", str(store.root))}
    return params


@pytest.mark.parametrize(("action", "params", "field"), BAD_33, ids=IDS_33)
async def test_issue_33_the_route_refuses_naming_the_field(jp_fetch, store, action, params, field):
    code, body = await post(jp_fetch, json.dumps({"action": action, "params": _placed(params, store)}))
    assert code == 400, body
    assert f"  - {field}:" in body["message"], body["message"]
    assert body["reason"] == "CellsError"


@pytest.mark.parametrize(("action", "params", "field"), BAD_33, ids=IDS_33)
def test_issue_33_render_cells_refuses_the_same(store, action, params, field):
    with pytest.raises(jt_ParameterError) as e:
        render_cells(action, _placed(params, store), store)
    assert isinstance(e.value, CellsError) and any(p.startswith(f"{field}:") for p in e.value.problems)
    assert f"  - {field}:" in str(e.value)
    # the store's default is the same one
    with pytest.raises(CellsError, match=f"  - {re.escape(field)}:"):
        render_cells(action, _placed(params, store))


async def test_the_route_and_render_cells_give_the_same_message(jp_fetch, store):
    for action, params, _ in BAD_33:
        params = _placed(params, store)
        _, body = await post(jp_fetch, json.dumps({"action": action, "params": params}))
        with pytest.raises(CellsError) as e:
            render_cells(action, params, store)
        assert body["message"] == str(e.value)


def test_evaluate_and_generate_read_the_named_rows_never_the_training_file(store):
    for action in ("evaluate", "generate"):
        (cell,) = render_cells(action, {"dataset": "rows.jsonl", "validation_dataset": "v.jsonl"}, store)
        assert "data = 'rows.jsonl'" in cell["source"]
        (cell,) = render_cells(action, {"validation_dataset": "v.jsonl", "job_id": "done-job"}, store)
        assert "data = 'v.jsonl'" in cell["source"] and "jt.load_model('done-job')" in cell["source"]
    from jupyter_tune.cells import actions

    data = {a["id"]: a["data"] for a in actions()}  # what the panel reads to ask for the rows first
    assert data["evaluate"] == data["generate"] == ["dataset", "validation_dataset"] and data["tune"] == []
    assert not {"train_dataset"} & {p for a in actions() if a["data"] for p in a["params"]}


def test_good_grader_specs_and_exports_still_make_cells(store, tmp_path):
    graders = [{"kind": "python", "source": "def grade(sample, item):\n    return float(sample == item['label'])",
                "time_limit": 5},
               {"kind": "string_check", "operation": "ilike", "reference": "{{ item.reference }}"},
               {"type": "multi", "graders": [{"kind": "label_match"}, {"kind": "text_similarity",
                                                                       "evaluation_metric": "rouge_l"}]}]
    cells = render_cells("tune", {**GRPO, "graders": graders}, store)
    assert "graders=" in cells[-1]["source"]
    (cell,) = render_cells("export", {"job_id": "done-job", "dest": str(tmp_path / "new-export")}, store)
    assert repr(str(tmp_path / "new-export")) in cell["source"]
    (cell,) = render_cells("view", {"job_id": "done-job"}, store)
    assert "jt.get_job('done-job').view()" in cell["source"]


def test_the_server_never_runs_a_grader_source(store, tmp_path):
    """A python grader's source is compiled, never run, when its cells are made (the server's process)."""
    marker = tmp_path / "ran"
    source = f"open({str(marker)!r}, 'w').write('x')\ndef grade(sample, item):\n    return 1.0\n"
    render_cells("tune", {**GRPO, "graders": [{"kind": "python", "source": source}]}, store)
    assert not marker.exists()


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


def run_tune_cells(sources: list[str], monkeypatch) -> dict:
    """Run the Tune cells as a user would (one namespace), jt.tune replaced by a recorder; its arguments."""
    import jupyter_tune as jt

    seen: dict = {}

    class Job:
        def view(self):
            return None

    monkeypatch.setattr(jt, "tune", lambda **kw: seen.update(kw) or Job())
    namespace: dict = {}
    for i, source in enumerate(sources):
        exec(compile(source, f"cell{i}", "exec"), namespace)
    return seen


def test_holdout_cells_split_the_training_file_and_tune_on_both_parts(tmp_path, monkeypatch):
    """The cells run as a user would (one namespace), jt.tune replaced by a recorder: jt.split's two parts
    reach jt.tune, and no row (nor input) is on both sides."""

    rows = [{"input_text": f"note {i} about topic {i % 3}", "output_text": f"label{i % 3}"} for i in range(40)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params_cell, run_cell = (c["source"] for c in render_cells("tune", {"train_dataset": str(data),
                                                                          "holdout": 0.25}))
    assert "holdout = 0.25" in params_cell and "jt.split(train_dataset, test_size=holdout" in run_cell
    seen = run_tune_cells([params_cell, run_cell], monkeypatch)
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


async def test_the_panel_reads_the_same_rules(jp_fetch):
    """What the panel checks before a request comes from the server: GET templates' `data` (the rows an
    evaluate or generate cell reads; labextension/src/model.ts paramsFor asks for one of them) and GET schema's
    declarations of those fields."""
    r = await jp_fetch("jupyter-tune", "templates")
    by_id = {a["id"]: a for a in json.loads(r.body)["actions"]}
    for action in ("evaluate", "generate"):
        assert by_id[action]["data"] == ["dataset", "validation_dataset"]
        assert set(by_id[action]["data"]) <= set(by_id[action]["params"])
        assert "train_dataset" not in by_id[action]["params"]
    schema = json.loads((await jp_fetch("jupyter-tune", "schema")).body)
    kinds = {p["name"]: p["kind"] for p in schema["parameters"] + schema["action_parameters"]}
    assert kinds["dataset"] == kinds["validation_dataset"] == "dataset" and kinds["prompt_template"] == "template"
    assert kinds["job_id"] == "job" and kinds["dest"] == "path"


def test_the_holdout_cells_carry_the_splits_conflict_handling(tmp_path, monkeypatch):
    """The panel offers jt.split's conflicts (report, drop, merge) for its hold-out (issue 38): 'drop' leaves
    out both rows of an input under two labels; a choice outside jt.split's is refused by name."""
    from jupyter_tune.params import ActionParams
    from jupyter_tune.params.arguments import CONFLICTS

    choices = {f.name: f for f in dataclasses.fields(ActionParams)}["holdout_conflicts"].metadata["choices"]
    assert tuple(choices) == CONFLICTS
    rows = [{"input_text": f"note {i} about topic {i % 3}", "output_text": f"label{i % 3}"} for i in range(40)]
    rows += [{"input_text": "the same note", "output_text": "label0"}, {"input_text": "the same note",
                                                                        "output_text": "label1"}]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cells = render_cells("tune", {"train_dataset": str(data), "holdout": 0.25, "holdout_conflicts": "drop"})
    assert "holdout_conflicts = 'drop'" in cells[0]["source"] and "conflicts=holdout_conflicts" in cells[1]["source"]
    seen = run_tune_cells([c["source"] for c in cells], monkeypatch)
    kept = set(seen["train_dataset"]["input_text"]) | set(seen["validation_dataset"]["input_text"])
    assert "the same note" not in kept and len(kept) == 40
    default = render_cells("tune", {"train_dataset": str(data), "holdout": 0.25})[0]["source"]
    assert "holdout_conflicts = 'report'" in default
    with pytest.raises(CellsError, match="holdout_conflicts"):
        render_cells("tune", {"train_dataset": str(data), "holdout": 0.25, "holdout_conflicts": "keep"})
