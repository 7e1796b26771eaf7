"""Rows -> prompt token ids (the training's rendering), and length-sorted batches over them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..data.loader import Dataset, load_dataset
from ..data.tokenize import encode_prompt


@dataclass
class Prompt:
    index: int            # position among the dataset's examples
    ids: list[int]
    error: str = ""       # set when the prompt cannot run (e.g. longer than the context)


def load_rows(lm, data: Any, prompt_template: str | None, *, require_answer: bool, what: str) -> Dataset:
    """The dataset with the model's own template when none is given (a tuned job's template)."""
    template = prompt_template if prompt_template is not None else lm.prompt_template
    return load_dataset(data, template, require_answer=require_answer, what=what)


def encode_prompts(lm, dataset: Dataset, reserve: int = 0) -> list[Prompt]:
    """Each example's prompt ids; a prompt that leaves fewer than `reserve` + 1 tokens of context is marked."""
    limit = lm.context_length
    out = []
    for ex in dataset.examples:
        ids = encode_prompt(lm.tokenizer, ex.prompt_messages)
        err = ""
        if len(ids) + max(reserve, 1) > limit:
            err = (f"The prompt is {len(ids)} tokens: no room left in the model's context of {limit} tokens. "
                   "Shorten the input or the prompt template.")
        out.append(Prompt(ex.index, ids, err))
    return out


def length_batches(prompts: list[Prompt], batch_size: int) -> Iterator[list[Prompt]]:
    """Batches of similar length (less padding), longest first so a memory problem shows at once."""
    runnable = sorted((p for p in prompts if not p.error), key=lambda p: len(p.ids), reverse=True)
    for i in range(0, len(runnable), batch_size):
        yield runnable[i: i + batch_size]


def left_padded(batch: list[list[int]], pad_id: int, device: str):
    """input_ids, attention_mask and position_ids for left-padded rows (positions start at 0 per row)."""
    import torch

    n = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for r, ids in enumerate(batch):
        input_ids[r, n - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[r, n - len(ids):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids.to(device), mask.to(device), positions.to(device)


def row_fields(ex) -> dict[str, Any]:
    """The row's text fields for the output table, without the loader's duplicate prompt alias
    (a text row gets a `prompt` copy of its input_text so either placeholder works in templates)."""
    fields = dict(ex.fields)
    if fields.get("prompt") is not None and fields.get("prompt") == fields.get("input_text"):
        fields.pop("prompt" if ex.format != "prompt" else "input_text")
    return fields
