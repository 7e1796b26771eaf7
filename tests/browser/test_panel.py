"""The Tuning panel in a real JupyterLab, driven like a person would in headless Chromium.

Steps (in order, sharing one server and one page): open the panel from the command palette, fill in
the form, click Tune a model and read the two inserted cells; run them with a tiny local model and
watch the job reach SUCCEEDED in the panel; click View and see the job's view. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.support.lab_server import running_lab
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DISPLAY_NAME = 'tiny "panel" run'
JOB_TIMEOUT_S = 420
FILE_BROWSER_LISTING = ".jp-FileBrowser .jp-DirListing-content"
FINAL_STATES = ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]


class Sel:
    """Selectors, so the steps below read like what a person does."""

    SHELL = "#jp-main-dock-panel"
    PANEL = "#jupyter-tune-panel"
    PANEL_TAB = 'li[data-id="jupyter-tune-panel"]'
    PALETTE_INPUT = ".lm-CommandPalette-input"
    FIELD = "#jp-TuningPanel-{name}"
    FIELD_PROBLEM = "#jp-TuningPanel-{name}-error"
    PICK_FILE = 'button[data-pick-for="{name}"]'
    HOLDOUT = ".jp-TuningPanel-holdout"
    REFRESH = "button.jp-TuningPanel-refresh"
    FILE_ITEM = ".jp-DirListing-item"
    ACTION = '.jp-TuningPanel-actions button[data-action="{action}"]'
    JOB = ".jp-TuningPanel-job"
    BADGE = ".jp-TuningPanel-badge"
    ERROR = ".jp-TuningPanel-error"
    NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
    CELL = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
    CELL_SOURCE = ".jp-InputArea-editor .cm-content"


def _training_data(path: Path) -> Path:
    labels = ["Urology", "Neurology", "Cardiology", "Orthopedic"]
    rows = [{"input_text": f"Transcript {i}: patient seen for a routine visit number {i}.",
             "output_text": labels[i % len(labels)]} for i in range(24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server in a temp folder with its own job store; yields (url, token, folder, home)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (make install does it)")
    root = tmp_path_factory.mktemp("lab")
    home = root / "tune-home"
    token = secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_TUNE_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"), "TOKENIZERS_PARALLELISM": "false"}
    # no news or update toast over the panel's lower buttons (it covered a job's box in test_compare)
    settings = root / ".jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    try:
        with running_lab(root, token, env) as url:
            yield url, token, root, home
    except RuntimeError as e:
        pytest.fail(str(e))
    shutil.copy(root / "lab.log", ARTIFACTS / "lab.log") if ARTIFACTS.is_dir() else None


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    url, token, _, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        pg.set_default_timeout(60_000)
        pg.goto(f"{url}/lab?token={token}")
        pg.wait_for_selector(Sel.SHELL, state="attached")
        pg.wait_for_selector("#jupyterlab-splash", state="detached")
        yield pg
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.fixture(autouse=True)
def screenshot_on_failure(request, page):
    failed_before = request.session.testsfailed
    yield
    # The call phase's report is counted before teardown runs.
    if request.session.testsfailed > failed_before:
        shot(page, f"failed-{request.node.name}")


def dismiss_news_toast(page) -> None:
    no = page.locator(".jp-toast-button", has_text="No")
    if no.count():
        no.first.click()


def open_tuning_panel(page):
    """Open the panel through the command palette, as a user would; returns the panel's locator."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # Give the page a user's click first (the empty bottom of the file browser's listing), and press the
    # shortcut again if a loaded machine lost the first press.
    listing = page.locator(FILE_BROWSER_LISTING).first
    listing.wait_for(state="visible")
    box = listing.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 5)
    palette = page.locator(Sel.PALETTE_INPUT)
    for attempt in range(2):
        page.keyboard.press("Control+Shift+C")
        try:
            palette.wait_for(state="visible", timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt:
                raise
    palette.fill("Open Tuning panel")
    page.keyboard.press("Enter")
    panel = page.locator(Sel.PANEL)
    panel.wait_for(state="visible")
    return panel


def wait_for_idle_kernel(page) -> None:
    page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText)",
                           timeout=120_000)


def cell_sources(page) -> list[str]:
    return page.locator(f"{Sel.CELL} {Sel.CELL_SOURCE}").all_inner_texts()


def job_items(page):
    return page.locator(f"{Sel.PANEL} {Sel.JOB}")


def layout_saved_with_panel(root: Path) -> bool:
    """The workspace JupyterLab saved (to --LabApp.workspaces_dir) shows the Tuning panel open."""
    for path in (root / "workspaces").glob("*"):
        try:
            layout = json.loads(path.read_text())["data"]["layout-restorer:data"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not a layout yet
        right = layout.get("right") or {}
        if right.get("current") == "jupyter-tune-panel" and not right.get("collapsed"):
            return True
    return False


def test_open_panel_and_insert_tune_cells(page, lab, tiny_model_dir):
    _, _, root, _ = lab
    train = _training_data(root / "train.jsonl")

    panel = open_tuning_panel(page)
    assert page.locator(Sel.PANEL_TAB).get_attribute("title") == "Tuning"
    page.wait_for_selector(Sel.FIELD.format(name="base_model"))
    # The form is prefilled from GET /jupyter-tune/schema.
    assert page.input_value(Sel.FIELD.format(name="adapter_size")) == "8"
    assert page.input_value(Sel.FIELD.format(name="learning_rate_multiplier")) == "1.0"
    assert page.input_value(Sel.FIELD.format(name="method")) == "lora"  # a choice: lora, qlora, full, dpo
    panel.get_by_text("No tuning jobs yet").wait_for()  # the first job list has arrived
    shot(page, "01-panel")

    page.fill(Sel.FIELD.format(name="base_model"), str(tiny_model_dir))
    # The training file comes from the file browser: select it there, then the button beside the field.
    page.locator(Sel.FILE_ITEM, has_text=train.name).first.click()
    pick = page.locator(Sel.PICK_FILE.format(name="train_dataset"))
    assert pick.locator("svg").count() == 1 and pick.inner_text().strip() == ""  # an icon, not an emoji
    pick.click()
    assert page.input_value(Sel.FIELD.format(name="train_dataset")) == train.name  # relative to the notebook
    page.fill(Sel.FIELD.format(name="tuned_model_display_name"), DISPLAY_NAME)
    page.fill(Sel.FIELD.format(name="epochs"), "1")
    page.select_option(Sel.FIELD.format(name="adapter_size"), "4")
    # One data file: the checked box below the validation field holds out 10 % of it (jt.split); it hides
    # while a validation file is given.
    holdout = page.locator(Sel.HOLDOUT)
    assert holdout.is_visible() and page.is_checked(f"{Sel.HOLDOUT} input")
    page.fill(Sel.FIELD.format(name="validation_dataset"), "eval.jsonl")
    holdout.wait_for(state="hidden")
    page.fill(Sel.FIELD.format(name="validation_dataset"), "")
    holdout.wait_for(state="visible")

    # No notebook is open: the button opens one and inserts the parameters and tuning cells.
    page.click(Sel.ACTION.format(action="tune"))
    page.wait_for_function(
        "sel => document.querySelectorAll(sel).length >= 2", arg=f"{Sel.CELL} {Sel.CELL_SOURCE}")
    params_cell, tune_cell = cell_sources(page)[:2]
    assert f"base_model = {str(tiny_model_dir)!r}" in params_cell
    assert f"train_dataset = {train.name!r}" in params_cell
    assert f"tuned_model_display_name = {DISPLAY_NAME!r}" in params_cell
    assert "epochs = 1" in params_cell and "adapter_size = 4" in params_cell
    assert "jt.tune(" in tune_cell and "job.view()" in tune_cell
    assert "holdout = 0.1" in params_cell and "jt.split(train_dataset, test_size=holdout" in tune_cell
    assert not page.locator(Sel.ERROR).is_visible()
    shot(page, "02-tune-cells")


def test_run_cells_and_follow_the_job(page, lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    _, _, _, home = lab
    dismiss_news_toast(page)
    wait_for_idle_kernel(page)
    # Run the two cells: select the first, then Shift+Enter twice.
    page.locator(Sel.CELL).nth(0).locator(Sel.CELL_SOURCE).click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")

    # The job shows up in the panel's list (polled), then reaches SUCCEEDED.
    job_items(page).first.wait_for(timeout=180_000)
    item = job_items(page).first
    assert item.locator(".jp-TuningPanel-jobName").inner_text() == DISPLAY_NAME
    shot(page, "03-job-running")
    # The list is redrawn on each poll: read the first job's state afresh each time.
    try:
        page.wait_for_function("([sel, final]) => final.includes(document.querySelector(sel)?.dataset.state)",
                               arg=[f"{Sel.PANEL} {Sel.JOB}", FINAL_STATES], timeout=JOB_TIMEOUT_S * 1000)
    except PlaywrightTimeout:
        pass  # reported below with the job's log
    state = item.get_attribute("data-state")
    shot(page, "04-job-final")
    if state != "JOB_STATE_SUCCEEDED":
        logs = "\n".join(p.read_text()[-3000:] for p in Path(home).glob("jobs/*/log.txt"))
        pytest.fail(f"the job ended {state}; job log:\n{logs}")
    assert item.locator(Sel.BADGE).inner_text().lower() == "succeeded"
    # The rows jt.split held out were scored after training: the headline shows under the job's name.
    assert "macro F1" in item.locator(".jp-TuningPanel-headline").inner_text()
    assert re.search(r"\d+/\d+", item.inner_text())  # progress step/total
    assert item.locator("button", has_text="Test").is_visible()
    assert item.locator("button", has_text="Export").is_visible()


def test_view_button_inserts_and_runs_the_view(page):
    item = job_items(page).first
    job_id = item.get_attribute("data-job-id")
    before = len(cell_sources(page))
    item.locator("button", has_text="View").click()
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", before])
    sources = cell_sources(page)
    view_index = next(i for i, s in enumerate(sources) if f"jt.get_job({job_id!r}).view()" in s)
    view_cell = page.locator(Sel.CELL).nth(view_index)
    # The cell ran: its view widget renders, with the Supervise tab.
    view_cell.locator(".jp-OutputArea-output").first.wait_for(timeout=120_000)
    view_cell.locator(".jupyter-widgets").first.wait_for(timeout=60_000)
    assert "Supervise" in view_cell.locator(".jp-OutputArea").inner_text()
    shot(page, "05-view")
    # Evaluation inside the job (issue 26): the sample answers under the curves, the checkpoint table in
    # Details, and the end-of-job report in Evaluate; one screenshot each.
    output = view_cell.locator(".jp-OutputArea")
    output.get_by_text("Sample answers").first.wait_for(timeout=60_000)
    output.get_by_text("Sample answers").first.scroll_into_view_if_needed()
    shot(page, "05-view-samples")
    for tab, expected, name in (("Details", "Checkpoints", "05-view-checkpoints"),
                                ("Evaluate", "Comparison", "05-view-evaluate")):
        output.locator(".lm-TabBar-tab", has_text=tab).first.click()
        output.get_by_text(expected).first.wait_for(timeout=60_000)
        output.get_by_text(expected).first.scroll_into_view_if_needed()
        shot(page, name)


def test_evaluate_uses_the_chosen_tuned_model(page):
    job_id = job_items(page).first.get_attribute("data-job-id")
    page.select_option(Sel.FIELD.format(name="job"), job_id)
    # Evaluate names its data (issue 33): never the training file by default
    page.fill(Sel.FIELD.format(name="validation_dataset"), "eval.jsonl")
    before = len(cell_sources(page))
    page.click(Sel.ACTION.format(action="evaluate"))
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", before])
    evaluate_cell = next(s for s in cell_sources(page) if "jt.evaluate(" in s)
    assert f"jt.load_model({job_id!r})" in evaluate_cell
    assert 'task_type="classification"' in evaluate_cell or "task_type='classification'" in evaluate_cell
    assert "eval.jsonl" in evaluate_cell
    page.fill(Sel.FIELD.format(name="validation_dataset"), "")


def test_export_button_inserts_an_export_cell(page):
    item = job_items(page).first
    job_id = item.get_attribute("data-job-id")
    before = len(cell_sources(page))
    item.locator("button", has_text="Export").click()
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", before])
    export_cell = next(s for s in cell_sources(page) if "job.export(" in s)
    assert f"jt.get_job({job_id!r})" in export_cell and "format='merged'" in export_cell
    assert not page.locator(Sel.ERROR).is_visible()


def test_numbers_are_checked_at_the_field(page):
    """The form checks numbers against the schema (type, minimum) as they are typed, and shows the
    problem beside the field; nothing is inserted while one is left."""
    epochs, problem = Sel.FIELD.format(name="epochs"), page.locator(Sel.FIELD_PROBLEM.format(name="epochs"))
    page.fill(epochs, "1.5")  # once read with parseInt as 1
    problem.wait_for(state="visible")
    assert "whole number" in problem.inner_text()
    page.fill(epochs, "0")
    assert "minimum 1" in problem.inner_text()
    before = len(cell_sources(page))
    page.click(Sel.ACTION.format(action="tune"))
    error = page.locator(Sel.ERROR)
    error.wait_for(state="visible")
    assert "Epochs" in error.inner_text()
    assert len(cell_sources(page)) == before
    shot(page, "06-field-problem")
    page.fill(epochs, "1")
    problem.wait_for(state="hidden")


def test_server_errors_show_in_the_panel(page):
    # Each field is valid alone; the dataclass refuses the pair (full fine-tuning on a 4-bit base).
    page.select_option(Sel.FIELD.format(name="method"), "full")
    page.select_option(Sel.FIELD.format(name="quantization"), "4bit")
    page.click(Sel.ACTION.format(action="tune"))
    error = page.locator(Sel.ERROR)
    error.wait_for(state="visible")
    page.wait_for_function("sel => /full/.test(document.querySelector(sel).innerText)", arg=Sel.ERROR)
    assert "method" in error.inner_text()
    shot(page, "06-error")
    page.select_option(Sel.FIELD.format(name="method"), "lora")
    page.select_option(Sel.FIELD.format(name="quantization"), "")


def test_panel_is_restored_after_reload(page, lab, tiny_model_dir):
    url, token, root, _ = lab
    # A user setting (schema/plugin.json through the settings registry): the form's default base model.
    body = json.dumps({"raw": json.dumps({"defaultBaseModel": "my-org/my-model"})}).encode()
    request = urllib.request.Request(f"{url}/lab/api/settings/jupyter-tune:plugin?token={token}", data=body,
                                     method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    # The layout is saved to the workspace shortly after it changes: reload once it is.
    wait_for(lambda: layout_saved_with_panel(root), timeout=60, what="the workspace to record the open panel")
    page.reload()
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.locator(Sel.PANEL).wait_for(state="visible")
    job_items(page).first.wait_for()
    # the base model typed earlier in this session survives the reload (the form's state, issue 38); the
    # setting is the default of a field the user has not typed in
    page.wait_for_function("([sel, v]) => document.querySelector(sel)?.value === v",
                           arg=[Sel.FIELD.format(name="base_model"), str(tiny_model_dir)])
    shot(page, "07-restored")
