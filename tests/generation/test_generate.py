import pandas as pd
import pytest

import jupyter_tune as jt
from jupyter_tune.data.errors import DatasetError
from jupyter_tune.generation.generate import RESULT_COLUMN, STATUS_COLUMN, cut_at_stop

ROWS = [{"input_text": "Upper gastrointestinal endoscopy", "id": "a"},
        {"input_text": "CT head", "id": "b"},
        {"input_text": "the quick brown fox jumps over the lazy dog and more", "id": "c"},
        {"input_text": "Left hip", "id": "d"},
        {"input_text": "Echocardiogram and chest pain", "id": "e"}]


@pytest.fixture
def chatty(chatty_model_dir):
    return jt.load_model(str(chatty_model_dir), dtype="float32")  # fp32: batched == one at a time exactly


def test_batched_equals_one_at_a_time_in_the_rows_order(chatty):
    df = jt.generate_text(chatty, ROWS, max_output_tokens=8, batch_size=3, progress=False)
    assert list(df.columns) == ["input_text", "id", RESULT_COLUMN, STATUS_COLUMN]
    assert list(df["id"]) == [r["id"] for r in ROWS]
    assert (df[STATUS_COLUMN] == "").all()
    single = [jt.generate_text(chatty, [r], max_output_tokens=8, progress=False)[RESULT_COLUMN][0] for r in ROWS]
    assert list(df[RESULT_COLUMN]) == single
    assert all(isinstance(t, str) and t for t in single)


def test_stop_sequences_cut_the_text(chatty):
    free = jt.generate_text(chatty, ROWS[:1], max_output_tokens=12, progress=False)[RESULT_COLUMN][0]
    stop = free[3:5]
    cut = jt.generate_text(chatty, ROWS[:1], max_output_tokens=12, stop_sequences=[stop], progress=False)
    assert cut[RESULT_COLUMN][0] == free[: free.find(stop)].strip()
    assert cut_at_stop("Neurology\nThe end", ["\n", "The"]) == "Neurology"


def test_sampling_runs_with_top_p_and_top_k(chatty):
    df = jt.generate_text(chatty, ROWS, temperature=0.8, top_p=0.9, top_k=20, max_output_tokens=4, progress=False)
    assert (df[STATUS_COLUMN] == "").all()


def test_a_prompt_longer_than_the_context_fails_alone(chatty):
    rows = ROWS[:2] + [{"input_text": "fox " * 600, "id": "long"}]
    df = jt.generate_text(chatty, rows, max_output_tokens=4, progress=False)
    assert "context of 512 tokens" in df[STATUS_COLUMN][2] and pd.isna(df[RESULT_COLUMN][2])
    assert (df[STATUS_COLUMN][:2] == "").all() and df[RESULT_COLUMN][:2].map(bool).all()


def test_an_exception_in_a_batch_is_retried_row_by_row(chatty, monkeypatch):
    real = chatty.model.generate
    poison = chatty.tokenizer("POISON", add_special_tokens=False)["input_ids"]

    def flaky(input_ids, **kw):
        for row in input_ids.tolist():
            if any(row[i: i + len(poison)] == poison for i in range(len(row))):
                raise RuntimeError("boom")
        return real(input_ids=input_ids, **kw)

    monkeypatch.setattr(chatty.model, "generate", flaky)
    rows = ROWS[:3] + [{"input_text": "POISON", "id": "bad"}]
    df = jt.generate_text(chatty, rows, max_output_tokens=4, batch_size=4, progress=False)
    assert df[STATUS_COLUMN][3] == "RuntimeError: boom"
    assert (df[STATUS_COLUMN][:3] == "").all() and df[RESULT_COLUMN][:3].map(bool).all()


def test_the_tuned_jobs_template_is_the_default(tune_home, tiny_model_dir):
    from tests.support.model_helpers import make_job

    make_job(tune_home, "templated", tiny_model_dir, prompt_template="Classify: {transcript}")
    with pytest.raises(DatasetError, match="transcript"):  # the job's template was applied
        jt.generate_text("templated", ROWS[:1], progress=False)
    df = jt.generate_text("templated", [{"input_text": "x", "transcript": "CT head"}], max_output_tokens=2, progress=False)
    assert df[STATUS_COLUMN][0] == ""
    df = jt.generate_text("templated", ROWS[:1], prompt_template="{input_text}", max_output_tokens=2, progress=False)
    assert df[STATUS_COLUMN][0] == ""


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": -1}, "temperature"), ({"top_p": 1.5}, "top_p"), ({"top_k": 0}, "top_k"),
    ({"max_output_tokens": 0}, "max_output_tokens"), ({"stop_sequences": [""]}, "stop_sequences"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_options_are_refused(chatty, kwargs, match):
    with pytest.raises(ValueError, match=match):
        jt.generate_text(chatty, ROWS, progress=False, **kwargs)


def test_rows_without_a_prompt_are_rejected_with_their_line(chatty):
    with pytest.raises(DatasetError, match="item 2"):
        jt.generate_text(chatty, [{"input_text": "a"}, {"input_text": ""}], progress=False)
