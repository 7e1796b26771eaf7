"""Examples -> token ids, with the same prompt rendering for training, evaluation and generation.

Instruct models get their chat template; a tokenizer without one gets plain text turns. Labels are -100
everywhere except the model's answers, so the loss is computed on the response tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formats import Example

IGNORE_INDEX = -100
# Tokens kept from the end of an over-long prompt: the end of the user's text and the answer marker.
_PROMPT_TAIL = 32


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    num_input_tokens: int      # tokens not trained on (prompt, system, template markup)
    num_output_tokens: int     # tokens trained on
    truncated: bool
    original_length: int


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _plain_text(messages: list[dict[str, str]]) -> str:
    parts = []
    for m in messages:
        parts.append(m["content"] + ("\n" if m["role"] != "assistant" else ""))
    return "".join(parts)


def render_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    """The text the model sees before it answers `messages` (which end with a user turn)."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return _plain_text(messages)


def _ids(tokenizer, text: str) -> list[int]:
    # The chat template already holds any special tokens; don't let the tokenizer add a BOS twice.
    return tokenizer(text, add_special_tokens=not has_chat_template(tokenizer))["input_ids"]


def encode_prompt(tokenizer, messages: list[dict[str, str]], max_length: int | None = None) -> list[int]:
    ids = _ids(tokenizer, render_prompt(tokenizer, messages))
    if max_length is not None and len(ids) > max_length:
        ids = _cut_middle(ids, max_length)
    return ids


def _cut_middle(ids: list[int], budget: int) -> list[int]:
    tail = min(_PROMPT_TAIL, budget // 4)
    return ids[: budget - tail] + (ids[-tail:] if tail else [])


def encode_example(tokenizer, example: Example, max_seq_length: int) -> Encoded:
    """Token ids and labels for one training example (loss on every assistant turn)."""
    msgs = example.messages
    ids: list[int] = []
    labels: list[int] = []
    chat = has_chat_template(tokenizer)
    eos = [tokenizer.eos_token_id] if (not chat and tokenizer.eos_token_id is not None) else []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        # Render up to the answer marker, then up to the end of the answer; the difference is trained on.
        before = _ids(tokenizer, render_prompt(tokenizer, msgs[:i]))
        if chat:
            through = _ids(tokenizer, tokenizer.apply_chat_template(msgs[: i + 1], tokenize=False))
        else:
            # The answer without special tokens: some tokenizers (Gemma 3's) add a BOS to every string while
            # reporting add_bos_token=False, and a BOS trained into each answer makes the model stop at once.
            through = before + tokenizer(m["content"], add_special_tokens=False)["input_ids"] + eos
        if through[: len(before)] != before or len(through) <= len(before):
            # A template that renders earlier turns differently later: fall back to prompt + answer text.
            through = before + tokenizer(m["content"], add_special_tokens=False)["input_ids"] + eos
        prefix_len = len(ids)
        if before[:prefix_len] != ids:
            before = ids + before[prefix_len:]  # keep what was already laid down
        new_prompt = before[len(ids):]
        answer = through[len(before):]
        ids += new_prompt + answer
        labels += [IGNORE_INDEX] * len(new_prompt) + answer
    if not ids:  # no answer (generation data): the prompt only
        ids = encode_prompt(tokenizer, msgs)
        labels = [IGNORE_INDEX] * len(ids)
    original = len(ids)
    truncated = original > max_seq_length
    if truncated:
        ids, labels = _truncate(ids, labels, max_seq_length)
    n_out = sum(1 for x in labels if x != IGNORE_INDEX)
    return Encoded(ids, labels, len(ids) - n_out, n_out, truncated, original)


def _truncate(ids: list[int], labels: list[int], max_len: int) -> tuple[list[int], list[int]]:
    """Keep the (last) answer whole and cut the middle of the prompt before it; else cut the end."""
    first_trained = next((i for i, x in enumerate(labels) if x != IGNORE_INDEX), len(ids))
    answer_len = len(ids) - first_trained
    if answer_len <= max_len // 2 and all(x != IGNORE_INDEX for x in labels[first_trained:]):
        kept = _cut_middle(ids[:first_trained], max_len - answer_len)
        return kept + ids[first_trained:], [IGNORE_INDEX] * len(kept) + labels[first_trained:]
    return ids[:max_len], labels[:max_len]
