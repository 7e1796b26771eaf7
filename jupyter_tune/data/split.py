"""``jt.split``: a leak-free training/validation split of one dataset. Exact and near-duplicate inputs
(data/near.py) form groups that never straddle the split; labels are stratified (each label holds out its
share of ``test_size`` in whole groups; the share is ``test_size`` within one row per label, or the split is
refused and says why); rows whose input appears under different labels are reported, dropped or merged.
Files are written only where told (``out_dir``), through the write guard."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..params import ParameterError
from ..params.arguments import SplitArgs, split_rules
from ..params.gate import checked
from .health import input_text
from .loader import load_dataset
from .near import THRESHOLD, group_texts
from .readers import ORIGIN, frame_origin, read_rows


@dataclass
class SplitResult:
    """The two parts (pandas DataFrames of the original rows) and what was done; unpacks as
    ``train, validation = jt.split(...)``. Each part's index is its rows' numbers in the source (a file's
    lines, a DataFrame's index labels) and ``attrs["jupyter_tune_source"]`` names the source, so that
    jt.tune, jt.check_dataset and their messages name the user's file and lines, not the part's rows."""
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
    - test_size: the validation share, met within one row per label (one row unstratified, where the
      rounding is scikit-learn's: ceil(test_size x rows)); a share that whole groups of duplicates cannot
      reach is refused (ParameterError, with the share they can reach), as is data that is all one group.
    - conflicts: rows of one input group under different labels are "report"-ed (kept), "drop"-ped, or
      "merge"-d into one row with the most frequent label.
    - out_dir: write ``train.jsonl`` and ``validation.jsonl`` there (refused inside the job store; existing
      files only with overwrite=True). Without it nothing is written.
    A bad dataset raises the same DatasetError as ``jt.tune`` (file, line, field).
    """
    import pandas as pd

    ds = load_dataset(data, prompt_template, min_examples=2, what="dataset")
    rows = read_rows(data)
    raw = dict(rows.rows)  # line -> the row as given, written back unchanged
    origin = frame_origin(data) if isinstance(data, pd.DataFrame) else None  # splitting a part: its own source
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
        raise ParameterError.listing([f"conflicts: {conflicts!r} leaves {len(idx)} of {len(examples)} rows of "
                                      f"{ds.source}; nothing to split (conflicts='report' keeps them)"],
                                     "arguments of jt.split")
    y = np.array([labels[i] for i in idx], dtype=object)
    g = np.asarray(groups)[idx]
    val_pos, how = _assign(y, g, test_size, stratify, seed)
    is_val = np.zeros(len(idx), bool)
    is_val[val_pos] = True
    train_lines = [examples[i].line for i in idx[~is_val]]
    val_lines = [examples[i].line for i in idx[is_val]]
    train_rows, val_rows = [raw[n] for n in train_lines], [raw[n] for n in val_lines]
    overlap = len(set(g[is_val]) & set(g[~is_val]))
    assert overlap == 0 or not group_duplicates, "a group straddles the split"
    report = {
        "source": ds.source, "rows": len(examples), "train_rows": len(train_rows), "validation_rows": len(val_rows),
        "validation_share": round(len(val_rows) / len(idx), 4), "test_size": test_size, "method": how, "seed": seed,
        "groups": int(len(np.unique(groups))), "grouped_rows": int(len(examples) - len(np.unique(groups))),
        "overlap": overlap, "conflicts": conflict_list, "conflicts_action": conflicts,
        "dropped_rows": int(len(examples) - len(idx)),
        "labels": {"train": dict(Counter(y[~is_val]).most_common()),
                   "validation": dict(Counter(y[is_val]).most_common())} if how.startswith("stratified") else None,
    }
    source = origin["source"] if origin else rows.source

    def part(name: str, part_rows: list, lines: list[int]):
        df = pd.DataFrame(part_rows, index=pd.Index(lines, dtype="int64"))
        df.attrs[ORIGIN] = {"source": source, "part": name, "unit": rows.unit, "lines": lines}
        return df

    result = SplitResult(part("training", train_rows, train_lines), part("validation", val_rows, val_lines), report)
    if out_dir is not None:
        result.paths = _write(out_dir, {"train": train_rows, "validation": val_rows}, overwrite)
    return result


def _assign(y: np.ndarray, groups: np.ndarray, test_size: float, stratify: bool,
            seed: int) -> tuple[np.ndarray, str]:
    """Positions of the validation rows, and how they were chosen.

    Whole groups (an input and its duplicates) are held out until each label has its quota of
    ``test_size`` of its rows (largest remainders, so that the quotas add up to ``ceil(test_size * rows)``,
    scikit-learn's rounding): the groups in a seeded random order, the biggest first, each taken if it
    fits its labels' quotas; then any group that brings the held-out counts closer to them, then single
    moves and swaps of groups while one brings them closer still. scikit-learn has no piece for this: StratifiedGroupKFold holds out 1/k
    (0.4 became 0.5), GroupShuffleSplit's share counts groups, not rows, and StratifiedShuffleSplit knows
    no groups. The share is then ``test_size`` within one row per label (one row unstratified), or the
    split is refused with the reason (ParameterError): groups too big to reach it."""
    n = len(y)
    names, y_idx = np.unique(np.asarray(y, dtype=str), return_inverse=True)
    stratified = stratify and 1 < len(names) <= max(2, n // 2)
    group_ids, g_idx = np.unique(groups, return_inverse=True)
    sizes = np.bincount(g_idx)
    if len(group_ids) < 2:
        raise ParameterError.listing(
            [f"data: all {n} rows are one group of the same or nearly the same input (group_duplicates=True keeps "
             "a group on one side of the split), so nothing can be held out; give more distinct inputs, or "
             "group_duplicates=False"], "arguments of jt.split")
    target = min(n - 1, max(1, math.ceil(test_size * n - 1e-9)))
    tolerance = len(names) if stratified else 1
    grouped = ", whole input groups" if (sizes > 1).any() else ""
    unlabelled = np.zeros(n, dtype=np.intp)
    tries = [(y_idx, f"stratified by label{grouped}"),
             (unlabelled, f"shuffled{grouped} (the groups are too big to stratify at this share)")] if stratified \
        else [(unlabelled, f"shuffled{grouped}" + (" (labels too many or too few to stratify)" if stratify else ""))]
    val = np.zeros(0, dtype=np.intp)
    for by_label, how in tries:
        held = _hold_out(by_label, g_idx, sizes, target, test_size, np.random.default_rng(seed))
        val = np.flatnonzero(held[g_idx])
        if 0 < len(val) < n and abs(len(val) - test_size * n) <= tolerance + 1e-9:
            return val, how
    if len(sizes) * n <= 2e8:  # few big groups that the moves above cannot combine: an exact subset sum
        held = _subset_sum(sizes, target, np.random.default_rng(seed))
        if held is not None:
            found = np.flatnonzero(held[g_idx])
            if abs(len(found) - test_size * n) <= tolerance + 1e-9:
                return found, tries[-1][1]
            val = found if abs(len(found) - test_size * n) < abs(len(val) - test_size * n) else val
    raise ParameterError.listing([
        f"test_size: {test_size} asks for {test_size * n:.1f} of {n} rows held out, and whole groups of the same or "
        f"nearly the same input (group_duplicates=True) reach {len(val)} at best (the largest group holds "
        f"{int(sizes.max())} rows of {len(group_ids)} groups); use a test_size near {max(len(val), 1) / n:.2f}, "
        "or group_duplicates=False (duplicates may then straddle the split)"], "arguments of jt.split")


def _hold_out(y_idx: np.ndarray, g_idx: np.ndarray, sizes: np.ndarray, target: int, test_size: float,
              rng: np.random.Generator) -> np.ndarray:
    """Which groups are held out (a bool per group), as ``_assign`` says; never none or all of them."""
    n_groups, n_labels = len(sizes), int(y_idx.max()) + 1
    quotas = _quotas(np.bincount(y_idx, minlength=n_labels), test_size, target, rng)
    # Each group's rows per label: a dense (groups x labels) table when it is small enough.
    counts = np.zeros((n_groups, n_labels), dtype=np.int64) if n_labels * n_groups <= 5e7 else None
    pairs, pair_counts = np.unique(np.stack([g_idx, y_idx]), axis=1, return_counts=True)
    members: list[list[tuple[int, int]]] = [[] for _ in range(n_groups)]
    for gi, li, c in zip(pairs[0].tolist(), pairs[1].tolist(), pair_counts.tolist()):
        members[gi].append((li, c))
        if counts is not None:
            counts[gi, li] = c
    held = np.zeros(n_groups, bool)
    gap = -quotas.astype(np.float64)  # held-out rows minus quota, per label
    total_gap = float(-target)

    def delta(gi: int, sign: int) -> float:  # the change of the squared distance if group gi moves in (+1) / out
        s = int(sizes[gi])
        return (sum(c * (2 * sign * gap[li] + c) for li, c in members[gi]) + s * (2 * sign * total_gap + s))

    def move(gi: int, put_in: bool) -> None:
        nonlocal total_gap
        held[gi] = put_in
        sign = 1 if put_in else -1
        for li, c in members[gi]:
            gap[li] += sign * c
        total_gap += sign * int(sizes[gi])

    # The biggest groups first (they are the hardest to place), in a seeded random order among equals.
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")].tolist()
    for fits in (True, False):  # first groups that fit their labels' quotas, then any that bring them closer
        for gi in order:
            if held[gi]:
                continue
            if fits:
                take = total_gap + sizes[gi] <= 0 and all(gap[li] + c <= 0 for li, c in members[gi])
            else:
                take = delta(gi, 1) < 0
            if take:
                move(gi, True)
    if counts is not None and (np.any(gap != 0) or total_gap != 0):
        held = _improve(held, counts, sizes, gap, total_gap, rng)
        gap = counts[held].sum(axis=0) - quotas.astype(np.float64)
        total_gap = float(sizes[held].sum() - target)
    if not held.any():  # a tie left nothing held out: the group that costs least
        move(min(order, key=lambda gi: delta(gi, 1)), True)
    elif held.all():
        move(min(order, key=lambda gi: delta(gi, -1)), False)
    return held


def _subset_sum(sizes: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray | None:
    """Groups (in a seeded random order) whose sizes add up to the reachable total nearest ``target``, other
    than none or all of them (None: there is no such total). The sums reachable after each group are kept as
    the bits of one int, so this costs groups x rows bits."""
    order = rng.permutation(len(sizes))
    total = int(sizes.sum())
    reach = [1]
    for gi in order.tolist():
        reach.append(reach[-1] | (reach[-1] << int(sizes[gi])))
    sums = [v for v in range(1, total) if reach[-1] >> v & 1]
    if not sums:
        return None
    left = min(sums, key=lambda v: (abs(v - target), v))
    held = np.zeros(len(sizes), bool)
    for i in range(len(order), 0, -1):  # back through the groups: keep a group only if the sum needs it
        if not reach[i - 1] >> left & 1:
            gi = int(order[i - 1])
            held[gi] = True
            left -= int(sizes[gi])
    return held


def _quotas(per_label: np.ndarray, test_size: float, target: int, rng: np.random.Generator) -> np.ndarray:
    """Each label's held-out rows: its share floored, and the rows left to reach ``target`` to the labels
    with the largest remainders (ties in a seeded random order), last to a label it would leave without a
    training row."""
    exact = per_label * test_size
    quotas = np.floor(exact + 1e-9).astype(np.int64)
    extra = target - int(quotas.sum())
    if extra > 0:
        rank = np.lexsort((rng.random(len(per_label)), -(exact - quotas), quotas + 1 >= per_label))
        quotas[rank[:extra]] += 1
    return np.minimum(quotas, per_label)


def _improve(held: np.ndarray, counts: np.ndarray, sizes: np.ndarray, gap: np.ndarray, total_gap: float,
             rng: np.random.Generator, rounds: int = 200) -> np.ndarray:
    """Moves of one group across, or swaps of one held-out group with one training group, while one
    lowers the squared distance to the quotas (per label and in total). Groups alike (the same rows per
    label) are one candidate, so the cost is in kinds of group, not groups."""
    kinds, kind_of = np.unique(counts, axis=0, return_inverse=True)
    kind_of = kind_of.reshape(-1)
    if len(kinds) > 2000:
        return held
    kind_sizes = kinds.sum(axis=1).astype(np.float64)
    kinds = kinds.astype(np.float64)
    gap = gap.copy()
    for _ in range(rounds):
        inside = np.bincount(kind_of[held], minlength=len(kinds)) > 0
        outside = np.bincount(kind_of[~held], minlength=len(kinds)) > 0
        # Adding kind b (+) or removing kind a (-): ||gap +- c||^2 + (total +- s)^2 - (||gap||^2 + total^2).
        norm = (kinds ** 2).sum(axis=1) + kind_sizes ** 2
        lin = kinds @ gap + kind_sizes * total_gap
        add = np.where(outside, norm + 2 * lin, np.inf)
        remove = np.where(inside, norm - 2 * lin, np.inf)
        # Swapping a out and b in: the two moves less their cross term 2 (c_a . c_b + s_a s_b).
        cross = kinds @ kinds.T + np.outer(kind_sizes, kind_sizes)
        swap = remove[:, None] + add[None, :] - 2 * cross
        best = min((float(add.min()), "add"), (float(remove.min()), "remove"), (float(swap.min()), "swap"))
        if best[0] >= -1e-9:
            break
        if best[1] == "add":
            moves = [(int(np.argmin(add)), True)]
        elif best[1] == "remove":
            moves = [(int(np.argmin(remove)), False)]
        else:
            a, b = np.unravel_index(int(np.argmin(swap)), swap.shape)
            moves = [(int(a), False), (int(b), True)]
        for kind, put_in in moves:
            candidates = np.flatnonzero((kind_of == kind) & (held != put_in))
            gi = int(rng.choice(candidates))
            held[gi] = put_in
            sign = 1 if put_in else -1
            gap += sign * kinds[kind]
            total_gap += sign * kind_sizes[kind]
    return held


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
