"""The Test tab loads what jt.load_model would (models/loading.job_adapter decides) and calls
models.loading.load_model / generation.generate_text (faked here)."""

from __future__ import annotations

import pandas as pd
import pytest

import jupyter_tune.generation
import jupyter_tune.models.loading
from jupyter_tune.api.job import TuningJob
from jupyter_tune.widgets import JobView
from tests.support.fixtures import add_checkpoint, make_job


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
    # a job without a prompt template: the text is the whole prompt (no template applied)
    assert kw == {"prompt_template": "", "temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_output_tokens": 12}
    assert not t.fields and t.prompt.layout.display is None
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


TEMPLATE = "Assign a label to the given medical transcript.\nTRANSCRIPT: {input_text}"


def _templated_job(store, job_id: str, template: str, **params):
    d = make_job(store, job_id, "JOB_STATE_SUCCEEDED", steps=4)
    store.update(job_id, params={**store.read(job_id)["params"], "prompt_template": template, **params})
    return d


def test_the_job_template_is_filled_from_one_box(store, views, fake_generation):
    """Tested the way it was trained: the typed text goes into the job's template, not in its place."""
    _templated_job(store, "tpl-1", TEMPLATE)
    v = JobView(TuningJob("tpl-1", store))
    views.append(v)
    t = v.test
    assert list(t.fields) == ["input_text"] and t.fields["input_text"].description == ""
    assert t.prompt.layout.display == "none" and t.field_box.layout.display is None
    assert "TRANSCRIPT: {input_text}" in t.template_note.value
    t.generate()
    assert "Fill in the template first" in t.status.value and not fake_generation["generate"]
    t.fields["input_text"].value = "CT head without contrast."
    t.generate()
    _, data, kw = fake_generation["generate"][-1]
    assert data == [{"input_text": "CT head without contrast."}] and kw["prompt_template"] == TEMPLATE
    # the raw checkbox sends the typed text alone, with no template (not even the model's own)
    t.raw.value = True
    assert t.prompt.layout.display is None and t.field_box.layout.display == "none"
    t.prompt.value = "just this"
    t.generate()
    _, data, kw = fake_generation["generate"][-1]
    assert data == [{"prompt": "just this"}] and kw["prompt_template"] == ""


def test_one_box_per_placeholder(store, views, fake_generation):
    _templated_job(store, "tpl-2", "Labels: {labels}\nTranscript: {transcript}\nAgain: {labels}")
    v = JobView(TuningJob("tpl-2", store))
    views.append(v)
    t = v.test
    assert list(t.fields) == ["labels", "transcript"]
    assert [b.description for b in t.fields.values()] == ["labels", "transcript"]
    t.fields["labels"].value, t.fields["transcript"].value = "Urology, Neurology", "CT head."
    t.generate()
    _, data, _ = fake_generation["generate"][-1]
    # the loader knows a text row by its input field: an empty one is added, the template does not use it
    assert data == [{"labels": "Urology, Neurology", "transcript": "CT head.", "input_text": ""}]


def test_real_model_prompt_sent_and_label_ranking(store, views, tiny_model_dir, fresh_models):
    """The tiny model with a real LoRA adapter: the exact prompt (chat template included) is shown, and a
    classification job's labels are ranked with scores."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from jupyter_tune.data.loader import load_dataset

    d = _templated_job(store, "tpl-3", TEMPLATE, base_model=str(tiny_model_dir))
    labels = ["Neurology", "Urology", "Orthopedic"]
    rows = [{"input_text": f"Example {i}.", "output_text": labels[i % 3]} for i in range(12)]
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in load_dataset(rows, TEMPLATE).to_records()))
    store.update("tpl-3", tuning={**store.read("tpl-3")["tuning"], "task_metric": {"labels": 3, "examples": 4}})
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(d / "adapter")
    v = JobView(TuningJob("tpl-3", store))
    views.append(v)
    t = v.test
    t.fields["input_text"].value = "CT head without contrast."
    t.max_output_tokens.value = 3
    t.generate()
    assert "Done" in t.status.value, t.status.value
    sent = t.sent.value
    assert "<|im_start|>user\nAssign a label to the given medical transcript.\nTRANSCRIPT: CT head without " \
           "contrast.<|im_end|>\n<|im_start|>assistant\n" in sent.replace("&lt;", "<").replace("&gt;", ">")
    assert t.sent_box.selected_index is None  # collapsed until opened
    ranking = t.ranking.value
    assert "Label ranking" in ranking and all(lab in ranking for lab in labels)
    assert "sum log-likelihood" in ranking  # a tuned job's model: jt.evaluate's scoring for it
