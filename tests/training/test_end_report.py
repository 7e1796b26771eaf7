"""The end-of-job report (evaluate_after): base vs tuned vs baseline stored in the job, the cached base
report, the skips, a failed report that fails nothing, job.evaluation and the Evaluate tab."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import jupyter_tune as jt
from jupyter_tune.evaluation import job_report
from jupyter_tune.evaluation.compare import Comparison
from jupyter_tune.jobs.store import JobStore
from tests.support import faults

LABELS = ("Urology", "Neurology", "Orthopedic")
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(8) for t in LABELS]
FAST = dict(max_steps=2, batch_size=4, eval_steps=2, min_train_examples=1, eval_task_metric=False)


@pytest.fixture
def report_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("JUPYTER_TUNE_CACHE", str(cache))
    return cache


def _params(**kw):
    return SimpleNamespace(**{"evaluate_after": None, "method": "lora", **kw})


@pytest.mark.parametrize("kw, val, expected", [
    ({}, ["A", "B", "A", "B"], "classification"),
    ({}, [f"a short answer {i}" for i in range(6)], "text_generation"),
    ({}, ["a long free answer " * 20 + str(i) for i in range(6)], None),
    ({"evaluate_after": True}, ["a long free answer " * 20 + str(i) for i in range(6)], "text_generation"),
    ({"evaluate_after": False}, ["A", "B", "A", "B"], None),
    ({"method": "dpo"}, ["A", "B", "A", "B"], None),
    ({}, [None, None], None),
    ({}, None, None),
])
def test_plan(kw, val, expected):
    task, why = job_report.plan(_params(**kw), ["A", "B"] * 4, val)
    assert task == expected
    if val == [None, None]:
        assert "no labels" in why
    if expected is None and val and val[0] and val[0].startswith("a long"):
        assert "evaluate_after=True" in why


def test_estimate_seconds_counts_both_models():
    assert job_report.estimate_seconds("classification", 30, 0.3) == pytest.approx(2 * 30 * 0.1)
    assert job_report.estimate_seconds("text_generation", 30, 0.3, 8.0) == pytest.approx(2 * 30 * 0.2)
    assert job_report.estimate_seconds(None, 30, 0.3) is None


def test_report_json_round_trip():
    report = jt.baseline(ROWS, ROWS[:9])
    back = job_report.EvaluationReport.from_json(json.loads(json.dumps(report.to_json(), default=job_report._plain)))
    assert back.summary() == report.summary() and back.majority.macro_f1 == report.majority.macro_f1
    assert back.metrics.equals(report.metrics) and back.confusion_matrix.equals(report.confusion_matrix)
    assert list(back.predictions["correct"]) == list(report.predictions["correct"])


def test_classification_job_reports_and_reuses_the_base_report(tune_home, tiny_model_dir, report_cache):
    from jupyter_tune.widgets import JobView

    first = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], **FAST)
    assert first.wait(timeout=300) is jt.JobState.SUCCEEDED, first.log()
    ev = first.record["evaluation"]
    assert ev["error"] is None and ev["base_cached"] is False and ev["task_type"] == "classification"
    assert ev["headline"].startswith("macro F1 ") and ", baseline " in ev["headline"]
    assert {p.name for p in (first.dir / "evaluation").iterdir()} == {"base.json", "tuned.json", "baseline.json"}
    comparison = first.evaluation
    assert isinstance(comparison, Comparison) and comparison.baseline is not None
    assert ("f1_score", "baseline") in comparison.metrics.columns
    assert ev["baseline_macro_f1"] == pytest.approx(comparison.baseline.macro_f1)
    assert comparison.tuned.scoring == "sum" and comparison.base.scoring == "calibrated"
    assert "End-of-job report: macro F1" in first.log(80)
    store = JobStore()
    assert store.summary(store.read(first.id))["headline"] == ev["headline"]
    assert "phase" not in first.record["progress"]  # the report's progress is gone once it ends

    second = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], **FAST)
    assert second.wait(timeout=300) is jt.JobState.SUCCEEDED, second.log()
    ev2 = second.record["evaluation"]
    assert ev2["base_cached"] is True and ev2["base_macro_f1"] == ev["base_macro_f1"]
    assert "cached from an earlier job" in second.log(80)
    assert len(list((report_cache / "base-reports").glob("*.json"))) == 1

    view = JobView(second, live=False)
    try:
        html = view.evaluate.content.value
        assert "Comparison" in html and "Fixed by tuning" in html and "report cached" in html
        assert view.tabs.get_state()["titles"][-1] == "Evaluate"
    finally:
        view.close()


def test_failed_report_leaves_the_job_succeeded(tune_home, tiny_model_dir, report_cache, monkeypatch):
    faults.inject(monkeypatch, faults.REPORT_FAIL_ENV, "tuned")
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], **FAST)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    ev = job.record["evaluation"]
    assert "injected" in ev["error"] and ev["headline"] is None and ev["reports"] == ["base"]
    assert job.error is None and job.evaluation is None
    assert "The end-of-job report failed (the job and its model are fine)" in job.log(80)


def test_text_generation_report(tune_home, tiny_model_dir, report_cache):
    short = [{"input_text": f"Say {i}", "output_text": f"number {i}"} for i in range(24)]
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=short, validation_dataset=short[:3], **FAST)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    ev = job.record["evaluation"]
    assert ev["task_type"] == "text_generation" and ev["headline"].startswith("ROUGE-L F1 ")
    # the generation baselines (nearest neighbour, lead words): tests/evaluation/test_generation_baseline.py
    assert (job.dir / "evaluation" / "baseline.json").exists() and job.evaluation.baseline.rouge_l is not None


def test_cancel_during_the_report_keeps_what_it_has(tune_home, tiny_model_dir, report_cache, monkeypatch):
    import time

    faults.inject(monkeypatch, faults.REPORT_PAUSE_ENV, "tuned:120")
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], **FAST)
    deadline = time.monotonic() + 240
    while (job.record.get("progress") or {}).get("evaluating") != "tuned model" and time.monotonic() < deadline:
        assert job.state in (jt.JobState.QUEUED, jt.JobState.PENDING, jt.JobState.RUNNING), job.log()
        time.sleep(0.3)
    assert job.record["progress"]["phase"] == "evaluating" and job.state is jt.JobState.RUNNING
    job.cancel()
    assert job.wait(timeout=60) is jt.JobState.CANCELLED, job.log()
    ev = job.record["evaluation"]
    assert ev["reports"] == ["base"] and ev["error"].startswith("Cancelled during the end-of-job report")
    assert (job.dir / "evaluation" / "base.json").is_file() and (job.adapter_path / "adapter_config.json").is_file()


def test_evaluate_tab_says_what_is_happening(tmp_path):
    from jupyter_tune.widgets.evaluate_tab import EvaluateTab

    tab = EvaluateTab(SimpleNamespace(dir=tmp_path))
    assert "No evaluation yet" in tab.content.value
    assert tab.update({"progress": {"phase": "evaluating", "evaluating": "tuned model", "report_step": 2,
                                    "report_steps": 3}})
    assert "Evaluating the tuned model on the validation set (2 of 3)" in tab.content.value
    assert not tab.update({"progress": {"phase": "evaluating", "evaluating": "tuned model", "report_step": 2,
                                        "report_steps": 3}})  # unchanged: not redrawn
    tab.update({"evaluation": {"skipped": "evaluate_after=False: no end-of-job report"}})
    assert "evaluate_after=False" in tab.content.value
    tab.update({"evaluation": {"error": "RuntimeError: <boom>", "reports": []}})
    assert "did not finish: RuntimeError: &lt;boom&gt;" in tab.content.value


class _Store:
    def __init__(self):
        self.updates = []

    def update(self, job_id, **changes):
        self.updates.append(changes)


def _data(answers):
    return SimpleNamespace(examples=[SimpleNamespace(answer=a) for a in answers])


@pytest.mark.parametrize("params, val, line", [
    (_params(evaluate_after=False), ["A", "B"] * 3, "evaluate_after=False: no end-of-job report"),
    (_params(), [None] * 4, "The validation set has no labels"),
])
def test_skipped_report_is_logged_and_stored(params, val, line, capsys):
    from jupyter_tune.training import end_report

    store = _Store()
    assert end_report.run(store, "j", params, _data(["A", "B"] * 4), _data(val), None) is jt.JobState.SUCCEEDED
    assert store.updates[0]["evaluation"]["skipped"].startswith(line)
    assert line in capsys.readouterr().out
