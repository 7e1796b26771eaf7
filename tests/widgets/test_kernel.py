"""The view in a real ipykernel: the poller thread's widget updates reach the front end (as comm messages
on IOPub) while the kernel stays free to run other cells; and a notebook that tunes a tiny model and shows
the view runs headless without errors."""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import pytest

from tests.support.fixtures import make_job, metric_rows

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def kernel(tune_home):
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "JUPYTER_TUNE_HOME": str(tune_home)}
    km, kc = start_new_kernel(kernel_name="python3", env=env)  # the native kernel: this Python
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc, code: str, timeout: float = 60) -> tuple[dict, list[dict]]:
    """Run `code`; returns the reply and the IOPub messages of this request."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    assert reply["content"]["status"] == "ok", reply["content"]
    msgs = []
    while True:  # until this request's idle status
        m = kc.get_iopub_msg(timeout=timeout)
        msgs.append(m)
        if (m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                and m["parent_header"].get("msg_id") == msg_id):
            return reply, msgs


def drain(kc, seconds: float) -> list[dict]:
    msgs, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msgs.append(kc.get_iopub_msg(timeout=0.1))
        except queue.Empty:
            pass
    return msgs


def widget_updates(msgs: list[dict]) -> list[dict]:
    return [m["content"]["data"]["state"] for m in msgs
            if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"]


def test_poller_updates_reach_frontend_without_blocking_the_kernel(kernel, tune_home):
    from jupyter_tune.jobs.store import JobStore

    store = JobStore(tune_home)
    make_job(store, "kern-1", "JOB_STATE_RUNNING", steps=2, total=10, validation=False)
    _, msgs = execute(kernel, "from jupyter_tune.widgets import JobView\n"
                              "view = JobView('kern-1', poll_interval=0.2)\nview")
    assert any(m["msg_type"] == "execute_result" and "application/vnd.jupyter.widget-view+json"
               in m["content"]["data"] for m in msgs)
    drain(kernel, 0.5)

    # the job makes progress while no cell runs
    for row in metric_rows(6, validation=False)[2:]:
        store.append_metrics("kern-1", row)
    store.update("kern-1", progress={"step": 6, "total_steps": 10, "epoch": 1.2})
    t0 = time.monotonic()
    reply, _ = execute(kernel, "answer = 40 + 2")  # the kernel answers at once: nothing blocks it
    # Blocked would mean never (this job stays RUNNING); 15 s leaves room for a chart render on a starved
    # 2-core CI machine (5 s failed once with a second suite running).
    assert time.monotonic() - t0 < 15
    msgs = drain(kernel, 4)
    states = widget_updates(msgs)
    assert any(s.get("value") == 6 for s in states)  # the progress bar
    assert any(isinstance(s.get("value"), str) and "step 6 / 10" in s["value"] for s in states)
    assert any(m["msg_type"] == "comm_msg" and ["value"] in m["content"]["data"].get("buffer_paths", [])
               and m["buffers"] for m in msgs)  # the new chart, as a binary buffer

    store.update("kern-1", state="JOB_STATE_SUCCEEDED", progress={"step": 10, "total_steps": 10, "epoch": 2},
                 end_time="2030-01-01T00:00:00+00:00")
    states = widget_updates(drain(kernel, 2))
    assert any(isinstance(s.get("value"), str) and ">Succeeded</span>" in s["value"] for s in states)
    _, msgs = execute(kernel, "print(view.live, view.updates)")
    out = "".join(m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
    assert out.startswith("False"), out  # the poller ended with the job
    assert not widget_updates(drain(kernel, 1))  # and nothing more is sent


NOTEBOOK_CELLS = [
    """import jupyter_tune as jt
rows = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(24) for topic in ("Urology", "Neurology")]
held_out = [{"input_text": f"Held-out example {i} about {topic}.", "output_text": topic}
            for i in range(4) for topic in ("Urology", "Neurology")]
job = jt.tune(base_model=TINY_MODEL, train_dataset=rows, validation_dataset=held_out,
              tuned_model_display_name="view-demo", max_steps=6, batch_size=4, eval_steps=3)
view = job.view()
view""",
    """import time
state = job.wait(timeout=180)
deadline = time.time() + 30
while view.live and time.time() < deadline:  # the view's poller stops by itself with the job
    time.sleep(0.2)
print(state, view.live)
assert state is jt.JobState.SUCCEEDED, job.log()
assert not view.live and ">Succeeded</span>" in view.header.title.value
assert view.header.progress.value == view.header.progress.max == 6
assert view.supervise.rendered_rows >= 6 and "Validation loss" in view.supervise.summary.value
assert "Training dataset" in view.dataset.content.value and "jt-trained" in view.dataset.content.value
assert "LoRA" in view.details.content.value and view.test.enabled""",
    # what the side panel's View button inserts: a fresh handle from the store
    """jt.get_job(job.id).view()""",
    # the Test tab with the real jt.load_model / jt.generate_text
    """test = view.test
test.prompt.value = "Example number 3 about"
test.max_output_tokens.value = 3
test.compare.value = True
test.generate()
assert "Done" in test.status.value, test.status.value
assert "Tuned model" in test.tuned_answer.value and "Base model" in test.base_answer.value""",
]


def test_notebook_tunes_and_views(tune_home, tiny_model_dir):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"TINY_MODEL = {str(tiny_model_dir)!r}")] + [
        nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True,
                            store_widget_state=True, resources={"metadata": {"path": str(tune_home.parent)}})
    client.execute()  # the kernel inherits JUPYTER_TUNE_HOME from the tune_home fixture
    ARTIFACTS.mkdir(exist_ok=True)
    nbformat.write(nb, ARTIFACTS / "view_demo.executed.ipynb")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, "\n".join("\n".join(e["traceback"]) for e in errors)
    # the Test tab's model loading draws no stray progress bars into the running cell
    assert not [o for o in nb.cells[4].outputs if o["output_type"] == "display_data"]
    assert "JOB_STATE_SUCCEEDED False" in "".join(o.get("text", "") for o in nb.cells[2].outputs)
    views = [o for c in (nb.cells[1], nb.cells[3]) for o in c.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 2
    assert nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
