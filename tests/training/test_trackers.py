"""report_to: TensorBoard, MLflow and trackio receive the steps metrics.jsonl logs, the parameters and the
final adapter's location, all written under the job folder; a tracker that cannot start is a warning."""

from __future__ import annotations

import pytest

import jupyter_tune as jt
from jupyter_tune.jobs.states import JobState

LABELS = ("Urology", "Neurology")
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(12) for t in LABELS]
FAST = dict(batch_size=4, num_threads=1, max_seq_length=128, max_steps=4, eval_steps=2, logging_steps=1)


@pytest.fixture
def no_tracker_env(monkeypatch):
    for var in ("TENSORBOARD_LOGGING_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "TRACKIO_DIR"):
        monkeypatch.delenv(var, raising=False)


def test_each_tracker_receives_the_logged_steps(tune_home, tiny_model_dir, no_tracker_env):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:8], evaluate_after=False, sample_prompts=0,
                  tuned_model_display_name="tracked", report_to=["tensorboard", "mlflow", "trackio"], **FAST)
    assert job.wait(timeout=600) is JobState.SUCCEEDED, job.log(80)
    rows = job.store.read_metrics(job.id)
    train_steps = sorted(r["step"] for r in rows if "train_total_loss" in r)
    eval_rows = {r["step"]: r for r in rows if "eval_total_loss" in r}
    assert train_steps == [1, 2, 3, 4] and sorted(eval_rows) == [2, 4]
    log = job.log(200)
    assert "Warning: tracker" not in log, log

    # TensorBoard: the event file under the job folder, read back with tensorboard's own reader.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((job.dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, list(job.dir.iterdir())
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    loss = acc.Scalars("train/total_loss")
    assert [e.step for e in loss] == train_steps
    by_step = {r["step"]: r["train_total_loss"] for r in rows if "train_total_loss" in r}
    assert all(abs(e.value - by_step[e.step]) < 1e-5 for e in loss)
    assert [e.step for e in acc.Scalars("eval/total_loss")] == [2, 4]
    assert "train/fraction_of_correct_next_step_preds" in scalars and "train/tokens_per_second" in scalars
    texts = " ".join(t for t in acc.Tags().get("tensors", []))
    assert "tuning/params" in texts and "tuning/adapter" in texts

    # MLflow: the SQLite store under the job folder, queried with its client.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{job.dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("jupyter_tune")
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "train_total_loss")
    assert sorted(m.step for m in history) == train_steps
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "eval_total_loss")) == [2, 4]
    assert run.data.params["tuning/adapter_size"] == "8"
    assert run.data.params["tuning/max_steps"] == "4"
    assert run.data.tags["jupyter_tune.adapter"] == str(job.adapter_path)
    assert run.data.tags["jupyter_tune.state"] == JobState.SUCCEEDED.value
    assert run.info.run_name == job.id

    # trackio: its local SQLite store under the job folder (read in a fresh process: TRACKIO_DIR is read
    # when trackio is imported).
    import json
    import subprocess
    import sys

    script = ("import json, sys\nfrom trackio.sqlite_storage import SQLiteStorage as S\n"
              "run = S.get_runs('jupyter_tune')[0]\n"
              "print(json.dumps({'run': run, 'logs': S.get_logs('jupyter_tune', run),"
              " 'config': S.get_run_config('jupyter_tune', run)}, default=str))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "TRACKIO_DIR": str(job.dir / "trackio")})
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["run"] == job.id
    # the integration logs the Trainer's step as train/global_step (trackio counts its own calls in "step")
    logged = {r["train/global_step"]: r for r in data["logs"] if "train/total_loss" in r}
    assert sorted(logged) == train_steps
    assert all(abs(logged[s]["train/total_loss"] - by_step[s]) < 1e-5 for s in train_steps)
    assert sorted(r["train/global_step"] for r in data["logs"] if "eval/total_loss" in r) == [2, 4]
    assert data["config"]["tuning/adapter_size"] == 8
    assert any(r.get("tuning/adapter") == str(job.adapter_path) for r in data["logs"])


def test_a_tracker_that_cannot_start_is_a_warning(tune_home, tiny_model_dir, no_tracker_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "no-such-scheme://nowhere")  # the job process inherits it
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, report_to=["mlflow", "tensorboard"],
                  **{**FAST, "max_steps": 2})
    assert job.wait(timeout=600) is JobState.SUCCEEDED, job.log(80)
    log = job.log(200)
    assert "Warning: tracker mlflow" in log, log
    assert len(job.metrics) == 2  # metrics.jsonl has every step
    assert list((job.dir / "tensorboard").glob("events.out.tfevents.*"))  # the other tracker still ran
