"""The dataset loader: every format gives the same examples; every bad input is named precisely."""

import json

import pandas as pd
import pytest

import jupyter_tune as jt
from jupyter_tune.data.loader import load_dataset, validate_dataset

ROWS = [("Upper gastrointestinal endoscopy.", "Gastroenterology"),
        ("CT head without contrast.", "Neurology"),
        ("Left hip hemiarthroplasty.", "Orthopedic")]


def as_format(fmt):
    if fmt == "text":
        return [{"input_text": i, "output_text": o} for i, o in ROWS]
    if fmt == "prompt":
        return [{"prompt": i, "label": o} for i, o in ROWS]
    if fmt == "messages":
        return [{"messages": [{"role": "user", "content": i}, {"role": "assistant", "content": o}]} for i, o in ROWS]
    return [{"contents": [{"role": "user", "parts": [{"text": i}]}, {"role": "model", "parts": [{"text": o}]}]}
            for i, o in ROWS]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["text", "prompt", "messages", "gemini"])
@pytest.mark.parametrize("container", ["list", "jsonl", "json", "dataframe"])
def test_every_format_and_container_gives_the_same_examples(tmp_path, fmt, container):
    rows = as_format(fmt)
    data = {
        "list": lambda: rows,
        "jsonl": lambda: write_jsonl(tmp_path / "d.jsonl", rows),
        "json": lambda: (tmp_path / "d.json").write_text(json.dumps(rows)) and tmp_path / "d.json",
        "dataframe": lambda: pd.DataFrame(rows),
    }[container]()
    ds = load_dataset(data)
    assert [e.messages for e in ds.examples] == [
        [{"role": "user", "content": i}, {"role": "assistant", "content": o}] for i, o in ROWS]


@pytest.mark.parametrize("fmt", ["text", "prompt"])
def test_csv_and_parquet(tmp_path, fmt):
    df = pd.DataFrame(as_format(fmt))
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    a, b = load_dataset(tmp_path / "d.csv"), load_dataset(tmp_path / "d.parquet")
    assert [e.messages for e in a.examples] == [e.messages for e in b.examples]
    assert [e.line for e in a.examples] == [2, 3, 4]  # CSV lines count the header


def test_the_four_formats_encode_to_identical_training_examples(tiny_model_dir):
    from transformers import AutoTokenizer

    from jupyter_tune.data.tokenize import encode_example

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoded = {fmt: [encode_example(tok, e, 256) for e in load_dataset(as_format(fmt)).examples]
               for fmt in ("text", "prompt", "messages", "gemini")}
    ref = [(e.input_ids, e.labels) for e in encoded["text"]]
    assert all(e.num_output_tokens > 0 for e in encoded["text"])
    for fmt, encs in encoded.items():
        assert [(e.input_ids, e.labels) for e in encs] == ref, fmt


def test_prompt_template_fills_fields_and_loss_is_on_the_answer_only(tiny_model_dir):
    from transformers import AutoTokenizer

    from jupyter_tune.data.tokenize import encode_example

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = load_dataset(as_format("text"), prompt_template="Assign a label. TRANSCRIPT: {input_text}")
    assert ds.examples[0].messages[0]["content"] == "Assign a label. TRANSCRIPT: Upper gastrointestinal endoscopy."
    enc = encode_example(tok, ds.examples[0], 256)
    trained = tok.decode([t for t in enc.labels if t != -100])
    assert trained.startswith("Gastroenterology") and "TRANSCRIPT" not in trained


def problems_of(data, **kw):
    with pytest.raises(jt.DatasetError) as e:
        load_dataset(data, **kw)
    return e.value.problems, str(e.value)


def test_missing_and_empty_file(tmp_path):
    probs, msg = problems_of(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in msg and "File not found" in msg
    (tmp_path / "empty.jsonl").write_text("")
    probs, msg = problems_of(tmp_path / "empty.jsonl")
    assert "empty" in msg


def test_every_bad_line_is_listed_with_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([
        json.dumps({"input_text": "ok", "output_text": "fine"}),              # 1 ok
        '{"input_text": "broken", ',                                           # 2 invalid JSON
        json.dumps({"foo": "bar"}),                                            # 3 unknown format
        json.dumps({"input_text": "no output"}),                               # 4 missing output
        json.dumps({"input_text": "   ", "output_text": "x"}),                 # 5 empty text
        json.dumps({"input_text": 42, "output_text": "x"}),                    # 6 not a string
        json.dumps({"prompt": "p", "label": "l"}),                             # 7 mixed formats
    ]) + "\n")
    probs, msg = problems_of(path)
    got = {(p.line, p.field) for p in probs}
    assert {(2, None), (3, None), (4, "output_text"), (5, "input_text"), (6, "input_text"), (7, None)} <= got
    assert "Invalid JSON" in msg and "unknown format" in msg and "Mixed formats" in msg
    assert f"{path}, line 6, field 'input_text': Expected a string, got int" in msg


def test_roles_and_turn_order():
    rows = [
        {"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "bot", "parts": [{"text": "b"}]}]},
        {"contents": [{"role": "system", "parts": [{"text": "s"}]}, {"role": "user", "parts": [{"text": "a"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "a"}]}]},
    ]
    probs, msg = problems_of(rows)
    fields = {(p.line, p.field) for p in probs}
    assert (1, "contents[1].role") in fields and "Unknown role 'bot'" in msg
    assert (2, "contents[0].role") in fields and "misplaced" in msg
    assert (3, "contents") in fields and "does not end with the model's turn" in msg
    chat = [{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"},
                          {"role": "assistant", "content": "b"}]}]
    probs, msg = problems_of(chat)
    assert "misplaced" in msg and probs[0].field == "messages[1].role"


def test_csv_without_usable_columns(tmp_path):
    (tmp_path / "d.csv").write_text("text,category\nhello,world\n")
    probs, msg = problems_of(tmp_path / "d.csv")
    assert "No usable columns: found text, category" in msg


def test_template_placeholder_the_rows_lack():
    probs, msg = problems_of(as_format("text"), prompt_template="Label: {transcript}")
    assert len(probs) == 3 and probs[0].field == "transcript" and "{transcript}" in msg


def test_non_utf8_bytes_are_named(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps({"input_text": "ok", "output_text": "x"}).encode() + b"\n"
                     + b'{"input_text": "caf\xe9", "output_text": "x"}\n')
    probs, msg = problems_of(path)
    assert probs[0].line == 2 and "Not UTF-8" in msg


def test_too_few_examples_and_validation_overlap(tmp_path):
    with pytest.raises(jt.DatasetError, match="3 examples; at least 16"):
        validate_dataset(as_format("text"))
    train, val = validate_dataset(as_format("text"), as_format("text")[:1], min_examples=1)
    from jupyter_tune.data.health import check_health  # overlap is the health check's, reported once

    assert any(f.kind == "overlap" for f in check_health(train, val).findings)


def test_training_and_validation_problems_are_reported_together(tmp_path):
    with pytest.raises(jt.DatasetError) as e:
        validate_dataset(tmp_path / "missing.jsonl", [{"input_text": "x"}])
    msg = str(e.value)
    assert "missing.jsonl" in msg and "<list>, item 1, field 'output_text'" in msg


def test_dataset_stats_shape(tiny_model_dir):
    rows = as_format("text") * 6
    stats = jt.dataset_stats(rows, base_model=str(tiny_model_dir), max_seq_length=20, epochs=2, batch_size=4)
    train = stats["train"]
    assert train["tuning_dataset_example_count"] == 18
    assert train["total_billable_token_count"] == 2 * train["total_token_count"]
    assert train["tuning_step_count"] == 2 * 5
    dist = train["user_input_token_distribution"]
    assert dist["min"] <= dist["p5"] <= dist["median"] <= dist["p95"] <= dist["max"]
    assert sum(b["count"] for b in dist["buckets"]) == 18
    assert train["truncated_example_count"] > 0 and train["truncated_example_indices"][0] == 0
    seg = train["user_dataset_examples"][0]["segments"]
    assert any(s["trained"] for s in seg) and any(not s["trained"] for s in seg)


# -- hostile inputs (issue 11): refused with the file, line and a message naming what is wrong --
@pytest.mark.parametrize("template,needle", [
    ("Label {input_text", "expected '}'"),
    ("Label input_text}", "Single '}'"),
    ("Label {input_text:d}", "{input_text:d}"),
    ("Label {input_text!r}", "{input_text!r}"),
    ("Label {input_text:>999999999}", "format spec"),
    ("Label {input_text.upper}", "not a field name"),
    ("Label {0}", "not a field name"),
    ("Label {}", "not a field name"),
])
def test_bad_prompt_templates_are_refused_before_formatting(template, needle):
    rows = [{"input_text": "x", "output_text": "y"}]
    with pytest.raises(ValueError, match="prompt_template") as info:
        load_dataset(rows, prompt_template=template)
    assert needle in str(info.value)


def test_literal_braces_still_work():
    ds = load_dataset([{"input_text": "x", "output_text": "y"}], prompt_template="{{json}} {input_text}")
    assert ds.examples[0].messages[0]["content"] == "{json} x"


def test_deeply_nested_json_names_file_and_line(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text(json.dumps({"input_text": "a", "output_text": "b"}) + "\n" + deep + "\n")
    with pytest.raises(jt.DatasetError) as info:
        load_dataset(jsonl)
    assert f"{jsonl}, line 2: JSON nested too deeply" in str(info.value)
    whole = tmp_path / "deep.json"
    whole.write_text('[\n{"input_text": "a", "output_text": "b"},\n' + deep + "\n]")
    with pytest.raises(jt.DatasetError) as info:
        load_dataset(whole)
    assert f"{whole}, line 3: JSON nested too deeply" in str(info.value)


def test_duplicate_keys_are_named(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"input_text": "a", "output_text": "b"}\n{"input_text": "a", "output_text": "b", '
                    '"output_text": "c"}\n')
    with pytest.raises(jt.DatasetError, match=r"line 2, field 'output_text': Duplicate key 'output_text'"):
        load_dataset(path)
    whole = tmp_path / "dup.json"
    whole.write_text('[\n{"input_text": "a",\n "input_text": "b", "output_text": "c"}\n]')
    with pytest.raises(jt.DatasetError, match=r"line 3, field 'input_text': Duplicate key"):
        load_dataset(whole)


def test_symlink_loop_and_dangling_link_are_named(tmp_path):
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    with pytest.raises(jt.DatasetError, match="symbolic link that loops"):
        load_dataset(loop)
    dangling = tmp_path / "gone.jsonl"
    dangling.symlink_to(tmp_path / "missing.jsonl")
    with pytest.raises(jt.DatasetError, match="which does not exist"):
        load_dataset(dangling)


def test_plain_text_answers_carry_no_special_tokens(tiny_model_dir, tmp_path):
    """A tokenizer without a chat template that adds BOS to every string (as Gemma 3's does while reporting
    add_bos_token=False): the trained answer is the label's tokens and EOS, never a second BOS."""
    from transformers import AutoTokenizer

    from jupyter_tune.data.formats import Example
    from jupyter_tune.data.tokenize import IGNORE_INDEX, encode_example

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    from tokenizers import processors

    bos = tok.bos_token
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tok.bos_token_id)])
    assert tok("Urology")["input_ids"][0] == tok.bos_token_id  # adds a BOS to every string
    enc = encode_example(tok, Example([{"role": "user", "content": "CT head."},
                                       {"role": "assistant", "content": "Urology"}]), 256)
    answer = [t for t in enc.labels if t != IGNORE_INDEX]
    assert answer == tok("Urology", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert enc.input_ids.count(tok.bos_token_id) == 1
