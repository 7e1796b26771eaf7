"""QLoRA on a CPU: LoRA adapters on a bitsandbytes 4-bit (NF4) base, through a real job on the tiny model;
its first step's loss against the same model dequantised; the memory estimate; and (slow) on the default
model against LoRA.

bitsandbytes >= 0.50 runs its 4-bit layers on a CPU with a torch fallback, so these run on any machine
`make install` sets up."""

import json
import tempfile
from pathlib import Path

import pytest

import jupyter_tune as jt

pytest.importorskip("bitsandbytes")

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(12) for topic in ("Urology", "Neurology")]
# The QLoRA job's first step against the same weights dequantised into a plain fp32 model, same batch:
# the 4-bit layers dequantize and multiply in fp32, so only summation order may differ.
DEQUANTISED_TOLERANCE = 1e-4  # relative
# Against the original (never quantized) weights: NF4 rounding moves the tiny model's loss this little.
ORIGINAL_TOLERANCE = 0.02     # relative
COMMON = dict(batch_size=4, seed=3, precision="fp32", learning_rate_multiplier=20.0)


def _train_losses(job) -> list[float]:
    rows = [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]
    return [r["train_total_loss"] for r in rows if "train_total_loss" in r]


def _first_step_loss(model_dir, **overrides) -> float:
    """One optimizer step through the job's own trainer builder, in this process: its logged loss."""
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer

    params = TuningParams(base_model=str(model_dir), max_steps=1, save_steps=10**6, **{**COMMON, **overrides})
    with tempfile.TemporaryDirectory() as tmp:
        trainer, _, _, _ = build_trainer(params, load_dataset(ROWS), None, Path(tmp))
        trainer.args.disable_tqdm = True
        trainer.train()
    return next(h["loss"] for h in trainer.state.log_history if "loss" in h)


@pytest.fixture(scope="module")
def dequantised_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model quantized to NF4 as a QLoRA job loads it, then dequantised and saved as a plain model."""
    import torch
    from transformers import AutoModelForCausalLM

    from jupyter_tune.training.quantized import quantization_config

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, device_map={"": "cpu"},
                                                 quantization_config=quantization_config("4bit", torch.float32))
    out = tmp_path_factory.mktemp("dequantised")
    model.dequantize().save_pretrained(out)
    for f in tiny_model_dir.iterdir():  # the tokenizer and its chat template
        if f.is_file() and not (out / f.name).exists():
            (out / f.name).write_bytes(f.read_bytes())
    return out


def test_qlora_job_trains_on_cpu_and_matches_the_dequantised_model(tune_home, tiny_model_dir, dequantised_dir,
                                                                     tmp_path):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:8], evaluate_after=False, sample_prompts=0,
                  method="qlora", max_steps=8, eval_steps=4, save_steps=4, select_best="eval_total_loss",
                  **COMMON)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    losses = _train_losses(job)
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.1, losses

    rec = job.record
    tuning = rec["tuning"]
    assert tuning["method"] == "QLoRA" and tuning["quantization"] == "4bit" and tuning["device"] == "cpu"
    fast = tuning["fast_path"]
    assert not fast["fused_lora"]["on"] and "quantized base" in fast["fused_lora"]["why"]
    assert not fast["master_weights"]["on"] and "quantized base" in fast["master_weights"]["why"]
    assert "4bit base" in fast["packed_attention"]["why"] and "not quantized" in fast["answer_only_logits"]["why"]
    est = rec["memory_estimate"]
    assert est["quantization"] == "4bit" and 0 < est["quantized_parameters"] < est["parameters"]
    assert rec["best"]["metric"] == "eval_total_loss"

    # The first step (LoRA B is zero: the base's own loss) against the same weights dequantised.
    reference = _first_step_loss(dequantised_dir)
    assert abs(losses[0] - reference) <= DEQUANTISED_TOLERANCE * reference, (losses[0], reference)
    original = _first_step_loss(tiny_model_dir)
    assert abs(losses[0] - original) <= ORIGINAL_TOLERANCE * original, (losses[0], original)

    # The adapter loads back onto the full-precision base (load_model, the Test tab) and has learned.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), job.adapter_path)
    assert any(float(p.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)
    loaded = jt.load_model(job)
    assert loaded.adapter_path and loaded.job_id == job.id
    out = jt.generate_text(loaded, [{"input_text": "Example number 1 about"}], max_output_tokens=4)
    assert out["ml_generate_text_status"].iloc[0] == ""

    # Export: merged into the full-precision base, with the parity report as for LoRA.
    report = job.export(tmp_path / "merged", format="merged", progress=False)
    assert report.error is None and report.num_prompts > 0
    assert report.max_first_token_logprob_diff is not None and report.max_first_token_logprob_diff < 1e-3
    assert (tmp_path / "merged" / "model.safetensors").exists()

    # Resume, as if killed after step 4's checkpoint: it loads into a fresh 4-bit base and retrains the
    # same steps 5-8.
    import shutil

    shutil.rmtree(job.dir / "checkpoints" / "checkpoint-8")
    shutil.rmtree(job.adapter_path)
    metrics = job.dir / "metrics.jsonl"
    metrics.write_text("".join(line + "\n" for line in metrics.read_text().splitlines()
                               if json.loads(line).get("step", 0) <= 4))
    job.store.update(job.id, state=jt.JobState.FAILED.value, error={"message": "killed after step 4"})
    jt.resume(job.id)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    again = _train_losses(job)
    assert len(again) == 8 and (job.adapter_path / "adapter_model.safetensors").exists()
    assert again[4:] == pytest.approx(losses[4:], rel=1e-3)


def test_an_evaluation_pass_leaves_the_4bit_layers_trainable(tiny_model_dir):
    """bitsandbytes repacks a 4-bit weight for its CPU inference kernel in eval mode; that kernel passes no
    gradient to its input. Training keeps the layout backward supports (training/quantized.py)."""
    import torch

    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.setup import choose_hardware, load_for_training

    params = TuningParams(base_model=str(tiny_model_dir), method="qlora", precision="fp32")
    model, info = load_for_training(str(tiny_model_dir), params, choose_hardware(params))
    ids = torch.tensor([[1, 5, 9, 20, 33, 40, 41, 7]])

    def lora_grads() -> dict:
        model.zero_grad()
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if "lora_B" in n}

    before = lora_grads()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    after = lora_grads()
    assert before and all(float(g.abs().sum()) > 0 for g in before.values())
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_memory_estimate_counts_4bit_weights(tiny_model_dir):
    from jupyter_tune.training.memory import adapter_tuning_memory

    lora = adapter_tuning_memory(tiny_model_dir, None, 8, False, "cpu")
    q4 = adapter_tuning_memory(tiny_model_dir, "4bit", 8, False, "cpu")
    q8 = adapter_tuning_memory(tiny_model_dir, "8bit", 8, False, "cpu")
    linear = q4.quantized_parameters
    assert lora.weights == 4 * lora.parameters
    # NF4 with double quantization: 4.127 bits a linear weight; the rest (embeddings, norms) in fp32
    assert q4.weights == pytest.approx(linear * 4.127 / 8 + 4 * (q4.parameters - linear), rel=1e-4)
    assert q4.weights < q8.weights < lora.weights and q4.adapter_state == lora.adapter_state > 0
    assert "4bit" in q4.describe() and q4.to_json()["total_bytes"] == q4.total


def test_missing_or_old_bitsandbytes_is_refused_before_a_job_exists(tune_home, tiny_model_dir, monkeypatch):
    import importlib.metadata as md

    from jupyter_tune.training.quantized import bitsandbytes_problem

    real = md.version
    monkeypatch.setattr(md, "version", lambda name: "0.45.5" if name == "bitsandbytes" else real(name))
    assert "needs bitsandbytes >= 0.50" in bitsandbytes_problem(cuda=False)
    assert bitsandbytes_problem(cuda=True) is None
    with pytest.raises(RuntimeError, match="quantization='4bit'.*>= 0.50"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, method="qlora")

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "version", missing)
    assert "not installed" in bitsandbytes_problem(cuda=True)
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / "
            "Pulmonary, Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")


def _base_bytes(model) -> int:
    """Bytes the frozen base holds (4-bit weights count as their packed storage)."""
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "lora_" not in n)


@pytest.mark.slow
@pytest.mark.real_model
def test_qlora_on_the_default_model_learns_with_a_smaller_base(tune_home, repo_data):
    from jupyter_tune.models.resolve import resolve_model
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.setup import choose_hardware, load_for_training

    path = str(resolve_model(TuningParams().base_model))
    sizes = {}
    for method in ("lora", "qlora"):
        params = TuningParams(method=method)
        model, _ = load_for_training(path, params, choose_hardware(params))
        sizes[method] = _base_bytes(model)
        del model
    assert sizes["qlora"] < 0.7 * sizes["lora"], sizes  # embeddings stay unquantized (fp32)

    job = jt.tune(train_dataset=str(repo_data / "small-train.jsonl"),
                  validation_dataset=str(repo_data / "small-eval.jsonl"), prompt_template=TEMPLATE,
                  method="qlora", max_steps=30, batch_size=4, eval_steps=30, max_eval_examples=16,
                  warmup_ratio=0.0, seed=0)
    assert job.wait(timeout=900) is jt.JobState.SUCCEEDED, job.log()
    loss = job.metrics["train_total_loss"].dropna().tolist()
    assert len(loss) == 30 and sum(loss[-5:]) / 5 < 0.6 * sum(loss[:2]) / 2, loss
    assert job.metrics["eval_total_loss"].notna().any()
    est = job.record["memory_estimate"]
    assert est["quantization"] == "4bit" and est["weights_bytes"] < 0.6 * 4 * est["parameters"]
