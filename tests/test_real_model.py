"""The real default model (SmolLM2-135M-Instruct), offline: a short job on the seed's data learns."""

import pytest

import jupyter_tune as jt

TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / "
            "Pulmonary, Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")

pytestmark = pytest.mark.slow


def test_default_model_resolves_offline():
    from jupyter_tune.models.resolve import resolve_model

    path = resolve_model(jt.TuningParams().base_model)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_short_job_on_small_train_lowers_the_loss(tune_home, repo_data):
    job = jt.tune(train_dataset=str(repo_data / "small-train.jsonl"), prompt_template=TEMPLATE,
                  max_steps=8, batch_size=8, warmup_ratio=0.0, seed=0)
    assert job.wait(timeout=900) is jt.JobState.SUCCEEDED, job.log()
    loss = job.metrics["train_total_loss"].tolist()
    assert len(loss) == 8
    assert sum(loss[-3:]) / 3 < 0.6 * sum(loss[:2]) / 2, loss
    assert job.record["tuning"]["dtype"] in ("bfloat16", "float32")
    stats = job.dataset_stats["train"]
    assert stats["tuning_dataset_example_count"] == 240 and stats["truncated_example_count"] == 0
