"""Gaps the fuzzer finds in code that someone else is changing at the time: each one listed here is tolerated
by the property tests (an event in Hypothesis' statistics, not a failure) so that they keep finding new
problems, and is reproduced by a plain test in test_fuzz_findings.py marked xfail(strict=False) until its owner
closes it; then both go (the reproduction stays, as a plain regression test).

A gap's predicate must be narrow: it matches that one defect, never a whole entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .outcomes import Violation


@dataclass(frozen=True)
class Gap:
    id: str
    owner: str            # the file(s) where the fix belongs
    matches: Callable[[Violation], bool]


GRADER_CLASSES = ("LabelMatch", "StringCheck", "TextSimilarity", "PythonGrader", "Multi", "ModelGrader")


def _bad(v: Violation, *names: str) -> bool:
    return any(not a.valid and a.name in names for a in v.args_)


def _only_bad(v: Violation, *names: str) -> bool:
    bad = {a.name for a in v.args_ if not a.valid}
    return bool(bad) and bad <= set(names)


def _exc(v: Violation, name: str) -> bool:
    return v.exc is not None and type(v.exc).__name__ == name


# Closed by their owners (commit "Close the fuzzer's gaps"), each kept as a regression test in
# test_fuzz_findings.py: jt.tune's data kinds, an empty keyword's name, grader objects' kind= and unknown
# options, spec refusals naming kind/type, compare cells naming unknown jobs, sweeps reading preference pairs
# and blaming a bad base on the base.
GAPS: list[Gap] = []


def known_gap(v: Violation) -> str | None:
    return next((g.id for g in GAPS if g.matches(v)), None)
