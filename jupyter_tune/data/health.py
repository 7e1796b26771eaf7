"""Dataset health before anything trains: duplicate and near-duplicate inputs, the same input under
different labels (conflicts), training rows leaking into the validation set, and the label distribution.

Each finding names the file, the lines and what to do. Leakage and conflicts are warnings (``jt.tune``
still starts unless ``data_checks="error"``); the rest is information. Nothing here changes the data.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..params.arguments import CheckDatasetArgs
from ..params.gate import checked
from .errors import DatasetError, Problem, plural
from .formats import Example
from .loader import Dataset
from .near import THRESHOLD, group_texts

KINDS = ("overlap", "conflict", "duplicate", "near_duplicate", "label_imbalance", "label_one_split")
WARNING_KINDS = ("overlap", "conflict")   # leakage and conflicting labels
MAX_FINDINGS = 100       # listed per kind; `counts` has them all
MAX_LABELS = 100         # more distinct outputs than this (or than half the rows): not a classification task
IMBALANCE = 10.0         # most / least frequent training label at or above which it is reported
_SHOWN = 8               # lines named in one message


@dataclass
class Finding:
    kind: str                       # one of KINDS
    severity: str                   # "warning" or "info"
    split: str                      # "train", "validation" or "train/validation"
    lines: dict[str, list[int]]     # split -> 1-based line (or row / item) numbers in that split's source
    labels: list[str]               # the outputs involved (conflicts, leaks) or the labels concerned
    message: str                    # where, what, and what to do
    match: str | None = None        # "exact" or "near" for duplicate kinds
    similarity: float | None = None  # lowest estimated Jaccard similarity of word triples in a near group

    def __str__(self) -> str:
        return self.message


@dataclass
class HealthReport:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)   # findings per kind, before the MAX_FINDINGS cut
    rows: dict[str, int] = field(default_factory=dict)     # examples checked per split
    labels: dict[str, Any] | None = None                   # label distribution (classification-like data)
    sources: dict[str, str] = field(default_factory=dict)  # split -> file path, "<DataFrame>" or "<list>"
    units: dict[str, str] = field(default_factory=dict)    # split -> "line", "row", "item" or "index"
    threshold: float = THRESHOLD
    seconds: float = 0.0

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def warning_count(self) -> int:
        return sum(self.counts.get(k, 0) for k in WARNING_KINDS)

    def __str__(self) -> str:
        if not self.findings:
            return f"No duplicates, conflicts or leakage in {', '.join(f'{n} {s} rows' for s, n in self.rows.items())}."
        head = ", ".join(f"{n} {k}" for k, n in self.counts.items())
        return head + "\n" + "\n".join(f"[{f.severity}] {f.message}" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HealthReport:
        return cls(**{**data, "findings": [Finding(**f) for f in data.get("findings", [])]})

    def summary(self) -> list[str]:
        """One line per warning kind (for jt.tune's warnings), naming the first findings."""
        out = []
        for kind in WARNING_KINDS:
            listed = [f for f in self.findings if f.kind == kind]
            if not listed:
                continue
            n = self.counts.get(kind, len(listed))
            what = (f"group{'s' * (n != 1)} of training and validation examples share an input (leakage)"
                    if kind == "overlap" else f"input{'s' * (n != 1)} under different labels (conflicts)")
            shown = " | ".join(f.message for f in listed[:3])
            more = f" | ... {n - 3} more in job.dataset_stats['health']" if n > 3 else ""
            out.append(f"{n} {what}: {shown}{more}")
        return out

    def problems(self, severity: str = "error") -> list[Problem]:
        """The warning findings as dataset Problems (file, first line), for a refusal (data_checks="error")."""
        out = []
        for f in self.warnings:
            split = "validation" if f.lines.get("validation") else "train"
            line = (f.lines.get(split) or [None])[0]
            out.append(Problem(self.sources.get(split, split), line, None, f.message, severity=severity,
                               unit=self.units.get(split, "line")))
        return out


def input_text(ex: Example) -> str:
    """The input a duplicate is judged by: the row's own input field (before any prompt template), and
    the earlier turns of a conversation; system prompts, shared by every row, are left out."""
    turns = [m["content"] for m in ex.prompt_messages if m["role"] != "system"]
    raw = ex.fields.get("input_text") if ex.format != "prompt" else ex.fields.get("prompt")
    if isinstance(raw, str) and turns:
        turns[-1] = raw
    return "\n".join(turns)


def _where(ds: Dataset, lines: list[int], split: str) -> str:
    shown = ", ".join(map(str, lines[:_SHOWN])) + (f" and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else "")
    name = "training" if split == "train" else split
    # a jt.split part's source already says which part it is ("x.jsonl (validation part of jt.split)")
    side = "" if ds.source.endswith(f"({name} part of jt.split)") else f"{name} "
    return f"{side}{ds.source} {plural(ds.unit, len(lines))} {shown}"


def _labels_text(labels: list[str]) -> str:
    return " vs ".join(repr(x if len(x) <= 40 else x[:40] + "...") for x in labels)


class _Builder:
    def __init__(self):
        self.findings: list[Finding] = []
        self.counts: Counter[str] = Counter()

    def add(self, f: Finding) -> None:
        self.counts[f.kind] += 1
        if self.counts[f.kind] <= MAX_FINDINGS:
            self.findings.append(f)


def _is_classification(outputs: list[str | None]) -> bool:
    distinct = {o for o in outputs if o is not None}
    return bool(distinct) and len(distinct) <= min(MAX_LABELS, max(2, len(outputs) // 2))


def check_health(train: Dataset, validation: Dataset | None = None, threshold: float = THRESHOLD,
                 near: bool = True) -> HealthReport:
    """Check a loaded training (and validation) dataset; returns a HealthReport, changes nothing."""
    t0 = time.perf_counter()
    splits = [("train", train)] + ([("validation", validation)] if validation is not None else [])
    preference = bool(train.examples) and train.examples[0].is_preference
    rows = [(name, ds, ex) for name, ds in splits for ex in ds.examples]
    groups = group_texts([input_text(ex) for _, _, ex in rows], threshold, near=near)
    outputs = [None if preference else (ex.answer or "").strip() or None for _, _, ex in rows]
    b = _Builder()
    # the lowest similarity of the near pairs in each group
    group_of_distinct = np.zeros(int(groups.exact.max()) + 1 if len(rows) else 0, dtype=np.int64)
    group_of_distinct[groups.exact] = groups.group
    lowest: dict[int, float] = {}
    for (a, _), s in groups.similarity.items():
        g = int(group_of_distinct[a])
        lowest[g] = min(s, lowest.get(g, 1.0))
    order = np.argsort(groups.group, kind="stable")
    bounds = np.flatnonzero(np.diff(groups.group[order])) + 1
    for members in np.split(order, bounds):
        if len(members) < 2:
            continue
        match = "exact" if len({int(groups.exact[m]) for m in members}) == 1 else "near"
        sim = round(lowest[int(groups.group[members[0]])], 3) if match == "near" else None
        by_split = {name: [m for m in members if rows[m][0] == name] for name, _ in splits}
        _group_findings(b, splits, rows, outputs, by_split, match, sim)
    labels = None if preference else _label_distribution(b, splits, rows, outputs)
    report = HealthReport(b.findings, dict(b.counts), {name: len(ds) for name, ds in splits}, labels,
                          {name: ds.source for name, ds in splits}, {name: ds.unit for name, ds in splits},
                          threshold)
    report.findings.sort(key=lambda f: (KINDS.index(f.kind), min(min(v) for v in f.lines.values() if v)
                                        if any(f.lines.values()) else 0))
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def _group_findings(b: _Builder, splits, rows, outputs, by_split: dict[str, list[int]], match: str,
                    sim: float | None) -> None:
    ds_of = dict(splits)
    how = "the same input" if match == "exact" else f"nearly the same input (>= {sim or THRESHOLD:.0%} of word triples shared)"
    lines = {name: sorted(rows[m][2].line for m in ms) for name, ms in by_split.items() if ms}
    if len(lines) == 2:  # leakage: a validation example's input is in the training set
        tl = sorted({o for m in by_split["train"] if (o := outputs[m]) is not None})
        vl = sorted({o for m in by_split["validation"] if (o := outputs[m]) is not None})
        labels = sorted(set(tl) | set(vl))
        under = ""
        if tl and vl and set(tl) != set(vl):
            under = f" under different labels ({_labels_text(tl)} in training, {_labels_text(vl)} in validation)"
        b.add(Finding("overlap", "warning", "train/validation", lines, labels,
                      f"{_where(ds_of['validation'], lines['validation'], 'validation')} and {_where(ds_of['train'], lines['train'], 'train')}: "
                      f"{how}{under}. Validation scores on it measure memory, not skill: remove it from one side, "
                      f"or re-split with jt.split(..., group_duplicates=True).", match, sim))
    for name, ms in by_split.items():
        if len(ms) < 2:
            continue
        ds = ds_of[name]
        labels = sorted({o for m in ms if (o := outputs[m]) is not None})
        if len(labels) > 1:
            b.add(Finding("conflict", "warning", name, {name: lines[name]}, labels,
                          f"{_where(ds, lines[name], name)}: {how} labelled {_labels_text(labels)}. The model is taught "
                          "contradicting answers: keep one label per input (fix or remove the others), or drop them "
                          "with jt.split(..., conflicts='drop').", match, sim))
        else:
            kind = "duplicate" if match == "exact" else "near_duplicate"
            b.add(Finding(kind, "info", name, {name: lines[name]}, labels,
                          f"{_where(ds, lines[name], name)}: {how} {len(ms)} times. Repeats weigh more in training; "
                          "remove the extra copies unless that is meant.", match, sim))


def _label_distribution(b: _Builder, splits, rows, outputs) -> dict[str, Any] | None:
    per_split = {name: Counter(o for (n, _, _), o in zip(rows, outputs) if n == name and o is not None)
                 for name, _ in splits}
    train = per_split["train"]
    if not _is_classification([o for (n, _, _), o in zip(rows, outputs) if n == "train"]):
        return None
    ds_of = dict(splits)
    out: dict[str, Any] = {name: dict(c.most_common()) for name, c in per_split.items()}
    most, least = train.most_common()[0], train.most_common()[-1]
    out["imbalance_ratio"] = round(most[1] / least[1], 2)
    if out["imbalance_ratio"] >= IMBALANCE:
        b.add(Finding("label_imbalance", "info", "train", {}, [most[0], least[0]],
                      f"{ds_of['train'].source}: label {most[0]!r} has {most[1]} examples, {least[0]!r} only "
                      f"{least[1]} ({out['imbalance_ratio']:g}x). Rare labels are learned poorly: add examples of "
                      "them, or weigh the metrics per label (macro F1)."))
    if "validation" in per_split:
        val = per_split["validation"]
        only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
        out["only_in_train"], out["only_in_validation"] = only_train, only_val
        if only_val:
            lines = sorted(ex.line for (n, _, ex), o in zip(rows, outputs) if n == "validation" and o in only_val)
            b.add(Finding("label_one_split", "info", "validation", {"validation": lines}, only_val,
                          f"{_where(ds_of['validation'], lines, 'validation')}: label{'s' * (len(only_val) > 1)} "
                          f"{_labels_text(only_val)} never appear in the training set, so the model is never taught "
                          "them. Add training examples, or split with jt.split(..., stratify=True)."))
        if only_train:
            b.add(Finding("label_one_split", "info", "train", {}, only_train,
                          f"{ds_of['validation'].source}: label{'s' * (len(only_train) > 1)} "
                          f"{_labels_text(only_train)} of the training set never appear in the validation set, so "
                          "nothing measures them. Split with jt.split(..., stratify=True)."))
    return out


@checked(CheckDatasetArgs)
def check_dataset(train_dataset: Any, validation_dataset: Any = None, prompt_template: str | None = None,
                  min_examples: int = 1) -> HealthReport:
    """``jt.check_dataset``: read and validate the datasets as ``jt.tune`` does (a bad file raises the same
    DatasetError, naming file, line and field), then check their health. Changes nothing; no model needed."""
    from .loader import validate_dataset

    train, val = validate_dataset(train_dataset, validation_dataset, prompt_template, min_examples)
    return check_health(train, val)


def check_before_job(train: Dataset, validation: Dataset | None, data_checks: str) -> HealthReport | None:
    """jt.tune's check: None when data_checks="off"; with "error", leakage or conflicts raise a DatasetError
    (file, line, what to do) before any job exists; with "warn" the report is returned for the job's
    warnings."""
    if data_checks == "off":
        return None
    report = check_health(train, validation)
    if data_checks == "error" and report.warning_count:
        raise DatasetError(report.problems(), "dataset (data_checks='error'; 'warn' tunes anyway)")
    return report


def shared_inputs(seen: Dataset, rows: Dataset, threshold: float = THRESHOLD) -> list[int]:
    """The lines (or indices) of `rows` whose input is the same as, or a near-duplicate of, one of `seen`'s
    (the grouping check_health uses): rows a score on which would overstate a model that trained or chose on
    `seen`."""
    mine = [input_text(ex) for ex in rows.examples]
    group = group_texts(mine + [input_text(ex) for ex in seen.examples], threshold).group
    theirs = set(group[len(mine):].tolist())
    return [rows.examples[i].line for i in range(len(mine)) if int(group[i]) in theirs]
