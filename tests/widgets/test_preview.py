"""jt.preview_dataset: the Dataset tab before a job exists, plus the time and memory estimate."""

from __future__ import annotations

import importlib

import pytest

import jupyter_tune as jt
from jupyter_tune.params import TuningParams
from tests.support.fixtures import dataset_stats


@pytest.fixture
def fake_engine(monkeypatch):
    calls = {}

    def stats(train, validation=None, base_model=None, params=None, **kw):
        calls["stats"] = (train, validation, base_model, params)
        return dataset_stats(validation=validation is not None)

    def estimate(data, params, validation_data=None):
        calls["estimate"] = (data, params)
        report = {"evaluation_seconds": 15.0, "total_seconds": 60.0} if validation_data is not None else {}
        return {"seconds_per_step": 1.5, "total_steps": 30, "estimated_seconds": 45.0,
                "peak_memory_bytes": 2.2 * 1024 ** 3, "measured_steps": 3, **report}

    stats_mod = importlib.import_module("jupyter_tune.data.stats")
    monkeypatch.setattr(stats_mod, "dataset_stats", stats)
    try:
        est_mod = importlib.import_module("jupyter_tune.training.estimate")
        monkeypatch.setattr(est_mod, "estimate_cost", estimate)
    except ImportError:  # the estimator is not written yet: stand in for the whole module
        import sys
        import types

        mod = types.ModuleType("jupyter_tune.training.estimate")
        mod.estimate_cost = estimate
        monkeypatch.setitem(sys.modules, "jupyter_tune.training.estimate", mod)
    return calls


def test_preview_shows_stats_and_estimate(fake_engine):
    data = [{"input_text": "x", "output_text": "y"}] * 20
    p = jt.preview_dataset(data, base_model="tiny-llama", adapter_size=4, max_seq_length=256)
    train, val, base, params = fake_engine["stats"]
    assert train is data and val is None and base == "tiny-llama"
    assert isinstance(params, TuningParams) and params.adapter_size == 4 and params.max_seq_length == 256
    assert fake_engine["estimate"][1] is params
    est = p.estimate_box.get_state()["value"]
    assert "45 s" in est and "2.2 GB" in est and "3 real training steps" in est
    html = p.dataset.content.value
    assert "Training dataset" in html and "No validation dataset" in html
    assert "tiny-llama" in p.title.value


def test_preview_without_estimator(fake_engine, monkeypatch):
    def broken(data, params, validation_data=None):
        raise RuntimeError("model not found")

    monkeypatch.setattr(importlib.import_module("jupyter_tune.training.estimate"), "estimate_cost", broken)
    p = jt.preview_dataset([{"input_text": "x", "output_text": "y"}] * 20, [{"input_text": "a",
                           "output_text": "b"}] * 5, base_model="tiny-llama")
    assert "No time and memory estimate: RuntimeError: model not found" in p.estimate_box.value
    assert "Validation dataset" in p.dataset.content.value


def test_preview_estimate_includes_the_end_of_job_report(fake_engine):
    p = jt.preview_dataset([{"input_text": "x", "output_text": "y"}] * 20, [{"input_text": "a",
                           "output_text": "b"}] * 5, base_model="tiny-llama")
    est = p.estimate_box.get_state()["value"]
    assert "1 min" in est or "60 s" in est, est
    assert "End-of-job report" in est and "15 s" in est


def test_preview_skip_estimate(fake_engine):
    p = jt.preview_dataset([{"input_text": "x", "output_text": "y"}] * 20, base_model="m", estimate=False)
    assert "estimate" not in fake_engine and "No time and memory estimate" in p.estimate_box.value


def test_preview_with_the_real_engine(tiny_model_dir, tune_home):
    rows = [{"input_text": f"Example number {i} about {t}.", "output_text": t}
            for i in range(12) for t in ("Urology", "Neurology")]
    p = jt.preview_dataset(rows, rows[:4], base_model=str(tiny_model_dir), batch_size=4, max_steps=5)
    assert p.stats["train"]["tuning_dataset_example_count"] == 24
    assert "jt-trained" in p.dataset.content.value and "Validation dataset" in p.dataset.content.value
    assert p.estimate is not None and p.estimate["total_steps"] == 5, p.estimate_box.value
    # the end-of-job report's time (evaluate_after: a classification validation set) is in the estimate
    assert p.estimate["evaluation_seconds"] > 0 and "End-of-job report" in p.estimate_box.value
    assert p.estimate["total_seconds"] == p.estimate["estimated_seconds"] + p.estimate["evaluation_seconds"]
    assert "Estimated time" in p.estimate_box.value
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())  # no job made
