"""Graders from their serialisable specs (TuningParams.graders, kept in job.json): ``{"kind": "label_match"}``,
``{"kind": "string_check", "operation": "ilike"}``, ``{"kind": "python", "source": "def grade(sample, item):
..."}`` ... ("type", OpenAI's spelling and what each grader's ``to_json()`` writes, stands for "kind").

Building a grader checks it whole (each class's constructor: options known and typed, templates present, a
python grader's source compiled and its grade(sample, item) checked without running it); a bad spec is a
ParameterError naming ``graders[i]`` and the option. ``probe_graders`` (jt.tune, before a GRPO job exists)
also runs each grader on the first training rows and refuses one that errors on all of them. A model grader
(score_model) is refused in a spec: its judge is a callable.
"""

from __future__ import annotations

import dataclasses
import difflib

from jupyter_tune.graders.base import close_graders, grade_rows
from jupyter_tune.graders.label import LabelMatch
from jupyter_tune.graders.multi import Multi
from jupyter_tune.graders.python import PythonGrader
from jupyter_tune.graders.similarity import TextSimilarity
from jupyter_tune.graders.string_check import StringCheck
from jupyter_tune.params import GRADER_KINDS, ParameterError, grader_spec_problems

_CLASSES = {"label_match": LabelMatch, "string_check": StringCheck, "text_similarity": TextSimilarity}
assert set(_CLASSES) | {"python", "multi"} == set(GRADER_KINDS)


def _unknown(option: str, known: set[str]) -> str:
    close = difflib.get_close_matches(option, sorted(known), n=1)
    return f"{option!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def grader_from_spec(spec: dict):
    """One grader from its spec; ParameterError (a ValueError) names what is wrong (an unknown option, a bad
    value, a source that does not compile ...)."""
    problems = grader_spec_problems(spec)
    if problems:
        raise ParameterError(problems[0])
    kind = spec.get("kind", spec.get("type"))
    options = {k: v for k, v in spec.items() if k not in ("kind", "type")}
    cls = {"python": PythonGrader, "multi": Multi, **_CLASSES}[kind]
    known = {f.name for f in dataclasses.fields(cls) if f.init} - {"kind", "fn"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ParameterError(f"{kind}: unknown option{'s' * (len(unknown) > 1)} "
                             f"{', '.join(_unknown(o, known) for o in unknown)}; known: {', '.join(sorted(known))}")
    if kind == "multi":
        parts = []
        for j, sub in enumerate(options.pop("graders")):
            try:
                parts.append(grader_from_spec(sub))
            except (ValueError, TypeError) as e:
                raise ParameterError(f"graders[{j}]: {e}") from None
        options["graders"] = parts
    try:
        return cls(**options)
    except TypeError as e:  # every option is known: only a missing one could get here
        raise ParameterError(f"{kind}: {e}") from None


def graders_from_specs(specs: list[dict] | None) -> list:
    """The graders of a GRPO job: one per spec (label_match when none), names made unique ("name", "name_2")
    since each names its reward and its metrics. Raises ParameterError listing every bad spec."""
    graders, problems = [], []
    for i, spec in enumerate(specs or [{"kind": "label_match"}]):
        try:
            graders.append(grader_from_spec(spec))
        except (ValueError, TypeError) as e:
            problems.append(f"graders[{i}]: {e}")
    if problems:
        raise ParameterError.listing(problems, "graders")
    seen: dict[str, int] = {}
    for g in graders:
        seen[g.name] = seen.get(g.name, 0) + 1
        if seen[g.name] > 1:
            g.name = f"{g.name}_{seen[g.name]}"
    return graders


def row_item(ex) -> dict:
    """What a grader sees of one training row (GRPO): its fields, ``reference`` (the row's answer unless the row
    has its own ``reference`` field) and ``messages`` (the prompt's turns)."""
    item = dict(ex.fields)
    if ex.answer is not None:
        item.setdefault("reference", ex.answer)
    item.setdefault("messages", ex.prompt_messages)
    return item


# Training rows each grader is tried on before a GRPO job exists.
PROBE_ROWS = 3


def probe_graders(specs: list[dict] | None, examples, rows: int = PROBE_ROWS) -> None:
    """Build the graders (every option checked) and run each on the first ``rows`` training rows, each row's own
    reference answer (or label) standing for the model's answer: a grader that errors on every one of them
    would score every answer of the job 0, so it is refused here, with its first error. Raises ParameterError
    naming ``graders[i]``; starts and stops the python graders' worker processes."""
    graders = graders_from_specs(specs)
    items = [row_item(ex) for ex in list(examples)[:rows]]
    if not items:
        return
    samples = [str(item.get("reference", item.get("label")) or "") for item in items]
    problems = []
    try:
        for i, g in enumerate(graders):
            errors = []
            for sample, item in zip(samples, items, strict=True):
                result = grade_rows(g, [sample], [item])
                if not result.errors:
                    break  # it grades: nothing to refuse
                errors.append(result.errors[0][1])
            else:
                problems.append(f"graders[{i}]: {g.name} ({g.kind}) errored on each of the first {len(items)} "
                                f"training rows (given each row's own reference answer as the answer), so every "
                                f"answer of the job would score 0. First error: {errors[0]}")
    finally:
        close_graders(graders)
    if problems:
        raise ParameterError.listing(problems, "graders")
