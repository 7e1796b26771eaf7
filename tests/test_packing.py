"""Padding-free batches: packed examples must not attend to each other (environment.md's trap)."""

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
    assert packed["logit_positions"].tolist() == [1, 2, 4]
    assert padded["logit_positions"].tolist() == [1, 2, 4]  # row 1 * length 4 + position 0
    assert packed["target_ids"].tolist() == padded["target_ids"].tolist() == [3, 4, 6]
    assert int(packed["num_tokens"]) == int(padded["num_tokens"]) == 6
