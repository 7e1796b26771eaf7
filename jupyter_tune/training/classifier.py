"""``task="classification"``: a label head trained through the one pipeline (build.py, TuningTrainer, the
worker's checkpoints, selection, cancel and resume), H2O LLM Studio's causal classification.

- The model is the family's ``...ForSequenceClassification`` (models/head.py): the causal LM's body and a
  ``score`` layer of one row per label, read at the prompt's last token. LoRA goes on the body as for
  generation; peft's ``task_type="SEQ_CLS"`` trains and saves the head whole (``modules_to_save``);
  method="full" trains every weight, the head included.
- The labels are the sorted set of the training answers (job.json ``tuning.labels``, the saved config's
  ``id2label``). The input is the prompt generation would train on (template, chat template), without the
  answer, cut to max_seq_length as training cuts prompts.
- The loss is the head's cross-entropy, summed over rows and divided by the optimizer step's rows (as the
  generative loss is over answer tokens), each row weighted by its label's balanced weight
  rows / (labels x rows of that label) with ``class_weights=True``. With equal weights it is exactly
  ``AutoModelForSequenceClassification``'s own ``model(input_ids, labels=...)`` loss (tests/training/test_classifier.py).
- Rows are packed (padding_free) or padded as for generation; the head's logits are read at each example's
  last token (evaluation/head.head_logits), so packed attention stays on. There is no vocabulary output
  layer: answer_only_logits is off (fastpath.plan_logits says why).
- Evaluation: the eval loss is the head's cross-entropy; eval_macro_f1 / eval_accuracy come from the same
  forward pass's logits (no label scoring), so select_best and early stopping work on them unchanged.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..data.tokenize import IGNORE_INDEX, Encoded
from ..evaluation.head import head_logits, metrics_from_pairs, prompt_ids
from ..models.arch import pad_id
from .trainer import VARLEN_KEYS, TuningTrainer


@dataclass
class HeadEncoded(Encoded):
    """A row's prompt ids and its class: ``label`` the head's class id (IGNORE_INDEX for a validation label
    the head does not have: no loss, always wrong), ``truth`` its answer's index in the task metric's labels."""

    label: int = IGNORE_INDEX
    truth: int = 0


def balanced_weights(answers: list[str], labels: list[str]) -> list[float]:
    """scikit-learn's "balanced" class weights: rows / (labels x rows with that label)."""
    counts = Counter(answers)
    return [len(answers) / (len(labels) * counts[lab]) for lab in labels]


@dataclass
class ClassificationPlan:
    """What a classification job trains on: its labels, weights and padding token, and the pieces build.py
    puts in place of the generative ones."""

    labels: list[str]                    # the head's classes (sorted training answers)
    metric_labels: list[str]             # those and the validation-only answers (the task metric's labels)
    pad_token_id: int
    weights: list[float] | None = None   # class_weights=True: balanced weights per class

    @property
    def head(self) -> tuple[list[str], int]:
        """load_for_training's ``head``."""
        return self.labels, self.pad_token_id

    def encode(self, tokenizer, dataset, max_seq_length: int) -> tuple[list[HeadEncoded], list[dict]]:
        """Each row's prompt ids and class, in data/stats' Encoded form (no answer tokens: nothing dropped)."""
        ids = {lab: i for i, lab in enumerate(self.labels)}
        where = {lab: i for i, lab in enumerate(self.metric_labels)}
        out = []
        for ex, (prompt, original) in zip(dataset.examples, prompt_ids(tokenizer, dataset.examples, max_seq_length),
                                          strict=True):
            out.append(HeadEncoded(prompt, [IGNORE_INDEX] * len(prompt), len(prompt), 0, original > len(prompt),
                                   original, ids.get(ex.answer, IGNORE_INDEX), where.get(ex.answer, 0)))
        return out, []

    @staticmethod
    def rows(encoded: list[HeadEncoded]) -> list[dict[str, Any]]:
        return [{"input_ids": e.input_ids, "label": e.label, "truth": e.truth} for e in encoded]

    def collator(self, params) -> HeadCollator:
        return HeadCollator(self.pad_token_id, packed=params.padding_free)

    def task_metric(self, params, val_encoded: list[HeadEncoded]) -> HeadTaskMetric | None:
        if not val_encoded or params.eval_task_metric is False:
            return None
        return HeadTaskMetric(val_encoded, self.metric_labels, self.labels)

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"class_weights": self.weights}

    def info(self) -> dict[str, Any]:
        """job.json's ``tuning`` additions."""
        return {"task": "classification", "labels": list(self.labels), "num_labels": len(self.labels),
                "class_weights": dict(zip(self.labels, self.weights, strict=True)) if self.weights else None}


def plan_classification(params, train, val, tokenizer) -> ClassificationPlan:
    """The label set of the training rows (at least two labels), weights and padding token."""
    answers = [ex.answer for ex in train.examples if ex.answer is not None]
    labels = sorted(set(answers))
    if len(labels) < 2:
        raise ValueError(f"task='classification' needs at least two labels in the training data (each row's "
                         f"answer is its label); found {len(labels)}: {labels[:1]}.")
    val_answers = {ex.answer for ex in (val.examples if val is not None else []) if ex.answer is not None}
    pad = pad_id(tokenizer)
    return ClassificationPlan(labels, sorted(set(labels) | val_answers), int(pad),
                              balanced_weights(answers, labels) if params.class_weights else None)


class HeadCollator:
    """Rows packed into one (position_ids restarting per example, the varlen kwargs; packed=True) or right
    padded with an attention mask, each example's last token marked (``last_index``, flat positions)."""

    def __init__(self, pad_token_id: int, packed: bool = True):
        self.pad, self.packed = pad_token_id, packed

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        lengths = [len(f["input_ids"]) for f in features]
        if self.packed:
            ids, pos = [], []
            for f in features:
                ids += f["input_ids"]
                pos += range(len(f["input_ids"]))
            cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
            batch: dict[str, Any] = {"input_ids": torch.tensor([ids]), "position_ids": torch.tensor([pos]),
                                     "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(lengths),
                                     "max_length_k": max(lengths)}
            last = cu[1:].long() - 1
        else:
            width = max(lengths)
            ids = torch.full((len(features), width), self.pad, dtype=torch.long)
            mask = torch.zeros((len(features), width), dtype=torch.long)
            for i, f in enumerate(features):
                ids[i, : lengths[i]] = torch.tensor(f["input_ids"])
                mask[i, : lengths[i]] = 1
            batch = {"input_ids": ids, "attention_mask": mask}
            last = torch.tensor([i * width + n - 1 for i, n in enumerate(lengths)])
        labels = torch.tensor([f["label"] for f in features])
        # shift_labels: Trainer counts the optimizer step's items from it as given (one per row)
        batch.update(last_index=last, labels=labels, shift_labels=labels,
                     truth=torch.tensor([f["truth"] for f in features]), num_tokens=torch.tensor(sum(lengths)))
        return batch


@dataclass
class HeadTaskMetric:
    """eval_macro_f1 / eval_accuracy from the evaluation pass's own logits: ClassifierTrainer records each
    validation row's (answer, prediction) as it computes the eval loss; TuningTrainer.evaluation_loop calls
    this at the end (every rank's pairs gathered)."""

    examples: list                 # the validation rows evaluated (info: their count)
    labels: list[str]              # the metric's labels: the head's and the validation-only answers
    head_labels: list[str]
    pairs: list[tuple[int, int]] = field(default_factory=list)

    def add(self, truth, predicted) -> None:
        self.pairs += zip(truth.tolist(), predicted.tolist(), strict=True)

    def __call__(self, model) -> dict[str, float]:
        t = time.perf_counter()
        pairs, self.pairs = self.pairs, []
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, pairs)
            pairs = [p for part in gathered for p in part]
        out = metrics_from_pairs([self.labels[t] for t, _ in pairs], [self.head_labels[p] for _, p in pairs],
                                 self.labels)
        return {**out, "task_metric_seconds": time.perf_counter() - t}


class ClassifierTrainer(TuningTrainer):
    """TuningTrainer with the head's cross-entropy in place of the answer tokens' (``summed_loss``); the
    normalisation, counts, checkpoints and master weights are TuningTrainer's."""

    def __init__(self, *args, class_weights: list[float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None

    def evaluation_loop(self, *args, **kwargs):
        if isinstance(self.task_metric, HeadTaskMetric):
            self.task_metric.pairs = []  # a cancelled evaluation's rows must not count in the next one
        return super().evaluation_loop(*args, **kwargs)

    def summed_loss(self, model, inputs):
        last = inputs.pop("last_index")
        targets = inputs.pop("labels")
        truth = inputs.pop("truth")
        inputs.pop("shift_labels", None)
        num_tokens = int(inputs.pop("num_tokens"))
        if not self.packed_attention:
            for k in VARLEN_KEYS:
                inputs.pop(k, None)
        logits = head_logits(model, last_index=last, use_cache=False, **inputs).float()
        if not model.training and isinstance(self.task_metric, HeadTaskMetric):
            self.task_metric.add(truth, logits.detach().argmax(-1))
        known = targets != IGNORE_INDEX
        logits, targets = logits[known], targets[known]
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        return F.cross_entropy(logits, targets, weight=weight, reduction="sum"), logits, targets, num_tokens


def save_head_config(model, folder) -> None:
    """config.json beside a classifier's adapter (its labels in id2label); nothing for a causal LM."""
    from pathlib import Path

    from ..models.head import head_layer
    from .methods import clean_saved_config

    if not hasattr(model, "get_base_model") or head_layer(model) is None:
        return
    import copy

    inner = model.get_base_model()
    config = copy.deepcopy(inner.config)
    config.architectures = [type(inner).__name__]  # what the classifier is (the base's config names the LM)
    config.save_pretrained(str(folder))
    clean_saved_config(Path(folder) / "config.json")
