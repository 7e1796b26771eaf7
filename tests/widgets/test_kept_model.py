"""Which weights a job's model is, stated wherever the job shows (issue 38, item 4): an early-stopped job
that kept checkpoint 65 says so in the header (whose bar ends at the stop), the job list's summary, Details,
the checkpoint chooser, the cards and the charts."""

from __future__ import annotations

import pytest

from jupyter_tune.jobs.kept import kept_model
from jupyter_tune.jobs.states import JobState
from jupyter_tune.widgets.charts import metrics_png
from jupyter_tune.widgets.details import details_rows
from jupyter_tune.widgets.header import JobHeader
from jupyter_tune.widgets.supervise import SuperviseTab

STOPPED = {"id": "j", "state": JobState.SUCCEEDED.value, "params": {"validation_dataset": "v.jsonl"},
           "progress": {"step": 104, "total_steps": 135},
           "best": {"step": 65, "metric": "eval_macro_f1", "value": 0.8123},
           "stopped_early": {"step": 104, "reason": "eval_macro_f1 did not improve"}}
ROWS = ([{"step": s, "train_total_loss": 1.0 / s} for s in range(1, 105)]
        + [{"step": 65, "eval_total_loss": 0.5, "eval_macro_f1": 0.81, "eval_accuracy": 0.9},
           {"step": 104, "eval_total_loss": 0.6, "eval_macro_f1": 0.76, "eval_accuracy": 0.85}])


@pytest.mark.parametrize(("record", "text"), [
    (STOPPED, "Stopped early at step 104; model = checkpoint 65 (macro F1 0.812), the best evaluation"),
    ({**STOPPED, "stopped_early": None}, "model = checkpoint 65 (macro F1 0.812), the best evaluation"),
    ({**STOPPED, "chosen_checkpoint": {"step": 40}}, "Stopped early at step 104; model = checkpoint 40 (your choice)"),
    ({**STOPPED, "state": JobState.CANCELLED.value, "stopped_early": None},
     "Cancelled at step 104; model = its weights at the stop; its best evaluation was checkpoint 65: choose it "
     "under Details"),
    ({**STOPPED, "state": JobState.RUNNING.value, "stopped_early": None, "best": None}, None),
])
def test_the_kept_model_line(record, text):
    assert (kept_model(record) or {}).get("text") == text


def test_the_header_states_the_kept_model_and_its_bar_ends_at_the_stop():
    h = JobHeader()
    h.update(STOPPED, ROWS)
    assert "stopped early at step 104 of 135" in h.progress_text.value
    assert h.progress.value == 104 and h.progress.max == 135  # not a full bar
    assert "model = checkpoint 65" in h.kept.value and h.kept.layout.display is None
    h.update({**STOPPED, "stopped_early": None, "best": None, "progress": {"step": 135, "total_steps": 135}}, ROWS)
    assert h.progress.value == 135 and h.kept.layout.display == "none"


def test_details_and_the_job_list_say_it_first(tmp_path):
    from jupyter_tune.jobs.store import JobStore

    rows = dict(details_rows(STOPPED))
    assert rows["Job's model"].startswith("Stopped early at step 104; model = checkpoint 65")
    assert JobStore(tmp_path).summary(STOPPED)["kept"] == rows["Job's model"]


def test_the_cards_show_the_kept_step_and_the_charts_mark_it():
    tab = SuperviseTab()
    assert tab.update(ROWS, 135, record=STOPPED)
    assert "Validation macro F1 (step 65)" in tab.summary.value and "0.81" in tab.summary.value
    plain = metrics_png(ROWS, 135)
    marked = metrics_png(ROWS, 135, kept_step=65, stopped_at=104)
    assert marked != plain and marked[:8] == b"\x89PNG\r\n\x1a\n"
    assert not tab.update(ROWS, 135, record=STOPPED)  # nothing new: no redraw


def test_the_note_before_the_first_evaluation_does_not_deny_the_validation_set():
    tab = SuperviseTab()
    train_only = [r for r in ROWS if "train_total_loss" in r][:3]
    running = {"state": JobState.RUNNING.value, "params": {"validation_dataset": "v.jsonl"}, "progress": {"step": 3}}
    tab.update(train_only, 135, record=running)
    assert "after the first evaluation" in tab.note.value and "No validation" not in tab.note.value
    tab.update(train_only, 135, record={**running, "progress": {"step": 3, "phase": "evaluating"}})
    assert "Evaluating" in tab.note.value
    tab.update(train_only, 135, record={**running, "params": {}})
    assert "No validation set" in tab.note.value
