"""A classification head's predictions (``task="classification"`` jobs): one forward pass per row, the
labels ranked by the head's softmax. Used by ``jt.evaluate``, the Test tab, the export's parity check and,
through ``head_logits``, by training itself (training/classifier.py), so every path reads the head alike.

The prompt is the one training built: the prompt template filled, the chat template applied, no answer,
cut to the job's max_seq_length the way training cuts it (data/tokenize.encode_prompt); the head is read at
the prompt's last token.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ..data.tokenize import encode_prompt
from ..models.arch import pad_id
from ..models.head import ClassifierError, head_outputs  # noqa: F401 (re-exported)

# Tokens per forward pass when ranking (rows x longest row).
_TOKEN_BUDGET = 8192


def head_logits(model, input_ids, last_index, **inputs):
    """The head's logits [examples, labels] at ``last_index`` (flat positions into the [rows x positions]
    batch): one forward through the model, packed or padded rows alike."""
    with head_outputs(model) as outs:
        model(input_ids=input_ids, **inputs)
    out = outs[-1]
    return out.reshape(-1, out.shape[-1])[last_index]


def prompt_ids(tokenizer, examples: Sequence, max_length: int) -> list[tuple[list[int], int]]:
    """Each example's prompt ids as training encodes them (cut to ``max_length`` as data/tokenize cuts an
    over-long prompt: its middle, keeping the end of the user's text and the answer marker) and its
    length before the cut."""
    out = []
    for ex in examples:
        full = encode_prompt(tokenizer, ex.prompt_messages)
        ids = full if len(full) <= max_length else encode_prompt(tokenizer, ex.prompt_messages, max_length)
        out.append((ids, len(full)))
    return out


def probabilities(model, pad_token_id: int, prompts: list[list[int]], batch_size: int = 16,
                  progress=None) -> list[list[float]]:
    """Softmax over the head's labels for each prompt, in order: right-padded batches of similar length,
    the model put in eval mode for the call (and back)."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[list[float] | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        i = 0
        while i < len(order):
            n = max(1, min(batch_size, _TOKEN_BUDGET // max(1, len(prompts[order[i]]))))
            rows = order[i: i + n]
            width = len(prompts[rows[0]])
            ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, k in enumerate(rows):
                ids[r, : len(prompts[k])] = torch.tensor(prompts[k], dtype=torch.long)
                mask[r, : len(prompts[k])] = 1
            last = torch.tensor([r * width + len(prompts[k]) - 1 for r, k in enumerate(rows)])
            with torch.inference_mode():
                logits = head_logits(model, ids.to(device), last.to(device), attention_mask=mask.to(device),
                                     use_cache=False)
            for k, p in zip(rows, logits.float().softmax(-1).tolist(), strict=True):
                out[k] = p
            if progress is not None:
                progress(len(rows))
            i += len(rows)
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def _max_length(lm) -> int:
    return lm.max_seq_length or lm.context_length


def classify(lm, dataset, labels: list[str] | None = None, batch_size: int = 16, progress: bool = True):
    """A head model's prediction for every row of a Dataset.

    labels: the candidates (None: every label of the head). Returns (predictions, {label: probability} per
    row (softmax over the candidates), status per row)."""
    from tqdm.auto import tqdm

    head = list(lm.head_labels)
    cand = [i for i, lab in enumerate(head) if labels is None or lab in labels]
    if not cand:
        raise ClassifierError(f"None of labels= is a label of the head ({', '.join(head[:10])}"
                              f"{', ...' if len(head) > 10 else ''}).")
    prompts = [ids for ids, _ in prompt_ids(lm.tokenizer, dataset.examples, _max_length(lm))]
    pad = pad_id(lm.tokenizer)
    with tqdm(total=len(prompts), desc="Classifying", unit="row", disable=not progress, leave=False) as bar:
        probs = probabilities(lm.model, pad, prompts, batch_size, bar.update)
    preds, scores = [], []
    for p in probs:
        sub = [p[i] for i in cand]
        total = sum(sub) or 1.0
        ranked = {head[i]: v / total for i, v in zip(cand, sub, strict=True)}
        scores.append(ranked)
        preds.append(max(ranked, key=ranked.__getitem__))
    return preds, scores, [""] * len(prompts)


def warn_unknown(lm, truth: Sequence[str]) -> list[str]:
    """Ground-truth labels the head was not trained on: warned about (they always count as wrong)."""
    unknown = sorted(set(truth) - set(lm.head_labels))
    if unknown:
        rows = sum(1 for t in truth if t in unknown)
        warnings.warn(f"{len(unknown)} label(s) of the evaluation data are not labels of {lm.name}'s head "
                      f"({', '.join(map(repr, unknown[:5]))}{', ...' if len(unknown) > 5 else ''}): their {rows} "
                      "row(s) count as wrong. The head knows only the labels of its training data.",
                      UserWarning, stacklevel=3)
    return unknown


def rank(lm, dataset) -> list[tuple[str, float]]:
    """The first row's labels by the head's probability, best first (the Test tab)."""
    _, scores, _ = classify(lm, dataset, progress=False)
    return sorted(scores[0].items(), key=lambda x: -x[1])


def metrics_from_pairs(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, Any]:
    """Macro F1 and accuracy as jt.evaluate computes them (evaluation/classification.py)."""
    from .classification import classification_metrics

    if not y_true:
        return {"macro_f1": 0.0, "accuracy": 0.0}
    m = classification_metrics(y_true, y_pred, labels)
    return {"macro_f1": float(m.loc["macro avg", "f1_score"]),
            "accuracy": sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)}
