"""Compare in a real JupyterLab: check three jobs in the Tuning panel, click Compare, and the inserted cell
runs jt.compare_jobs([...]) and shows the comparison (screenshot: test-artifacts/compare-view.png).

The jobs are fixture folders in the shape job processes write (no training: this is about the panel,
the cell and the view)."""

from __future__ import annotations

import pytest

from tests.browser.test_panel import (  # noqa: F401 - lab and page are fixtures
    ARTIFACTS,
    Sel,
    cell_sources,
    dismiss_news_toast,
    job_items,
    lab,
    open_tuning_panel,
    page,
    shot,
)

pytestmark = pytest.mark.browser

RUNS = {  # job id -> (learning_rate_multiplier, adapter_size, how fast it learns)
    "rank-4-lr-1": (1.0, 4, 1.0),
    "rank-8-lr-2": (2.0, 8, 1.6),
    "rank-8-lr-0-1": (0.1, 8, 0.35),
}


def _make_jobs(home) -> None:
    from jupyter_tune.jobs.store import JobStore
    from tests.support.fixtures import make_job

    store = JobStore(home)
    for job_id, (lr, rank, speed) in RUNS.items():
        make_job(store, job_id, "JOB_STATE_SUCCEEDED", steps=0, total=30, stats=False)
        record = store.read_raw(job_id)
        store.update(job_id, display_name=job_id, progress={"step": 30, "total_steps": 30, "epoch": 3.0},
                     params={**record["params"], "learning_rate_multiplier": lr, "adapter_size": rank})
        for s in range(1, 31):
            decay = 1 / (1 + speed * s / 6)
            store.append_metrics(job_id, {"step": s, "epoch": s / 10, "train_total_loss": 0.4 + 2.6 * decay,
                                          "train_fraction_of_correct_next_step_preds": 0.95 - 0.6 * decay,
                                          "train_num_predictions": 40, "learning_rate": 1e-3 * lr,
                                          "tokens_per_second": 500})
            if s % 5 == 0:
                store.append_metrics(job_id, {"step": s, "epoch": s / 10, "eval_total_loss": 0.55 + 2.5 * decay,
                                              "eval_fraction_of_correct_next_step_preds": 0.9 - 0.6 * decay,
                                              "eval_num_predictions": 120,
                                              "eval_macro_f1": min(1.0, 0.95 - 0.9 * decay ** 0.8),
                                              "eval_accuracy": min(1.0, 0.96 - 0.85 * decay ** 0.8)})


def test_check_jobs_and_compare(page, lab):  # noqa: F811 - the fixtures imported above
    _, _, _, home = lab
    _make_jobs(home)
    panel = open_tuning_panel(page)
    compare = panel.locator("button.jp-TuningPanel-compare")
    panel.locator(Sel.REFRESH).click()
    page.wait_for_function("sel => document.querySelectorAll(sel).length >= 3", arg=f"{Sel.PANEL} {Sel.JOB}")
    assert compare.is_disabled()  # nothing checked yet
    for job_id in RUNS:
        dismiss_news_toast(page)  # the news toast, bottom right, can cover a job's box below the longer form
        job_items(page).locator(f'xpath=self::*[@data-job-id="{job_id}"]').locator(
            "input.jp-TuningPanel-jobSelect").check()
    assert compare.inner_text() == "Compare (3)" and compare.is_enabled()
    dismiss_news_toast(page)
    compare.click()

    page.wait_for_function("sel => [...document.querySelectorAll(sel)].some(e => e.innerText.includes('compare_jobs'))",
                           arg=f"{Sel.CELL} {Sel.CELL_SOURCE}")
    source = next(s for s in cell_sources(page) if "jt.compare_jobs(" in s)
    for job_id in RUNS:
        assert repr(job_id) in source
    cell = page.locator(Sel.CELL).filter(has_text="compare_jobs").first
    view = cell.locator(".jt-compare-view")
    view.wait_for(timeout=180_000)  # the kernel starts and runs the cell
    view.locator("img").first.wait_for()
    page.wait_for_function("el => el.querySelector('img').naturalWidth > 0", arg=view.element_handle())
    text = view.inner_text()
    assert "adapter_size" in text and "learning_rate_multiplier" in text  # the parameters that differ
    assert "★ rank-8-lr-2" in text  # the best run (highest macro F1)
    assert view.locator(".jt-compare-row").count() == 3
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(ARTIFACTS / "compare-view.png"))
    shot(page, "compare-panel")
