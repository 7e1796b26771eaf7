"""Dataset statistics in the shape of Vertex ``SupervisedTuningDataStats`` (snake_case), counted with the
model's own tokenizer, before a job starts and saved as ``dataset_stats.json`` in the job."""

from __future__ import annotations

import math
from typing import Any

from .formats import Example
from .loader import Dataset
from .tokenize import Encoded, encode_example, encode_prompt

_SAMPLES = 5
_BUCKETS = 10


def distribution(values: list[int]) -> dict[str, Any]:
    import numpy as np

    if not values:
        return {"sum": 0, "min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p5": 0.0, "p95": 0.0, "buckets": []}
    a = np.asarray(values, dtype=float)
    counts, edges = np.histogram(a, bins=min(_BUCKETS, max(1, len(set(values)))))
    return {
        "sum": int(a.sum()), "min": int(a.min()), "max": int(a.max()), "mean": float(a.mean()),
        "median": float(np.median(a)), "p5": float(np.percentile(a, 5)), "p95": float(np.percentile(a, 95)),
        "buckets": [{"count": int(c), "left": float(lo), "right": float(hi)}
                    for c, lo, hi in zip(counts, edges[:-1], edges[1:])],
    }


def _segments(tokenizer, enc: Encoded) -> list[dict[str, Any]]:
    """The example as the model sees it, split into trained and untrained runs of text."""
    segs: list[dict[str, Any]] = []
    run: list[int] = []
    trained = None
    for tid, lab in zip(enc.input_ids, enc.labels):
        t = lab != -100
        if trained is not None and t != trained:
            segs.append({"text": tokenizer.decode(run), "trained": trained})
            run = []
        run.append(tid)
        trained = t
    if run:
        segs.append({"text": tokenizer.decode(run), "trained": bool(trained)})
    return segs


def encode_dataset(tokenizer, dataset: Dataset, max_seq_length: int) -> tuple[list[Encoded], list[dict]]:
    """Encode every example; those left with nothing to train on are dropped, with the reason."""
    kept, dropped = [], []
    for ex in dataset.examples:
        enc = encode_example(tokenizer, ex, max_seq_length)
        if enc.num_output_tokens == 0:
            dropped.append({"index": ex.index, "line": ex.line,
                            "reason": "no answer tokens left after truncation to max_seq_length"
                            if enc.truncated else "no answer tokens"})
            continue
        kept.append(enc)
    return kept, dropped


def split_stats(tokenizer, dataset: Dataset, max_seq_length: int, epochs: int, batch_size: int,
                encoded: list[Encoded] | None = None, dropped: list[dict] | None = None) -> dict[str, Any]:
    if encoded is None:
        encoded, dropped = encode_dataset(tokenizer, dataset, max_seq_length)
    dropped = dropped or []
    examples: list[Example] = dataset.examples
    dropped_indices = {d["index"] for d in dropped}
    kept_examples = [e for e in examples if e.index not in dropped_indices]
    truncated = [ex.index for ex, enc in zip(kept_examples, encoded) if enc.truncated]
    tokens = sum(len(e.input_ids) for e in encoded)
    return {
        "source": dataset.source,
        "unit": dataset.unit,  # how each example's "line" counts in the source
        "tuning_dataset_example_count": len(encoded),
        "total_tuning_character_count": sum(len(m["content"]) for e in kept_examples for m in e.messages),
        "total_token_count": tokens,
        "total_billable_token_count": tokens * epochs,
        "tuning_step_count": math.ceil(len(encoded) / batch_size) * epochs,
        "user_input_token_distribution": distribution([e.num_input_tokens for e in encoded]),
        "user_output_token_distribution": distribution([e.num_output_tokens for e in encoded]),
        "user_message_per_example_distribution": distribution(
            [sum(1 for m in e.messages if m["role"] == "user") for e in kept_examples]),
        "truncated_example_count": len(truncated),
        "truncated_example_indices": truncated,
        "dropped_example_count": len(dropped),
        "dropped_examples": dropped,
        "warnings": [str(w) for w in dataset.warnings],
        "user_dataset_examples": [
            {"index": ex.index, "line": ex.line, "segments": _segments(tokenizer, enc)}
            for ex, enc in list(zip(kept_examples, encoded))[:_SAMPLES]
        ],
    }


def dataset_stats(train_dataset: Any, validation_dataset: Any = None, base_model: str | None = None,
                  params=None, tokenizer=None, **param_overrides: Any) -> dict[str, Any]:
    """Statistics for a dataset that has not been tuned on yet (the same that a job saves)."""
    from ..params import TuningParams, choose_epochs
    from .loader import validate_dataset

    if params is None:
        kw = dict(param_overrides)
        if base_model is not None:
            kw["base_model"] = base_model
        params = TuningParams(**kw)
    train, val = validate_dataset(train_dataset, validation_dataset, params.prompt_template,
                                  params.min_train_examples)
    if tokenizer is None:
        tokenizer = load_tokenizer(params.base_model)
    epochs = params.epochs or choose_epochs(len(train))
    stats = {
        "max_seq_length": params.max_seq_length,
        "epochs": epochs,
        "train": split_stats(tokenizer, train, params.max_seq_length, epochs, params.batch_size),
        "validation": split_stats(tokenizer, val, params.max_seq_length, 1, params.batch_size) if val else None,
    }
    if params.data_checks != "off":  # duplicates, conflicts, leakage, labels (data/health.py)
        from .health import check_health

        stats["health"] = check_health(train, val).to_json()
    return stats


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    from ..models.resolve import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(base_model))


def preference_stats(tokenizer, examples: list, max_seq_length: int) -> dict[str, Any]:
    """Token counts of the prompts, chosen and rejected answers (the Dataset tab shows them)."""
    prompt, chosen, rejected, truncated = [], [], [], 0
    for ex in examples:
        p = len(encode_prompt(tokenizer, ex.prompt_messages))
        sides = []
        for text in (ex.answer, ex.rejected):
            enc = encode_example(tokenizer, type(ex)(ex.prompt_messages + [{"role": "assistant", "content": text}]),
                                 10**9)
            sides.append(enc.num_output_tokens)
            truncated += enc.original_length > max_seq_length
        prompt.append(p)
        chosen.append(sides[0])
        rejected.append(sides[1])
    return {"prompt_token_distribution": distribution(prompt),
            "chosen_token_distribution": distribution(chosen),
            "rejected_token_distribution": distribution(rejected),
            "truncated_answer_count": truncated}
