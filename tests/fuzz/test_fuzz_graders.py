"""Fuzz the graders: specs (``grader_from_spec``, what jt.tune's GRPO jobs, jt.evaluate and the cells take) and
the grader objects (each class in jupyter_tune/graders, its options drawn from its dataclass fields).

A grader that is built must then grade without raising (``grade_rows``: errors score 0 and are counted; every
score lies in [0, 1]), and its ``to_json()`` must build the same kind of grader again (what a job stores is
what it can run). A python grader given as source runs in a worker process, which is closed after use: none may
be left running at the module's end.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import time

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_tune.graders import (
    LabelMatch,
    ModelGrader,
    Multi,
    PythonGrader,
    StringCheck,
    TextSimilarity,
    grade_rows,
    grader_from_spec,
)
from jupyter_tune.params import GRADER_KINDS

from .declared import Arg, KindStrategies, Opaque, arguments, declared, fuzz_settings
from .outcomes import call

CLASSES = {"label_match": LabelMatch, "string_check": StringCheck, "text_similarity": TextSimilarity,
           "python": PythonGrader, "multi": Multi, "score_model": ModelGrader}
SAMPLES = ["Urology", "The answer is Neurology.", ""]
ITEMS = [{"label": "Urology", "reference": "Urology", "prompt": "p"},
         {"reference": "Neurology", "input_text": "x"}, {}]


def _choices(kind: str, option: str) -> tuple | None:
    """An option's allowed values: its field's metadata when declared, else its module's constant."""
    cls = CLASSES[kind]
    field = cls.__dataclass_fields__.get(option)
    if field is not None and field.metadata.get("choices"):
        return tuple(field.metadata["choices"])
    module = importlib.import_module(cls.__module__)
    constant = {"operation": "OPERATIONS", "evaluation_metric": "METRICS"}.get(option)
    return tuple(getattr(module, constant)) if constant and hasattr(module, constant) else None


# -- python grader sources and callables --
SOURCES_OK = ("def grade(sample, item):\n    return 1.0",
              "def grade(sample, item):\n    return float(sample.strip() == item.get('label', ''))",
              "import math\n\ndef score(a, b):\n    return math.exp(-len(a))",
              "def grade(sample, item, extra=None):\n    return 0.5",
              "def grade(sample, item):\n    return float('nan')",
              "def grade(sample, item):\n    return 'x'",
              "def grade(sample, item):\n    raise SystemExit(3)",
              "def grade(sample, item):\n    return item['missing']",
              "    def grade(sample, item):\n        return 2.0")
SOURCES_BAD = ("def grade(:", "x = 1", "def grade(sample):\n    return 1.0", "def grade(a, b, c):\n    return 1",
               "", "   ", 5, None, b"def grade(s, i): return 1", ["def grade(s, i): return 1"],
               "def a(s, i):\n    return 1\n\ndef b(s, i):\n    return 0", "lambda s, i: 1")


def _fn_ok(sample, item):
    return 1.0 if sample else 0.0


def _fn_nan(sample, item):
    return float("nan")


def _fn_raises(sample, item):
    raise KeyError("label")


def _fn_exit(sample, item):
    raise SystemExit(2)


FNS_OK = (_fn_ok, _fn_nan, _fn_raises, _fn_exit, lambda s, i: 0.25, lambda s, i, *rest: 0.5, max)
FNS_BAD = (5, "def grade(s, i): return 1", lambda s: 1.0, lambda: 1.0, lambda a, b, c: 1.0, Opaque(), len)
JUDGES_OK = (lambda prompt: "7", lambda prompt: "no number", lambda prompt: "11", str)
JUDGES_BAD = (5, "judge", lambda: "7", lambda a, b: "7", Opaque())
TEMPLATES_OK = ("{{ item.reference }}", "{{ sample.output_text }}", "Urology", "{{ item.label }}")
TEMPLATES_BAD = ("", "   ", 5, None, ["{{ item.reference }}"])


def option_strategies(kind: str, depth: int) -> tuple[dict, dict]:
    """(valid, invalid) strategies of the options the declarations cannot tell (callables, sources,
    templates, the kind tag, sub-graders), per option name."""
    valid = {"kind": st.just(kind), "name": st.text(min_size=1, max_size=10).filter(str.strip),
             "time_limit": (0.05, 5.0), "scale": (1.0, 100.0), "pass_threshold": (0.0, 1.0),
             "source": st.sampled_from(SOURCES_OK), "fn": st.sampled_from(FNS_OK),
             "judge": st.sampled_from(JUDGES_OK), "rubric": st.sampled_from(TEMPLATES_OK + (
                 "Rate {{ sample.output_text }} against {{ item.reference }}: 0 to 10.",)),
             "input": st.sampled_from(TEMPLATES_OK), "reference": st.sampled_from(TEMPLATES_OK),
             "label": st.one_of(st.none(), st.sampled_from(TEMPLATES_OK)),
             "choices": st.one_of(st.none(), st.sampled_from([["Urology", "Neurology"], ["Urology"]]))}
    invalid = {"kind": st.sampled_from([k for k in CLASSES if k != kind] + ["nope", 5]),
               "source": st.sampled_from(SOURCES_BAD), "fn": st.sampled_from(FNS_BAD),
               "judge": st.sampled_from(JUDGES_BAD), "rubric": st.sampled_from(TEMPLATES_BAD),
               "input": st.sampled_from(TEMPLATES_BAD), "reference": st.sampled_from(TEMPLATES_BAD),
               "name": st.sampled_from(["", "  ", 5, None, ["a"]]),
               "time_limit": st.sampled_from([None, 0, -1, float("nan"), float("inf"), "1", True]),
               "pass_threshold": st.sampled_from([-0.1, 1.5, float("nan"), "x", None, True]),
               "scale": st.sampled_from([0, -1, float("nan"), float("inf"), "10", None]),
               "weights": st.sampled_from([[], [-1.0], [float("nan")], ["x"], 5, [0.0]])}
    for option in ("operation", "evaluation_metric"):
        choices = _choices(kind, option) if kind in ("string_check", "text_similarity") else None
        if choices:
            valid[option] = st.sampled_from(choices)
            invalid[option] = st.sampled_from(["nope", "", 5, None, choices[0].upper()])
    if kind == "multi":
        parts = st.lists(st.sampled_from([LabelMatch(), StringCheck(operation="like"), TextSimilarity()]),
                         min_size=1, max_size=2)
        valid["graders"] = parts if depth else st.just([LabelMatch()])
        valid["weights"] = st.none()
        invalid["graders"] = st.sampled_from([[], 5, [5], [None], "label_match", [Opaque()]])
    return valid, invalid


def _fields(kind: str):
    return declared(CLASSES[kind])


def _check_grades(grader) -> None:
    """A built grader grades every row without raising, each score in [0, 1]; its spec builds it again."""
    try:
        result = grade_rows(grader, SAMPLES, ITEMS)
        assert len(result.scores) == len(SAMPLES), result
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 and not math.isnan(s) for s in result.scores), result
        if grader.kind != "score_model" and not (grader.kind == "python" and grader.source is None):
            again = grader_from_spec(grader.to_json())
            assert type(again) is type(grader) and again.to_json() == grader.to_json()
    finally:
        close = getattr(grader, "close", None)
        if callable(close):
            close()


@fuzz_settings(100)
@given(data=st.data())
def test_grader_objects(data):
    kind = data.draw(st.sampled_from(sorted(CLASSES)), label="class")
    valid, invalid = option_strategies(kind, depth=1)
    fields, always = _fields(kind), ("graders",) if kind == "multi" else ()  # Multi() has no graders: refused
    if kind == "python":  # a function or its source: one of the two
        always = (data.draw(st.sampled_from(["fn", "source"]), label="python grader from"),)
        fields = [d for d in fields if d.name not in {"fn", "source"} - set(always)]
    args = data.draw(arguments(fields, KindStrategies(), cheap=valid, bad=invalid, most=3, always=always),
                     label="options")
    grader, refused = call(CLASSES[kind].__name__, CLASSES[kind], args, store=None,
                           declared=[d.name for d in _fields(kind)], timeout=60)
    if refused is None:
        _check_grades(grader)


@st.composite
def specs(draw, depth: int = 1) -> tuple[dict, list[Arg]]:
    """A grader spec: a kind (valid or not, under "kind" or OpenAI's "type") and options from the class's
    fields; python graders as source (a spec cannot hold a function), multi graders with sub-specs."""
    kind = draw(st.sampled_from(sorted(GRADER_KINDS) + ["score_model", "nope", 5, None]), label="kind")
    key = draw(st.sampled_from(["kind", "type"]))
    if kind not in GRADER_KINDS:
        return {key: kind}, [Arg(key, kind, False)]
    valid, invalid = option_strategies(kind, depth)
    fields = [d for d in _fields(kind) if d.name not in ("fn", "kind")]
    args = draw(arguments(fields, KindStrategies(), cheap=valid, bad=invalid, most=3,
                          always=("source",) if kind == "python" else ("graders",) if kind == "multi" else ()))
    spec: dict = {key: kind}
    for a in args:
        value = a.value
        if a.name == "graders" and isinstance(value, list):  # the parts as specs
            value = [g.to_json() if hasattr(g, "to_json") else g for g in value]
        spec[a.name] = value
    return spec, args


@fuzz_settings(120)
@given(drawn=specs())
def test_grader_specs(drawn):
    spec, args = drawn
    grader, refused = call("grader_from_spec", lambda **_: grader_from_spec(spec), args, store=None,
                           declared=["kind", "type", *{f.name for c in CLASSES.values() for f in declared(c)}],
                           timeout=60)
    if refused is None:
        _check_grades(grader)


@pytest.fixture(scope="module", autouse=True)
def no_worker_left():
    """No python grader's worker process outlives the graders that started it."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    gc.collect()
    deadline = time.monotonic() + 10
    while True:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and _worker(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for p in left:  # only the workers this module's graders started, each by its id
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    assert not left, f"grader worker processes left running: {[p.pid for p in left]}"


def _worker(p: psutil.Process) -> bool:
    """A spawned multiprocessing child (a grader's worker), not multiprocessing's resource tracker."""
    try:
        cmd = " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False
    return "multiprocessing" in cmd and "resource_tracker" not in cmd
