import pytest
import torch

import jupyter_tune as jt
from jupyter_tune.models.loading import JobNotReadyError, LoadedModel
from tests.support.model_helpers import make_job

pytestmark = pytest.mark.usefixtures("fresh_models")


def _logits(lm, text="CT head"):
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return lm.model(ids).logits[0, -1].float()


def test_base_model_is_cached_and_ready(tiny_model_dir):
    a = jt.load_model(str(tiny_model_dir))
    assert isinstance(a, LoadedModel)
    assert jt.load_model(tiny_model_dir) is a  # a Path names the same thing
    assert jt.load_model(a) is a
    assert a.tokenizer.padding_side == "left" and a.tokenizer.pad_token_id is not None
    assert a.prompt_template is None and a.adapter_path is None and a.device == "cpu"
    # another dtype is another model (the default one depends on the CPU: models/hardware.py)
    assert jt.load_model(str(tiny_model_dir), dtype="float32") is not jt.load_model(str(tiny_model_dir),
                                                                                  dtype="bfloat16")


def test_job_by_id_and_object_loads_base_plus_adapter(tune_home, tiny_model_dir):
    make_job(tune_home, "med-job", tiny_model_dir, prompt_template="Label: {input_text}")
    lm = jt.load_model("med-job", dtype="float32")
    assert jt.load_model(jt.get_job("med-job"), dtype="float32") is lm
    assert lm.job_id == "med-job" and lm.prompt_template == "Label: {input_text}"
    assert lm.adapter_path.endswith("adapter") and type(lm.model).__name__.startswith("Peft")
    base = jt.load_model(str(tiny_model_dir), dtype="float32")
    assert not torch.allclose(_logits(lm), _logits(base), atol=1e-3)  # the adapter is applied


def test_adapter_folder_and_merge(tune_home, tiny_model_dir):
    job_dir = make_job(tune_home, "adapter-job", tiny_model_dir, prompt_template="T {input_text}")
    lm = jt.load_model(str(job_dir / "adapter"), dtype="float32")
    assert lm.prompt_template == "T {input_text}"  # found from the job the folder belongs to
    merged = jt.load_model(str(job_dir / "adapter"), merge=True, dtype="float32")
    assert merged is not lm and merged.merged and not type(merged.model).__name__.startswith("Peft")
    torch.testing.assert_close(_logits(merged), _logits(lm), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("state", ["JOB_STATE_RUNNING", "JOB_STATE_FAILED", "JOB_STATE_PENDING"])
def test_unfinished_job_says_its_state(tune_home, tiny_model_dir, state):
    make_job(tune_home, "not-done", tiny_model_dir, state=state, adapter=False, error="boom")
    with pytest.raises(JobNotReadyError, match=state) as e:
        jt.load_model("not-done")
    assert isinstance(e.value, ValueError)


def test_cancelled_job_uses_its_adapter_or_latest_checkpoint(tune_home, tiny_model_dir, caplog):
    make_job(tune_home, "cancelled-a", tiny_model_dir, state="JOB_STATE_CANCELLED")
    assert jt.load_model("cancelled-a").adapter_path.endswith("adapter")
    assert "cancelled" in caplog.text
    make_job(tune_home, "cancelled-c", tiny_model_dir, state="JOB_STATE_CANCELLED", adapter=False, checkpoint=True)
    lm = jt.load_model("cancelled-c")
    assert lm.adapter_path.endswith("checkpoint-4") and "checkpoint-4" in lm.notes[0]
    make_job(tune_home, "cancelled-n", tiny_model_dir, state="JOB_STATE_CANCELLED", adapter=False)
    with pytest.raises(JobNotReadyError, match="JOB_STATE_CANCELLED"):
        jt.load_model("cancelled-n")


def test_unknown_model_is_a_clear_error(tune_home):
    with pytest.raises(FileNotFoundError, match="not found"):
        jt.load_model("./no/such/model")
    with pytest.raises(TypeError, match="load_model takes"):
        jt.load_model(42)
