"""CompareView on fixture jobs: curves per job, differing parameters, the best run, live updates, static HTML."""

from __future__ import annotations

import pytest

from jupyter_tune.widgets.compare import CompareView, compare_jobs
from tests.support.fixtures import make_job


def _jobs(store):
    make_job(store, "lr-small", "JOB_STATE_SUCCEEDED", steps=20, learning_rate_multiplier=0.5)
    make_job(store, "lr-big", "JOB_STATE_SUCCEEDED", steps=20)
    make_job(store, "lr-run", "JOB_STATE_RUNNING", steps=10)
    for job_id, lr, size in (("lr-small", 0.5, 8), ("lr-big", 2.0, 16), ("lr-run", 1.0, 8)):
        store.update(job_id, params={**store.read_raw(job_id)["params"], "learning_rate_multiplier": lr,
                                     "adapter_size": size, "tuned_model_display_name": job_id})
    # lr-big has the best (lowest) validation loss
    store.append_metrics("lr-big", {"step": 21, "epoch": 4.2, "eval_total_loss": 0.1,
                                    "eval_fraction_of_correct_next_step_preds": 0.9})


def test_three_jobs_three_curves_and_the_differing_parameters(store, views):
    _jobs(store)
    v = compare_jobs(["lr-small", "lr-big", "lr-run"])
    views.append(v)
    assert v.chart.get_state()["value"][:8] == b"\x89PNG\r\n\x1a\n"
    for job in ("lr-small", "lr-big", "lr-run"):
        assert (job, "train_total_loss") in v.series and (job, "eval_total_loss") in v.series
    assert v.differing == ["adapter_size", "learning_rate_multiplier"]  # not the display name
    table = v.table.value
    assert "adapter_size" in table and "learning_rate_multiplier" in table and "best validation loss" in table
    assert v.objective == ("eval_total_loss", False)
    assert v.best.id == "lr-big"
    best_row = table.split('data-job-id="lr-big">')[1].split("</tr>")[0]
    assert "font-weight:600" in best_row and "★" in best_row  # the best row marked
    assert "★ lr-big" in v.title.value
    assert v.live  # lr-run is running
    html = v._repr_html_()
    assert "data:image/png;base64," in html and "jt-compare-table" in html


def test_updates_live_and_switches_to_tokens(store, views):
    _jobs(store)
    v = CompareView(["lr-small", "lr-run"], poll_interval=0.05)
    views.append(v)
    before = v.updates
    store.append_metrics("lr-run", {"step": 11, "epoch": 2.2, "train_total_loss": 0.01,
                                    "train_num_predictions": 40})
    import time

    deadline = time.monotonic() + 20
    while v.updates == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert v.updates > before
    assert max(s for s, _ in v.runs[1].values("train_total_loss")) == 11
    store.update("lr-run", state="JOB_STATE_SUCCEEDED")
    deadline = time.monotonic() + 20
    while v.live and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not v.live  # every run final: the poller ends
    png = v.chart.value
    v.x_axis.value = "tokens"
    assert v.chart.value != png and "trained tokens" not in v.table.value


def test_task_metric_panel_and_objective(store, views):
    make_job(store, "f1-a", "JOB_STATE_SUCCEEDED", steps=10)
    make_job(store, "f1-b", "JOB_STATE_SUCCEEDED", steps=10, adapter_size=4)
    store.append_metrics("f1-a", {"step": 10, "epoch": 2, "eval_total_loss": 1.0, "eval_macro_f1": 0.5})
    store.append_metrics("f1-b", {"step": 10, "epoch": 2, "eval_total_loss": 2.0, "eval_macro_f1": 0.8})
    v = compare_jobs(["f1-a", "f1-b"])
    views.append(v)
    assert v.objective == ("eval_macro_f1", True) and v.best.id == "f1-b"
    assert ("f1-a", "eval_macro_f1") in v.series
    assert compare_jobs(["f1-a", "f1-b"], metric="eval_total_loss", live=False).best.id == "f1-a"


def test_unknown_job_is_refused(store):
    with pytest.raises(KeyError, match="nope"):
        compare_jobs(["nope"])
    with pytest.raises(ValueError):
        compare_jobs([])


def test_the_panel_compare_cell(tmp_path):
    from jupyter_tune.cells import CellsError, actions, render_cells
    from jupyter_tune.jobs.store import JobStore

    store = JobStore(tmp_path)
    for job_id in ("run-a", "run-b"):
        store.create(job_id, {"state": "JOB_STATE_SUCCEEDED", "params": {}}, {})
    assert any(a["id"] == "compare" and a["params"] == ["job_ids"] and not a["button"] for a in actions())
    (cell,) = render_cells("compare", {"job_ids": ["run-a", "run-b"]}, store)
    assert cell["source"].endswith("jt.compare_jobs(['run-a', 'run-b'])")
    for bad in ({}, {"job_ids": []}, {"job_ids": ["../etc"]}, {"job_ids": "run-a"}, {"job_ids": ["run-a", "gone"]}):
        with pytest.raises(CellsError, match="job_ids"):
            render_cells("compare", bad, store)
