"""Score mode: rank a fixed set of labels by the model's likelihood of each as the answer.

A label's score is the sum of the log-probabilities of its answer tokens as training lays them down
(the label, then the end-of-turn token) after the rendered prompt. The prompt runs once per batch; its
KV cache is repeated for the labels, which then run together in one short forward pass. Measured on the
2-core CPU with SmolLM2-135M and 5 labels, this is about 3x faster than running prompt+label for every
label (see benchmarks/bench_eval.py), and every prediction is one of the labels.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from ..data.formats import Example
from ..data.tokenize import IGNORE_INDEX, encode_example
from ..generation.prompts import left_padded

# Rows (prompt x label) per label forward pass: bounds the logits' memory (rows x label length x vocab).
_MAX_LABEL_ROWS = 160
# Below this many tokens, a prefix common to a batch's prompts is not worth a separate forward pass.
_MIN_SHARED_PREFIX = 8


@dataclass
class ScoredPrompt:
    index: int
    ids: list[int]                 # prompt tokens
    continuations: list[list[int]]  # per label: its answer tokens through the end-of-turn token
    error: str = ""


def answer_tokens(lm, prompt_messages: list[dict[str, str]], label: str) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) exactly as training encodes `label` as the answer to these messages."""
    ex = Example(list(prompt_messages) + [{"role": "assistant", "content": label}])
    enc = encode_example(lm.tokenizer, ex, max_seq_length=10**9)
    first = next(i for i, x in enumerate(enc.labels) if x != IGNORE_INDEX)
    answer = enc.input_ids[first:]
    eos = set(lm.eos_token_ids)
    end = next((i for i, t in enumerate(answer) if t in eos), None)
    # Score through the end-of-turn token: "Neuro" must not win over "Neurology" by stopping early.
    return enc.input_ids[:first], answer[: end + 1] if end is not None else answer


def prepare(lm, dataset, labels: list[str]) -> list[ScoredPrompt]:
    out = []
    limit = lm.context_length
    for ex in dataset.examples:
        conts = []
        prompt: list[int] = []
        for label in labels:
            prompt, cont = answer_tokens(lm, ex.prompt_messages, label)
            conts.append(cont)
        longest = max(len(c) for c in conts)
        err = ""
        if len(prompt) + longest > limit:
            err = (f"The prompt is {len(prompt)} tokens; with the longest label ({longest} tokens) it exceeds the "
                   f"model's context of {limit} tokens. Shorten the input or the prompt template.")
        out.append(ScoredPrompt(ex.index, prompt, conts, err))
    return out


def _run_prompts(lm, prompts: list[list[int]]):
    """Forward the prompts with a KV cache; returns (output with the last position's logits, attention mask).

    Rows that begin alike (the chat template's system turn, the prompt template's text before {input_text})
    share that prefix: it runs once and its cache is repeated, so each row only runs its own suffix.
    """
    import torch

    pad = lm.tokenizer.pad_token_id
    common = len(os.path.commonprefix(prompts))
    shared = min(common, min(len(ids) for ids in prompts) - 1)  # every row keeps a token of its own
    if shared < _MIN_SHARED_PREFIX:
        input_ids, mask, positions = left_padded(prompts, pad, lm.device)
        out = lm.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                       logits_to_keep=1)
        return out, mask
    prefix = torch.tensor([prompts[0][:shared]], device=lm.device)
    cache = lm.model(input_ids=prefix, use_cache=True, logits_to_keep=1).past_key_values
    cache.batch_repeat_interleave(len(prompts))
    ids, suffix_mask, positions = left_padded([p[shared:] for p in prompts], pad, lm.device)
    mask = torch.cat([torch.ones((len(prompts), shared), dtype=suffix_mask.dtype, device=lm.device), suffix_mask], 1)
    out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions + shared, past_key_values=cache,
                   use_cache=True, logits_to_keep=1)
    return out, mask


def score_batch(lm, batch: list[ScoredPrompt]) -> list[list[float]]:
    """Per prompt, the log-likelihood of each label's answer tokens."""
    import torch

    model, pad = lm.model, lm.tokenizer.pad_token_id
    num_labels = len(batch[0].continuations)
    with torch.inference_mode():
        out, mask = _run_prompts(lm, [p.ids for p in batch])
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts each label's first token
        prompt_cache = out.past_key_values
        lengths = mask.sum(-1)
        scores = torch.zeros(len(batch), num_labels)
        for b, p in enumerate(batch):
            for k, cont in enumerate(p.continuations):
                scores[b, k] = first[b, cont[0]]
        # Label chunks small enough that rows x label length x vocab logits stay bounded.
        per_chunk = max(1, _MAX_LABEL_ROWS // len(batch))
        for k0 in range(0, num_labels, per_chunk):
            ks = list(range(k0, min(num_labels, k0 + per_chunk)))
            rest = [[p.continuations[k][1:] for k in ks] for p in batch]  # tokens after the first
            width = max(len(c) for row in rest for c in row)
            if width == 0:
                continue
            cache = copy.deepcopy(prompt_cache) if k0 + per_chunk < num_labels else prompt_cache
            cache.batch_repeat_interleave(len(ks))
            rows = len(batch) * len(ks)
            # Inputs: each label's tokens but its last (whose prediction is not needed); right-padded.
            ids = torch.full((rows, width), pad, dtype=torch.long)
            lab_mask = torch.zeros((rows, width), dtype=torch.long)
            prev = [[p.continuations[k][:-1] for k in ks] for p in batch]
            for b in range(len(batch)):
                for j, toks in enumerate(prev[b]):
                    r = b * len(ks) + j
                    if toks:
                        ids[r, : len(toks)] = torch.tensor(toks)
                        lab_mask[r, : len(toks)] = 1
            lab_mask[:, 0] = 1  # a row with a one-token label still needs one valid position
            attn = torch.cat([mask.repeat_interleave(len(ks), 0), lab_mask.to(lm.device)], dim=1)
            pos = lengths.repeat_interleave(len(ks), 0)[:, None] + torch.arange(width, device=lm.device)[None]
            logits = model(input_ids=ids.to(lm.device), attention_mask=attn, position_ids=pos,
                           past_key_values=cache, use_cache=True).logits
            for b in range(len(batch)):
                for j, toks in enumerate(rest[b]):
                    if not toks:
                        continue
                    r = b * len(ks) + j
                    lp = torch.log_softmax(logits[r, : len(toks)].float(), dim=-1)
                    target = torch.tensor(toks, device=lp.device)
                    scores[b, ks[j]] += lp.gather(1, target[:, None]).sum().item()
            del logits
    return scores.tolist()
