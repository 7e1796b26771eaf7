"""The real default model (SmolLM2-135M-Instruct), offline: a short job on the seed's data learns."""

import pytest

import jupyter_tune as jt

TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / "
            "Pulmonary, Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")

pytestmark = [pytest.mark.slow, pytest.mark.real_model]


def test_default_model_resolves_offline():
    from jupyter_tune.models.resolve import resolve_model

    path = resolve_model(jt.TuningParams().base_model)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_evaluation_inside_the_job(tune_home, repo_data, tmp_path, monkeypatch, fresh_models):
    """A short job on the seed's data learns, and issue 26 on the default model: sample answers that change
    across evaluations, a checkpoint table, a chosen checkpoint that the Test tab and export follow, and the
    end-of-job report (base vs tuned)."""
    from jupyter_tune.widgets import JobView
    from jupyter_tune.widgets.test_tab import model_source

    monkeypatch.setenv("JUPYTER_TUNE_CACHE", str(tmp_path / "cache"))  # the base report is not cached yet
    train, val = jt.split(str(repo_data / "small-train.jsonl"), test_size=0.1)
    job = jt.tune(train_dataset=train, validation_dataset=val.iloc[:8], prompt_template=TEMPLATE,
                  max_steps=12, eval_steps=4, batch_size=8, max_seq_length=256, seed=0)
    assert job.wait(timeout=1500) is jt.JobState.SUCCEEDED, job.log()
    loss = job.metrics["train_total_loss"].dropna().tolist()
    assert len(loss) == 12 and sum(loss[-3:]) / 3 < 0.6 * sum(loss[:2]) / 2, loss
    assert job.record["tuning"]["dtype"] in ("bfloat16", "float32")
    stats = job.dataset_stats["train"]
    assert stats["tuning_dataset_example_count"] == len(train)

    # sample answers at each evaluation: the first ones are not labels yet, the last ones are
    samples = job.samples
    steps = sorted(samples["step"].unique())
    assert len(steps) >= 3 and samples.groupby("step").size().eq(4).all(), samples
    first, last = samples[samples["step"] == steps[0]], samples[samples["step"] == steps[-1]]
    assert samples["changed"].any(), samples[["step", "answer", "expected"]]
    assert last["correct"].sum() >= first["correct"].sum()

    # the checkpoint table; choosing one that is not the best makes it the job's model everywhere
    table = job.checkpoints
    assert len(table) >= 2 and table["eval_total_loss"].notna().all() and table["best"].sum() == 1
    other = int(table.loc[~table["best"], "step"].iloc[0])
    job.use_checkpoint(other)
    path, why = model_source(job)
    assert path.endswith(f"checkpoint-{other}") and "chosen" in why
    assert jt.load_model(job).adapter_path == path
    out = tmp_path / "exported"
    job.export(out, format="adapter", parity=False)
    ckpt = job.dir / "checkpoints" / f"checkpoint-{other}"
    assert (out / "adapter_model.safetensors").read_bytes() == (ckpt / "adapter_model.safetensors").read_bytes()

    # the end-of-job report: base vs tuned on the validation rows, beside the TF-IDF baseline
    ev = job.record["evaluation"]
    assert ev["error"] is None and ev["task_type"] == "classification", ev
    comparison = job.evaluation
    assert comparison.tuned.macro_f1 > comparison.base.macro_f1, ev["headline"]
    assert comparison.baseline is not None
    view = JobView(job, live=False)
    try:
        assert "Comparison" in view.evaluate.content.value
    finally:
        view.close()
