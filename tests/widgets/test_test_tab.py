"""The Test tab loads what jt.load_model would (models/loading.job_adapter decides) and calls
models.loading.load_model / generation.generate_text (faked here)."""

from __future__ import annotations

import pandas as pd
import pytest

import jupyter_tune.generation
import jupyter_tune.models.loading
from jupyter_tune.jobs.job import TuningJob
from jupyter_tune.widgets import JobView

from .fixtures import add_checkpoint, make_job


@pytest.fixture
def fake_generation(monkeypatch):
    calls = {"load": [], "generate": []}

    def load_model(source):
        calls["load"].append(source)
        return f"model:{getattr(source, 'id', source)}"

    def generate_text(model, data, **kw):
        calls["generate"].append((model, data, kw))
        return pd.DataFrame([{**data[0], "ml_generate_text_llm_result": f"answer from {model}",
                              "ml_generate_text_status": ""}])

    monkeypatch.setattr(jupyter_tune.models.loading, "load_model", load_model)
    monkeypatch.setattr(jupyter_tune.generation, "generate_text", generate_text)
    return calls


def test_generate_tuned_and_base(store, views, fake_generation):
    adapter = make_job(store, "gen-1", "JOB_STATE_SUCCEEDED", steps=4) / "adapter"
    v = JobView(TuningJob("gen-1", store))
    views.append(v)
    t = v.test
    t.prompt.value = "CT head without contrast."
    t.temperature.value, t.top_p.value, t.top_k.value, t.max_output_tokens.value = 0.7, 0.9, 20, 12
    t.compare.value = True
    t.generate()
    assert fake_generation["load"] == [str(adapter), "tiny-llama"]
    model, data, kw = fake_generation["generate"][0]
    assert data == [{"prompt": "CT head without contrast."}]
    assert kw == {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_output_tokens": 12}
    assert f"answer from model:{adapter}" in t.tuned_answer.value
    assert "answer from model:tiny-llama" in t.base_answer.value
    assert t.base_answer.layout.display is None
    assert "Done" in t.status.value and not t.generate_button.disabled

    # a second prompt reuses the loaded models; unchecking hides the base answer; defaults pass None
    t.compare.value = False
    t.top_p.value, t.top_k.value = 1.0, 0
    t.generate()
    assert len(fake_generation["load"]) == 2
    assert fake_generation["generate"][-1][2]["top_p"] is None
    assert fake_generation["generate"][-1][2]["top_k"] is None
    assert t.base_answer.layout.display == "none"


def test_cancelled_job_loads_latest_checkpoint(store, views, fake_generation):
    d = make_job(store, "gen-2", "JOB_STATE_CANCELLED", steps=4)
    ckpt = add_checkpoint(d, 4)
    v = JobView(TuningJob("gen-2", store))
    views.append(v)
    v.test.prompt.value = "hello"
    v.test.generate()
    assert fake_generation["load"] == [str(ckpt)]


def test_generation_error_is_shown(store, views, monkeypatch):
    make_job(store, "gen-3", "JOB_STATE_SUCCEEDED", steps=4)

    def broken(source):
        raise RuntimeError("no weights <here>")

    monkeypatch.setattr(jupyter_tune.models.loading, "load_model", broken)
    v = JobView(TuningJob("gen-3", store))
    views.append(v)
    v.test.prompt.value = "hello"
    v.test.generate()
    assert "RuntimeError: no weights &lt;here&gt;" in v.test.status.value
    assert not v.test.generate_button.disabled


def test_empty_prompt_and_disabled_tab(store, views, fake_generation):
    make_job(store, "gen-4", "JOB_STATE_SUCCEEDED", steps=4)
    v = JobView(TuningJob("gen-4", store))
    views.append(v)
    v.test.generate()
    assert "Type a prompt" in v.test.status.value and not fake_generation["load"]

    make_job(store, "gen-5", "JOB_STATE_RUNNING", steps=1)
    r = JobView(TuningJob("gen-5", store), live=False)
    r.test.prompt.value = "hello"
    r.test.generate()  # nothing to test yet: a no-op
    assert not fake_generation["load"]


@pytest.mark.parametrize("state", ["JOB_STATE_SUCCEEDED", "JOB_STATE_CANCELLED", "JOB_STATE_FAILED",
                                   "JOB_STATE_RUNNING"])
@pytest.mark.parametrize("saved", ["adapter", "checkpoint", "nothing"])
def test_the_tab_opens_exactly_when_load_model_can_load(store, state, saved):
    """One rule (models/loading.job_adapter) for the tab and for jt.load_model, FAILED jobs included."""
    from jupyter_tune.models.loading import JobNotReadyError, job_adapter
    from jupyter_tune.widgets.test_tab import model_source

    job_id = f"{state.rsplit('_', 1)[-1].lower()}-{saved}"
    d = make_job(store, job_id, state, steps=4, stats=False)
    if saved != "adapter" and (d / "adapter").exists():
        import shutil

        shutil.rmtree(d / "adapter")
    if saved == "adapter" and state != "JOB_STATE_SUCCEEDED":
        (d / "adapter").mkdir()
        (d / "adapter" / "adapter_config.json").write_text("{}")
    if saved == "checkpoint":
        add_checkpoint(d, 4)
    job = TuningJob(job_id, store)
    try:
        expected = str(job_adapter(job)[0])
    except JobNotReadyError:
        expected = None
    found = model_source(job)
    assert (found[0] if found else None) == expected
    if state in ("JOB_STATE_CANCELLED", "JOB_STATE_FAILED") and saved != "nothing":
        assert expected is not None  # a stopped job is testable from what it saved
    if state == "JOB_STATE_RUNNING":
        assert expected is None
