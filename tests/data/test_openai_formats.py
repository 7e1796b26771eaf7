"""OpenAI's fine-tuning JSONL read as-is: chat SFT with assistant-turn weights, preference (DPO) rows and
reinforcement rows (messages plus reference fields), with file/line/field errors."""

import json

import pytest

from jupyter_tune.data.errors import DatasetError
from jupyter_tune.data.loader import load_dataset

U = {"role": "user", "content": "What is 2+2?"}
A = {"role": "assistant", "content": "4"}


def _write(tmp_path, rows, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _examples(ds):
    return list(ds.examples) if hasattr(ds, "examples") else list(ds)


def test_chat_sft_with_weights(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "Be brief."}, U,
                          {"role": "assistant", "content": "five", "weight": 0},
                          {"role": "user", "content": "Again?"}, {**A, "weight": 1}]},
            {"messages": [U, A]}]
    (first, second) = _examples(load_dataset(str(_write(tmp_path, rows))))
    assert first.answer == "4" and first.format == "messages"
    assert [m["content"] for m in first.prompt_messages] == ["Be brief.", "What is 2+2?", "five", "Again?"]
    assert all("weight" not in m for m in first.messages)
    assert second.answer == "4"


@pytest.mark.parametrize(("message", "field", "text"), [
    ({**A, "weight": 2}, "messages[1].weight", "Expected 0 or 1"),
    ({**A, "weight": True}, "messages[1].weight", "Expected 0 or 1"),
    ({**A, "weight": 0}, "messages[1].weight", "nothing to learn"),
])
def test_chat_sft_bad_weights_name_file_line_and_field(tmp_path, message, field, text):
    path = _write(tmp_path, [{"messages": [U, A]}, {"messages": [U, message]}])
    with pytest.raises(DatasetError) as err:
        load_dataset(str(path))
    msg = str(err.value)
    assert "rows.jsonl" in msg and "line 2" in msg and field in msg and text in msg


def test_weight_on_a_user_turn_is_refused(tmp_path):
    path = _write(tmp_path, [{"messages": [{**U, "weight": 1}, A]}])
    with pytest.raises(DatasetError, match=r"line 1.*messages\[0\]\.weight"):
        load_dataset(str(path))


def test_preference_rows(tmp_path):
    rows = [{"input": {"messages": [U]}, "preferred_output": [A],
             "non_preferred_output": [{"role": "assistant", "content": "5"}]}]
    (ex,) = _examples(load_dataset(str(_write(tmp_path, rows))))
    assert ex.format == "openai_preference" and ex.is_preference
    assert ex.answer == "4" and ex.rejected == "5"
    assert ex.prompt_messages == [U]


@pytest.mark.parametrize(("row", "field"), [
    ({"input": "What?", "preferred_output": [A], "non_preferred_output": [A]}, "input"),
    ({"input": {"messages": [U]}, "preferred_output": [A, A], "non_preferred_output": [A]}, "preferred_output"),
    ({"input": {"messages": [U]}, "preferred_output": [A]}, "non_preferred_output"),
    ({"input": {"messages": [U]}, "preferred_output": [A], "non_preferred_output": [U]}, "non_preferred_output"),
    ({"input": {"messages": []}, "preferred_output": [A],
      "non_preferred_output": [{"role": "assistant", "content": "5"}]}, "input.messages"),
    ({"input": {"messages": [U]}, "preferred_output": [A], "non_preferred_output": [A]}, "non_preferred_output"),
])
def test_bad_preference_rows(tmp_path, row, field):
    path = _write(tmp_path, [row])
    with pytest.raises(DatasetError) as err:
        load_dataset(str(path))
    msg = str(err.value)
    assert "rows.jsonl" in msg and "line 1" in msg and field in msg


def test_reinforcement_rows_keep_their_reference_fields(tmp_path):
    rows = [{"messages": [U], "reference": "4", "tolerance": 0.5, "tags": ["math"]},
            {"messages": [{"role": "user", "content": "Capital of France?"}], "reference": "Paris"}]
    first, second = _examples(load_dataset(str(_write(tmp_path, rows)), require_answer=False))
    assert not first.has_answer and first.prompt_messages == [U]
    assert first.fields["reference"] == "4" and first.fields["tolerance"] == 0.5
    assert first.fields["tags"] == ["math"]
    assert second.fields["reference"] == "Paris"
