"""What a job saves keeps what it trained, in each precision (issue 21).

bf16 weights train through fp32 master copies (training/optim.py); rounding those back to bf16 on save
would lose every update smaller than bf16's resolution (a norm weight near 1.0 stays 1.0). Checkpoints,
resume, the best checkpoint and the final adapter or model must all carry the masters. Each case forces its
precision: the probe picks bf16 on one CPU and fp32 on another (models/hardware.py), and a failure on one
path must not hide behind a CI machine that runs the other. In-process, on the tiny model: seconds each.
"""

import pytest

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(12) for topic in ("Urology", "Neurology")]


def _trainer(tiny_model_dir, out, method, precision):
    from jupyter_tune.data.loader import Dataset, load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer

    train = Dataset.from_records("train", load_dataset(ROWS).to_records())  # as the job process reads it
    params = TuningParams(base_model=str(tiny_model_dir), method=method, precision=precision, max_steps=6,
                          batch_size=2, save_steps=3, num_threads=1, learning_rate=1e-4)
    trainer, tokenizer, info, _ = build_trainer(params, train, None, out)
    return trainer, tokenizer, info


def _trained(trainer) -> dict:
    """The trained values as a checkpoint or the final save must hold them: the masters where there are."""
    from jupyter_tune.training.optim import full_precision_state_dict

    model = trainer.accelerator.unwrap_model(trainer.model)
    state = full_precision_state_dict(model, trainer.optimizer) or model.state_dict()
    if hasattr(model, "peft_config"):  # the adapter's keys, as saved
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model, state_dict=state)
    return {k: v.detach().clone() for k, v in state.items()}


def _saved(folder) -> dict:
    from safetensors.torch import load_file

    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").is_file() else "model.safetensors"
    return load_file(str(folder / name))


def _same(saved: dict, trained: dict) -> list[str]:
    import torch

    return [k for k in saved if not torch.equal(saved[k], trained[k])]


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
@pytest.mark.parametrize("method", ["lora", "full"])
def test_checkpoints_resume_and_the_final_save_keep_the_master_weights(tune_home, tiny_model_dir, tmp_path,
                                                                       method, precision):
    import torch

    from jupyter_tune.training.optim import load_adapter_weights
    from jupyter_tune.training.worker import _save_adapter

    a, tokenizer, info = _trainer(tiny_model_dir, tmp_path / "a", method, precision)
    assert info["dtype"] == {"bf16": "bfloat16", "fp32": "float32"}[precision]
    assert info["saved"]["dtype"] == "float32", info["saved"]
    a.train()
    uninterrupted = _trained(a)
    assert {str(v.dtype) for v in uninterrupted.values()} == {"torch.float32"}
    # A checkpoint holds the masters, not their bf16 rounding.
    assert not _same(_saved(tmp_path / "a" / "checkpoint-6"), uninterrupted)
    # The final save too (model/ for full fine-tuning, adapter/ for LoRA).
    _save_adapter(a, tokenizer, tmp_path / "job" / "adapter")
    folder = tmp_path / "job" / ("model" if method == "full" else "adapter")
    assert not _same(_saved(folder), uninterrupted)
    if method == "full":  # and a plain from_pretrained loads it as trained
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(folder).state_dict()
        assert not _same({k: loaded[k] for k in uninterrupted}, uninterrupted)

    # Resumed from step 3, the job ends exactly where the uninterrupted one did: the masters came back.
    b, _, _ = _trainer(tiny_model_dir, tmp_path / "b", method, precision)
    b.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    assert not _same(_trained(b), uninterrupted)

    # The best checkpoint (an earlier one) goes back into the masters unrounded.
    step3 = _saved(tmp_path / "a" / "checkpoint-3")
    load_adapter_weights(a, tmp_path / "a" / "checkpoint-3")
    assert not _same(step3, _trained(a))
    assert any(not torch.equal(step3[k], uninterrupted[k]) for k in step3)  # it is another step's weights

    # A job killed after its last checkpoint (nothing left to train, no optimizer) saves that checkpoint's
    # values as they are.
    c, _, _ = _trainer(tiny_model_dir, tmp_path / "c", method, precision)
    load_adapter_weights(c, tmp_path / "a" / "checkpoint-6")
    _save_adapter(c, tokenizer, tmp_path / "job-c" / "adapter")
    assert not _same(_saved(tmp_path / "job-c" / ("model" if method == "full" else "adapter")), uninterrupted)
