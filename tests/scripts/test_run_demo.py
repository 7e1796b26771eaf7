"""make demo's console output (scripts/run_demo.py): each step as it starts, the job's progress; the pieces,
not the 11-minute run."""

import importlib.util
import io
import time
from pathlib import Path

import nbformat

from jupyter_tune.jobs.store import JobStore

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_demo", ROOT / "scripts" / "run_demo.py")
run_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_demo)


def test_each_code_cell_of_the_quickstart_has_a_step_label():
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    labels = run_demo.cell_labels(nb)
    assert len(labels) == sum(c.cell_type == "code" for c in nb.cells)
    texts = list(labels.values())
    assert texts[0] == "Quickstart: teach a small model to classify medical transcripts: import json"
    assert "2. Measure the base model: base = jt.load_model(BASE_MODEL)" in texts
    assert any(t.startswith("4. Measure the tuned model and compare: baseline = jt.baseline(") for t in texts)
    assert all(len(t.split(": ", 1)[1]) <= 70 for t in texts[1:])
    # the summary line make demo reads carries the baseline
    assert '"baseline_macro_f1": macro_f1(baseline)' in nb.cells[-1].source


def test_progress_line_says_step_total_epoch_and_eta():
    rec = {"id": "j1", "display_name": "medical-specialty", "state": "JOB_STATE_RUNNING",
           "progress": {"step": 12, "total_steps": 30, "epoch": 1.2, "eta_seconds": 125.0}}
    assert run_demo.progress_line(rec) == "medical-specialty: running, step 12 / 30, epoch 1.20, ETA 2 min 5 s"
    rec["progress"] = {"step": 0, "total_steps": None, "epoch": 0.0}
    assert run_demo.progress_line(rec) == "medical-specialty: running, preparing (tokenizing, loading the model)"
    rec.update(state="JOB_STATE_SUCCEEDED", progress={"step": 30, "total_steps": 30, "epoch": 3.0})
    assert run_demo.progress_line(rec) == "medical-specialty: succeeded, step 30 / 30, epoch 3.00"


def test_job_progress_prints_new_jobs_on_change_and_at_most_every_interval(tune_home):
    store = JobStore()
    old = time.time() - 100
    store.create("old-job", {"state": "JOB_STATE_SUCCEEDED", "create_unix": old, "display_name": "old"})
    since = time.time()
    store.create("new-job", {"state": "JOB_STATE_RUNNING", "create_unix": since + 1, "display_name": "new",
                             "pid": None, "progress": {"step": 3, "total_steps": 10, "epoch": 0.3,
                                                       "eta_seconds": 70}})
    out = io.StringIO()
    watcher = run_demo.JobProgress(since=since, out=out, every_s=3600)
    watcher.tick()
    watcher.tick()  # no change, within the interval: nothing more
    store.update("new-job", state="JOB_STATE_SUCCEEDED", progress={"step": 10, "total_steps": 10, "epoch": 1.0})
    watcher.tick()  # a state change prints at once
    lines = out.getvalue().splitlines()
    assert [line.strip() for line in lines] == ["new: running, step 3 / 10, epoch 0.30, ETA 1 min 10 s",
                                                "new: succeeded, step 10 / 10, epoch 1.00"]


def test_the_client_prints_each_step_as_it_starts(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## 1. Add"),
                                         nbformat.v4.new_code_cell("x = 1 + 1"),
                                         nbformat.v4.new_code_cell("print(x)")])
    out = io.StringIO()
    monkeypatch.setattr(run_demo, "SRC", tmp_path / "demo.ipynb")
    run_demo.make_client(nb, out=out).execute()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] 1. Add: x = 1 + 1" and lines[2] == "[2/2] 1. Add: print(x)"
    assert lines[1].strip().startswith("done in") and lines[3].strip().startswith("done in")
    assert nb.cells[2].outputs[0]["text"] == "2\n"
