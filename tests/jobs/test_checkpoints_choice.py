"""Checkpoints you can see and choose (issue 26): the kept checkpoints with their metrics, job.use_checkpoint
making one the job's model for jt.load_model and export, a torn one refused, and retention that keeps the
best and the chosen one across a resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import jupyter_tune as jt
from jupyter_tune.jobs.choice import CheckpointError, keep_checkpoints
from jupyter_tune.jobs.store import JobStateError, JobStore
from jupyter_tune.params import ParameterError

LABELS = ("Urology", "Neurology", "Orthopedic")
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(8) for t in LABELS]


def _lora_weights(lm) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(lm.model)


def test_choose_a_checkpoint_load_export_torn_and_retention(tune_home, tiny_model_dir, fresh_models, tmp_path):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], evaluate_after=False, sample_prompts=0,
                  max_steps=6, batch_size=4, eval_steps=2, min_train_examples=1, learning_rate=1e-2)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()

    # the kept checkpoints (rotation: the newest and the best), each with the metrics logged at its step
    table = job.checkpoints
    best = job.record["best"]["step"]
    assert len(table) == 2 and {best, 6} <= set(table["step"]), table
    assert table["eval_total_loss"].notna().all() and table["eval_macro_f1"].between(0, 1).all()
    assert list(table.loc[table["best"], "step"]) == [best]
    assert not table["chosen"].any() and table["problem"].isna().all()
    other = int(table.loc[~table["best"], "step"].iloc[0])  # a kept checkpoint that is not the job's model
    ckpt = job.dir / "checkpoints" / f"checkpoint-{other}"

    # choosing it: recorded in job.json, the state unchanged
    choice = job.use_checkpoint(other)
    rec = json.loads((job.dir / "job.json").read_text())
    assert rec["chosen_checkpoint"] == choice and choice["step"] == other and choice["by"] == "user"
    assert rec["state"] == "JOB_STATE_SUCCEEDED" and job.chosen_checkpoint == other
    assert job.checkpoints.set_index("step").loc[other, "chosen"]
    assert jt.JobStore().summary(rec)["chosen_checkpoint"] == other

    # jt.load_model follows it: the LoRA weights are the checkpoint's, not the final adapter's
    lm = jt.load_model(job, dtype="float32")
    assert lm.adapter_path == str(ckpt)
    saved = load_file(str(ckpt / "adapter_model.safetensors"))
    loaded = _lora_weights(lm)
    assert saved.keys() == loaded.keys()
    for k, v in saved.items():
        torch.testing.assert_close(loaded[k].float(), v.float())
    final = load_file(str(job.adapter_path / "adapter_model.safetensors"))
    assert any(not torch.allclose(final[k].float(), v.float()) for k, v in saved.items())

    # export follows it too, without the Trainer's bookkeeping
    report = job.export(tmp_path / "exported", format="adapter", parity=False)
    out = tmp_path / "exported"
    assert report.dest == str(out)
    assert (out / "adapter_model.safetensors").read_bytes() == (ckpt / "adapter_model.safetensors").read_bytes()
    assert not {"trainer_state.json", "optimizer.pt", "jupyter_tune_complete.json"} & {p.name for p in out.iterdir()}
    assert f"checkpoint at step {other}, chosen" in (out / "README.md").read_text()

    # back to the job's own model
    assert job.use_checkpoint(None) is None and job.chosen_checkpoint is None
    assert jt.load_model(job, dtype="float32").adapter_path == str(job.adapter_path)

    # unknown steps name the kept ones
    with pytest.raises(CheckpointError, match=r"no checkpoint at step 999.*steps \["):
        job.use_checkpoint(999)
    with pytest.raises(ParameterError, match="step: '4' is not a checkpoint step"):
        job.use_checkpoint("4")

    # retention across a resume: the chosen checkpoint is neither the newest nor (then) the best, and stays.
    # The job stands for one that failed at step 6 of 10.
    job.use_checkpoint(other)
    store = JobStore()
    store.update(job.id, state="JOB_STATE_FAILED", error={"message": "killed at step 6"},
                 params={**job.params, "max_steps": 10})
    jt.resume(job.id)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    steps = [s for s, _, _ in store.checkpoints(job.id)]
    new_best = job.record["best"]["step"]
    assert other in steps and new_best in steps and max(steps) == 10, steps
    assert job.chosen_checkpoint == other

    # a torn chosen checkpoint: a clear error everywhere, never the final adapter instead
    (ckpt / "adapter_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=rf"chosen checkpoint, step {other}.*adapter_model.safetensors is missing"):
        jt.load_model(job)
    with pytest.raises(CheckpointError, match="adapter_model.safetensors is missing"):
        job.export(tmp_path / "again", format="adapter", parity=False)
    assert not (tmp_path / "again").exists()
    with pytest.raises(CheckpointError, match="cannot be used: adapter_model.safetensors is missing"):
        job.use_checkpoint(other)


def test_a_running_job_cannot_choose(tune_home):
    from tests.support.fixtures import add_checkpoint, make_job

    store = JobStore(tune_home)
    d = make_job(store, "run-1", "JOB_STATE_RUNNING", steps=4)
    add_checkpoint(d, 4)
    job = jt.TuningJob("run-1", store)
    with pytest.raises(JobStateError, match="once the job has ended"):
        job.use_checkpoint(4)
    assert "chosen_checkpoint" not in job.record


def test_a_checkpoint_without_weights_cannot_be_chosen(tune_home):
    from tests.support.fixtures import add_checkpoint, make_job

    store = JobStore(tune_home)
    d = make_job(store, "done-1", "JOB_STATE_SUCCEEDED", steps=4)
    add_checkpoint(d, 4)  # trainer_state.json and adapter_config.json only
    with pytest.raises(CheckpointError, match="holds no weights"):
        jt.TuningJob("done-1", store).use_checkpoint(4)
    # a hand-edited choice that points nowhere is an error when loading, not the final adapter
    store.update("done-1", chosen_checkpoint={"step": 7})
    from jupyter_tune.models.loading import job_adapter

    with pytest.raises(CheckpointError, match="step 7 .*its folder is gone"):
        job_adapter(jt.TuningJob("done-1", store))


def test_retention_keeps_the_newest_the_best_and_the_chosen(tmp_path):
    for step in (2, 4, 6, 8, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    deleted = keep_checkpoints(tmp_path, 2, [tmp_path / "checkpoint-4", str(tmp_path / "checkpoint-2"), None])
    assert sorted(p.name for p in deleted) == ["checkpoint-6", "checkpoint-8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2", "checkpoint-4"]
    # within the limit, or a protected folder already gone: nothing more is deleted than the limit asks
    assert keep_checkpoints(tmp_path, 3, [tmp_path / "checkpoint-99"]) == []
    assert keep_checkpoints(tmp_path, None, []) == []
