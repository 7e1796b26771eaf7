"""A job view follows the job, not the kernel (issue 38.5), in a real JupyterLab driven in headless Chromium.

A notebook cell starts a tiny job (its own process) and shows its view; the kernel restarts; the view says it
stopped following the job, with Re-attach and no Cancel; Re-attach inserts and runs `jt.get_job(id).view()`
below, whose step moves again. A second restart, then Re-attach on that view cell, runs it again in place.
The job is cancelled at the end and its process waited for. With JUPYTER_TUNE_SCREENSHOTS set, the
disconnected view is saved to docs/screenshots/view-disconnected.png.
"""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.browser import test_panel as panel_steps
from tests.browser.test_panel import (
    ARTIFACTS,
    Sel,
    cell_sources,
    dismiss_news_toast,
    shot,
    wait_for_idle_kernel,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

# test_panel's fixtures: a JupyterLab server of this module's own, its page, a screenshot of a failed step.
lab = panel_steps.lab
page = panel_steps.page
screenshot_on_failure = panel_steps.screenshot_on_failure

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
NOTEBOOK = "reattach.ipynb"
VIEW = ".jt-job-view"
LIVE_VIEW = f"{VIEW}:not(.jt-mod-disconnected)"
BANNER = ".jt-reattach-banner"
FINAL_STATES = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}
# Enough steps that the job still runs through two restarts; it is cancelled at the end.
TUNE_CELL = """import jupyter_tune as jt
rows = [{{"input_text": f"Example number {{i}} about {{topic}}.", "output_text": topic}}
        for i in range(16) for topic in ("Urology", "Neurology")]
job = jt.tune(base_model={model!r}, train_dataset=rows, tuned_model_display_name="reattach-demo",
              max_steps=20000, batch_size=2, save_steps=100000)
job.view()"""


def _write_notebook(root: Path, model: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(TUNE_CELL.format(model=str(model)))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / NOTEBOOK)


def _step(view) -> int:
    """The step the view's header shows ("step 1,234 / 20,000")."""
    match = re.search(r"step ([\d,]+) /", view.inner_text())
    return int(match.group(1).replace(",", "")) if match else -1


def _wait_for_step_above(page, view_selector: str, index: int, step: int, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(
        """([sel, i, step]) => {
             const m = /step ([\\d,]+) \\//.exec(document.querySelectorAll(sel)[i]?.innerText ?? '');
             return m !== null && Number(m[1].replace(/,/g, '')) > step;
           }""", arg=[view_selector, index, step], timeout=timeout_ms)


def _restart_kernel(page) -> None:
    """Kernel > Restart Kernel…, then Restart in the dialog, as a person does."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.locator(".lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel",
                 has_text=re.compile(r"^Restart Kernel…$")).click()
    page.locator(".jp-Dialog button.jp-mod-accept", has_text="Restart").click()


def _job_record(home: Path, job_id: str) -> dict:
    return json.loads((home / "jobs" / job_id / "job.json").read_text())


def _stop_job(url: str, token: str, home: Path, job_id: str | None) -> None:
    """Cancel the job through the REST API and wait for its process to end (killed if it will not)."""
    if job_id is None or not (home / "jobs" / job_id / "job.json").exists():
        return
    try:
        request = urllib.request.Request(f"{url}/jupyter-tune/jobs/{job_id}:cancel?token={token}", data=b"",
                                         method="POST")
        urllib.request.urlopen(request, timeout=30).close()
        wait_for(lambda: _job_record(home, job_id).get("state") in FINAL_STATES, timeout=90,
                 what="the cancelled job to end")
    finally:
        pid = _job_record(home, job_id).get("pid")
        if isinstance(pid, int):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # ended already


def test_views_follow_the_job_across_kernel_restarts(page, lab, tiny_model_dir):
    url, token, root, home = lab
    _write_notebook(root, tiny_model_dir)
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.locator(Sel.CELL).first.wait_for()
    dismiss_news_toast(page)
    wait_for_idle_kernel(page)

    job_id = None
    try:
        # Run the tuning cell: the job starts and its view follows it.
        page.locator(Sel.CELL).nth(0).locator(Sel.CELL_SOURCE).click()
        page.keyboard.press("Control+Enter")
        page.locator(VIEW).first.wait_for(timeout=120_000)
        job_id = re.search(r"jt-job-id-([a-z0-9-]+)", page.locator(VIEW).first.get_attribute("class")).group(1)
        _wait_for_step_above(page, VIEW, 0, 0, timeout_ms=240_000)
        first = page.locator(VIEW).first
        assert first.locator(".jt-cancel").is_visible()

        # The kernel restarts: the view says so, names the job, offers Re-attach and no Cancel.
        _restart_kernel(page)
        banner = first.locator(BANNER)
        banner.wait_for(timeout=60_000)
        page.wait_for_function("sel => /still runs/.test(document.querySelector(sel)?.innerText)",
                               arg=f"{VIEW} {BANNER}", timeout=30_000)
        text = banner.inner_text()
        assert f"The kernel restarted: this view stopped following job {job_id} (it still runs)." in text
        assert first.locator(".jt-cancel").count() == 1 and not first.locator(".jt-cancel").is_visible()
        assert first.locator(".jt-cancel").is_disabled()
        assert _job_record(home, job_id)["state"] == "JOB_STATE_RUNNING"  # the job went on without the kernel
        first.locator(".jt-reattach-button").scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        cell = page.locator(Sel.CELL).nth(0).locator(".jp-OutputArea")
        cell.screenshot(path=str(ARTIFACTS / "reattach-disconnected.png"))
        if os.environ.get("JUPYTER_TUNE_SCREENSHOTS"):  # the banner, the header and the tabs: a small PNG
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            box, tabs = first.bounding_box(), first.locator(".lm-TabBar").first.bounding_box()
            page.screenshot(path=str(SCREENSHOTS / "view-disconnected.png"),
                            clip={"x": box["x"], "y": box["y"], "width": box["width"],
                                  "height": tabs["y"] + tabs["height"] + 8 - box["y"]})

        # Re-attach: the View action's cell goes in below the tuning cell (never re-run: a second job) and
        # runs; its view follows the job again.
        wait_for_idle_kernel(page)
        frozen_step = _step(first)
        banner.locator(".jt-reattach-button").click()
        page.locator(LIVE_VIEW).first.wait_for(timeout=120_000)
        sources = cell_sources(page)
        assert len(sources) == 2 and f"jt.get_job({job_id!r}).view()" in sources[1], sources
        assert "cell below" in banner.inner_text()
        live = page.locator(Sel.CELL).nth(1).locator(VIEW)
        _wait_for_step_above(page, f"{Sel.CELL} {VIEW}", 1, max(frozen_step, _step(live)))
        assert live.locator(".jt-cancel").is_visible()
        assert _step(first) == frozen_step  # the old view stays as it was
        shot(page, "reattach-live")

        # A second restart marks both views; Re-attach on the view cell runs that cell again, in place.
        _restart_kernel(page)
        live.locator(BANNER).wait_for(timeout=60_000)
        assert page.locator(f"{VIEW}.jt-mod-disconnected").count() == 2
        wait_for_idle_kernel(page)
        step = _step(live)
        live.locator(".jt-reattach-button").click()
        page.locator(f"{Sel.CELL} >> nth=1 >> {LIVE_VIEW}").wait_for(timeout=120_000)
        assert len(cell_sources(page)) == 2
        _wait_for_step_above(page, f"{Sel.CELL} {VIEW}", 1, step)
        assert page.locator(Sel.CELL).nth(1).locator(BANNER).count() == 0
        shot(page, "reattach-in-place")
    finally:
        _stop_job(url, token, home, job_id)
