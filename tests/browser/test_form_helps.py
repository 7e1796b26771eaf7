"""The Tuning panel's form helps (issue 38, item 6), in a real JupyterLab driven in headless Chromium.

Steps (in order, sharing one server and one page): a dataset path with a typo shows the server's problem at
the field as it is typed, and the right path suggests Task = classification with its reason; the form's
values survive a page reload; Tune's cells go after the notebook's tuning section, not at the cursor, and
Enter in a field inserts them too; Cancel in the job list asks first. Jobs are fixture folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tests.browser import test_panel as panel_steps
from tests.browser.test_panel import Sel, cell_sources, dismiss_news_toast, open_tuning_panel, shot
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

lab = panel_steps.lab
page = panel_steps.page
screenshot_on_failure = panel_steps.screenshot_on_failure

LABELS = ["Cardiology", "Neurology", "Urology"]
BUSY = "busy-job"
NOTEBOOK = "analysis.ipynb"
DIALOG = ".jp-Dialog"


def field(name: str) -> str:
    return Sel.FIELD.format(name=name)


def _setup(root: Path, home: Path) -> None:
    from jupyter_tune.jobs.store import JobStore
    from tests.support.fixtures import make_job

    data = root / "data"
    data.mkdir(exist_ok=True)
    rows = [{"input_text": f"Transcript {i}: the patient came back for visit {i}.", "output_text": LABELS[i % 3]}
            for i in range(12)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # A notebook whose tuning section (cells the panel inserted) sits between the user's own cells.
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    mark = {"jupyter_tune": {"action": "tune"}}
    nb.cells = [nbformat.v4.new_code_cell("first = 1"),
                nbformat.v4.new_code_cell("# tuning parameters", metadata=mark),
                nbformat.v4.new_code_cell("# tuning job", metadata=mark),
                nbformat.v4.new_code_cell("mine_after = 2")]
    nbformat.write(nb, root / NOTEBOOK)
    make_job(JobStore(home), BUSY, "JOB_STATE_RUNNING", steps=3, stats=False)  # this process stands in for it


def form_saved(root: Path, name: str, text: str) -> bool:
    """The workspace JupyterLab saved holds the form's value (IStateDB, key jupyter-tune:form)."""
    for path in (root / "workspaces").glob("*"):
        try:
            form = json.loads(path.read_text())["data"].get("jupyter-tune:form") or {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if form.get(name) == text:
            return True
    return False


def test_a_wrong_path_shows_its_problem_as_typed(page, lab):
    _, _, root, home = lab
    _setup(root, home)
    open_tuning_panel(page)
    dismiss_news_toast(page)
    problem = page.locator(Sel.FIELD_PROBLEM.format(name="train_dataset"))
    page.locator(field("train_dataset")).press_sequentially("data/trian.jsonl", delay=20)  # typed, with a typo
    problem.wait_for(state="visible")
    assert "no file 'data/trian.jsonl'" in problem.inner_text()
    assert page.get_attribute(field("train_dataset"), "aria-invalid") == "true"
    shot(page, "form-01-wrong-path")

    page.fill(field("train_dataset"), "data/train.jsonl")
    problem.wait_for(state="hidden")
    # Three labels repeated over twelve rows: Task = classification, with a note that says why.
    note = page.locator("#jp-TuningPanel-task-note")
    note.wait_for(state="visible")
    assert page.input_value(field("task")) == "classification"
    assert "3 labels repeated over 12 rows" in note.inner_text()
    shot(page, "form-02-suggested-task")


def test_the_form_values_survive_a_reload(page, lab):
    _, _, root, _ = lab
    page.fill(field("epochs"), "2")
    page.fill(field("tuned_model_display_name"), "kept across reloads")
    page.select_option(field("adapter_size"), "4")
    wait_for(lambda: form_saved(root, "epochs", "2") and form_saved(root, "adapter_size", "4"), timeout=60,
             what="the workspace to hold the form's values")
    page.reload()
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.locator(Sel.PANEL).wait_for(state="visible")
    page.wait_for_function("sel => document.querySelector(sel)?.value === '2'", arg=field("epochs"))
    assert page.input_value(field("tuned_model_display_name")) == "kept across reloads"
    assert page.input_value(field("adapter_size")) == "4"
    assert page.input_value(field("train_dataset")) == "data/train.jsonl"
    shot(page, "form-03-reloaded")


def test_cells_go_after_the_tuning_section_and_enter_submits(page):
    page.locator(Sel.FILE_ITEM, has_text=NOTEBOOK).first.dblclick()
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n",
                           arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", 4])
    page.locator(Sel.CELL).first.locator(Sel.CELL_SOURCE).click()  # the cursor at the top: not where cells go
    page.click(Sel.ACTION.format(action="tune"))
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n",
                           arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", 6])
    sources = cell_sources(page)
    assert sources[0] == "first = 1" and sources[-1] == "mine_after = 2"
    assert "epochs = 2" in sources[3] and "jt.tune(" in sources[4]  # right after the section's two cells

    # Enter in a form field inserts the Tune cells too: after the ones just inserted (the section grew).
    page.fill(field("epochs"), "4")
    page.locator(field("epochs")).press("Enter")
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n",
                           arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", 8])
    sources = cell_sources(page)
    assert "epochs = 4" in sources[5] and "jt.tune(" in sources[6] and sources[7] == "mine_after = 2"
    shot(page, "form-04-after-the-section")


def test_evaluation_data_and_the_holdouts_conflicts_reach_the_cells(page):
    """Issue 38, items 1-2: the form's Evaluation data becomes Tune's test_dataset (the end-of-job report's
    rows) and Evaluate's dataset (never the training file); the hold-out offers jt.split's conflicts."""
    page.select_option("#jp-TuningPanel-holdout-conflicts", "drop")
    page.fill("#jp-TuningPanel-evaldata", "data/test.jsonl")
    before = len(cell_sources(page))
    page.click(Sel.ACTION.format(action="tune"))
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n",
                           arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", before + 2])
    sources = "\n".join(cell_sources(page))
    assert "holdout_conflicts = 'drop'" in sources and "test_dataset='data/test.jsonl'" in sources
    shot(page, "form-06-evaluation-data")


def test_cancel_asks_first(page):
    busy = f'{Sel.PANEL} {Sel.JOB}[data-job-id="{BUSY}"]'
    cancel = page.locator(busy).get_by_role("button", name="Cancel")
    cancel.click()
    dialog = page.locator(DIALOG)
    dialog.wait_for(state="visible")
    assert "Cancel tuning job" in dialog.inner_text() and "keeps its last checkpoint" in dialog.inner_text()
    shot(page, "form-05-cancel-asks")
    dialog.get_by_role("button", name="Keep running").click()
    dialog.wait_for(state="detached")
    page.locator(f"{Sel.PANEL} {Sel.REFRESH}").click()
    assert page.get_attribute(busy, "data-state") == "JOB_STATE_RUNNING"

    page.locator(busy).get_by_role("button", name="Cancel").click()
    page.locator(DIALOG).get_by_role("button", name="Cancel job").click()
    page.wait_for_function("sel => /CANCEL/.test(document.querySelector(sel)?.dataset.state)", arg=busy)
