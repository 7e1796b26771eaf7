"""What a score is measured on (issue 38, items 2 and 3): jt.evaluate warns, or refuses, when a tuned job's
model is scored on rows it trained or chose its checkpoint on; the end-of-job headline names its rows, and
scores test_dataset's rows (no part in training or the choice) when the job has them."""

from __future__ import annotations

import pytest

import jupyter_tune as jt
from jupyter_tune.evaluation import job_report
from jupyter_tune.evaluation.overlap import OverlapError

LABELS = ("Urology", "Neurology", "Orthopedic")
ROWS = [{"input_text": f"Example number {i} about {t} and its follow up.", "output_text": t}
        for i in range(10) for t in LABELS]
TRAIN, VAL, TEST = ROWS[:18], ROWS[18:24], ROWS[24:]
FAST = dict(max_steps=2, batch_size=4, eval_steps=2, min_train_examples=1, eval_task_metric=False,
            sample_prompts=0)


@pytest.fixture(scope="module")
def tested_job(tmp_path_factory, tiny_model_dir):
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_TUNE_HOME", str(tmp_path_factory.mktemp("tune-home")))
    mp.setenv("JUPYTER_TUNE_CACHE", str(tmp_path_factory.mktemp("cache")))
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=TRAIN, validation_dataset=VAL,
                  test_dataset=TEST + TRAIN[:2], **FAST)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    yield job
    mp.undo()


def test_the_report_scores_the_test_rows_and_says_so(tested_job):
    ev = tested_job.record["evaluation"]
    assert ev["rows"] == {"rows": "test", "count": 8, "chose_checkpoint": False}
    assert ev["headline"].endswith("on 8 test rows (no part in training or the choice)")
    assert (tested_job.dir / "test.jsonl").is_file()
    # the two test rows that are training rows are warned about at launch
    assert any(w.startswith("test_dataset: 2 of 8 rows") and "training rows" in w for w in tested_job.record["warnings"])


def test_evaluate_warns_or_refuses_on_the_jobs_own_rows(tested_job, capsys):
    report = jt.evaluate(tested_job, TRAIN[:3] + TEST[:3], progress=False)
    assert report.overlap["training"] == 3 and report.overlap["validation"] == 0
    err = capsys.readouterr().err
    assert "3 of 6 evaluation rows" in err and "training rows" in err and "items 1, 2, 3" in err
    with pytest.raises(OverlapError, match="validation rows: their validation score chose"):
        jt.evaluate(tested_job, VAL[:2], progress=False, overlap="refuse")
    clean = jt.evaluate(tested_job, TEST[:4], progress=False, overlap="refuse")
    assert clean.overlap == {"training": 0, "validation": 0, "messages": []}
    assert jt.evaluate(tested_job, TRAIN[:2], progress=False, overlap="ignore").overlap is None
    with pytest.raises(jt.ParameterError, match="overlap"):
        jt.evaluate(tested_job, TEST, overlap="maybe")


@pytest.mark.parametrize(("which", "note"), [
    ({"rows": "validation", "count": 24, "chose_checkpoint": True}, "on the 24 validation rows that chose the checkpoint"),
    ({"rows": "validation", "count": 24, "chose_checkpoint": False}, "on 24 validation rows"),
    ({"rows": "test", "count": 30, "chose_checkpoint": False}, "on 30 test rows (no part in training or the choice)"),
    (None, ""),
])
def test_the_headline_names_its_rows(which, note):
    assert job_report.rows_note(which) == note
