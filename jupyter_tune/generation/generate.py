"""``generate_text``: a model's answers to every row of a dataset, batched, in the rows' order.

Prompts are rendered exactly as training renders them (the job's prompt template, the chat template),
left-padded and grouped by length; a batch that fails is retried row by row so one bad row costs only
itself, and its error lands in the status column (as BigQuery's ML.GENERATE_TEXT reports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..params import DEFAULT_MAX_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS, check_action_value
from ..params.arguments import GENERATE_BATCH_SIZE as DEFAULT_BATCH_SIZE
from ..params.arguments import GenerateArgs, generate_rules
from ..params.gate import checked
from .prompts import Prompt, encode_prompts, left_padded, length_batches, load_rows, row_fields

RESULT_COLUMN = "ml_generate_text_llm_result"
STATUS_COLUMN = "ml_generate_text_status"


def _check_options(temperature: float, top_p: float | None, top_k: int | None, max_output_tokens: int,
                   stop_sequences: Any, batch_size: int) -> list[str]:
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature={temperature!r}: use 0 for greedy decoding or a positive number to sample.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r}: use a number in (0, 1], or None.")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r}: use a positive whole number, or None.")
    if max_output_tokens is None:
        raise ValueError(f"max_output_tokens=None: use a whole number from 1 to {MAX_OUTPUT_TOKENS}.")
    check_action_value("max_output_tokens", max_output_tokens)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: use a positive whole number.")
    if stop_sequences is None:
        return []
    if isinstance(stop_sequences, str):
        stop_sequences = [stop_sequences]
    stops = list(stop_sequences)
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop_sequences={stop_sequences!r}: use a list of non-empty strings.")
    return stops


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the first stop sequence (the stop sequence itself removed)."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def generate_for(lm, dataset, *, temperature: float = 0.0, top_p: float | None = None, top_k: int | None = None,
                 max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS, stop_sequences: Sequence[str] = (), batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: bool = True, desc: str = "Generating") -> tuple[list[str | None], list[str], int]:
    """Answers and statuses for a loaded Dataset, in its order, and the number of tokens generated."""
    from tqdm.auto import tqdm

    if getattr(lm, "is_classifier", False):
        from ..models.head import not_a_generator

        raise not_a_generator(lm)
    prompts = encode_prompts(lm, dataset, reserve=1)
    texts: list[str | None] = [None] * len(prompts)
    status = [p.error for p in prompts]
    opts = dict(temperature=temperature, top_p=top_p, top_k=top_k, max_output_tokens=max_output_tokens,
                stop_sequences=list(stop_sequences))
    total_tokens = 0
    with tqdm(total=len(prompts), desc=desc, unit="row", disable=not progress, leave=False) as bar:
        bar.update(sum(1 for s in status if s))
        for batch in length_batches(prompts, batch_size):
            try:
                done = _generate_batch(lm, batch, **opts)
            except Exception:  # noqa: BLE001 - retried row by row below, each error kept with its row
                done = []
                for p in batch:
                    try:
                        done += _generate_batch(lm, [p], **opts)
                    except Exception as e:  # noqa: BLE001
                        done.append((None, f"{type(e).__name__}: {e}", 0))
            for p, (text, err, n) in zip(batch, done, strict=True):
                texts[p.index], status[p.index] = text, err
                total_tokens += n
            bar.update(len(batch))
    return texts, status, total_tokens


def _generate_batch(lm, batch: list[Prompt], *, temperature, top_p, top_k, max_output_tokens,
                    stop_sequences) -> list[tuple[str, str, int]]:
    import torch
    from transformers import GenerationConfig

    tok = lm.tokenizer
    input_ids, mask, _ = left_padded([p.ids for p in batch], tok.pad_token_id, lm.device)
    room = lm.context_length - input_ids.shape[1]
    eos = lm.eos_token_ids
    sample = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max(1, min(max_output_tokens, room)), do_sample=sample,
        temperature=temperature if sample else None, top_p=top_p if sample else None,
        top_k=top_k if sample else None, eos_token_id=eos, pad_token_id=tok.pad_token_id,
        bos_token_id=getattr(lm.model.generation_config, "bos_token_id", None),
        stop_strings=list(stop_sequences) or None)
    extra = {"tokenizer": tok} if stop_sequences else {}
    with torch.inference_mode():
        out = lm.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config, **extra)
    results = []
    for row in out[:, input_ids.shape[1]:].tolist():
        n = next((i for i, t in enumerate(row) if t in eos), len(row))
        text = tok.decode(row[:n], skip_special_tokens=True)
        results.append((cut_at_stop(text, stop_sequences).strip(), "", n + (n < len(row))))
    return results


@checked(GenerateArgs, generate_rules)
def generate_text(model: Any, data: Any, prompt_template: str | None = None, temperature: float = 0.0,
                  top_p: float | None = None, top_k: int | None = None, max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
                  stop_sequences: Sequence[str] | str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                  progress: bool = True):
    """Generate an answer for every row of `data` with `model`.

    model: a LoadedModel or anything ``jt.load_model`` takes (base model, tuning job or id, adapter folder).
    data: a dataset (path, list of dicts, DataFrame) in any supported format; the prompt is its
      input_text / prompt / last user turn, or `prompt_template` filled with the row's fields (None: the
      template the model was tuned with, if any).
    temperature: 0 decodes greedily; above 0 samples (with top_p / top_k when given).
    stop_sequences: the answer is cut before the first of these.
    Returns a pandas DataFrame: the rows' text fields plus ``ml_generate_text_llm_result`` and
    ``ml_generate_text_status`` ("" when the row succeeded, else its error).
    A classification-head model (a task="classification" job) raises ClassifierError (a ValueError): it
    ranks labels (jt.evaluate, the Test tab) and cannot generate.
    """
    import pandas as pd

    from ..models.loading import load_model

    stops = _check_options(temperature, top_p, top_k, max_output_tokens, stop_sequences, batch_size)
    lm = load_model(model)
    if lm.is_classifier:  # before the data is read: the answer does not depend on it
        from ..models.head import not_a_generator

        raise not_a_generator(lm)
    dataset = load_rows(lm, data, prompt_template, require_answer=False, what="data")
    texts, status, _ = generate_for(lm, dataset, temperature=temperature, top_p=top_p, top_k=top_k,
                                    max_output_tokens=max_output_tokens, stop_sequences=stops,
                                    batch_size=batch_size, progress=progress)
    df = pd.DataFrame([row_fields(ex) for ex in dataset.examples])
    df[RESULT_COLUMN] = texts
    df[STATUS_COLUMN] = status
    return df
