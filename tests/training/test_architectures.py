"""The architecture matrix: the trainer is exact on every family users bring, and a job runs end to end.

For each family (tests/architectures.py): the project's loss on a packed batch equals the model's own
``model(input_ids, labels=...)`` loss over the same answer tokens run example by example with the library's
eager attention, the adapter gradients agree, the fast-path pieces that cannot be exact are off, a 3-step
job reaches SUCCEEDED, its adapter loads with ``PeftModel.from_pretrained``, and evaluate / generate_text
run on the tuned model.
"""

from __future__ import annotations

import os

import pytest
import torch

from jupyter_tune.params import FAST_PATH_SWITCHES, TuningParams
from tests.support.architectures import ARCHITECTURES, WINDOW, build_arch_model

LABELS = ["Urology", "Neurology", "Orthopedic"]
TEXTS = [
    "Cystoscopy and removal of foreign objects from the urethra. the quick brown fox jumps over the lazy dog.",
    "CT head without contrast. the quick brown fox jumps over the lazy dog again and again.",
    "Left hip cemented hemiarthroplasty. Upper gastrointestinal endoscopy. the lazy dog.",
    "Echocardiogram and chest pain. the quick brown fox. CT head without contrast.",
]
RECORDS = [{"input_text": f"{TEXTS[i % 4]} case {i}", "output_text": LABELS[i % 3]} for i in range(16)]
# Loss and gradients in fp32: the comparison checks the algebra, not bf16 rounding order.
TOL = dict(atol=2e-5, rtol=2e-4)


@pytest.fixture(scope="module")
def arch_dirs(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    return {a: build_arch_model(a, tiny_model_dir, root / a) for a in ARCHITECTURES}


def _trainer(model_dir, tmp_path, **kw):
    from jupyter_tune.data.loader import validate_dataset
    from jupyter_tune.training.build import build_trainer

    params = TuningParams(base_model=str(model_dir), precision="fp32", max_seq_length=256, batch_size=4,
                          min_train_examples=1, num_threads=1, **kw)
    train, _ = validate_dataset(RECORDS, None, None, 1)
    return build_trainer(params, train, None, tmp_path)


def _reference_loss_and_grads(model_dir, trainer, rows):
    """The model's own loss (eager attention, labels=) example by example, weighted by answer tokens."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    ref = get_peft_model(base, trainer.model.peft_config["default"])
    set_peft_model_state_dict(ref, {k: v.detach().clone() for k, v in
                                    get_peft_model_state_dict(trainer.model).items()})
    ref.eval()
    total, count = 0.0, 0
    for r in rows:
        ids, labels = torch.tensor([r["input_ids"]]), torch.tensor([r["labels"]])
        n = int((labels[:, 1:] != -100).sum())
        total = total + ref(input_ids=ids, labels=labels, use_cache=False).loss * n
        count += n
    loss = total / count
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in ref.named_parameters() if p.requires_grad}


def _randomise_lora_b(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:  # B starts at zero: make the adapter term (and A's gradient) count
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "library-path"])
def test_packed_loss_and_gradients_equal_the_models_own(arch, fast, arch_dirs, tmp_path):
    switches = {s: fast for s in FAST_PATH_SWITCHES}  # every piece, fused LoRA (off by default) included
    trainer, _, info, _ = _trainer(arch_dirs[arch], tmp_path, **switches)
    fp = info["fast_path"]
    if fast:
        assert fp["answer_only_logits"]["on"], fp
        assert fp["packed_attention"]["on"] == (arch != "gemma2"), fp  # Gemma 2 soft-caps attention scores
        if arch == "gemma2":
            assert info["attn_implementation"] == "eager"
    else:
        assert not any(p["on"] for p in fp.values()), fp
    # default LoRA targets are found per family: attention and MLP projections, never the output layer
    targets = set(info["target_modules"])
    assert len(targets) >= 3 and not targets & {"lm_head", "embed_tokens", "wte"}, targets
    model = trainer.model
    _randomise_lora_b(model)
    model.eval()  # no dropout (GPT-2 has some) in either computation
    rows = [trainer.train_dataset[i] for i in range(4)]
    assert max(len(r["input_ids"]) for r in rows) > 2 * WINDOW  # the sliding layers do slide
    batch = trainer.data_collator(rows)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    ref_loss, ref_grads = _reference_loss_and_grads(arch_dirs[arch], trainer, rows)
    torch.testing.assert_close(loss.detach(), ref_loss, **TOL)
    assert grads.keys() == ref_grads.keys() and grads
    for n in grads:
        torch.testing.assert_close(grads[n].float(), ref_grads[n].float(), **TOL, msg=lambda m, n=n: f"{n}: {m}")


def test_gradient_accumulation_divides_by_the_answer_tokens_of_the_step(arch_dirs, tmp_path):
    """Two micro-batches of different answer counts, accumulated, equal one batch of both."""
    trainer, _, _, _ = _trainer(arch_dirs["llama"], tmp_path, gradient_accumulation_steps=2)
    model = trainer.model
    _randomise_lora_b(model)
    model.eval()
    rows = [trainer.train_dataset[i] for i in (0, 1, 2)]
    one = trainer.data_collator(rows)
    n_all = int((one["labels"][:, 1:] != -100).sum())
    trainer.compute_loss(model, dict(one), num_items_in_batch=n_all).backward()
    whole = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    for part in ([rows[0]], rows[1:]):
        trainer.compute_loss(model, dict(trainer.data_collator(part)), num_items_in_batch=n_all).backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, whole[n], **TOL)


@pytest.fixture(scope="module")
def arch_jobs(arch_dirs, tmp_path_factory):
    """A 3-step job per family, all started at once (each in its own process)."""
    import jupyter_tune as jt

    home = tmp_path_factory.mktemp("arch-store")
    old = os.environ.get("JUPYTER_TUNE_HOME")
    os.environ["JUPYTER_TUNE_HOME"] = str(home)
    try:
        jobs = {a: jt.tune(base_model=str(d), train_dataset=RECORDS, validation_dataset=RECORDS[:6], evaluate_after=False, sample_prompts=0,
                           max_steps=3, batch_size=4, min_train_examples=1, num_threads=1,
                           tuned_model_display_name=f"arch-{a}") for a, d in arch_dirs.items()}
        yield jobs
    finally:
        if old is None:
            os.environ.pop("JUPYTER_TUNE_HOME", None)
        else:
            os.environ["JUPYTER_TUNE_HOME"] = old


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_job_runs_end_to_end(arch, arch_jobs, arch_dirs, fresh_models):
    import pandas as pd
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    import jupyter_tune as jt

    job = arch_jobs[arch]
    job.wait(timeout=600)
    assert job.state.name == "SUCCEEDED", (job.error, job.log(40))
    assert len(job.metrics) >= 3 and job.metrics["train_total_loss"].notna().any()
    assert "fast_path" in job.record["tuning"]
    base = AutoModelForCausalLM.from_pretrained(arch_dirs[arch])
    tuned = PeftModel.from_pretrained(base, str(job.adapter_path))
    assert any("lora_A" in n for n, _ in tuned.named_parameters())
    rows = pd.DataFrame(RECORDS[:4])
    report = jt.evaluate(job, rows, progress=False)
    assert report.evaluation_status["num_successful_rows"] == 4
    assert set(report.predictions["prediction"]) <= set(LABELS)
    out = jt.generate_text(job, rows, max_output_tokens=4, progress=False)
    assert (out["ml_generate_text_status"] == "").all()
