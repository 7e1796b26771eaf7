"""The panel, the job view and an evaluation report follow JupyterLab's theme (issue 16), light and dark.

A real JupyterLab starts with its theme set in the user settings; a notebook shows a succeeded job's view,
a failed job's view and an evaluation report, and the Tuning panel is opened. Each part is saved as a
screenshot (test-artifacts/theme-<theme>-*.png), and the colours the browser computed are checked: the
background follows the theme, and text (plain, muted, on a badge, in an error box) keeps its contrast
over whatever is behind it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jupyter_tune.jobs.store import JobStore
from tests.support.fixtures import make_job
from tests.support.lab_server import running_lab

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "jt-theme-test"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}

REPORT_CELL = '''import pandas as pd
from jupyter_tune.evaluation.classification import classification_metrics, confusion
from jupyter_tune.evaluation.report import EvaluationReport
labels = ["Cardiology", "Neurology", "Urology"]
truth = [labels[i % 3] for i in range(30)]
pred = [t if i % 4 else labels[(i + 1) % 3] for i, t in enumerate(truth)]
status = [""] * 29 + ["RuntimeError: the model answered nothing"]
rows = pd.DataFrame({"input_text": [f"case {i}" for i in range(30)], "ground_truth": truth,
                     "prediction": pred, "correct": [t == p for t, p in zip(truth, pred)], "status": status})
EvaluationReport("classification", "score", classification_metrics(truth[:29], pred[:29], labels), rows,
                 {"num_successful_rows": 29, "num_total_rows": 30}, confusion(truth[:29], pred[:29], labels),
                 labels, "tiny-llama")'''

# The colour an element's text and background come to on screen: every ancestor's background composited
# on a 1x1 canvas (so rgba, color(srgb ...) and color-mix values all count), then the text colour over it.
COLORS_JS = """(el) => {
  const chain = [];
  for (let e = el; e; e = e.parentElement) chain.unshift(e);
  const ctx = Object.assign(document.createElement('canvas'), {width: 1, height: 1}).getContext('2d');
  const paint = (color) => { ctx.fillStyle = color; ctx.fillRect(0, 0, 1, 1); };
  paint('#ffffff');
  for (const e of chain) paint(getComputedStyle(e).backgroundColor);
  const bg = Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
  paint(getComputedStyle(el).color);
  const fg = Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
  return {bg, fg};
}"""


def luminance(rgb: list[int]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[int], b: list[int]) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(params=list(THEMES))
def themed_lab(request, tmp_path, tune_home):
    """A JupyterLab in the light or the dark theme (its user settings), with two jobs in its store and a
    notebook showing their views and an evaluation report; yields (theme, url)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (make install does it)")
    theme = request.param
    settings = tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "themes.jupyterlab-settings").write_text(json.dumps({"theme": THEMES[theme]}))
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    store = JobStore(tune_home)
    make_job(store, "theme-demo", "JOB_STATE_SUCCEEDED", steps=20, total=20)
    d = make_job(store, "theme-failed", "JOB_STATE_FAILED", steps=7, total=20, validation=False,
                 display_name="failed-run", error={"message": "RuntimeError: out of memory at step 8"})
    (d / "log.txt").write_text("step 7 loss 1.21\nTraceback (most recent call last):\nRuntimeError: out of memory\n")
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('import jupyter_tune as jt\njt.get_job("theme-demo").view()'),
                nbformat.v4.new_code_cell('jt.get_job("theme-failed").view()'),
                nbformat.v4.new_code_cell(REPORT_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "theme.ipynb")
    env = {**os.environ, "JUPYTER_TUNE_HOME": str(tune_home), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    with running_lab(tmp_path, TOKEN, env, timeout=300) as url:  # a loaded 2-core machine starts slowly
        yield theme, url


def test_panel_view_and_report_follow_the_theme(themed_lab):
    from playwright.sync_api import sync_playwright

    theme, url = themed_lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(60_000)
            try:
                check_theme(page, url, theme)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / f"theme-{theme}-failure.png"), full_page=True)
                raise
        finally:
            browser.close()


def colors(locator) -> dict[str, list[int]]:
    return locator.evaluate(COLORS_JS)


def assert_readable(locator, what: str, theme: str, minimum: float = 4.5) -> None:
    c = colors(locator)
    ratio = contrast(c["fg"], c["bg"])
    assert ratio >= minimum, f"{theme}: {what}: text {c['fg']} on {c['bg']} has contrast {ratio:.1f} < {minimum}"


def assert_background(locator, what: str, theme: str) -> None:
    bg = colors(locator)["bg"]
    if theme == "dark":
        assert luminance(bg) < 0.1, f"{what}: background {bg} is not dark"
    else:
        assert luminance(bg) > 0.7, f"{what}: background {bg} is not light"


def check_theme(page, url: str, theme: str) -> None:
    page.goto(f"{url}/lab/tree/theme.ipynb?token={TOKEN}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.wait_for_function("(light) => document.body.dataset.jpThemeLight === light",
                           arg="false" if theme == "dark" else "true")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    page.get_by_text("| Idle").first.wait_for(timeout=90_000)
    views = page.locator(".jt-job-view")
    report = page.locator(".jt-report")
    prompt = page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first
    for attempt in range(3):  # a run swallowed while the kernel was still connecting is run again
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Escape")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator("li[data-command='runmenu:run-all']").click()
        try:  # the first cell is queued or ran: the run was taken
            page.wait_for_function("(el) => /\\[(\\*|\\d+)\\]/.test(el.innerText)", arg=prompt.element_handle(),
                                   timeout=15_000)
            break
        except Exception:
            if attempt == 2:
                raise
    report.wait_for(timeout=300_000)  # the first import of the stack is slow on a busy 2-core machine
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jt-job-view img, .jt-report img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length >= 2", timeout=30_000)

    view, failed = views.nth(0), views.nth(1)
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(ARTIFACTS / f"theme-{theme}-job-view.png"))
    assert_background(view, "the job view", theme)
    assert_readable(view.locator(".jt-cards div").first, "a metric card's label", theme, 3.0)
    assert_readable(view.locator(".jt-badge").first, "the state badge", theme, 3.0)
    view.locator(".lm-TabBar-tab", has_text="Details").click()
    page.wait_for_selector(".jt-job-view .jt-table >> text=Adapter size (rank)")
    assert_readable(view.locator(".jt-table th").first, "a table's muted header", theme, 3.0)
    assert_readable(view.locator(".jt-table td").first, "a table's value", theme)
    view.locator(".lm-TabBar-tab", has_text="Dataset").click()
    page.wait_for_selector(".jt-job-view .jt-trained")
    assert_readable(view.locator(".jt-trained").first, "the trained-on text", theme)
    assert_readable(view.locator(".jt-prompt").first, "the prompt text", theme, 3.0)
    view.screenshot(path=str(ARTIFACTS / f"theme-{theme}-job-view-dataset.png"))

    failed.scroll_into_view_if_needed()
    failed.screenshot(path=str(ARTIFACTS / f"theme-{theme}-job-view-failed.png"))
    error = failed.locator(".jt-error")
    assert_background(error, "the error box", theme)
    assert_readable(error, "the error message", theme)
    assert_readable(failed.locator("pre").last, "the log lines", theme)

    report.scroll_into_view_if_needed()
    report.screenshot(path=str(ARTIFACTS / f"theme-{theme}-evaluation-report.png"))
    assert_background(report, "the evaluation report", theme)
    assert_readable(report, "the report's text", theme)
    assert_readable(report.locator("div").first, "the failed-rows warning", theme, 3.0)
    assert "rows failed" in report.locator("div").first.inner_text()

    page.keyboard.press("Control+Shift+C")
    page.fill(".lm-CommandPalette-input", "Open Tuning panel")
    page.keyboard.press("Enter")
    panel = page.locator("#jupyter-tune-panel")
    panel.wait_for(state="visible")
    page.wait_for_selector(".jp-TuningPanel-job")
    panel.screenshot(path=str(ARTIFACTS / f"theme-{theme}-panel.png"))
    assert_background(panel, "the Tuning panel", theme)
    assert_readable(panel.locator(".jp-TuningPanel-jobName").first, "a job's name in the panel", theme)
    page.screenshot(path=str(ARTIFACTS / f"theme-{theme}-lab.png"))
    for name in ("job-view", "job-view-failed", "evaluation-report", "panel"):
        assert (ARTIFACTS / f"theme-{theme}-{name}.png").stat().st_size > 5_000
