"""The token ids models/arch.py picks for every layer (padding)."""

from types import SimpleNamespace

import pytest

from jupyter_tune.models.arch import pad_id


@pytest.mark.parametrize("pad, eos, given, expected", [
    (3, 2, None, 3),      # the tokenizer's pad token first
    (0, 2, None, 0),      # id 0 is a pad token, not a missing one
    (None, 2, None, 2),   # else the tokenizer's EOS
    (None, 2, 7, 7),      # else the EOS the caller names (the end-of-turn token)
    (None, None, None, 0),
])
def test_pad_id(pad, eos, given, expected):
    tokenizer = SimpleNamespace(pad_token_id=pad, eos_token_id=eos)
    assert pad_id(tokenizer, given) == expected
