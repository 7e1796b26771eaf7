"""Gaps the fuzzer found in code that other people are changing now (issue 33): each one is tolerated by the
property tests (an event in Hypothesis' statistics, not a failure) so that they keep finding new problems,
and is reproduced by a plain test in test_known_gaps.py, marked xfail(strict=False) until it is closed.

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


GAPS: list[Gap] = [
    # jt.tune(train_dataset=5): launch.tune replaces the data with describe_source() ("<list>") before
    # TuningParams checks it, so the kind check passes and the loader refuses it later, as a DatasetError
    # that names "<list>", not the argument.
    # (Any later check may then refuse first: a rule between other values, target_modules, the model.)
    Gap("tune-dataset-not-checked", "jupyter_tune/api/launch.py",
        lambda v: v.what == "jt.tune" and _only_bad(v, "train_dataset", "validation_dataset")
        and ("not refused by a ParameterError" in v.why or "names none of" in v.why)),
    # jt.tune(**{"": 1}): "Unknown tuning parameter(s): . Known: ..." (the empty name joined, not quoted).
    Gap("empty-keyword-unnamed", "jupyter_tune/params/__init__.py (TuningParams.from_dict)",
        lambda v: _bad(v, "") and "names none of ['']" in v.why),
    # LabelMatch(kind="python"), Multi(kind=None): a grader object's kind tag is a constructor argument that
    # nothing checks, so its to_json() names another kind (or none).
    Gap("grader-kind-unchecked", "jupyter_tune/graders/*.py",
        lambda v: v.what in GRADER_CLASSES and _bad(v, "kind") and v.why.startswith("accepted")),
    # LabelMatch(zz=1), LabelMatch(self=1): the dataclass's own TypeError, not a ParameterError naming the
    # option.
    Gap("grader-unknown-option-typeerror", "jupyter_tune/graders/*.py",
        lambda v: v.what in GRADER_CLASSES and _exc(v, "TypeError")
        and ("unexpected keyword" in str(v.exc) or "multiple values" in str(v.exc))),
    # POST cells {"action": "compare", "params": {"job_ids": ["no-such-job"]}}: 200, and the cell's
    # jt.compare_jobs raises JobNotFoundError (the ids' format is checked, not that the jobs exist).
    Gap("cells-compare-unknown-job", "jupyter_tune/cells/render.py (_action_problems, compare)",
        lambda v: v.what == "POST cells 'compare'" and "jt.compare_jobs: no job" in v.why),
    # jt.sweep({"train_dataset": <preference pairs>}, grid): accepted (sweep.py's validate_dataset call leaves
    # preference= out, so pairs pass as rows), then every point's jt.tune refuses the data: a sweep folder
    # whose trials all failed, instead of the DatasetError before anything is written.
    Gap("sweep-preference-data-unchecked", "jupyter_tune/api/sweep.py (validate_dataset(..., preference=))",
        lambda v: v.what == "jt.sweep" and "a sweep that the engine refuses" in v.why
        and "preference data trains with method='dpo'" in v.why),
    # jt.sweep(base={"train_dataset": ..., "epochs": 0}, grid): "grid: the point {...} is not a valid job:
    # epochs: 0 ...": the base's own bad value is blamed on the grid's point.
    Gap("sweep-base-blamed-on-grid", "jupyter_tune/params/arguments.py (sweep_rules, _point_problems)",
        lambda v: v.what == "jt.sweep" and _only_bad(v, "base") and "names none of ['base']" in v.why
        and "grid: the point" in str(v.exc)),
    # grader_from_spec({"kind": "score_model"}) names the value, not the field; {"type": "nope"} says "kind".
    Gap("spec-kind-unnamed", "jupyter_tune/params/__init__.py (grader_spec_problems)",
        lambda v: v.what == "grader_from_spec" and _bad(v, "kind", "type") and "names none of" in v.why),
]


def known_gap(v: Violation) -> str | None:
    return next((g.id for g in GAPS if g.matches(v)), None)
