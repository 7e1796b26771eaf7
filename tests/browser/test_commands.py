"""Every Tuning panel action as a JupyterLab command (issue 37), in a real JupyterLab driven in headless Chromium.

Steps (in order, sharing one server and one page): the panel's shortcut; the palette's "Tuning" section
(every action, with its icon and shortcuts); each action run from the palette (type its label, Enter) with
the form's values: Tune, Evaluate, Generate, Test, Export, View, Compare, Cancel and Check a dataset; Tune's
shortcut in the panel; and the file browser's menu on data files: "Tune a model on this file" fills the form,
"Check this dataset" shows the health report. Jobs are fixture folders (nothing trains). Screenshots go to
test-artifacts/commands-*.png.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.browser import test_panel as panel_steps
from tests.browser.test_panel import (
    FILE_BROWSER_LISTING,
    Sel,
    cell_sources,
    dismiss_news_toast,
    job_items,
    shot,
)

pytestmark = pytest.mark.browser

# test_panel's fixtures: a JupyterLab server of this module's own, its page, a screenshot of a failed step.
lab = panel_steps.lab
page = panel_steps.page
screenshot_on_failure = panel_steps.screenshot_on_failure

LABELS = ["Cardiology", "Neurology", "Urology"]
# The palette's "Tuning" section: every command's label, in the order they were added.
PALETTE = ["Open Tuning panel", "Tune a model", "Evaluate a model", "Generate text", "Test a tuned model",
           "Compare jobs", "Export a tuned model", "View a job", "Cancel a job", "Check a dataset"]
PANEL_KEYS = "Control+Shift+Y"   # jupyter-tune:open-panel (schema/plugin.json)
TUNE_KEYS = "Control+Enter"      # jupyter-tune:tune, in the panel
DONE, BUSY = "done-job", "busy-job"
DIALOG = ".jp-Dialog"
MENU_ITEM = ".lm-Menu-item"


def _rows(n: int, offset: int = 0) -> list[dict]:
    return [{"input_text": f"Transcript {i}: the patient came back for visit {i} with new symptoms.",
             "output_text": LABELS[i % 3]} for i in range(offset, offset + n)]


def _write_data(root: Path) -> None:
    """data/train.jsonl (a duplicate, a conflict), data/eval.jsonl (a training row leaked into it), the same
    rows as .csv and .parquet, and a text file the menu items must not show on."""
    data = root / "data"
    data.mkdir(exist_ok=True)
    train = _rows(12)
    train.append(dict(train[0]))
    train.append({**train[1], "output_text": "Urology"})
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (data / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(4, offset=50) + [train[5]]))
    pd.DataFrame(train).to_csv(data / "rows.csv", index=False)
    pd.DataFrame(train).to_parquet(data / "rows.parquet")
    (data / "notes.txt").write_text("not data\n")


def _make_jobs(home: Path) -> None:
    from jupyter_tune.jobs.store import JobStore
    from tests.support.fixtures import make_job

    store = JobStore(home)
    make_job(store, DONE, "JOB_STATE_SUCCEEDED", steps=20, stats=False)
    make_job(store, BUSY, "JOB_STATE_RUNNING", steps=3, stats=False)  # this test's process stands in for it


def field(name: str) -> str:
    return Sel.FIELD.format(name=name)


def give_focus(page) -> None:
    """A user's click on the page (the empty bottom of the file browser), so key presses reach it."""
    listing = page.locator(FILE_BROWSER_LISTING).first
    listing.wait_for(state="visible")
    box = listing.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 5)


def open_palette(page):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    palette = page.locator(Sel.PALETTE_INPUT)
    for attempt in range(2):  # a loaded machine may lose the first press
        page.keyboard.press("Control+Shift+C")
        try:
            palette.wait_for(state="visible", timeout=15_000)
            return palette
        except PlaywrightTimeout:
            if attempt:
                raise
    return palette


def run_from_palette(page, label: str) -> None:
    """Open the palette (Ctrl+Shift+C), type the command's label and press Enter on it."""
    palette = open_palette(page)
    palette.fill(label)
    page.wait_for_function(
        "label => document.querySelector('.lm-CommandPalette-item.lm-mod-active .lm-CommandPalette-itemLabel')"
        "?.textContent === label", arg=label, timeout=15_000)
    page.keyboard.press("Enter")
    palette.wait_for(state="hidden")


def new_cells(page, before: int, count: int = 1) -> list[str]:
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length >= n",
                           arg=[f"{Sel.CELL} {Sel.CELL_SOURCE}", before + count], timeout=60_000)
    return cell_sources(page)[before:]


def panel_error(page) -> str:
    error = page.locator(Sel.ERROR)
    return error.inner_text() if error.is_visible() else ""


def open_context_menu(page, name: str):
    item = page.locator(Sel.FILE_ITEM, has_text=name).first
    item.wait_for()
    item.click(button="right")
    menu = page.locator(".lm-Menu").last
    menu.wait_for(state="visible")
    return menu


def close_dialog(page) -> None:
    page.locator(f"{DIALOG} .jp-Dialog-button.jp-mod-accept").click()
    page.locator(DIALOG).wait_for(state="detached")


def test_the_shortcut_opens_the_panel(page, lab):
    _, _, root, _ = lab
    _write_data(root)
    assert not page.locator(Sel.PANEL).is_visible()
    give_focus(page)
    page.keyboard.press(PANEL_KEYS)
    page.locator(Sel.PANEL).wait_for(state="visible")
    page.wait_for_selector(field("base_model"))
    page.locator(Sel.PANEL).get_by_text("No tuning jobs yet").wait_for()
    dismiss_news_toast(page)
    shot(page, "commands-01-shortcut")


def test_the_palette_lists_every_action_under_tuning_with_icons_and_shortcuts(page):
    open_palette(page)
    page.wait_for_selector(".lm-CommandPalette-item", state="attached")
    items = page.evaluate("""() => {
      let category = null; const out = [];
      for (const li of document.querySelectorAll('.lm-CommandPalette-content > li')) {
        if (li.classList.contains('lm-CommandPalette-header')) { category = li.textContent; continue; }
        out.push({category, label: li.querySelector('.lm-CommandPalette-itemLabel')?.textContent,
                  caption: li.querySelector('.lm-CommandPalette-itemCaption')?.textContent ?? li.title,
                  icon: !!li.querySelector('.lm-CommandPalette-itemIcon svg'),
                  keys: li.querySelector('.lm-CommandPalette-itemShortcut')?.textContent ?? ''});
      }
      return out;
    }""")
    tuning = [i for i in items if i["category"] == "Tuning"]
    assert [i["label"] for i in tuning] == PALETTE
    assert all(i["icon"] for i in tuning), tuning
    keys = {i["label"]: i["keys"] for i in tuning}
    assert "Y" in keys["Open Tuning panel"] and "Enter" in keys["Tune a model"], keys
    page.locator(Sel.PALETTE_INPUT).fill("Tuning")  # the category matches: the section alone, for the picture
    page.locator(".lm-CommandPalette-item", has_text="Check a dataset").wait_for()
    shot(page, "commands-02-palette")
    page.keyboard.press("Escape")
    page.locator(Sel.PALETTE_INPUT).wait_for(state="hidden")


def test_tune_from_the_palette_uses_the_forms_values(page):
    page.fill(field("base_model"), "my-org/tiny-model")
    page.fill(field("train_dataset"), "data/train.jsonl")
    page.fill(field("epochs"), "2")
    run_from_palette(page, "Tune a model")  # no notebook is open: it opens one
    params_cell, tune_cell = new_cells(page, 0, 2)[:2]
    assert "base_model = 'my-org/tiny-model'" in params_cell
    assert "train_dataset = 'data/train.jsonl'" in params_cell and "epochs = 2" in params_cell
    assert "jt.tune(" in tune_cell
    assert not panel_error(page)
    shot(page, "commands-03-tune")


def test_the_tune_shortcut_in_the_panel(page):
    before = len(cell_sources(page))
    page.fill(field("epochs"), "3")
    page.locator(field("epochs")).focus()
    page.keyboard.press(TUNE_KEYS)
    params_cell = new_cells(page, before, 2)[0]
    assert "epochs = 3" in params_cell and "train_dataset = 'data/train.jsonl'" in params_cell


def test_evaluate_and_generate_from_the_palette(page):
    page.fill(field("validation_dataset"), "data/eval.jsonl")
    for label, call in (("Evaluate a model", "jt.evaluate("), ("Generate text", "jt.generate_text(")):
        before = len(cell_sources(page))
        run_from_palette(page, label)
        cell = new_cells(page, before)[-1]
        assert call in cell and "data/eval.jsonl" in cell and "my-org/tiny-model" in cell, cell
    assert not panel_error(page)


def test_test_export_and_view_from_the_palette_use_the_chosen_job(page, lab):
    _, _, _, home = lab
    _make_jobs(home)
    page.locator(Sel.REFRESH).click()
    page.wait_for_function("sel => document.querySelectorAll(sel).length >= 2", arg=f"{Sel.PANEL} {Sel.JOB}")
    page.select_option(field("job"), DONE)  # the form's "Tuned model"
    for label, expected in (("Test a tuned model", "jt.load_model(job)"), ("Export a tuned model", "job.export("),
                            ("View a job", ".view()")):
        before = len(cell_sources(page))
        run_from_palette(page, label)
        cell = new_cells(page, before)[-1]
        assert f"jt.get_job({DONE!r})" in cell and expected in cell, cell
    assert not panel_error(page)


def test_compare_from_the_palette_takes_the_checked_jobs(page):
    dismiss_news_toast(page)
    before = len(cell_sources(page))
    run_from_palette(page, "Compare jobs")  # nothing checked: the panel says what to do
    page.wait_for_function("sel => /Check the jobs to compare/.test(document.querySelector(sel)?.innerText)",
                           arg=Sel.ERROR)
    assert len(cell_sources(page)) == before
    for job_id in (DONE, BUSY):
        page.locator(f'{Sel.PANEL} {Sel.JOB}[data-job-id="{job_id}"] input.jp-TuningPanel-jobSelect').check()
    run_from_palette(page, "Compare jobs")
    cell = new_cells(page, before)[-1]
    assert "jt.compare_jobs(" in cell and repr(DONE) in cell and repr(BUSY) in cell
    page.locator(Sel.ERROR).wait_for(state="hidden")  # the earlier problem is gone


def test_cancel_from_the_palette_stops_the_running_job(page):
    busy = f'{Sel.PANEL} {Sel.JOB}[data-job-id="{BUSY}"]'
    assert page.get_attribute(busy, "data-state") == "JOB_STATE_RUNNING"
    run_from_palette(page, "Cancel a job")  # no job_id: the newest queued or running job
    page.wait_for_function("sel => /CANCEL/.test(document.querySelector(sel)?.dataset.state)", arg=busy)
    assert page.get_attribute(f'{Sel.PANEL} {Sel.JOB}[data-job-id="{DONE}"]', "data-state") == \
        "JOB_STATE_SUCCEEDED"
    assert not panel_error(page)
    shot(page, "commands-04-cancelled")


def test_check_a_dataset_from_the_palette_shows_the_report(page):
    # The form holds data/train.jsonl and data/eval.jsonl: the report names its duplicate, its conflict and
    # the training row leaked into the validation file, with the label counts; no job starts.
    jobs_before = job_items(page).count()
    run_from_palette(page, "Check a dataset")
    dialog = page.locator(DIALOG)
    dialog.locator(".jp-TuningCheck").wait_for()
    assert "data/train.jsonl + data/eval.jsonl" in dialog.locator(".jp-Dialog-header").inner_text()
    counts = {kind: dialog.locator(f'tr[data-kind="{kind}"] td').inner_text()
              for kind in ("overlap", "conflict", "duplicate")}
    assert counts == {"overlap": "1", "conflict": "1", "duplicate": "1"}
    assert "Urology" in dialog.locator(".jp-TuningCheck-labels").inner_text()
    kinds = dialog.locator(".jp-TuningCheck-finding").evaluate_all("els => els.map(e => e.dataset.kind)")
    assert {"overlap", "conflict", "duplicate"} <= set(kinds)
    shot(page, "commands-05-check-report")
    close_dialog(page)
    assert job_items(page).count() == jobs_before


def test_the_file_browsers_menu_on_data_files(page):
    # Into data/ in the file browser; the notebook is at the root, so the form's path is data/train.jsonl.
    page.locator(Sel.FILE_ITEM, has_text="data").first.dblclick()
    page.locator(Sel.FILE_ITEM, has_text="train.jsonl").first.wait_for()
    for name in ("rows.csv", "rows.parquet", "train.jsonl"):
        menu = open_context_menu(page, name)
        labels = menu.locator(MENU_ITEM).all_inner_texts()
        assert any("Tune a model on this file" in t for t in labels), (name, labels)
        assert any("Check this dataset" in t for t in labels), (name, labels)
        if name == "train.jsonl":
            shot(page, "commands-06-context-menu")
        page.keyboard.press("Escape")
        menu.wait_for(state="hidden")
    menu = open_context_menu(page, "notes.txt")
    assert not any("Tune a model on this file" in t for t in menu.locator(MENU_ITEM).all_inner_texts())
    page.keyboard.press("Escape")
    menu.wait_for(state="hidden")


def test_tune_a_model_on_this_file_fills_the_form(page):
    page.fill(field("train_dataset"), "")
    menu = open_context_menu(page, "rows.csv")
    before = len(cell_sources(page))
    menu.locator(MENU_ITEM, has_text="Tune a model on this file").click()
    page.wait_for_function("sel => document.querySelector(sel)?.value === 'data/rows.csv'",
                           arg=field("train_dataset"))
    assert page.locator(Sel.PANEL).is_visible()
    assert len(cell_sources(page)) == before  # it fills the form; Tune stays the user's click
    assert not panel_error(page)


def test_check_this_dataset_shows_the_report_with_no_job(page):
    jobs_before = job_items(page).count()
    menu = open_context_menu(page, "train.jsonl")
    menu.locator(MENU_ITEM, has_text="Check this dataset").click()
    dialog = page.locator(DIALOG)
    dialog.locator(".jp-TuningCheck").wait_for()
    assert "Dataset health: data/train.jsonl" in dialog.locator(".jp-Dialog-header").inner_text()
    # No validation file: leakage is not measured; the duplicate and the conflict are listed with their lines.
    assert dialog.locator('tr[data-kind="overlap"] td').inner_text() == "–"
    assert dialog.locator('tr[data-kind="duplicate"] td').inner_text() == "1"
    findings = dialog.locator(".jp-TuningCheck-findings").inner_text()
    assert "data/train.jsonl" in findings and "lines 1, 13" in findings, findings
    labels = dialog.locator(".jp-TuningCheck-labels").inner_text()
    assert "Cardiology" in labels and "Neurology" in labels
    shot(page, "commands-07-check-this-dataset")
    close_dialog(page)
    assert job_items(page).count() == jobs_before
