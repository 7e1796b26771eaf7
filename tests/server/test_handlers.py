"""The /jupyter-tune/ REST API through a real jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time

import psutil
import pytest
import tornado.httpclient
import tornado.web

from jupyter_tune.jobs.states import JobState, states_schema
from jupyter_tune.jobs.store import JobStore
from jupyter_tune.params import schema
from jupyter_tune.server import routes

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# Every route and method, with a valid-looking id: each must refuse a request without a token.
ROUTES = [
    ("GET", "jobs"),
    ("GET", "jobs/some-job"),
    ("DELETE", "jobs/some-job"),
    ("POST", "jobs/some-job:cancel"),
    ("GET", "templates"),
    ("POST", "cells"),
    ("GET", "schema"),
]
BAD_IDS = ["UPPER", "dot.dot", "a" * 65, "under_score", "sp ace"]


@pytest.fixture
def jp_server_config(tune_home):
    # Unauthenticated access allowed server-wide: only the handlers' @authenticated can refuse it.
    return {"ServerApp": {"jpserver_extensions": {"jupyter_tune": True},
                          "allow_unauthenticated_access": True}}


@pytest.fixture
def fetch(jp_fetch):
    async def _fetch(method: str, path: str, body: dict | None = None, **kwargs):
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method == "POST":
            kwargs["body"] = b""
            kwargs["allow_nonstandard_methods"] = True
        return await jp_fetch("jupyter-tune", *path.split("/"), method=method, **kwargs)
    return _fetch


async def expect_error(fetch, method, path, status, body=None) -> dict:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await fetch(method, path, body)
    assert info.value.code == status, info.value.response.body
    reply = json.loads(info.value.response.body)
    assert reply["message"]
    return reply


def make_job(store: JobStore, job_id: str, state: JobState = JobState.SUCCEEDED, pid: int | None = None,
             **extra) -> None:
    record = {"display_name": f"name of {job_id}", "state": state.value, "create_unix": time.time(),
              "create_time": "2026-01-01T00:00:00+00:00", "params": {"base_model": "tiny"},
              "progress": {"step": 3, "total_steps": 10}, **extra}
    if pid is not None:
        record.update(pid=pid, pid_create_time=psutil.Process(pid).create_time())
    store.create(job_id, record)


# -- authentication --
@pytest.mark.parametrize("method,path", ROUTES)
async def test_every_route_refuses_requests_without_a_token(fetch, method, path):
    body = {"action": "view", "params": {"job_id": "x"}} if path == "cells" else None
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await fetch(method, path, body, headers={"Authorization": ""})
    assert info.value.code == 403


def test_every_handler_method_is_authenticated():
    # POSTs without a token are also refused by the XSRF check, so check the decorator itself too.
    wrapper_code = tornado.web.authenticated(lambda self: None).__code__
    for _, handler in routes.ROUTES:
        for method in ("get", "post", "put", "patch", "delete"):
            fn = handler.__dict__.get(method)
            if fn is not None:
                assert fn.__code__ is wrapper_code, f"{handler.__name__}.{method} lacks @authenticated"


def test_server_extension_never_imports_torch():
    code = ("import sys, jupyter_tune, jupyter_tune.server, jupyter_tune.server.routes, jupyter_tune.cells;"
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules];"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- jobs --
async def test_list_jobs(fetch, tune_home):
    reply = json.loads((await fetch("GET", "jobs")).body)
    assert reply == {"jobs": []}
    make_job(JobStore(), "first-job")
    reply = json.loads((await fetch("GET", "jobs")).body)
    assert [j["id"] for j in reply["jobs"]] == ["first-job"]
    job = reply["jobs"][0]
    assert job["state"] == JobState.SUCCEEDED.value
    assert job["base_model"] == "tiny" and job["progress"] == {"step": 3, "total_steps": 10}


async def test_get_job_has_latest_metrics(fetch, tune_home):
    store = JobStore()
    make_job(store, "with-metrics")
    reply = json.loads((await fetch("GET", "jobs/with-metrics")).body)
    assert reply["id"] == "with-metrics" and reply["latest_metrics"] is None
    store.append_metrics("with-metrics", {"step": 1, "train_total_loss": 2.0})
    store.append_metrics("with-metrics", {"step": 2, "train_total_loss": 1.5})
    store.append_metrics("with-metrics", {"step": 2, "eval_total_loss": 1.7})
    reply = json.loads((await fetch("GET", "jobs/with-metrics")).body)
    assert reply["latest_metrics"] == {"step": 2, "train_total_loss": 1.5, "eval_total_loss": 1.7}
    assert reply["display_name"] == "name of with-metrics"


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("method,suffix", [("GET", ""), ("DELETE", ""), ("POST", ":cancel")])
async def test_bad_job_id_is_400(fetch, tune_home, bad_id, method, suffix):
    reply = await expect_error(fetch, method, f"jobs/{bad_id}{suffix}", 400)
    assert "Invalid job id" in reply["message"]


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("DELETE", ""), ("POST", ":cancel")])
async def test_unknown_job_is_404(fetch, tune_home, method, suffix):
    reply = await expect_error(fetch, method, f"jobs/no-such-job{suffix}", 404)
    assert "no-such-job" in reply["message"]


async def test_cancel_a_running_job(fetch, tune_home):
    # A stand-in job process: alive, and it ignores SIGUSR1 (a real job handles it and stops cleanly).
    proc = subprocess.Popen(["bash", "-c", "trap '' USR1; exec sleep 60"])
    try:
        time.sleep(0.2)
        store = JobStore()
        make_job(store, "running-job", JobState.RUNNING, pid=proc.pid)
        reply = json.loads((await fetch("POST", "jobs/running-job:cancel")).body)
        assert reply["state"] == JobState.CANCELLING.value
        assert store.read("running-job")["state"] == JobState.CANCELLING.value
        assert proc.poll() is None  # the signal asks; it does not kill
    finally:
        proc.kill()
        proc.wait()


async def test_cancel_a_finished_job_changes_nothing(fetch, tune_home):
    make_job(JobStore(), "done-job", JobState.SUCCEEDED)
    reply = json.loads((await fetch("POST", "jobs/done-job:cancel")).body)
    assert reply["state"] == JobState.SUCCEEDED.value


async def test_delete_job(fetch, tune_home):
    store = JobStore()
    make_job(store, "old-job")
    response = await fetch("DELETE", "jobs/old-job")
    assert response.code == 204
    assert not store.exists("old-job")
    await expect_error(fetch, "GET", "jobs/old-job", 404)


# -- schema, templates, cells --
async def test_schema_is_the_params_schema(fetch):
    reply = json.loads((await fetch("GET", "schema")).body)
    assert reply == json.loads(json.dumps({**schema(), "states": states_schema()}))
    assert reply["states"]["active"] == [s.value for s in JobState if s.is_active]


async def test_templates_list_the_panel_actions(fetch):
    reply = json.loads((await fetch("GET", "templates")).body)
    labels = {a["id"]: a["label"] for a in reply["actions"] if a["button"]}
    assert labels == {"tune": "Tune a model", "evaluate": "Evaluate a model", "generate": "Generate text",
                      "test": "Test a tuned model"}
    tune = next(a for a in reply["actions"] if a["id"] == "tune")
    assert {"base_model", "train_dataset", "epochs", "adapter_size"} <= set(tune["params"])


TRICKY_NAME = 'my "model"\'s\nname\\n"""; import os; os.system("echo pwned") #'


async def test_tune_cells_keep_a_tricky_display_name_as_data(fetch):
    params = {"base_model": "tiny", "train_dataset": "data/train.jsonl", "tuned_model_display_name": TRICKY_NAME,
              "epochs": 2, "adapter_size": 4, "learning_rate_multiplier": 2.0}
    reply = json.loads((await fetch("POST", "cells", {"action": "tune", "params": params})).body)
    cells = reply["cells"]
    assert [c["cell_type"] for c in cells] == ["code", "code"]
    assigned = {}
    for node in ast.parse(cells[0]["source"]).body:
        assert isinstance(node, ast.Assign)  # nothing but assignments of literals
        assigned[node.targets[0].id] = ast.literal_eval(node.value)
    assert assigned["tuned_model_display_name"] == TRICKY_NAME
    assert {k: assigned[k] for k in params} == params
    assert assigned["validation_dataset"] is None and assigned["prompt_template"] is None
    tree = ast.parse(cells[1]["source"])
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "tune"]
    assert len(calls) == 1
    assert "pwned" not in cells[1]["source"] and "job.view()" in cells[1]["source"]


@pytest.mark.parametrize("action,params", [
    ("tune", {}),
    ("evaluate", {"validation_dataset": "eval.jsonl"}),
    ("evaluate", {"job_id": "my-job", "dataset": TRICKY_NAME}),
    ("generate", {"base_model": TRICKY_NAME, "dataset": "rows.csv"}),
    ("test", {"job_id": "my-job", "prompt": TRICKY_NAME}),
    ("view", {"job_id": "my-job"}),
])
async def test_every_action_renders_python(fetch, tune_home, action, params):
    make_job(JobStore(), "my-job")  # a job_id must name a job in the store
    reply = json.loads((await fetch("POST", "cells", {"action": action, "params": params})).body)
    for cell in reply["cells"]:
        ast.parse(cell["source"])
        assert "pwned\")" not in cell["source"].replace(repr(TRICKY_NAME), "")
    if action == "view":
        assert reply["cells"][0]["source"] == "import jupyter_tune as jt\n\njt.get_job('my-job').view()"


@pytest.mark.parametrize("body,needle", [
    ({"action": "tune", "params": {"no_such_param": 1}}, "no_such_param"),
    ({"action": "tune", "params": {"adapter_size": 3}}, "adapter_size"),
    ({"action": "tune", "params": {"epochs": "two"}}, "epochs"),
    ({"action": "nope", "params": {}}, "nope"),
    ({"action": "view", "params": {"job_id": "../etc"}}, "  - job_id: '../etc' is not a job or a job id"),
    ({"action": "view", "params": {"job_id": "no-such-job"}}, "  - job_id: no tuning job 'no-such-job'"),
    ({"action": "view", "params": {}}, "job_id"),
    ({"params": {}}, "action"),
])
async def test_bad_cell_requests_are_400(fetch, body, needle):
    reply = await expect_error(fetch, "POST", "cells", 400, body)
    assert needle in reply["message"]


async def test_malformed_json_is_400(jp_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("jupyter-tune", "cells", method="POST", body="{not json")
    assert info.value.code == 400


async def test_test_action_takes_the_newest_succeeded_job(fetch, tune_home):
    """Which job "Test a tuned model" prompts is the server's rule (the panel sends no special case)."""
    await expect_error(fetch, "POST", "cells", 400, {"action": "test", "params": {}})
    store = JobStore()
    make_job(store, "older-job")
    make_job(store, "failed-job", JobState.FAILED)
    reply = json.loads((await fetch("POST", "cells", {"action": "test", "params": {}})).body)
    assert "jt.get_job('older-job')" in reply["cells"][0]["source"]


async def test_evaluate_never_falls_back_to_the_training_data(fetch):
    """Scores on rows the model trained on would mislead: evaluate reads dataset, else validation_dataset, and
    with neither it is refused naming dataset (issue 33)."""
    for params in ({"train_dataset": "train.jsonl"}, {}):
        reply = await expect_error(fetch, "POST", "cells", 400, {"action": "evaluate", "params": params})
        assert "  - dataset: the 'evaluate' action needs the rows" in reply["message"]
    params = {"validation_dataset": "eval.jsonl"}
    reply = json.loads((await fetch("POST", "cells", {"action": "evaluate", "params": params})).body)
    assert "data = 'eval.jsonl'" in reply["cells"][0]["source"]
