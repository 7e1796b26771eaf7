"""Graders from their serialisable specs (TuningParams.graders, kept in job.json): ``{"kind": "label_match"}``,
``{"kind": "string_check", "operation": "ilike"}``, ``{"kind": "python", "source": "def grade(sample, item):
..."}`` ... ("type", OpenAI's spelling and what each grader's ``to_json()`` writes, stands for "kind").

A python grader's source is compiled here, in the process that builds it (jt.tune checks it once before a job
exists; the job process builds it again). A model grader (score_model) is refused: its judge is a callable.
"""

from __future__ import annotations

import textwrap
import types

from jupyter_tune.graders.label import LabelMatch
from jupyter_tune.graders.multi import Multi
from jupyter_tune.graders.python import PythonGrader
from jupyter_tune.graders.similarity import TextSimilarity
from jupyter_tune.graders.string_check import StringCheck
from jupyter_tune.params import GRADER_KINDS, ParameterError, grader_spec_problems

_CLASSES = {"label_match": LabelMatch, "string_check": StringCheck, "text_similarity": TextSimilarity}
assert set(_CLASSES) | {"python", "multi"} == set(GRADER_KINDS)


def compile_python(source: str, name: str = "python"):
    """The function a python grader's source defines: ``grade`` if it defines one, else its only function."""
    namespace: dict = {}
    try:
        exec(compile(textwrap.dedent(source), f"<grader {name}>", "exec"), namespace)  # noqa: S102 - the user's own grader
    except SyntaxError as e:
        raise ValueError(f"its source does not compile: {e.msg} (line {e.lineno})") from None
    except Exception as e:  # noqa: BLE001 - a failing top level names itself
        raise ValueError(f"running its source failed: {type(e).__name__}: {e}") from None
    if callable(namespace.get("grade")):
        return namespace["grade"]
    functions = [v for k, v in namespace.items() if isinstance(v, types.FunctionType) and not k.startswith("__")]
    if len(functions) != 1:
        raise ValueError("its source must define grade(sample, item) -> float (or exactly one function)")
    return functions[0]


def grader_from_spec(spec: dict):
    """One grader from its spec; ValueError names what is wrong (an unknown option, a bad source ...)."""
    problems = grader_spec_problems(spec)
    if problems:
        raise ValueError(problems[0])
    kind = spec.get("kind", spec.get("type"))
    options = {k: v for k, v in spec.items() if k not in ("kind", "type")}
    if kind == "python":
        source = options.pop("source")
        fn = compile_python(source, options.get("name", "python"))
        cls, options = PythonGrader, {"fn": fn, **options}
    elif kind == "multi":
        subs = [grader_from_spec(s) for s in options.pop("graders")]
        cls, options = Multi, {"graders": subs, **options}
    else:
        cls = _CLASSES[kind]
    known = set(cls.__dataclass_fields__) - {"kind"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{kind}: unknown option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known - {'fn'}))}")
    return cls(**options)


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
