"""``jt.split``: a leak-free training/validation split of one dataset. Exact and near-duplicate inputs
(data/near.py) form groups that never straddle the split; labels are stratified (scikit-learn's
StratifiedGroupKFold); rows whose input appears under different labels are reported, dropped or merged.
Files are written only where told (``out_dir``), through the write guard."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..params.arguments import SplitArgs, split_rules
from ..params.gate import checked
from .health import input_text
from .loader import load_dataset
from .near import THRESHOLD, group_texts
from .readers import read_rows


@dataclass
class SplitResult:
    """The two parts (pandas DataFrames of the original rows) and what was done; unpacks as
    ``train, validation = jt.split(...)``."""
    train: Any
    validation: Any
    report: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)   # "train" / "validation" -> written file

    def __iter__(self):
        return iter((self.train, self.validation))

    def __repr__(self) -> str:
        r = self.report
        return (f"SplitResult({r.get('train_rows')} training rows, {r.get('validation_rows')} validation rows, "
                f"{r.get('groups')} input groups, {len(r.get('conflicts', []))} conflicts "
                f"{r.get('conflicts_action')}, overlap {r.get('overlap')}"
                + (f", written to {', '.join(self.paths.values())}" if self.paths else "") + ")")


@checked(SplitArgs, split_rules)
def split(data: Any, test_size: float = 0.2, *, stratify: bool = True, group_duplicates: bool = True,
          seed: int = 0, conflicts: str = "report", prompt_template: str | None = None,
          out_dir: str | os.PathLike | None = None, overwrite: bool = False,
          threshold: float = THRESHOLD) -> SplitResult:
    """Split `data` (path, list of dicts or DataFrame) into training and validation rows.

    - group_duplicates: rows with the same or nearly the same input (Jaccard >= `threshold` on word
      triples) go to the same side, so the validation set never holds a training input.
    - stratify: each label keeps about the same share on both sides (classification-like data).
    - conflicts: rows of one input group under different labels are "report"-ed (kept), "drop"-ped, or
      "merge"-d into one row with the most frequent label.
    - out_dir: write ``train.jsonl`` and ``validation.jsonl`` there (refused inside the job store; existing
      files only with overwrite=True). Without it nothing is written.
    A bad dataset raises the same DatasetError as ``jt.tune`` (file, line, field).
    """
    import pandas as pd

    ds = load_dataset(data, prompt_template, min_examples=2, what="dataset")
    raw = dict(read_rows(data).rows)  # line -> the row as given, written back unchanged
    examples = ds.examples
    labels = [(ex.answer or "").strip() for ex in examples]
    same = group_texts([input_text(ex) for ex in examples], threshold, near=group_duplicates).group
    groups = same if group_duplicates else np.arange(len(examples))

    keep = np.ones(len(examples), bool)
    conflict_list = []
    order = np.argsort(same, kind="stable")
    for members in np.split(order, np.flatnonzero(np.diff(same[order])) + 1):
        found = Counter(labels[m] for m in members)
        if len(found) < 2:
            continue
        conflict_list.append({"lines": [examples[m].line for m in members], "labels": sorted(found)})
        if conflicts == "drop":
            keep[members] = False
        elif conflicts == "merge":  # one row, with the label most of the group carries
            top = found.most_common(1)[0][0]
            chosen = next(m for m in members if labels[m] == top)
            keep[members] = False
            keep[chosen] = True
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        raise ValueError(f"{ds.source}: {len(idx)} rows left after conflicts={conflicts!r}; nothing to split.")
    y = np.array([labels[i] for i in idx], dtype=object)
    g = np.asarray(groups)[idx]
    val_pos, how = _assign(y, g, test_size, stratify, seed)
    is_val = np.zeros(len(idx), bool)
    is_val[val_pos] = True
    train_rows = [raw[examples[i].line] for i in idx[~is_val]]
    val_rows = [raw[examples[i].line] for i in idx[is_val]]
    overlap = len(set(g[is_val]) & set(g[~is_val]))
    assert overlap == 0 or not group_duplicates, "a group straddles the split"
    report = {
        "source": ds.source, "rows": len(examples), "train_rows": len(train_rows), "validation_rows": len(val_rows),
        "validation_share": round(len(val_rows) / len(idx), 4), "method": how, "seed": seed,
        "groups": int(len(np.unique(groups))), "grouped_rows": int(len(examples) - len(np.unique(groups))),
        "overlap": overlap, "conflicts": conflict_list, "conflicts_action": conflicts,
        "dropped_rows": int(len(examples) - len(idx)),
        "labels": {"train": dict(Counter(y[~is_val]).most_common()),
                   "validation": dict(Counter(y[is_val]).most_common())} if how.startswith("stratified") else None,
    }
    result = SplitResult(pd.DataFrame(train_rows), pd.DataFrame(val_rows), report)
    if out_dir is not None:
        result.paths = _write(out_dir, {"train": train_rows, "validation": val_rows}, overwrite)
    return result


def _assign(y: np.ndarray, groups: np.ndarray, test_size: float, stratify: bool,
            seed: int) -> tuple[np.ndarray, str]:
    """Positions of the validation rows, and how they were chosen."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_labels = len(set(y))
    n_splits = max(2, round(1 / test_size))
    # StratifiedGroupKFold refuses n_splits above the largest label's count (a 10 % share of 24 rows in 4
    # labels): such data falls back to the grouped shuffle below.
    if stratify and 1 < n_labels <= max(2, len(y) // 2) and max(Counter(y.tolist()).values()) >= n_splits:
        with warnings.catch_warnings():  # "the least populated class has only 1 member": still the best split
            warnings.simplefilter("ignore", UserWarning)
            folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            _, val = next(folds.split(np.zeros(len(y)), y, groups))
        return val, f"stratified by label, grouped ({n_splits} folds, first held out)"
    gss = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    _, val = next(gss.split(np.zeros(len(y)), y, groups))
    why = "" if not stratify else " (labels too many or too few to stratify)"
    return val, f"grouped shuffle{why}"


def _write(out_dir: str | os.PathLike, parts: dict[str, list], overwrite: bool) -> dict[str, str]:
    from ..jobs.guard import check_destination, write_file

    paths = {name: os.path.join(os.fspath(out_dir), f"{name}.jsonl") for name in parts}
    for p in paths.values():  # both refused before either is written
        check_destination(p, kind="file", overwrite=overwrite)
    written: list[str] = []
    try:
        for name, rows in parts.items():
            text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            existed = os.path.exists(paths[name])
            paths[name] = str(write_file(paths[name], text, overwrite=overwrite, what=f"{name} split"))
            if not existed:
                written.append(paths[name])
    except BaseException:  # all or nothing: a failed second file takes the new first one with it
        for path in written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return paths
