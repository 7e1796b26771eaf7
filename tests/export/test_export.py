"""job.export in each format on a tiny model tuned for 3 steps: every artifact reloads with its own tools,
the parity report compares it with the tuned model, and a failed or refused export leaves nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import jupyter_tune as jt
from tests.support.tiny_model import TWO_LABEL_ROWS

ROWS = TWO_LABEL_ROWS
VALIDATION = [{"input_text": f"Held-out case {i} about {t}.", "output_text": t}
              for i in range(3) for t in ("Urology", "Neurology")]


def _tuned(base: Path) -> jt.TuningJob:
    job = jt.tune(base_model=str(base), train_dataset=ROWS, validation_dataset=VALIDATION, evaluate_after=False, sample_prompts=0, max_steps=3,
                  batch_size=4, seed=0, tuned_model_display_name="tiny export")
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    return job


@pytest.fixture(scope="module")
def job(store_home, chatty_model_dir):
    """A real 3-step job on the tiny chat model (with weights that make its greedy answers vary)."""
    return _tuned(chatty_model_dir)


def _tuned_answer(job, prompt: str) -> str:
    df = jt.generate_text(jt.load_model(job, dtype="float32"), [{"input_text": prompt}], max_output_tokens=12,
                          progress=False)
    return df.loc[0, "ml_generate_text_llm_result"]


def test_adapter_export_reloads_with_peft_and_carries_card_and_stats(job, tmp_path):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    dest = tmp_path / "adapter"
    report = job.export(dest, format="adapter", progress=False)
    assert report.ok, report
    assert report.prompts_source == "validation rows" and report.num_prompts == len(VALIDATION)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json", "README.md",
                 "dataset_stats.json", "parity.json"):
        assert (dest / name).is_file(), name
    assert json.loads((dest / "dataset_stats.json").read_text()) == job.dataset_stats
    card = (dest / "README.md").read_text()
    assert f'base_model: "{job.base_model}"' in card and "library_name: peft" in card
    assert "## Parameters" in card and "| adapter_size | 8 |" in card and "## Metrics" in card
    # Reloaded by peft alone, with the chat template the job trained with.
    model = AutoPeftModelForCausalLM.from_pretrained(dest)
    assert model.peft_config["default"].r == 8
    tok = AutoTokenizer.from_pretrained(dest)
    assert "<|im_start|>" in tok.chat_template
    assert not list(tmp_path.glob(".adapter.*")), "staging folder left behind"


def test_merged_export_loads_with_transformers_alone(job, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = tmp_path / "merged"
    report = jt.export(job.id, dest, format="merged", progress=False)
    assert report.ok and report.identical_share == 1.0, report
    assert report.max_first_token_logprob_diff < 1e-4
    assert not (dest / "adapter_config.json").exists() and (dest / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(dest)
    tok = AutoTokenizer.from_pretrained(dest)
    assert tok.convert_tokens_to_ids("<|im_end|>") in [model.generation_config.eos_token_id] + list(
        model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list) else [])
    # Plain transformers, chat template + generate, answers as the tuned model does.
    prompt = "Held-out case 0 about Urology."
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert text == _tuned_answer(job, prompt)
    # Recorded in job.json, which GET /jupyter-tune/jobs/<id> returns whole.
    entry = job.record["exports"][-1]
    assert entry["format"] == "merged" and entry["dest"] == str(dest.resolve())
    assert entry["parity"]["identical_share"] == 1.0 and entry["dtype"] == "float32"


def test_existing_destination_is_refused_and_a_failed_export_leaves_nothing(job, tmp_path, monkeypatch):
    from jupyter_tune.export import merged
    from jupyter_tune.jobs.guard import UnsafeDestinationError

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        job.export(taken, format="adapter", progress=False)
    # overwrite=True replaces only a folder an earlier export made: a user's folder is never replaced.
    with pytest.raises(UnsafeDestinationError, match="not made by an export"):
        job.export(taken, format="adapter", overwrite=True, parity=False, progress=False)
    assert (taken / "keep.txt").read_text() == "mine"
    dest = tmp_path / "earlier"
    job.export(dest, format="adapter", parity=False, progress=False)

    def broken(job, out, dtype=None, progress=True):
        (out / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(merged, "write_merged", broken)
    with pytest.raises(OSError, match="disk full"):
        job.export(dest, format="merged", overwrite=True, progress=False)
    assert (dest / "adapter_config.json").is_file()  # the earlier export is untouched
    with pytest.raises(OSError, match="disk full"):
        job.export(tmp_path / "new", format="merged", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "taken"]
    monkeypatch.undo()
    report = job.export(dest, format="merged", overwrite=True, parity=False, progress=False)
    assert not (dest / "adapter_config.json").exists() and (dest / "model.safetensors").is_file()
    assert report.num_prompts == 0 and report.error is None


def test_parity_names_a_lost_chat_template_and_end_of_turn_token(job, tmp_path):
    from jupyter_tune.export.parity import ParityReport, compare, load_exported, parity_prompts

    dest = tmp_path / "merged"
    job.export(dest, format="merged", parity=False, progress=False)
    # What a careless export does: another template, and generation that stops only at a stranger's EOS.
    (dest / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    cfg = json.loads((dest / "generation_config.json").read_text())
    cfg["eos_token_id"] = 0
    (dest / "generation_config.json").write_text(json.dumps(cfg))
    tok = json.loads((dest / "tokenizer_config.json").read_text())
    tok["eos_token"] = "<|endoftext|>"
    (dest / "tokenizer_config.json").write_text(json.dumps(tok))
    data, source = parity_prompts(job, prompts=["Is this about Urology?"])
    report = ParityReport("merged", str(dest), str(dest), source)
    compare(jt.load_model(job, dtype="float32"), load_exported("merged", dest, dest, "float32"), data, report,
            max_output_tokens=8, progress=False)
    assert report.num_prompts == 1 and not report.ok
    text = " | ".join(report.mismatches)
    assert "chat template" in text and "end-of-turn token: <|im_end|>" in text, text
    assert "chat template" in report._repr_html_() and "mismatch" in repr(report)


def test_margin_is_read_where_the_two_answers_part(job):
    """Two answers sharing their first tokens are judged by the tuned model's top-2 gap at the first token
    they differ on, not at the answer's first token (answers that agree on a label and part later)."""
    import torch

    from jupyter_tune.export.parity import _margin_where_they_part

    lm = jt.load_model(job, dtype="float32")
    prompt = lm.tokenizer("Is this about Urology?", add_special_tokens=False)["input_ids"]
    shared = lm.tokenizer("Urology", add_special_tokens=False)["input_ids"]
    got = _margin_where_they_part(lm, prompt, "Urology and more", "Urology, less")
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([prompt + shared])).logits[0, -1]
    top = torch.log_softmax(logits.float(), -1).topk(2).values
    assert got == pytest.approx(float(top[0] - top[1]), abs=1e-4)


def test_gguf_export_reads_back_and_writes_a_matching_modelfile(gguf_job, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = tmp_path / "gguf"
    # f32: the tiny model's random weights make any rounding (f16, q8_0) change its long greedy answers.
    report = gguf_job.export(dest, format="gguf", dtype="f32", progress=False)
    assert report.error is None and not report.mismatches, report
    assert report.identical_share == 1.0, report.examples
    gguf = Path(report.artifact)
    assert gguf.suffix == ".gguf" and gguf.parent == dest.resolve() and "f32" in gguf.name
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["Modelfile", "README.md", "parity.json", ".jupyter_tune_export", gguf.name])
    tok = AutoTokenizer.from_pretrained(dest, gguf_file=gguf.name)
    assert tok.eos_token == "<|im_end|>" and "<|im_start|>assistant" in tok.chat_template
    AutoModelForCausalLM.from_pretrained(dest, gguf_file=gguf.name)
    modelfile = (dest / "Modelfile").read_text()
    assert f"FROM ./{gguf.name}" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and "PARAMETER temperature 0" in modelfile
    assert '{{ "<|im_start|>user\\n" }}{{ .Content }}{{ "<|im_end|>\\n" }}' in modelfile
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in modelfile  # the template's default
    assert gguf_job.record["exports"][-1]["dtype"] == "f32"


@pytest.fixture(scope="module")
def gguf_job(store_home, tmp_path_factory):
    """A 3-step job on a tiny Llama that uses SmolLM2's tokenizer: llama.cpp's converter accepts only
    tokenizers it knows (it checks a hash of the pre-tokenizer)."""
    from jupyter_tune.export.gguf import ConverterNotFoundError, find_converter
    from jupyter_tune.models.resolve import ModelNotFoundError, resolve_model

    try:
        find_converter()
        smol = resolve_model(jt.TuningParams().base_model)
    except (ConverterNotFoundError, ModelNotFoundError) as e:
        pytest.skip(str(e))
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-smol")
    for f in smol.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(f, out / f.name)
    tok = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    model.save_pretrained(out)
    return _tuned(out)


def test_refusals_name_the_problem(job, tmp_path, store_home, tiny_model_dir):
    from jupyter_tune.models.loading import JobNotReadyError
    from tests.support.model_helpers import make_job

    with pytest.raises(ValueError, match="format: 'onnx' is not one of"):
        job.export(tmp_path / "x", format="onnx")
    with pytest.raises(ValueError, match="only format='gguf' is quantised"):
        job.export(tmp_path / "x", format="merged", quantization="q8_0")
    with pytest.raises(ValueError, match="exported as trained"):
        job.export(tmp_path / "x", format="adapter", dtype="float16")
    make_job(store_home, "failed-job", tiny_model_dir, state="JOB_STATE_FAILED", adapter=False, error="boom")
    with pytest.raises(JobNotReadyError, match="JOB_STATE_FAILED"):
        jt.export("failed-job", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_jt_export_stays_callable_after_the_package_is_imported():
    import jupyter_tune.export  # noqa: F401 - binds jupyter_tune.export to the package

    assert callable(jt.export) and callable(jt.TuningJob.export)
