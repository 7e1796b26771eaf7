"""Score mode: rank a fixed set of labels by the model's likelihood of each as the answer.

A label's log-likelihood is the sum of the log-probabilities of its answer tokens as training lays them
down (the label, then the end-of-turn token) after the rendered prompt. Each prompt runs once (a batch's
common beginning once for the batch) into a KV cache; then every label's answer tokens, laid side by side
in one row per prompt (label 1, label 2, ...), run in one short forward pass over that cache with a 4-D
mask that lets each label's tokens see the prompt and themselves only (and the sliding window where a
layer has one), position ids that continue from the prompt's end, and logits at the label positions only.
The scores equal those of running prompt+label separately for each label (tests/evaluation/
test_scoring.py), at the cost of one forward pass over the prompts plus the labels' tokens: measured
1.11x (CPU time) and 1.07x (wall time) a plain forward pass over eval.jsonl transcripts with 38 labels
(medians; benchmarks/results/evaluation_full.json). Laying the labels after the prompt in the very same forward
pass ("one_pass") gives the same scores but loses SDPA's causal fast path over the prompt (1.4x there).

How the label log-likelihoods become the ranking scores is the `scoring`:
  "sum"             the summed log-likelihood (favours short labels);
  "mean"            divided by the label's answer-token count;
  "calibrated"      the sum minus the mean sum the label gets for content-free inputs ("N/A", "none",
                    "[MASK]") put into the same prompt (Zhao et al. 2021, "Calibrate before use");
  "calibrated_mean" the same with per-token means.
Measured choices: benchmarks/results/scoring.md.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, replace
from typing import Any

from ..data.formats import Example
from ..data.tokenize import IGNORE_INDEX, encode_example
from ..models.arch import end_of_turn_ids, pad_id
from ..models.context import context_length
from ..params.arguments import SCORINGS as _ALL_SCORINGS
from .long_inputs import mean_sums, row_text, with_text
from .long_inputs import windows as long_inputs_windows

SCORINGS = tuple(s for s in _ALL_SCORINGS if s != "auto")
# "auto" (the default): the best measured scoring for the kind of model (benchmarks/results/scoring.md).
# An untuned model: calibrated (small-eval macro F1 0.309 against sum 0.044; the only one above a constant
# guess on the 38-label set). A tuned one: sum, on both offline models and every task measured (small task
# 0.936 against 0.826 calibrated with the same defaults; 38 labels SmolLM2 0.389 vs 0.344, Gemma 3 0.449 vs
# 0.376; the 19-specialty task SmolLM2 0.606 vs 0.496, Gemma 3 0.747 vs 0.658): calibrating against
# content-free inputs corrects a base model's label prior, which tuning has already fixed.
AUTO = "auto"
DEFAULT_SCORING = AUTO
UNTUNED_SCORING, TUNED_SCORING = "calibrated", "sum"
CONTENT_FREE_INPUTS = ("N/A", "none", "[MASK]")

# Tokens per forward pass (rows x row length): bounds the activations and the (rows x L x L) mask.
_TOKEN_BUDGET = 8192
# Logits per forward pass (rows x label positions x vocabulary): bounds the output layer's memory.
_LOGIT_BUDGET = 1 << 26
# How the labels follow their prompt (see score_labels); "cached" measured fastest (bench_eval.py).
PASS = "cached"
# Below this many tokens, a prefix common to a batch's prompts is not worth a forward pass of its own.
_MIN_SHARED_PREFIX = 16
# Label tokens laid after one prompt per forward pass; more labels than this run in groups.
_MAX_LABEL_TOKENS = 2048


class ScoringError(ValueError):
    """An unknown scoring or an impossible request; the message says what to use."""


@dataclass
class ScoredPrompt:
    index: int
    ids: list[int]                  # prompt tokens
    continuations: list[list[int]]  # per label: its answer tokens through the end-of-turn token
    error: str = ""
    part: str = ""  # "cut": cut to max_input_tokens; "window": one of the row's windows (long_inputs.py)


def check_scoring(scoring: str) -> str:
    if scoring != AUTO and scoring not in SCORINGS:
        raise ScoringError(f"scoring={scoring!r} is not known: use {AUTO!r} (the default: {UNTUNED_SCORING} for "
                           f"an untuned model, {TUNED_SCORING} for a tuned one) or one of "
                           f"{', '.join(map(repr, SCORINGS))}.")
    return scoring


def resolve_scoring(scoring: str, tuned: bool) -> str:
    """The scoring that runs: ``scoring`` itself, or for "auto" the best measured for the kind of model."""
    check_scoring(scoring)
    if scoring != AUTO:
        return scoring
    return TUNED_SCORING if tuned else UNTUNED_SCORING


def answer_tokens(tokenizer, eos_ids, prompt_messages: list[dict[str, str]], label: str) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) exactly as training encodes `label` as the answer to these messages."""
    ex = Example(list(prompt_messages) + [{"role": "assistant", "content": label}])
    enc = encode_example(tokenizer, ex, max_seq_length=10**9)
    first = next(i for i, x in enumerate(enc.labels) if x != IGNORE_INDEX)
    answer = enc.input_ids[first:]
    end = next((i for i, t in enumerate(answer) if t in eos_ids), None)
    # Score through the end-of-turn token: "Neuro" must not win over "Neurology" by stopping early.
    return enc.input_ids[:first], answer[: end + 1] if end is not None else answer


def prepare_examples(model, tokenizer, examples: list[Example], labels: list[str], long_inputs: str = "whole",
                     max_input_tokens: int | None = None) -> list[ScoredPrompt]:
    """Each example's prompt ids and every label's answer ids; a row too long for the context is marked.

    long_inputs ("whole", "cut" or "chunks"; evaluation/long_inputs.py) and max_input_tokens say what
    happens to a prompt longer than max_input_tokens: "chunks" gives such a row several prompts, one per
    window of its text, all with the row's index. The answer ids of a label depend only on the turns
    around the user's text, so they are encoded once per chat layout and checked against the row's own
    encoding of the first label.
    """
    from ..data.tokenize import _cut_middle

    eos = end_of_turn_ids(model, tokenizer)
    context = context_length(model, tokenizer)
    limit = min(context, max_input_tokens) if max_input_tokens and long_inputs != "whole" else context
    layouts: dict[tuple, list[list[int]]] = {}

    def one(ex: Example) -> tuple[list[int], list[list[int]]]:
        msgs = ex.prompt_messages
        prompt, first = answer_tokens(tokenizer, eos, msgs, labels[0])
        key = tuple((m["role"], m["content"] if i < len(msgs) - 1 else "") for i, m in enumerate(msgs))
        conts = layouts.get(key)
        if conts is None or conts[0] != first:
            probe = [dict(m) for m in msgs]
            probe[-1]["content"] = "x"
            conts = [answer_tokens(tokenizer, eos, probe, lab)[1] for lab in labels]
            if conts[0] != first:  # the answer's tokens depend on this row's text: encode each label here
                conts = [answer_tokens(tokenizer, eos, msgs, lab)[1] for lab in labels]
            else:
                layouts[key] = conts
        return prompt, conts

    out = []
    for ex in examples:
        prompt, conts = one(ex)
        longest = max(len(c) for c in conts)
        parts = [(prompt, conts)]
        if len(prompt) + longest > limit and long_inputs == "chunks":
            split = long_inputs_windows(tokenizer, ex, len(prompt), limit - longest)
            parts = [one(w) for w in split] if split else parts
        for prompt, conts in parts:
            part = "window" if len(parts) > 1 else ""
            if len(prompt) + longest > limit and long_inputs != "whole":  # "cut", and a window that still overflows
                prompt, part = _cut_middle(prompt, limit - longest), part or "cut"
            err = ""
            if len(prompt) + longest > limit:
                err = (f"The prompt is {len(prompt)} tokens; with the longest label ({longest} tokens) it exceeds the "
                       f"model's context of {limit} tokens. Shorten the input or the prompt template, or evaluate "
                       "with long_inputs='cut' or 'chunks'.")
            out.append(ScoredPrompt(ex.index, prompt, conts, err, part))
    return out


def prepare(lm, dataset, labels: list[str], long_inputs: str = "whole",
            max_input_tokens: int | None = None) -> list[ScoredPrompt]:
    """prepare_examples for a LoadedModel and a Dataset."""
    return prepare_examples(lm.model, lm.tokenizer, dataset.examples, labels, long_inputs, max_input_tokens)


# ---- the forward passes ------------------------------------------------------------------------------

def _inner_model(model):
    get = getattr(model, "get_base_model", None)  # a PEFT model forwards its kwargs to the base model
    return get() if callable(get) else model


def _takes_logits_to_keep(model) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(_inner_model(model).forward).parameters
    except (TypeError, ValueError):
        return False


def _cache_arg(model, cache) -> dict[str, Any]:
    """The KV cache keyword of forward: transformers 5.24 renamed past_key_values to cache (the old name
    warns a FutureWarning into every evaluation cell until 5.40 removes it); older versions take the old."""
    try:
        params = inspect.signature(_inner_model(model).forward).parameters
    except (TypeError, ValueError):
        params = {}
    return {"cache" if "cache" in params else "past_key_values": cache}


def _mask_style(model) -> str | None:
    """'bool' (SDPA), 'float' (eager: additive) or None when the attention cannot take a custom 4-D mask."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask

    impl = getattr(model.config, "_attn_implementation", None) or "eager"
    fn = ALL_MASK_ATTENTION_FUNCTIONS._global_mapping.get(impl)
    if impl == "eager" or fn is eager_mask:
        return "float"
    if fn is sdpa_mask:
        return "bool"
    return None


def _windows(config) -> dict[str, int | None] | None:
    """The mask each layer kind needs: {layer type: sliding window or None}; None means one mask for all."""
    config = getattr(config, "get_text_config", lambda: config)()
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if types and "sliding_attention" in types:
        if set(types) - {"full_attention", "sliding_attention"}:
            raise NotImplementedError(f"layer types {sorted(set(types))}")
        return {"full_attention": None, "sliding_attention": int(window)}
    if types is None and window is not None and getattr(config, "use_sliding_window", True):
        return {"": int(window)}  # one mask for every layer (e.g. Mistral), with the window in it
    return None


def _model_dtype(model):
    import torch

    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _device(model):
    return next(model.parameters()).device


def score_labels(model, batch: list[ScoredPrompt], pad: int, how: str | None = None,
                 groups: list[list[int]] | None = None):
    """Summed log-likelihoods (a float64 tensor, rows x labels) of every label after each prompt of `batch`.

    pad: a token id for padding. groups: the labels in groups that each fit the budgets (default: made
    here). how: "cached" (PASS, the default): the prompts run once, right-padded so the plain causal mask
    holds, into a KV cache that each group's label tokens attend to in a second, short forward pass;
    "one_pass": prompt and labels in one forward pass with a 4-D mask; "separate": prompt+label as its
    own row per label (also used where the attention takes no custom 4-D mask).
    """
    import torch

    how = how or PASS
    groups = groups or _label_groups(batch, vocab_size(model))
    try:
        _windows(model.config)
    except NotImplementedError:  # layer kinds whose masks we do not build (chunked, linear attention)
        how = "separate"
    if _mask_style(model) is None:
        how = "separate"
    if how == "cached":
        return _score_cached(model, batch, groups, pad)
    one = _score_one_pass if how == "one_pass" else _score_separately
    return torch.cat([one(model, batch, ks, pad) for ks in groups], dim=1)


def _masks(model, seg_q, seg_k, col_q, col_k, pos_q, pos_k):
    """The attention mask(s) for the model: one tensor, or {layer type: tensor} when layers differ."""
    style, windows = _mask_style(model), _windows(model.config)
    dtype, device = _model_dtype(model), _device(model)
    args = (seg_q, seg_k, col_q, col_k, pos_q, pos_k)
    if windows is None:
        return _mask(*args, None, style, dtype).to(device)
    if "" in windows:
        return _mask(*args, windows[""], style, dtype).to(device)
    return {name: _mask(*args, w, style, dtype).to(device) for name, w in windows.items()}


def _mask(seg_q, seg_k, col_q, col_k, pos_q, pos_k, window: int | None, style: str, dtype):
    """(rows, 1, queries, keys): a prompt token (segment 0) sees the prompt before it; a label token sees the
    prompt and its own label's tokens before it; a padding query (segment -1) sees itself only, so that
    its row of the softmax stays finite."""
    import torch

    sq, sk = seg_q[:, :, None], seg_k[:, None, :]
    same = col_q[None, :, None] == col_k[None, None, :]
    allowed = (col_q[None, :, None] >= col_k[None, None, :]) & (sk >= 0) & (sq >= 0) & ((sk == 0) | (sk == sq))
    if window is not None:
        allowed &= (pos_q[:, :, None] - pos_k[:, None, :]) < window
    allowed = (allowed | ((sq < 0) & same))[:, None]
    if style == "bool":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)


def _label_inputs(batch: list[ScoredPrompt], ks: list[int], pad: int, lengths: list[int], start: int):
    """The labels' answer inputs laid side by side from column `start`: ids, positions, segment ids
    (-1 padding, j+1 label ks[j]) and the (row, kept column, label j, target) of every token to score, where
    kept column 0 is the prompt's last position and column 1 + i the labels' i-th column."""
    import torch

    # Label j's inputs are its tokens but the last; the prompt's last position predicts its first token.
    widths = [max(len(p.continuations[k]) - 1 for p in batch) for k in ks]
    offsets = [sum(widths[:j]) for j in range(len(ks))]
    n = sum(widths)
    ids = torch.full((len(batch), n), pad, dtype=torch.long)
    pos = torch.zeros((len(batch), n), dtype=torch.long)
    seg = torch.full((len(batch), n), -1, dtype=torch.long)
    rows, kept, labs, toks = [], [], [], []
    for r, p in enumerate(batch):
        for j, k in enumerate(ks):
            cont, o = p.continuations[k], offsets[j]
            m = len(cont) - 1
            ids[r, o: o + m] = torch.tensor(cont[:-1], dtype=torch.long)
            pos[r, o: o + m] = lengths[r] + torch.arange(m)
            seg[r, o: o + m] = j + 1
            for t, tok in enumerate(cont):
                rows.append(r)
                kept.append(0 if t == 0 else 1 + o + t - 1)
                labs.append(j)
                toks.append(tok)
    targets = tuple(torch.tensor(x, dtype=torch.long) for x in (rows, kept, labs, toks))
    return ids, pos, seg, torch.arange(start, start + n), targets


def _prompt_logits(out_logits, rows_last: list[int], keep: list[int]):
    """Each row's logits at its own last prompt position, from logits kept at the positions `keep`."""
    import torch

    idx = torch.tensor([keep.index(c) for c in rows_last], device=out_logits.device)
    return out_logits[torch.arange(len(rows_last), device=out_logits.device), idx][:, None]


def _forward(model, keep: list[int] | None, **kwargs):
    """The model's forward with logits at `keep` only (None: all), through its own logits_to_keep where it
    has one, so that its own logit processing (e.g. Gemma 2's final soft-capping) applies."""
    import torch

    if keep is None:
        return model(**kwargs)
    index = torch.tensor(keep, dtype=torch.long, device=kwargs["input_ids"].device)
    if _takes_logits_to_keep(model):
        return model(**kwargs, logits_to_keep=index)
    out = model(**kwargs)
    out.logits = out.logits[:, index]
    return out


def _shared_prefix(batch: list[ScoredPrompt]) -> int:
    """Tokens that every prompt of the batch begins with (chat template, prompt template), keeping one of
    each row's own; 0 when too few to be worth a forward pass of their own."""
    if len(batch) < 2:
        return 0
    shared = min(len(os.path.commonprefix([p.ids for p in batch])), min(len(p.ids) for p in batch) - 1)
    return shared if shared >= _MIN_SHARED_PREFIX else 0


def _score_cached(model, batch: list[ScoredPrompt], groups: list[list[int]], pad: int):
    import torch
    from transformers import DynamicCache

    device = _device(model)
    lengths = [len(p.ids) for p in batch]
    p_len = max(lengths)
    # Right padding: the causal mask alone keeps the pads out of every real token's view, so a batch of
    # prompts takes SDPA's causal fast path (no padding mask).
    ids = torch.full((len(batch), p_len), pad, dtype=torch.long)
    for r, p in enumerate(batch):
        ids[r, : len(p.ids)] = torch.tensor(p.ids, dtype=torch.long)
    cache = DynamicCache()  # no config: every layer keeps every position (sliding layers included)
    shared = _shared_prefix(batch)
    if shared:  # the rows' common beginning runs once; its cache is repeated for the rows
        model(input_ids=ids[:1, :shared].to(device), **_cache_arg(model, cache), use_cache=True,
              position_ids=torch.arange(shared, device=device)[None], **_one_logit(model))
        cache.batch_repeat_interleave(len(batch))
    last = sorted({n - 1 - shared for n in lengths})
    out = _forward(model, last, input_ids=ids[:, shared:].to(device), **_cache_arg(model, cache), use_cache=True,
                   position_ids=torch.arange(shared, p_len, device=device)[None].expand(len(batch), -1))
    first = _prompt_logits(out.logits, [n - 1 - shared for n in lengths], last)
    prompt_seg = torch.stack([(torch.arange(p_len) < n).long() - 1 for n in lengths])  # 0 prompt, -1 padding
    prompt_pos = torch.arange(p_len)[None].expand(len(batch), -1)
    parts = []
    for ks in groups:
        lab_ids, lab_pos, lab_seg, lab_col, targets = _label_inputs(batch, ks, pad, lengths, p_len)
        mask = _masks(model, lab_seg, torch.cat([prompt_seg, lab_seg], 1), lab_col,
                      torch.cat([torch.arange(p_len), lab_col]), lab_pos, torch.cat([prompt_pos, lab_pos], 1))
        logits = model(input_ids=lab_ids.to(device), attention_mask=mask, position_ids=lab_pos.to(device),
                       **_cache_arg(model, cache), use_cache=True).logits
        cache.crop(-lab_ids.shape[1])  # drop this group's label tokens: the next group sees the prompt only
        parts.append(_gather(torch.cat([first, logits], 1), *targets, len(batch), len(ks)))
    return torch.cat(parts, dim=1)


def _one_logit(model) -> dict[str, int]:
    return {"logits_to_keep": 1} if _takes_logits_to_keep(model) else {}


def _score_one_pass(model, batch: list[ScoredPrompt], ks: list[int], pad: int):
    import torch

    device = _device(model)
    lengths = [len(p.ids) for p in batch]
    p_len = max(lengths)
    ids = torch.full((len(batch), p_len), pad, dtype=torch.long)
    pos = torch.zeros((len(batch), p_len), dtype=torch.long)
    seg = torch.full((len(batch), p_len), -1, dtype=torch.long)
    for r, p in enumerate(batch):  # left padding: every row's last prompt token is in the same column
        n = len(p.ids)
        ids[r, p_len - n:] = torch.tensor(p.ids, dtype=torch.long)
        pos[r, p_len - n:] = torch.arange(n)
        seg[r, p_len - n:] = 0
    lab_ids, lab_pos, lab_seg, lab_col, targets = _label_inputs(batch, ks, pad, lengths, p_len)
    ids, pos, seg = torch.cat([ids, lab_ids], 1), torch.cat([pos, lab_pos], 1), torch.cat([seg, lab_seg], 1)
    col = torch.arange(ids.shape[1])
    mask = _masks(model, seg, seg, col, col, pos, pos)
    keep = [p_len - 1] + lab_col.tolist()
    logits = _forward(model, keep, input_ids=ids.to(device), attention_mask=mask, position_ids=pos.to(device),
                      use_cache=False).logits
    return _gather(logits, *targets, len(batch), len(ks))


def _gather(logits, rows, kept, labs, toks, n_rows: int, n_labels: int):
    """Sum log p(target) per (row, label) from logits (rows x kept x vocab), one row at a time in fp32."""
    import torch

    lse = torch.stack([torch.logsumexp(logits[r].float(), dim=-1) for r in range(logits.shape[0])]).cpu()
    picked = logits[rows.to(logits.device), kept.to(logits.device), toks.to(logits.device)].float().cpu()
    out = torch.zeros(n_rows * n_labels, dtype=torch.float64)
    out.index_add_(0, rows * n_labels + labs, (picked - lse[rows, kept]).double())
    return out.view(n_rows, n_labels)


def _score_separately(model, batch: list[ScoredPrompt], ks: list[int], pad: int):
    """The reference way: every prompt+label as its own left-padded row (attention without custom masks)."""
    import torch

    from ..generation.prompts import left_padded

    device = _device(model)
    out = torch.zeros(len(batch), len(ks), dtype=torch.float64)
    for r, p in enumerate(batch):
        seqs = [p.ids + p.continuations[k] for k in ks]
        ids, mask, positions = left_padded(seqs, pad, device)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits
        for j, k in enumerate(ks):
            cont = p.continuations[k]
            lp = torch.log_softmax(logits[j, -len(cont) - 1: -1].float(), dim=-1)
            out[r, j] = lp.gather(1, torch.tensor(cont, device=lp.device)[:, None]).sum().item()
    return out


def _label_groups(batch: list[ScoredPrompt], vocab: int) -> list[list[int]]:
    """Labels split so that one row's label tokens and logits stay within the budgets (usually one group)."""
    groups: list[list[int]] = [[]]
    used = 0
    for k in range(len(batch[0].continuations)):
        w = max(len(p.continuations[k]) for p in batch)
        if groups[-1] and (used + w > _MAX_LABEL_TOKENS or (used + w) * vocab > _LOGIT_BUDGET):
            groups.append([])
            used = 0
        groups[-1].append(k)
        used += w
    return groups


def score_batch(lm, batch: list[ScoredPrompt]) -> list[list[float]]:
    """Per prompt, the summed log-likelihood of each label's answer tokens (a LoadedModel's model)."""
    return score_rows(lm.model, lm.tokenizer, batch)


def score_rows(model, tokenizer, batch: list[ScoredPrompt]) -> list[list[float]]:
    """Per prompt of `batch`, the summed log-likelihood of each label's answer tokens."""
    import torch

    pad = pad_id(tokenizer)
    with torch.inference_mode():
        return score_labels(model, batch, pad).tolist()


def batches(prompts: list[ScoredPrompt], max_rows: int, vocab: int = 1):
    """Length-sorted batches (longest first) of at most `max_rows` rows within the token and logit budgets."""
    runnable = sorted((p for p in prompts if not p.error), key=lambda p: len(p.ids), reverse=True)
    batch: list[ScoredPrompt] = []
    for p in runnable:
        labels = min(_MAX_LABEL_TOKENS, sum(len(c) for c in p.continuations))
        rows = len(batch) + 1
        longest = len(batch[0].ids) if batch else len(p.ids)
        if batch and (rows > max_rows or rows * (longest + labels) > _TOKEN_BUDGET
                      or rows * labels * vocab > _LOGIT_BUDGET):
            yield batch
            batch = []
        batch.append(p)
    if batch:
        yield batch


def vocab_size(model) -> int:
    emb = model.get_output_embeddings()
    return int(emb.weight.shape[0]) if emb is not None else int(model.config.get_text_config().vocab_size)


# ---- from log-likelihoods to scores ----------------------------------------------------------------------

def content_free_examples(example: Example, texts=CONTENT_FREE_INPUTS) -> list[Example]:
    """`example`'s prompt with its input text (the row's text inside the last user turn) replaced by each of
    `texts`: the template, system turn and label list stay, the content goes."""
    last, found = row_text(example)
    return [with_text(Example(example.prompt_messages), last, found, text, index=i) for i, text in enumerate(texts)]


def calibration(model, tokenizer, example: Example, labels: list[str]) -> list[float]:
    """Per label, the mean summed log-likelihood over the content-free versions of `example`'s prompt."""
    prompts = prepare_examples(model, tokenizer, content_free_examples(example), labels)
    sums = score_rows(model, tokenizer, prompts)
    return [sum(s[k] for s in sums) / len(sums) for k in range(len(labels))]


def to_scores(sums: list[float], counts: list[int], scoring: str, content_free: list[float] | None = None) -> list[float]:
    """Ranking scores from summed log-likelihoods: `counts` are the labels' answer-token counts and
    `content_free` the labels' mean content-free sums (needed by the calibrated scorings)."""
    if scoring == "sum":
        return list(sums)
    if scoring == "mean":
        return [s / n for s, n in zip(sums, counts, strict=True)]
    if content_free is None:
        raise ScoringError(f"scoring={scoring!r} needs the content-free log-likelihoods.")
    if scoring == "calibrated":
        return [s - c for s, c in zip(sums, content_free, strict=True)]
    if scoring == "calibrated_mean":
        return [(s - c) / n for s, c, n in zip(sums, content_free, counts, strict=True)]
    raise ScoringError(check_scoring(scoring))


def rank_rows(parts: dict[int, list[list[float]]], counts: dict[int, list[int]], labels: list[str], scoring: str,
              content_free: list[float] | None) -> dict[int, tuple[list[float], list[float], str]]:
    """Per row index: its prompts' summed log-likelihoods averaged (one prompt, or its windows), the ranking
    scores and the predicted label. `counts`: each row's labels' answer-token counts."""
    out = {}
    for i, sums in parts.items():
        mean = mean_sums(sums)
        ranked = to_scores(mean, counts[i], scoring, content_free)
        out[i] = (mean, ranked, labels[max(range(len(labels)), key=ranked.__getitem__)])
    return out


# ---- a light entry for the trainer ------------------------------------------------------------------------

def label_metrics(model, tokenizer, examples: list[Example], labels: list[str] | None = None,
                  scoring: str = DEFAULT_SCORING, batch_size: int = 8, long_inputs: str = "whole",
                  max_input_tokens: int | None = None) -> dict[str, Any]:
    """Macro F1 and accuracy of ranking `labels` for `examples` with a raw (PEFT or transformers) model.

    For logging the task metric during training: no LoadedModel, no cache; the model may be in training
    mode with use_cache=False and bf16 weights; it is put back in its previous mode.
    model, tokenizer: the causal LM and its tokenizer. examples: jupyter_tune.data.formats.Example with
    the answer as the last (assistant) turn. labels: the candidates (default: the examples' answers).
    scoring: "auto" (a model in training is scored as a tuned one) or one of SCORINGS. batch_size: most
    prompts per forward pass (token budgets also apply). long_inputs, max_input_tokens: as jt.evaluate's
    (resolved: "whole", "cut" or "chunks").
    Returns {"macro_f1", "accuracy", "predictions" (label per example, None for a prompt too long),
    "scoring", "num_scored"}.
    """
    import torch

    from .classification import classification_metrics

    scoring = resolve_scoring(scoring, tuned=True)  # the model in training is being tuned
    if not examples:
        return {"macro_f1": 0.0, "accuracy": 0.0, "predictions": [], "scoring": scoring, "num_scored": 0}
    truth = [ex.answer for ex in examples]
    labels = list(labels) if labels is not None else sorted({t for t in truth if t is not None})
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            # each prompt's index is its example's position (a row's windows share one)
            prompts = prepare_examples(model, tokenizer, [replace(ex, index=i) for i, ex in enumerate(examples)],
                                       labels, long_inputs, max_input_tokens)
            free = calibration(model, tokenizer, examples[0], labels) if scoring.startswith("calibrated") else None
            preds: list[str | None] = [None] * len(examples)
            parts: dict[int, list[list[float]]] = {}
            counts: dict[int, list[int]] = {}
            for batch in batches(prompts, batch_size, vocab_size(model)):
                for p, sums in zip(batch, score_rows(model, tokenizer, batch), strict=True):
                    parts.setdefault(p.index, []).append(sums)
                    counts[p.index] = [len(c) for c in p.continuations]
            for i, (_, _, pred) in rank_rows(parts, counts, labels, scoring, free).items():
                preds[i] = pred
    finally:
        model.train(was_training)
    ok = [i for i, p in enumerate(preds) if p is not None]
    y_true, y_pred = [truth[i] for i in ok], [preds[i] for i in ok]
    if not ok:
        return {"macro_f1": 0.0, "accuracy": 0.0, "predictions": preds, "scoring": scoring, "num_scored": 0}
    metrics = classification_metrics(y_true, y_pred, labels)
    return {"macro_f1": float(metrics.loc["macro avg", "f1_score"]),
            "accuracy": sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(ok),
            "predictions": preds, "scoring": scoring, "num_scored": len(ok)}
