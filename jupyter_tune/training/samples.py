"""Sample answers at every evaluation: a few fixed validation rows, answered greedily by the model as it
trains, written beside the expected answer to ``samples.jsonl`` (read back by jobs/samples.py).

The rows are chosen once, before training (``choose_rows``), so each evaluation answers the same prompts.
Prompts are encoded as training encodes them (data/tokenize.py: the chat template, the middle of an
over-long prompt cut so that prompt + answer fit max_seq_length). Generation runs in the job process on
rank 0, in eval mode under ``torch.inference_mode`` with the KV cache on (training runs with it off), and
stops after the longest expected answer plus a few tokens, so its cost stays small and bounded.
"""

from __future__ import annotations

import time
from collections import Counter

from transformers import TrainerCallback

from ..data.tokenize import encode_prompt
from ..evaluation.classification import normalize
from ..evaluation.head import probabilities, prompt_ids
from ..jobs.samples import FILE
from ..models.arch import end_of_turn_ids, pad_id

# New tokens per answer: the longest expected answer plus this margin (end-of-turn markers), at most the cap.
_MARGIN = 4
MAX_NEW_TOKENS = 32
PROMPT_CHARS = 200  # the prompt text kept in samples.jsonl, for the table


def choose_rows(answers: list[str | None], n: int) -> list[int]:
    """`n` fixed positions among rows with an answer, spread over the answers: the first row of each
    answer, most common answers first (ties in order of appearance), then the second rows, and so on.
    When no answer repeats (text generation), rows evenly spaced through the set."""
    have = [i for i, a in enumerate(answers) if a is not None]
    if n <= 0 or not have:
        return []
    counts = Counter(answers[i] for i in have)
    if max(counts.values()) == 1:
        step = len(have) / min(n, len(have))
        return [have[int(k * step)] for k in range(min(n, len(have)))]
    groups: dict[str, list[int]] = {}
    for i in have:
        groups.setdefault(answers[i], []).append(i)
    order = sorted(groups.values(), key=lambda g: (-len(g), g[0]))
    chosen: list[int] = []
    for depth in range(max(len(g) for g in order)):
        for g in order:
            if depth < len(g) and len(chosen) < n:
                chosen.append(g[depth])
    return sorted(chosen)


def answer_prompts(tokenizer, examples: list, max_seq_length: int,
                   cap: int) -> tuple[int, list[list[int]], list[bool]]:
    """(new tokens per answer: the longest expected answer plus a margin, at most `cap` and half of
    max_seq_length; each row's prompt encoded as training encodes it, cut so that prompt + answer fit
    max_seq_length; whether each was cut). Shared by the sample answers and the generation task metric."""
    longest = max(len(tokenizer(ex.answer, add_special_tokens=False)["input_ids"]) for ex in examples)
    max_new_tokens = max(1, min(cap, longest + _MARGIN, max_seq_length // 2))
    budget = max_seq_length - max_new_tokens  # prompt + answer within max_seq_length, as in training
    prompts, truncated = [], []
    for ex in examples:
        full = encode_prompt(tokenizer, ex.prompt_messages)
        prompts.append(encode_prompt(tokenizer, ex.prompt_messages, budget))
        truncated.append(len(full) > budget)
    return max_new_tokens, prompts, truncated


class SampleAnswers(TrainerCallback):
    """At each evaluation, the model's greedy answers to the chosen rows, one samples.jsonl line."""

    def __init__(self, store, job_id: str, tokenizer, examples: list, max_seq_length: int):
        self.store, self.job_id, self.tokenizer = store, job_id, tokenizer
        self.examples = examples
        self.max_new_tokens, self.prompts, self.truncated = answer_prompts(tokenizer, examples, max_seq_length,
                                                                          MAX_NEW_TOKENS)
        self.evaluations = 0
        self.last: list[str] = []  # the previous evaluation's answers
        self.off = False  # set when generation failed: the job trains on without samples

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if model is None or self.off:
            return control
        from .log import log

        t = time.perf_counter()
        try:
            answers = self.answer(model)
        except Exception as e:  # noqa: BLE001 - a side view of training: it never fails the job
            self.off = True
            log(f"Warning: sample answers stopped at step {state.global_step} ({type(e).__name__}: {e}); "
                "training goes on")
            return control
        seconds = time.perf_counter() - t
        samples = []
        for ex, answer, cut in zip(self.examples, answers, self.truncated, strict=True):
            sample = {"row": ex.index, "line": ex.line, "prompt": _short(_user_text(ex)), "expected": ex.answer,
                      "answer": answer, "correct": normalize(answer) == normalize(ex.answer)}
            if cut:
                sample["truncated"] = True
            samples.append(sample)
        self.evaluations += 1
        self.store.append_line(self.job_id, FILE, {
            "step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4), "time": time.time(),
            "seconds": round(seconds, 4), "max_new_tokens": self.max_new_tokens, "samples": samples})
        self.store.update(self.job_id, samples={
            "file": FILE, "rows": [ex.index for ex in self.examples], "evaluations": self.evaluations,
            "last_step": state.global_step, "correct": sum(s["correct"] for s in samples)})
        changed = sum(a != b for a, b in zip(answers, self.last, strict=False))
        self.last = answers
        # one line per evaluation: a job cancelled mid-evaluation never reaches on_train_end
        log(f"Sample answers at step {state.global_step}: {sum(s['correct'] for s in samples)} of {len(samples)} "
            f"right, {changed} changed ({seconds:.1f} s; {FILE})")
        return control

    def on_train_end(self, args, state, control, **kwargs):
        # a cancelled job ends here too (at a step end): it keeps samples.jsonl
        from .log import log

        log(f"Sample answers: {self.evaluations} evaluation(s) of {len(self.examples)} validation rows in {FILE}")

    def answer(self, model) -> list[str]:
        return greedy_answers(model, self.tokenizer, self.prompts, self.max_new_tokens)


def greedy_answers(model, tok, prompts: list[list[int]], max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """Greedy answers to encoded prompts in left-padded batches (similar lengths together, so little padding);
    the model's mode is restored. Shared by the sample answers and the generation task metric (selection.py)."""
    import torch
    from transformers import GenerationConfig

    from ..generation.prompts import left_padded

    eos = end_of_turn_ids(model, tok)
    pad = pad_id(tok, eos[0])
    device = next(model.parameters()).device
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos,
                              pad_token_id=pad, use_cache=True)  # training runs with the cache off
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            input_ids, mask, _ = left_padded([prompts[i] for i in chosen], pad, str(device))
            with torch.inference_mode():
                out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
            for i, row in zip(chosen, out[:, input_ids.shape[1]:].tolist(), strict=True):
                n = next((k for k, x in enumerate(row) if x in eos), len(row))
                answers[i] = tok.decode(row[:n], skip_special_tokens=True).strip()
    finally:
        model.train(was_training)
    return answers


def sample_answers(params, val, tokenizer, store, job_id: str) -> SampleAnswers | None:
    """The callback, or None: no validation set, sample_prompts=0 (DPO's default), or FSDP (the weights are
    sharded over the ranks: one rank cannot generate alone)."""
    from ..jobs.samples import read_evaluations

    n = params.effective_sample_prompts
    if val is None or n <= 0 or params.sharding:
        return None
    rows = choose_rows([ex.answer for ex in val.examples], n)
    if not rows:
        return None
    kind = SampleAnswers
    if params.task == "classification":  # the sample answer is the head's predicted label
        kind = HeadSampleAnswers
    callback = kind(store, job_id, tokenizer, [val.examples[i] for i in rows], params.max_seq_length)
    callback.evaluations = len(read_evaluations(store, job_id))  # a resumed job counts on
    return callback


def _user_text(ex) -> str:
    """What tells the row apart: the fields a prompt template filled in (not the template's own words,
    the same in every row), else the last user turn."""
    if ex.template:
        from ..data.loader import template_fields

        values = [str(ex.fields[f]) for f in dict.fromkeys(template_fields(ex.template)) if ex.fields.get(f)]
        if values:
            return " · ".join(values)
    users = [m["content"] for m in ex.prompt_messages if m["role"] == "user"]
    return users[-1] if users else ""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 3] + "..."


class HeadSampleAnswers(SampleAnswers):
    """Sample answers of a classification job: each chosen validation row's predicted label (one forward
    per row), recorded like generated answers."""

    def __init__(self, store, job_id: str, tokenizer, examples: list, max_seq_length: int):
        super().__init__(store, job_id, tokenizer, examples, max_seq_length)
        self.max_new_tokens = 0
        encoded = prompt_ids(tokenizer, examples, max_seq_length)  # the prompts training classifies
        self.prompts = [ids for ids, _ in encoded]
        self.truncated = [original > len(ids) for ids, original in encoded]

    def answer(self, model) -> list[str]:
        config = getattr(model, "config", None)
        id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
        pad = pad_id(self.tokenizer)
        probs = probabilities(model, pad, self.prompts)
        return [id2label[max(range(len(p)), key=p.__getitem__)] for p in probs]
