"""The tuning methods through the same job: lora, full fine-tuning and DPO (qlora needs CUDA), on a tiny
model; preference datasets; the full fine-tuning memory check; a job started from another job."""

import json

import pytest

import jupyter_tune as jt
from jupyter_tune.data.errors import DatasetError
from jupyter_tune.params import ParameterError, TuningParams

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(12) for topic in ("Urology", "Neurology")]
WORDS = ["apple", "river", "stone", "cloud", "green", "seven", "table", "light"]
# The chosen answer is always the same word: DPO must learn to prefer it.
PREFS = [{"prompt": f"Question {i}: say the word.", "chosen": "Urology", "rejected": WORDS[i % len(WORDS)]}
         for i in range(24)]


def _rows(job) -> list[dict]:
    return [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]


def test_method_is_one_parameter_with_choices():
    field = {p["name"]: p for p in __import__("jupyter_tune.params").params.schema()["parameters"]}["method"]
    assert field["choices"] == ["lora", "qlora", "full", "dpo", "grpo"] and field["group"] == "basic"
    assert TuningParams(method="qlora").effective_quantization == "4bit"
    assert TuningParams(quantization="8bit").effective_method == "qlora"  # quantization= keeps meaning QLoRA
    assert TuningParams(method="full").effective_learning_rate < TuningParams().effective_learning_rate
    with pytest.raises(ParameterError, match="method"):
        TuningParams(method="full", quantization="4bit")
    with pytest.raises(ParameterError, match="method"):
        TuningParams(method="rlhf")


@pytest.mark.parametrize("rows,line,field,message", [
    ([{"prompt": "q", "chosen": "a"}], 1, "rejected", "Missing"),
    ([{"prompt": "q", "chosen": "a", "rejected": " a "}], 1, "rejected", "same text"),
    ([{"prompt": "q", "chosen": "", "rejected": "b"}], 1, "chosen", "Empty"),
    ([{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
       "rejected": []}], 1, "rejected", "non-empty list"),
    ([{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
       "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "b"}]}],
     1, "rejected", "differ before"),
    ([{"contents": [{"role": "user", "parts": [{"text": "q"}]}],
       "completions": [{"score": 1, "completion": {"role": "model", "parts": [{"text": "a"}]}}]}],
     1, "completions", "pair"),
    ([{"contents": [{"role": "user", "parts": [{"text": "q"}]}],
       "completions": [{"score": 1, "completion": {"role": "model", "parts": [{"text": "a"}]}},
                       {"score": 1, "completion": {"role": "model", "parts": [{"text": "b"}]}}]}],
     1, "completions[1].score", "Both"),
])
def test_bad_preference_rows_are_named_by_line_and_field(rows, line, field, message):
    good = [{"prompt": "q0", "chosen": "a", "rejected": "b"}] if "prompt" in rows[0] and isinstance(
        rows[0]["prompt"], str) else []
    with pytest.raises(DatasetError) as e:
        jt.load_dataset(good + rows, preference=True)
    problems = [p for p in e.value.problems if p.severity == "error"]
    assert len(problems) == 1, problems
    assert problems[0].line == line + len(good) and problems[0].field == field and message in problems[0].message


def test_preference_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "prefs.jsonl"
    lines = [json.dumps(r) for r in PREFS[:3]] + [json.dumps({"prompt": "q", "chosen": "x"}),
                                                  json.dumps({"prompt": "q", "chosen": "x", "rejected": "x"})]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as e:
        jt.validate_dataset(str(path), min_examples=1, preference=True)
    text = str(e.value)
    assert f"{path}, line 4, field 'rejected': Missing" in text
    assert f"{path}, line 5, field 'rejected': The chosen and rejected answers are the same text" in text


def test_three_preference_formats_read_alike():
    plain = {"prompt": "Fruit?", "chosen": "Apple", "rejected": "Pear"}
    chat = {"prompt": [{"role": "user", "content": "Fruit?"}], "chosen": [{"role": "assistant", "content": "Apple"}],
            "rejected": [{"role": "assistant", "content": "Pear"}]}
    implicit = {"chosen": [{"role": "user", "content": "Fruit?"}, {"role": "assistant", "content": "Apple"}],
                "rejected": [{"role": "user", "content": "Fruit?"}, {"role": "assistant", "content": "Pear"}]}
    vertex = {"contents": [{"role": "user", "parts": [{"text": "Fruit?"}]}],
              "completions": [{"score": 0, "completion": {"role": "model", "parts": [{"text": "Pear"}]}},
                              {"score": 1, "completion": {"role": "model", "parts": [{"text": "Apple"}]}}]}
    for row in (plain, chat, implicit, vertex):
        ex = jt.load_dataset([row]).examples[0]
        assert ex.messages == [{"role": "user", "content": "Fruit?"}, {"role": "assistant", "content": "Apple"}]
        assert ex.rejected == "Pear"


def test_preference_rows_need_method_dpo_and_back(tune_home, tiny_model_dir):
    with pytest.raises(DatasetError, match="method='dpo'"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=PREFS)
    with pytest.raises(DatasetError, match="needs preference rows"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, method="dpo")
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


# Each precision forced: the probe picks bf16 on one CPU and fp32 on another (models/hardware.py), and a
# failure on one path must not hide behind a CI machine that runs the other.
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_full_fine_tuning_trains_every_weight_and_reloads(tune_home, tiny_model_dir, tmp_path, precision):
    import torch
    from transformers import AutoModelForCausalLM

    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:6], evaluate_after=False, sample_prompts=0,
                  method="full", max_steps=6, batch_size=4, eval_steps=3, learning_rate=1e-3, precision=precision)
    assert job.wait(timeout=180) is jt.JobState.SUCCEEDED, job.log()
    rec = job.record
    assert rec["tuning"]["method"] == "Full fine-tuning" and rec["tuning"]["trainable_percent"] == 100.0
    assert rec["memory_estimate"]["total_bytes"] > rec["memory_estimate"]["weights_bytes"] > 0
    fast = rec["tuning"]["fast_path"]
    assert not fast["fused_lora"]["on"] and "full fine-tuning" in fast["fused_lora"]["why"]
    assert fast["packed_attention"]["on"]  # the pieces that do not depend on adapters stay on
    train = [r for r in _rows(job) if "train_total_loss" in r]
    assert len(train) == 6 and all(r["tokens_per_second"] > 0 for r in train)
    assert any("eval_total_loss" in r for r in _rows(job))
    folder = job.dir / "model"
    assert (folder / "model.safetensors").is_file() and (folder / "generation_config.json").is_file()
    assert (folder / "tokenizer_config.json").is_file() and not (job.dir / "adapter").exists()
    # A plain Hugging Face folder: transformers loads it alone, and every layer's weights moved.
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tuned = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    b, t = dict(base.named_parameters()), dict(tuned.named_parameters())
    moved = [n for n in b if not torch.equal(b[n], t[n])]
    assert len(moved) == len(b), set(b) - set(moved)
    config = json.loads((folder / "config.json").read_text())
    assert config["use_cache"] is True
    # What was saved, and why: bf16 weights are written as their fp32 masters (rounding them to bf16 would
    # put the norm weights back at 1.0), and config.json says float32 so a plain from_pretrained keeps them.
    assert rec["tuning"]["dtype"] == {"bf16": "bfloat16", "fp32": "float32"}[precision]
    saved = rec["tuning"]["saved"]
    assert saved["dtype"] == config["dtype"] == "float32", saved
    assert precision == "fp32" or "master weights" in saved["why"]
    plain = AutoModelForCausalLM.from_pretrained(folder)
    assert all(torch.equal(p, t[n]) for n, p in plain.named_parameters())
    # jt.load_model(job) loads it and generates.
    model = jt.load_model(job, dtype="float32")
    assert model.adapter_path is None
    out = jt.generate_text(model, [{"prompt": "Example number 1 about"}], max_output_tokens=3)
    assert out.loc[0, "ml_generate_text_status"] == ""
    # Export "merged" writes the model as it is (nothing to merge); "adapter" says why there is none.
    job.export(tmp_path / "merged", format="merged", parity=False)
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="no adapter"):
        job.export(tmp_path / "adapter", format="adapter", parity=False)


def test_full_fine_tuning_refused_when_it_does_not_fit(tune_home, tiny_model_dir, monkeypatch):
    from jupyter_tune.training import memory

    monkeypatch.setattr(memory, "available_memory", lambda device: 1000)
    with pytest.raises(memory.InsufficientMemoryError) as e:
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, method="full")
    text = str(e.value)
    assert "weights" in text and "gradients" in text and "optimizer state" in text and "0.00 GB available" in text
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


def test_full_fine_tuning_cancel_and_resume(tune_home, tiny_model_dir, monkeypatch):
    from tests.support import faults
    from tests.support.waiting import wait_for

    faults.inject(monkeypatch, faults.PAUSE_ENV, "step:60")  # held after step 1 (checkpointed) until cancelled
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, method="full", max_steps=6,
                  batch_size=2, save_steps=1, num_threads=1, learning_rate=1e-4)
    wait_for(lambda: job.store.latest_checkpoint(job.id) is not None, what="a checkpoint")
    job.cancel()
    assert job.wait(timeout=120) is jt.JobState.CANCELLED, job.log()
    assert (job.dir / "model" / "model.safetensors").is_file()
    stopped = int(job.metrics["step"].max())
    monkeypatch.delenv(faults.PAUSE_ENV)
    job = jt.resume(job.id)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    assert int(job.metrics["step"].max()) == 6 and stopped < 6
    assert "Resuming from" in job.log()


def test_dpo_job_logs_rewards_and_the_margin_grows(tune_home, tiny_model_dir):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=PREFS, validation_dataset=PREFS[:8],
                  method="dpo", max_steps=12, batch_size=8, eval_steps=6, learning_rate=5e-3, adapter_size=8,
                  dpo_beta=0.5)
    assert job.wait(timeout=240) is jt.JobState.SUCCEEDED, job.log()
    rows = _rows(job)
    train = [r for r in rows if "train_total_loss" in r]
    evals = [r for r in rows if "eval_total_loss" in r]
    for key in ("train_rewards_margin", "train_rewards_accuracy", "train_logps_chosen", "train_logps_rejected",
                "tokens_per_second", "train_num_predictions"):
        assert key in train[0], key
    assert evals and {"eval_rewards_margin", "eval_rewards_accuracy", "eval_logps_chosen"} <= set(evals[-1])
    first = sum(r["train_rewards_margin"] for r in train[:3]) / 3
    last = sum(r["train_rewards_margin"] for r in train[-3:]) / 3
    assert last > first + 0.1, [r["train_rewards_margin"] for r in train]
    assert evals[-1]["eval_rewards_accuracy"] >= 0.9
    rec = job.record
    assert rec["tuning"]["method"].startswith("DPO") and rec["tuning"]["trainable_percent"] < 100
    stats = job.dataset_stats
    assert stats["train"]["chosen_token_distribution"]["sum"] > 0
    assert stats["train"]["rejected_token_distribution"]["sum"] > 0
    assert stats["train"]["prompt_token_distribution"]["sum"] > 0
    assert (job.adapter_path / "adapter_config.json").is_file()
    assert jt.load_model(job, dtype="float32").adapter_path


def test_dpo_from_a_finished_sft_job(tune_home, tiny_model_dir):
    sft = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=3, batch_size=4)
    with pytest.raises(ValueError, match="not JOB_STATE_SUCCEEDED"):  # not finished yet
        jt.tune(base_model=sft.id, train_dataset=PREFS, method="dpo")
    assert sft.wait(timeout=180) is jt.JobState.SUCCEEDED, sft.log()
    dpo = jt.tune(base_model=sft.id, train_dataset=PREFS, method="dpo", max_steps=2, batch_size=4)
    assert dpo.wait(timeout=180) is jt.JobState.SUCCEEDED, dpo.log()
    assert "adapter(s) merged" in dpo.log()
    model = jt.load_model(dpo, dtype="float32")  # the SFT adapter merged, then the DPO adapter
    assert model.adapter_path and model.job_id == dpo.id


@pytest.mark.parametrize("method", ["full", "dpo"])
def test_the_panels_tune_cells_run_each_method(tune_home, tiny_model_dir, tmp_path, method):
    """The cells that "Tune a model" inserts, run as a user would (here in one namespace, not a kernel)."""
    from jupyter_tune.cells.render import render_cells

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in (PREFS if method == "dpo" else ROWS)))
    cells = render_cells("tune", {"base_model": str(tiny_model_dir), "method": method, "train_dataset": str(data),
                                  "max_steps": 2, "batch_size": 4})
    params_cell, run_cell = (c["source"] for c in cells)
    assert f"method = {method!r}" in params_cell
    if method == "dpo":
        assert "jt.load_dataset(train_dataset, preference=True)" in run_cell and 'method="dpo"' in run_cell
    else:
        assert "method=method" in run_cell
    namespace: dict = {}
    exec(compile(params_cell, "params", "exec"), namespace)
    exec(compile(run_cell, "run", "exec"), namespace)
    job = namespace["job"]
    assert job.wait(timeout=180) is jt.JobState.SUCCEEDED, job.log()
    assert job.params["method"] == method and job.params["max_steps"] == 2


@pytest.mark.slow
@pytest.mark.real_model
def test_dpo_on_the_default_model_learns_the_right_specialty(tune_home, repo_data):
    """mtsamples as preference pairs (chosen: the right specialty, rejected: a wrong one): after a short DPO
    job the tuned model prefers the right specialty on held-out pairs (reward accuracy above 0.8).
    Measured (Xeon, fp32): 0.67 / 0.92 at steps 12 / 24 with learning_rate_multiplier 10; the earlier 60 steps
    at multiplier 5 gave 0.67 / 0.88 / 1.0 / 1.0 at steps 15 / 30 / 45 / 60, for twice the time in CI."""
    from tests.support.preference import preference_pairs

    train = preference_pairs(repo_data / "small-train.jsonl")  # 240 pairs, every label
    val = preference_pairs(repo_data / "small-eval.jsonl", 24)
    job = jt.tune(train_dataset=train, validation_dataset=val, method="dpo", max_steps=24, batch_size=8,
                  eval_steps=12, learning_rate_multiplier=10.0, seed=0)
    assert job.wait(timeout=1800) is jt.JobState.SUCCEEDED, job.log()
    evals = [r for r in _rows(job) if "eval_rewards_accuracy" in r]
    train_rows = [r for r in _rows(job) if "train_rewards_margin" in r]
    assert evals[-1]["eval_rewards_accuracy"] > 0.8, evals
    assert evals[-1]["eval_rewards_margin"] > evals[0]["eval_rewards_margin"] > 0, evals
    assert train_rows[-1]["train_rewards_margin"] > train_rows[0]["train_rewards_margin"]


def test_view_shows_method_trainable_share_rewards_and_preference_tokens():
    from jupyter_tune.widgets.charts import DPO_PANELS, is_dpo, metrics_png
    from jupyter_tune.widgets.dataset import dataset_html
    from jupyter_tune.widgets.details import details_rows
    from jupyter_tune.widgets.supervise import SuperviseTab

    rows = [{"step": s, "train_total_loss": 0.7 - 0.1 * s, "train_rewards_margin": 0.2 * s,
             "train_rewards_accuracy": 0.5 + 0.1 * s, "train_logps_chosen": -3.0, "train_logps_rejected": -4.0 - s,
             "tokens_per_second": 100.0} for s in range(1, 4)]
    rows.append({"step": 3, "eval_total_loss": 0.4, "eval_rewards_margin": 0.5, "eval_rewards_accuracy": 1.0})
    assert is_dpo(rows) and not is_dpo([{"step": 1, "train_total_loss": 1.0}])
    assert metrics_png(rows, 3)[:4] == b"\x89PNG" and len(DPO_PANELS) == 6
    tab = SuperviseTab()
    tab.update(rows, 3)
    assert "Reward margin" in tab.summary.value and "Validation reward accuracy" in tab.summary.value

    dist = {"sum": 30, "min": 1, "max": 9, "mean": 3.0, "median": 3.0, "p5": 1.0, "p95": 8.0,
            "buckets": [{"count": 3, "left": 1.0, "right": 9.0}]}
    split = {"tuning_dataset_example_count": 10, "user_input_token_distribution": dist,
             "user_output_token_distribution": dist, "prompt_token_distribution": dist,
             "chosen_token_distribution": dist, "rejected_token_distribution": dist}
    html = dataset_html({"epochs": 1, "max_seq_length": 64, "train": split, "validation": None})
    for label in ("Prompt tokens per example", "Chosen tokens per example", "Rejected tokens per example"):
        assert label in html
    assert "rejected token histogram" in html

    full = dict(details_rows({"params": {"method": "full", "adapter_size": 8},
                              "tuning": {"method": "Full fine-tuning", "trainable_params": 100, "total_params": 100,
                                         "trainable_percent": 100.0},
                              "memory_estimate": {"total_bytes": 1.6e9, "weights_bytes": 2e8, "gradients_bytes": 2e8,
                                                  "optimizer_bytes": 1.2e9},
                              "paths": {"model": "/x/model"}}))
    assert full["Tuning method"] == "Full fine-tuning" and "100.000 %" in full["Trainable parameters"]
    assert full["Model"] == "/x/model" and "1.60 GB" in full["Memory estimate"]
    dpo = dict(details_rows({"params": {"method": "dpo"}, "tuning": {"dpo_beta": 0.1}}))
    assert dpo["Tuning method"].startswith("DPO") and dpo["DPO beta"].startswith("0.1")


@pytest.mark.parametrize("model_dir", ["tiny_model_dir", "chatty_model_dir"])
def test_dpo_answer_only_scoring_equals_trls_every_position_scoring(model_dir, request, tmp_path, monkeypatch):
    """answer_only_logits for DPO (TRL's fused head on the answer positions only, as TRL does on CUDA) gives
    the loss, the log-probabilities and the gradients of TRL's own CPU path (every position scored)."""
    import torch
    import trl.trainer.utils as trl_utils

    from jupyter_tune.training.build import build_trainer

    scored: list[int] = []  # rows the fused LM head projects, per call
    apply = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply",
                        lambda hidden, *a: scored.append(hidden.shape[0]) or apply(hidden, *a))
    base = request.getfixturevalue(model_dir)
    data = jt.load_dataset(PREFS[:8], preference=True)
    results = []
    for answer_only in (True, False):
        params = TuningParams(base_model=str(base), method="dpo", batch_size=4, max_steps=1, seed=0,
                              answer_only_logits=answer_only)
        trainer, _, info, _ = build_trainer(params, data, None, tmp_path / str(answer_only))
        assert info["fast_path"]["answer_only_logits"]["on"] is answer_only
        with torch.no_grad():  # an adapter that is not zero: the policy differs from the reference
            for name, p in trainer.model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.05)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        scored.clear()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        answers = int(batch["completion_mask"][:, 1:].sum())
        assert scored == ([answers] * 2 if answer_only else [batch["input_ids"][:, 1:].numel()] * 2), scored
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        results.append((float(loss.detach()), metrics, grads))
    (loss_a, m_a, g_a), (loss_b, m_b, g_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-6)
    for key in ("logps/chosen", "logps/rejected", "rewards/margins", "rewards/accuracies"):
        assert m_a[key] == pytest.approx(m_b[key], rel=1e-4, abs=1e-5), key
    assert g_a.keys() == g_b.keys() and g_a
    for name in g_a:
        torch.testing.assert_close(g_a[name], g_b[name], rtol=1e-4, atol=1e-6)
