"""Inputs longer than the model should read when labels are scored (score mode): what evaluation does with a
transcript of 4,000 tokens when the tuned model was trained on its first 512.

  "whole"   the whole prompt, up to the model's context (a longer one is an error for its row);
  "cut"     the prompt cut to max_input_tokens the way training cuts it (data/tokenize: its beginning and its
            last tokens, which hold the turn's end), so a tuned model reads what it was trained on;
  "chunks"  the row's text split into windows that each fit max_input_tokens, each window put into the same
            prompt, and the labels' log-likelihoods averaged over the windows: every token is read.
  "auto"    (the default) "cut" for a tuned job's model (max_input_tokens: the job's max_seq_length), "whole"
            for any other model. Measured in benchmarks/results/long_inputs.json.
"""

from __future__ import annotations

import math

from ..data.formats import Example

# A window shorter than this reads too little of the row to be worth its prompt: such rows are cut instead.
MIN_WINDOW_TOKENS = 32


def resolve(long_inputs: str, max_input_tokens: int | None, job_max_seq_length: int | None) -> tuple[str, int | None]:
    """(mode, token limit) for a model: "auto" cuts a tuned job's model to what it was trained on."""
    limit = max_input_tokens or job_max_seq_length
    if long_inputs == "auto":
        return ("cut", limit) if job_max_seq_length else ("whole", max_input_tokens)
    return long_inputs, limit


def row_text(example: Example) -> tuple[int, str | None]:
    """(index of the last user turn, the row's own text inside it: input_text, prompt or its longest string
    field that the turn contains; None when no field is found in it)."""
    msgs = example.prompt_messages
    users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
    last = users[-1] if users else len(msgs) - 1
    content = msgs[last]["content"]
    values = [example.fields.get(k) for k in ("input_text", "prompt")]
    values += sorted((v for v in example.fields.values() if isinstance(v, str)), key=len, reverse=True)
    return last, next((v for v in values if isinstance(v, str) and v.strip() and v in content), None)


def with_text(example: Example, last: int, found: str | None, text: str, index: int | None = None) -> Example:
    """`example`'s prompt with its row text (`found` inside turn `last`) replaced by `text`."""
    msgs = [dict(m) for m in example.prompt_messages]
    content = msgs[last]["content"]
    msgs[last]["content"] = content.replace(found, text) if found is not None else text
    answer = [example.messages[-1]] if example.has_answer else []
    return Example(msgs + answer, {}, example.line, example.index if index is None else index)


def windows(tokenizer, example: Example, prompt_tokens: int, budget: int) -> list[Example] | None:
    """`example` as several, each with one window of its text, each prompt about `budget` tokens at most
    (`prompt_tokens`: the whole prompt's). None when the text cannot be found or windows would be too short."""
    last, found = row_text(example)
    if found is None:
        return None
    ids = tokenizer(found, add_special_tokens=False)["input_ids"]
    room = budget - (prompt_tokens - len(ids)) - 2  # 2: tokens that merge differently at a window's edges
    if room < MIN_WINDOW_TOKENS or len(ids) <= room:
        return None
    n = math.ceil(len(ids) / room)
    size = math.ceil(len(ids) / n)  # even windows: no short last one
    return [with_text(example, last, found, tokenizer.decode(ids[i:i + size])) for i in range(0, len(ids), size)]


def mean_sums(parts: list[list[float]]) -> list[float]:
    """Per label, the mean of its summed log-likelihoods over a row's windows."""
    return [sum(p[k] for p in parts) / len(parts) for k in range(len(parts[0]))]
