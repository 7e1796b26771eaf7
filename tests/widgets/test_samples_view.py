"""The Supervise tab's sample answers, through widget state, on fixture job folders."""

from __future__ import annotations

from jupyter_tune.api.job import TuningJob
from jupyter_tune.widgets import JobView
from tests.support.fixtures import make_job


def _write(store, job_id, step, answers):
    expected = ["Urology", "Neurology"]
    store.append_line(job_id, "samples.jsonl", {"step": step, "epoch": step / 5, "seconds": 0.1, "samples": [
        {"row": i, "prompt": f"Prompt <{i}>", "expected": e, "answer": a, "correct": a == e}
        for i, (e, a) in enumerate(zip(expected, answers, strict=True))]})


def test_samples_show_changed_and_right_markers(store, views):
    make_job(store, "s-1", "JOB_STATE_RUNNING", steps=8, total=20)
    v = JobView(TuningJob("s-1", store), live=False)
    views.append(v)
    section = v.supervise.samples
    assert section.layout.display == "none"  # nothing sampled yet
    _write(store, "s-1", 5, ["Neurology", "Neurology"])
    v.refresh()
    assert section.layout.display is None and section.step.value == 5
    assert "1 of 2 right" in section.summary.value
    assert "Prompt &lt;0&gt;" in section.table.value  # escaped
    assert "became right" not in section.table.value
    _write(store, "s-1", 10, ["Urology", "Surgery"])
    v.refresh()
    assert list(section.step.options) == [5, 10] and section.step.value == 10  # follows the latest
    html = section.table.value
    assert "jt-became-right" in html and "jt-became-wrong" in html
    assert "1 became right, 1 became wrong" in section.summary.value
    section.step.value = 5  # an earlier evaluation: no markers
    assert "jt-became" not in section.table.value
    _write(store, "s-1", 15, ["Urology", "Cardiology"])
    v.refresh()
    assert section.step.value == 5  # the user's choice is kept while new evaluations arrive
    section.step.value = 15
    assert "jt-changed" in section.table.value and "jt-became" not in section.table.value
    assert TuningJob("s-1", store).samples["changed"].tolist() == [False, False, True, True, False, True]
