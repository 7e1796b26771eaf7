"""Padding-free batches: packed examples must not attend to each other (environment.md's trap)."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from jupyter_tune.training.collator import PaddedCollator, PaddingFreeCollator


def test_packed_logits_equal_separate_logits(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    a, b = [5, 17, 33, 41, 9, 12], [7, 8, 99, 23]
    feats = [{"input_ids": a, "labels": [-100] * 3 + a[3:]}, {"input_ids": b, "labels": [-100] * 2 + b[2:]}]
    batch = PaddingFreeCollator()(feats)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        sep_a = model(input_ids=torch.tensor([a]), use_cache=False).logits[0]
        sep_b = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
    torch.testing.assert_close(packed[: len(a)], sep_a, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[len(a):], sep_b, atol=1e-5, rtol=1e-4)


def test_collators_pick_the_same_trained_positions():
    feats = [{"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4]}, {"input_ids": [5, 6], "labels": [-100, 6]}]
    packed = PaddingFreeCollator()(feats)
    padded = PaddedCollator(pad_token_id=0)(feats)
    # position p predicts token p+1: example 1 trains positions 1, 2; example 2 trains position 0 (in row 2)
    assert packed["logit_mask"].nonzero()[:, 1].tolist() == [1, 2, 4]
    assert padded["logit_mask"].flatten().nonzero()[:, 0].tolist() == [1, 2, 4]  # row 1 * length 4 + 0
    assert packed["cu_seq_lens_q"].tolist() == [0, 4, 6] and packed["max_length_q"] == 4
    assert packed["target_ids"].tolist() == padded["target_ids"].tolist() == [3, 4, 6]
    assert int(packed["num_tokens"]) == int(padded["num_tokens"]) == 6


def test_per_example_attention_matches_separate_runs(tiny_model_dir):
    """The trainer's attention (training/attention.py) on a packed row, in bf16 as it trains here."""
    from jupyter_tune.training.attention import register

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=register()).eval()
    a, b = [5, 17, 33, 41, 9, 12], [7, 8, 99, 23]
    batch = PaddingFreeCollator()([{"input_ids": a, "labels": a}, {"input_ids": b, "labels": b}])
    assert batch["cu_seq_lens_q"].tolist() == [0, 6, 10]
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                       cu_seq_lens_q=batch["cu_seq_lens_q"], cu_seq_lens_k=batch["cu_seq_lens_k"]).logits[0]
        sep_a = model(input_ids=torch.tensor([a]), use_cache=False).logits[0]
        sep_b = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
    torch.testing.assert_close(packed[:6], sep_a, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[6:], sep_b, atol=1e-5, rtol=1e-4)


def test_master_weights_keep_updates_that_bf16_would_round_away():
    from jupyter_tune.training.optim import MasterWeightAdamW

    w = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    plain = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    opt = MasterWeightAdamW([w], lr=1e-4, weight_decay=0.0)
    ref = torch.optim.AdamW([plain], lr=1e-4, weight_decay=0.0)
    for _ in range(50):
        for p, o in ((w, opt), (plain, ref)):
            p.grad = torch.ones(4, dtype=torch.bfloat16)
            o.step()
            o.zero_grad()
    # 50 updates of 1e-4 on 1.0: each is below bf16's resolution there (2^-7), the sum is not
    assert float(plain[0]) == 1.0
    assert float(w[0]) < 1.0
    assert abs(float(opt.param_groups[0]["params"][0][0]) - (1 - 50e-4)) < 1e-4


def test_fused_lora_forward_matches_peft(tiny_model_dir):
    import copy

    from peft import LoraConfig, get_peft_model

    from jupyter_tune.training.fused_lora import fuse_lora

    torch.manual_seed(0)
    # fp32 so that the comparison checks the algebra, not bf16 rounding order
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ref = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    for n, p in ref.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)  # B starts at zero; make the adapter term count
    fused = copy.deepcopy(ref)
    assert fuse_lora(fused) > 0
    ids = torch.tensor([[5, 17, 33, 41, 9, 12]])
    out_ref, out_fused = ref(input_ids=ids).logits.float(), fused(input_ids=ids).logits.float()
    torch.testing.assert_close(out_fused, out_ref, atol=1e-5, rtol=1e-5)
    out_ref.sum().backward()
    out_fused.sum().backward()
    g_ref = {n: p.grad.float() for n, p in ref.named_parameters() if p.requires_grad}
    g_fused = {n: p.grad.float() for n, p in fused.named_parameters() if p.requires_grad}
    for n in g_ref:
        torch.testing.assert_close(g_fused[n], g_ref[n], atol=1e-5, rtol=1e-4)


def test_activation_checkpointing_trains_the_same_adapter_with_less_kept(tiny_model_dir, tmp_path):
    """activation_checkpointing=True recomputes each layer in the backward pass: the same losses and the
    same adapter as without it, on the fast path (packed rows, fused LoRA, answer-only logits)."""
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer

    rows = [{"input_text": f"Example number {i} about {t}.", "output_text": t}
            for i in range(8) for t in ("Urology", "Neurology")]
    out = []
    for on in (False, True):
        params = TuningParams(base_model=str(tiny_model_dir), max_steps=3, batch_size=4, seed=0, lora_dropout=0.0,
                              save_steps=10**6, num_threads=1, activation_checkpointing=on)
        trainer, _, info, _ = build_trainer(params, load_dataset(rows), None, tmp_path / str(on))
        assert trainer.args.activation_checkpointing is on
        trainer.args.disable_tqdm = True
        trainer.train()
        assert trainer.model.is_activation_checkpointing is on
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
        out.append((losses, lora))
    (a, wa), (b, wb) = out
    assert len(a) == 3 and a == pytest.approx(b, rel=1e-5)
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-5, atol=1e-6)
