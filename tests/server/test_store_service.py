"""The server's job store (issue 16): one per server, reads that never write, a reconcile step on a timer
off the event loop, and nothing that needs fcntl or POSIX signals."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import jupyter_tune
from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import JobStore
from jupyter_tune.server import routes

pytest_plugins = ["pytest_jupyter.jupyter_server"]

DEAD_PID = 2**22 + 4321


@pytest.fixture
def jp_server_config(tune_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_tune": True}}}


async def test_one_store_per_server_and_reads_that_never_write(jp_fetch, jp_serverapp, tune_home):
    store = jp_serverapp.web_app.settings[routes.STORE_SETTING]
    assert isinstance(store, JobStore) and store.root == tune_home
    store.create("dead-job", {"state": JobState.RUNNING.value, "pid": DEAD_PID, "create_unix": time.time(),
                              "params": {"base_model": "tiny"}})
    before = (store.job_dir("dead-job") / "job.json").read_bytes()
    listed = json.loads((await jp_fetch("jupyter-tune", "jobs")).body)["jobs"]
    one = json.loads((await jp_fetch("jupyter-tune", "jobs", "dead-job")).body)
    # The truth, and nothing written: a GET has no side effect.
    assert listed[0]["state"] == one["state"] == JobState.FAILED.value
    assert "ended without reporting" in one["error"]["message"]
    assert (store.job_dir("dead-job") / "job.json").read_bytes() == before
    assert jp_serverapp.web_app.settings[routes.STORE_SETTING] is store  # the same store for every request

    # The server's defined reconcile point records it (in a worker thread).
    await jp_serverapp.web_app.settings[routes.RECONCILER_SETTING].tick()
    assert store.read_raw("dead-job")["state"] == JobState.FAILED.value


async def test_the_reconciler_runs_on_a_timer(jp_fetch, jp_serverapp, monkeypatch):
    reconciler = jp_serverapp.web_app.settings[routes.RECONCILER_SETTING]
    await jp_fetch("jupyter-tune", "schema")  # the first call starts it where the start hook did not run
    assert reconciler._callback is not None and reconciler._callback.is_running()
    assert reconciler._callback.callback_time == routes.RECONCILE_INTERVAL_S * 1000


def test_no_fcntl_or_signal_in_the_store_and_server():
    package = Path(jupyter_tune.__file__).parent
    for path in [*sorted((package / "jobs").glob("*.py")), *sorted((package / "server").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "fcntl" not in names, path
        if path.name != "cancel.py":  # the job process's own handlers (optional: it also polls job.json)
            assert "signal" not in names, path


def test_the_store_and_server_work_without_fcntl_and_sigusr1(tmp_path):
    """What Windows lacks, taken away: the server module loads and a job can be locked, updated,
    cancelled, reconciled and deleted."""
    script = textwrap.dedent(f"""
        import signal, sys, time
        sys.modules["fcntl"] = None
        del signal.SIGUSR1
        import jupyter_tune.server.routes
        from jupyter_tune.jobs.handle import cancel_job, delete_job
        from jupyter_tune.jobs.queue import reconcile
        from jupyter_tune.jobs.store import JobStore
        store = JobStore({str(tmp_path)!r})
        store.create("a", {{"state": "JOB_STATE_RUNNING", "pid": {DEAD_PID}, "create_unix": time.time()}})
        store.update("a", note="x")
        assert reconcile(store) == ["a"], store.read_raw("a")
        store.create("b", {{"state": "JOB_STATE_QUEUED", "create_unix": time.time()}})
        assert cancel_job(store, "b").value == "JOB_STATE_CANCELLED"
        delete_job(store, "a")
        print("ok", sorted(r["id"] for r in store.list()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok ['b']"
