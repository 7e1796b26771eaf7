"""JobView structure and values through get_state(), for jobs in each state built as fixture folders."""

from __future__ import annotations

import time

import pytest

from jupyter_tune.api.job import TuningJob
from jupyter_tune.widgets import JobView
from jupyter_tune.widgets.view import TAB_TITLES
from tests.support.fixtures import add_adapter, add_checkpoint, make_job


def open_view(store, job_id, views, **kw) -> JobView:
    v = JobView(TuningJob(job_id, store), **kw)
    views.append(v)
    return v


def test_running_job(store, views):
    make_job(store, "run-1", "JOB_STATE_RUNNING", steps=8, total=20)
    v = open_view(store, "run-1", views)
    assert v.tabs.get_state()["titles"] == TAB_TITLES
    assert "medical-specialty" in v.header.title.value
    assert ">Running</span>" in v.header.title.value
    assert "tiny-llama" in v.header.title.value
    p = v.header.progress.get_state()
    assert (p["value"], p["max"], p["bar_style"]) == (8, 20, "info")
    text = v.header.progress_text.value
    assert "step 8 / 20" in text and "elapsed" in text and "ETA" in text
    assert v.header.cancel_button.layout.display is None and not v.header.cancel_button.disabled
    assert v.header.error.layout.display == "none"
    assert v.supervise.chart.get_state()["value"][:8] == b"\x89PNG\r\n\x1a\n"
    assert "Validation loss" in v.supervise.summary.value
    assert v.live  # polls while the job runs
    assert not v.test.enabled and all(c.disabled for c in v.test.controls)


def test_succeeded_job(store, views):
    make_job(store, "ok-1", "JOB_STATE_SUCCEEDED", steps=20, total=20)
    v = open_view(store, "ok-1", views)
    assert ">Succeeded</span>" in v.header.title.value
    p = v.header.progress.get_state()
    assert (p["value"], p["max"], p["bar_style"]) == (20, 20, "success")
    assert "ETA" not in v.header.progress_text.value
    assert v.header.cancel_button.layout.display == "none"
    assert not v.live  # a final job is drawn once, no poller
    assert v.test.enabled and not v.test.generate_button.get_state()["disabled"]
    assert "final adapter" in v.test.status.value
    details = v.details.content.get_state()["value"]
    for expected in ("LoRA", "Adapter size (rank)</th><td style=\"padding:3px 0\">8",
                     "LoRA alpha</th><td style=\"padding:3px 0\">16", "q_proj, v_proj", "0.001",
                     "12,345 (0.270 %)", "4,567,890", "bfloat16", "cpu", "ok-1", "checkpoints", "log.txt"):
        assert expected in details, expected


def test_failed_job_shows_error_and_log(store, views):
    d = make_job(store, "bad-1", "JOB_STATE_FAILED", steps=3,
                 error={"message": "CUDA out of memory <boom>"})
    (d / "log.txt").write_text("loading model\nstep 3 loss 2.1\nTraceback: RuntimeError boom\n")
    v = open_view(store, "bad-1", views)
    assert ">Failed</span>" in v.header.title.value
    assert v.header.progress.bar_style == "danger"
    err = v.header.error.get_state()
    assert err["layout"] is not None and v.header.error.layout.display is None
    assert "CUDA out of memory &lt;boom&gt;" in err["value"]  # escaped
    assert "Traceback: RuntimeError boom" in err["value"]
    assert not v.test.enabled  # no adapter, no checkpoint


def test_cancelled_job_tests_from_latest_checkpoint(store, views):
    d = make_job(store, "stop-1", "JOB_STATE_CANCELLED", steps=6)
    add_checkpoint(d, 2)
    add_checkpoint(d, 6)
    v = open_view(store, "stop-1", views)
    assert ">Cancelled</span>" in v.header.title.value
    assert v.test.enabled
    assert v.test.source.endswith("checkpoint-6")
    assert "checkpoint-6" in v.test.status.value


def test_no_validation_set_shows_training_curves_only(store, views):
    make_job(store, "noval-1", "JOB_STATE_SUCCEEDED", steps=10, validation=False)
    v = open_view(store, "noval-1", views)
    assert "Validation loss" not in v.supervise.summary.value
    assert "training curves only" in v.supervise.note.value
    assert "No validation dataset" in v.dataset.content.value


def test_dataset_tab(store, views):
    make_job(store, "ds-1", "JOB_STATE_SUCCEEDED", steps=4)
    html = open_view(store, "ds-1", views).dataset.content.get_state()["value"]
    assert "Training dataset" in html and "Validation dataset" in html
    assert "Billable tokens (3 epochs)" in html and "14,400" in html  # 40 * 120 * 3
    assert html.count("data:image/png;base64,") == 4  # input/output histograms, train and validation
    assert "Truncated to 256 tokens" in html and "3, 17" in html
    assert "no answer tokens" in html and "line 10" in html
    # the example as the model sees it: the prompt escaped, the answer highlighted as trained
    assert "&lt;b&gt;without&lt;/b&gt;" in html
    assert 'class="jt-trained"' in html and "Neurology&lt;|im_end|&gt;</span>" in html


def test_dataset_tab_before_stats_exist(store, views):
    make_job(store, "ds-2", "JOB_STATE_PENDING", steps=0, stats=False, progress={})
    v = open_view(store, "ds-2", views)
    assert "appear once the job has read its dataset" in v.dataset.content.value
    assert "preparing" in v.header.progress_text.value


def test_view_by_id_reattaches_from_store(store, views, tune_home):
    make_job(store, "again-1", "JOB_STATE_SUCCEEDED", steps=5)
    import jupyter_tune as jt

    v = jt.get_job("again-1").view()  # a fresh handle, nothing kept in memory
    views.append(v)
    assert isinstance(v, JobView) and ">Succeeded</span>" in v.header.title.value
    assert v.supervise.rendered_rows == 6  # 5 train lines + 1 eval line


def test_cancel_button(store, views):
    make_job(store, "c-1", "JOB_STATE_RUNNING", steps=2)
    v = open_view(store, "c-1", views, live=False)
    # the "job process" (this test process) is alive, so cancel asks it to stop; ignore the signal
    import signal

    old = signal.signal(signal.SIGUSR1, lambda *a: None)
    try:
        v.header.cancel_button.click()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert store.read("c-1")["state"] == "JOB_STATE_CANCELLING"
    assert ">Cancelling</span>" in v.header.title.value


@pytest.mark.parametrize("state", ["JOB_STATE_QUEUED", "JOB_STATE_CANCELLING"])
def test_other_states_render(store, views, state, monkeypatch):
    # a reader starts queued jobs when a slot is free (jobs/queue.py): keep this fake one waiting
    monkeypatch.setattr("jupyter_tune.jobs.queue.kick", lambda store: None)
    make_job(store, "o-1", state, steps=1)
    v = open_view(store, "o-1", views, live=False)
    assert state.removeprefix("JOB_STATE_").lower() in v.header.title.value.lower()


def test_live_updates_then_poller_stops(store, views):
    make_job(store, "live-1", "JOB_STATE_RUNNING", steps=2, total=10, validation=False)
    v = open_view(store, "live-1", views, poll_interval=0.05)
    assert v.live and v.supervise.rendered_rows == 2
    first_png = v.supervise.chart.value
    from tests.support.fixtures import metric_rows

    for row in metric_rows(6, validation=False)[2:]:
        store.append_metrics("live-1", row)
    store.update("live-1", progress={"step": 6, "total_steps": 10, "epoch": 1.2})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (v.supervise.rendered_rows < 6 or v.header.progress.value < 6):
        time.sleep(0.05)
    assert v.supervise.rendered_rows == 6 and v.header.progress.value == 6
    assert v.last_error is None
    assert bytes(v.supervise.chart.value) != bytes(first_png)
    assert "step 6 / 10" in v.header.progress_text.value

    add_adapter(store.job_dir("live-1"))
    store.update("live-1", state="JOB_STATE_SUCCEEDED", progress={"step": 10, "total_steps": 10, "epoch": 2})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and v.live:
        time.sleep(0.05)
    assert not v.live  # the poller ended with the job
    assert ">Succeeded</span>" in v.header.title.value and v.header.progress.value == 10
    assert v.test.enabled  # the Test tab opened when the job succeeded
    updates = v.updates
    store.append_metrics("live-1", {"step": 11, "train_total_loss": 0.1})
    time.sleep(0.3)
    assert v.updates == updates  # nothing polls any more


def test_deleted_job_stops_poller(store, views):
    make_job(store, "del-1", "JOB_STATE_RUNNING", steps=1)
    v = open_view(store, "del-1", views, poll_interval=0.05)
    store.delete("del-1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and v.live:
        time.sleep(0.05)
    assert not v.live and "deleted" in v.message.value
