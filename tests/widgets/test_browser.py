"""A screenshot of the job view as JupyterLab renders it in headless Chromium, saved in test-artifacts/.

The notebook runs in a real JupyterLab with a live kernel, so the widgets are drawn by the real widget
manager (a static export would need the html-manager from a CDN, which these machines cannot reach).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jupyter_tune.jobs.store import JobStore
from tests.support.fixtures import make_job
from tests.support.lab_server import running_lab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"  # the ones the README and issues show
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "jt-widget-test"

pytestmark = pytest.mark.browser


@pytest.fixture
def lab(tmp_path, tune_home):
    """A JupyterLab server on a free port serving tmp_path; yields its base URL."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    env = {**os.environ, "JUPYTER_TUNE_HOME": str(tune_home),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    # no news or update toasts over the screenshot
    (tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension" /
     "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    with running_lab(tmp_path, TOKEN, env) as base:
        yield base


def test_job_view_screenshot(lab, tmp_path, tune_home):
    import nbformat
    from playwright.sync_api import sync_playwright

    store = JobStore(tune_home)
    make_job(store, "screenshot-demo", "JOB_STATE_SUCCEEDED", steps=20, total=20)
    d = make_job(store, "screenshot-failed", "JOB_STATE_FAILED", steps=7, total=20, validation=False,
                 display_name="failed-run", error={"message": "RuntimeError: out of memory at step 8"})
    (d / "log.txt").write_text("step 7 loss 1.21\nTraceback (most recent call last):\nRuntimeError: out of memory\n")
    # issue 38: an early-stopped job that kept an earlier checkpoint says so (header, bar, charts, Details)
    early = make_job(store, "screenshot-early", "JOB_STATE_SUCCEEDED", steps=30, total=45,
                     display_name="stopped-early", best={"step": 15, "metric": "eval_macro_f1", "value": 0.81},
                     stopped_early={"step": 30, "reason": "early stopping at step 30: eval_macro_f1 has not "
                                    "improved on 0.81 for 3 evaluations (early_stopping_patience=3)"})
    for step, f1 in ((5, 0.55), (10, 0.7), (15, 0.81), (20, 0.77), (25, 0.79), (30, 0.76)):
        store.append_metrics("screenshot-early", {"step": step, "eval_total_loss": 1.0, "eval_macro_f1": f1,
                                                  "eval_accuracy": f1 + 0.05, "time": 1000.0 + 2 * step + 1})
    assert early.is_dir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('import jupyter_tune as jt\njt.get_job("screenshot-demo").view()'),
                nbformat.v4.new_code_cell('jt.get_job("screenshot-failed").view()'),
                nbformat.v4.new_code_cell('jt.get_job("screenshot-early").view()')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "view.ipynb")

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            try:
                drive(page, lab)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "job_view_failure.png"), full_page=True)
                raise
        finally:
            browser.close()
    for name in ("supervise", "dataset", "details", "test", "failed", "early_stopped"):
        assert (ARTIFACTS / f"job_view_{name}.png").stat().st_size > 10_000


def run_all(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()


def drive(page, lab: str) -> None:
    page.goto(f"{lab}/lab/tree/view.ipynb?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    # the kernel reads Idle in the status bar once its session is connected; run all cells then, and
    # again if a run was swallowed while the kernel was still connecting
    page.get_by_text("| Idle").first.wait_for(timeout=60_000)
    view = page.locator(".jt-job-view").first
    for attempt in range(3):
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Escape")
        run_all(page)
        try:
            view.wait_for(timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jt-job-view img')].some(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000)
    text = view.inner_text()
    assert "medical-specialty" in text and "Succeeded" in text
    for title in ("Supervise", "Dataset", "Details", "Test"):
        assert view.locator(".lm-TabBar-tab", has_text=title).count() == 1
    view.screenshot(path=str(ARTIFACTS / "job_view_supervise.png"))

    view.locator(".lm-TabBar-tab", has_text="Dataset").click()
    page.wait_for_selector(".jt-job-view .jt-trained", timeout=10_000)
    view.screenshot(path=str(ARTIFACTS / "job_view_dataset.png"))

    view.locator(".lm-TabBar-tab", has_text="Details").click()
    page.wait_for_selector(".jt-job-view .jt-table >> text=Adapter size (rank)", timeout=10_000)
    view.screenshot(path=str(ARTIFACTS / "job_view_details.png"))

    view.locator(".lm-TabBar-tab", has_text="Test").click()
    page.wait_for_selector(".jt-job-view textarea", timeout=10_000)
    view.screenshot(path=str(ARTIFACTS / "job_view_test.png"))

    failed = page.locator(".jt-job-view").nth(1)
    failed.wait_for(timeout=30_000)
    assert "Failed" in failed.inner_text() and "out of memory" in failed.inner_text()
    failed.screenshot(path=str(ARTIFACTS / "job_view_failed.png"))

    early = page.locator(".jt-job-view").nth(2)
    early.wait_for(timeout=30_000)
    early.locator(".jt-kept").wait_for(timeout=30_000)
    text = early.inner_text()
    assert "Stopped early at step 30; model = checkpoint 15 (macro F1 0.81)" in text, text
    assert "stopped early at step 30 of 45" in text
    page.wait_for_function(  # its charts drawn
        "() => [...document.querySelectorAll('.jt-job-view')][2].querySelector('img')?.naturalWidth > 0",
        timeout=30_000)
    early.screenshot(path=str(ARTIFACTS / "job_view_early_stopped.png"))
    if os.environ.get("JUPYTER_TUNE_SCREENSHOTS") == "1":  # refresh the tracked copy only when asked
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / "job_view_early_stopped.png", SCREENSHOTS / "view-early-stopped.png")
