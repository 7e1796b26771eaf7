"""Hypothesis strategies built from the declarations (``dataclasses.fields`` of TuningParams, ActionParams,
params/arguments.py's *Args and the grader classes, with their metadata: type, choices, minimum, maximum,
exclusive, kind), so that a newly declared argument is fuzzed with no change here.

Every drawn value is tagged ``valid`` or not **by construction**, from the declaration alone (not by asking
the gate): a value of the declared type inside the declared range or choices is valid; a value of another
type, NaN, an infinity, a number past a bound, a string outside the choices, or a kind's known-bad values are
not. The invariant the tests check with the tags: a call with any invalid argument is refused by a
ParameterError naming every such argument; a call with only valid ones succeeds or is refused cleanly.

Valid values lean small (``cheap``): a call that passes the gate runs for real on tiny data and a tiny model.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

NAN, INF = float("nan"), float("inf")
HUGE_INTS = (2**31, 2**63, 10**30, -(10**30), -(2**63))
HUGE_TEXT = "x" * 100_000


class Opaque:
    """An object of no type any argument takes (a stable repr, so that failures print the same)."""

    def __repr__(self) -> str:
        return "<Opaque>"


# Values of every shape: wrong types, NaN and infinities, huge and empty ones, numpy scalars.
JUNK_FIXED: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 7, 1.5, -0.5, 0.0, -0.0, NAN, INF, -INF, 1e308, -1e308, 5e-324,
    *HUGE_INTS, "", " ", "\n", "\x00", "nan", "inf", "-1", "0.5", "1", "true", "None", "null", "{", "{x}", "../..",
    "/", "~", "é" * 5, b"", b"x", [], [None], [1], [""], ["a", 1], [[]], {}, {"a": 1},
    {"": None}, (), (1,), ("a",), {1, 2}, frozenset(), 1 + 2j, np.float64("nan"), np.float64(0.5),
    np.int64(3), np.bool_(True), np.array([1, 2]), Path("x"), Opaque(), print, int,
)


def _huge(i: int) -> Any:
    """Huge values, built when drawn (their repr stays out of Hypothesis' statistics)."""
    if i == 0:
        return HUGE_TEXT
    if i == 1:
        return ["x"] * 10_000
    if i == 2:
        return {f"k{n}": n for n in range(10_000)}
    nested: list = []
    for _ in range(200):
        nested = [nested]
    return nested


huge = st.integers(0, 3).map(_huge)
junk = st.one_of(
    st.sampled_from(JUNK_FIXED),
    huge,
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
)
# Keyword names no entry point declares.
UNKNOWN_KEYS = st.sampled_from(["zz_unknown", "Epochs", "learning rate", "__class__", "kwargs", "args", "self",
                                "", "eval_steps_", "DATA", "model_name"])


@dataclass(frozen=True)
class Late:
    """An invalid value that only a rule of the entry point refuses, once every argument passed its own check
    (a list of graders whose items are wrong, a job id list naming bad ids): a refusal for another argument
    may come first and leave it unnamed."""

    value: Any


def late_unless(field_level: Callable[[Any], bool]) -> Callable[[Any], Any]:
    """Mark the values that ``field_level`` does not say a field's own check refuses as Late."""
    return lambda v: v if field_level(v) else Late(v)


@dataclass(frozen=True)
class Arg:
    name: str
    value: Any
    valid: bool  # by construction; False: the gate must refuse it, naming it
    late: bool = False  # invalid for a rule between arguments, not for its own declaration (see Late)

    def __repr__(self) -> str:
        text = repr(self.value)
        text = text if len(text) <= 120 else text[:117] + "..."
        return f"{self.name}={text}{'' if self.valid else '  <- invalid'}"


# -- reading a declaration --
def type_name(tp: Any) -> tuple[str, bool]:
    """(bool | int | float | str | list[str] | list[dict] | list | dict | any, nullable) of a hint."""
    nullable = tp is Any  # as the gate reads it (params._nullable): Any or a union with None
    args = [tp]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = nullable or len(args) < len(typing.get_args(tp))
    if len(args) != 1:
        return "any", nullable
    t = args[0]
    origin = typing.get_origin(t)
    if t is Any or t is object:
        return "any", nullable
    if origin in (list, tuple) or t in (list, tuple):
        inner = typing.get_args(t)
        if inner[:1] == (str,):
            return "list[str]", nullable
        if inner[:1] == (dict,):
            return "list[dict]", nullable
        return "list", nullable
    if t is dict or origin is dict:
        return "dict", nullable
    if t in (bool, int, float, str):
        return t.__name__, nullable
    return "any", nullable  # a callable, a class of the project's ...: the kind or the entry point decides


def type_ok(tname: str, value: Any) -> bool:
    """Whether ``value`` has the declared type (JSON's types; an int is a float; a tuple a list)."""
    if tname == "bool":
        return isinstance(value, bool)
    if tname == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tname == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tname == "str":
        return isinstance(value, str)
    if tname == "list[str]":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)
    if tname == "list[dict]":
        return isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value)
    if tname == "list":
        return isinstance(value, (list, tuple))
    if tname == "dict":
        return isinstance(value, dict)
    return True


def in_range(meta: Any, value: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    lo, hi = meta.get("minimum"), meta.get("maximum")
    if meta.get("exclusive"):
        return (lo is None or value > lo) and (hi is None or value < hi)
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def in_choices(choices: Iterable, value: Any) -> bool:
    return any(value == c and type(value) is type(c) for c in choices)


@dataclass
class Declared:
    """One declared argument: its name, type, nullability, metadata and default."""

    name: str
    tname: str
    nullable: bool
    meta: dict
    default: Any
    required: bool  # the function has no default for it

    @property
    def kind(self) -> str | None:
        return self.meta.get("kind")

    @property
    def choices(self) -> tuple | None:
        return self.meta.get("choices")

    def oracle(self, value: Any) -> bool | None:
        """Whether a value is valid by the declaration (None: its kind decides, which this cannot tell)."""
        if value is None:
            return self.nullable or (self.choices is not None and None in self.choices)
        if self.kind not in (None, "model"):
            return None
        if not type_ok(self.tname, value):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.choices is not None:
            return in_choices(self.choices, value)
        if self.tname in ("int", "float"):
            return in_range(self.meta, value)
        if self.kind == "model":
            return bool(value.strip())
        return True


def declared(spec: type, function: Callable | None = None) -> list[Declared]:
    """The declared arguments of ``spec`` (a dataclass), required where ``function`` has no default."""
    import inspect

    hints = typing.get_type_hints(spec)
    params = inspect.signature(function).parameters if function is not None else {}
    out = []
    for f in dataclasses.fields(spec):
        if not f.init:
            continue
        tname, nullable = type_name(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = dataclasses.MISSING
        p = params.get(f.name)
        required = (default is dataclasses.MISSING) or (p is not None and p.default is inspect.Parameter.empty)
        out.append(Declared(f.name, tname, nullable, dict(f.metadata), default, required))
    return out


# -- the strategies --
class KindStrategies(dict):
    """kind -> (valid values, invalid values); a short repr in Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<kinds {', '.join(self)}>"


def _numbers(d: Declared, cheap: dict[str, tuple[float, float]]) -> st.SearchStrategy:
    lo, hi = d.meta.get("minimum"), d.meta.get("maximum")
    if d.name in cheap:
        lo, hi = cheap[d.name]
    excl = bool(d.meta.get("exclusive"))
    if d.tname == "int":
        lo_i = None if lo is None else math.ceil(lo) + (1 if excl and float(lo).is_integer() else 0)
        hi_i = None if hi is None else math.floor(hi) - (1 if excl and float(hi).is_integer() else 0)
        ends = [v for v in (lo_i, hi_i) if v is not None]
        return st.one_of(st.integers(lo_i, hi_i if hi_i is not None else (lo_i or 0) + 50), st.sampled_from(ends)
                         ) if ends else st.integers(-5, 50)
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False, exclude_min=excl and lo is not None,
                       exclude_max=excl and hi is not None)
    ends = [] if excl else [v for v in (lo, hi) if v is not None]
    ints = []
    if lo is not None and hi is not None:
        ints = [i for i in range(math.ceil(lo), math.floor(hi) + 1)][:3]
        ints = [i for i in ints if in_range(d.meta, i)]
    return st.one_of(floats, *(st.sampled_from(x) for x in (ends, ints) if x))


def valid_values(d: Declared, kinds: KindStrategies, cheap: dict[str, Any]) -> st.SearchStrategy:
    """Values the declaration allows (None where nullable)."""
    if d.name in cheap and not isinstance(cheap[d.name], tuple):
        base = cheap[d.name]
    elif d.kind is not None and d.kind in kinds:
        base = kinds[d.kind][0]
    elif d.choices is not None:
        base = st.sampled_from(d.choices)
    elif d.tname == "bool":
        base = st.booleans()
    elif d.tname in ("int", "float"):
        base = _numbers(d, cheap)
    elif d.tname == "str":
        base = st.text(min_size=1 if d.kind == "model" else 0, max_size=16).filter(
            lambda s: d.kind != "model" or s.strip())
    elif d.tname == "list[str]":
        base = st.lists(st.text(min_size=1, max_size=8), max_size=3)
    elif d.tname == "list[dict]":
        base = st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), max_size=2)
    elif d.tname == "list":
        base = st.lists(st.integers(), max_size=2)
    elif d.tname == "dict":
        base = st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
    else:
        base = st.none() if d.nullable else st.integers()
    return st.one_of(st.none(), base) if d.nullable and d.name not in cheap else base


def invalid_values(d: Declared, kinds: KindStrategies, aliases: dict[str, tuple],
                   bad: dict[str, st.SearchStrategy] | None = None) -> st.SearchStrategy:
    """Values the declaration refuses: other types, non-finite or out-of-range numbers, strings outside the
    choices, None where it is not nullable, and a kind's known-bad values (``bad``: an argument's own)."""
    accepted = aliases.get(d.name, ())
    options: list[st.SearchStrategy] = []
    if bad and d.name in bad:
        options.append(bad[d.name])
        if not d.nullable:
            options.append(st.none())
    elif d.kind is not None and d.kind in kinds:
        options.append(kinds[d.kind][1])
        if not d.nullable:
            options.append(st.none())
    else:
        def bad_value(v: Any) -> bool:
            return d.oracle(v) is False

        options += [st.sampled_from(JUNK_FIXED).filter(bad_value), huge.filter(bad_value)]
        if d.tname not in ("str", "any") or d.choices is not None:  # random text: of another type, or no choice
            options.append(st.text(max_size=12).filter(bad_value))
        if d.tname not in ("list", "list[str]", "list[dict]", "any"):
            options.append(st.lists(st.integers(-3, 3), max_size=3).filter(bad_value))
        if d.tname not in ("dict", "any"):
            options.append(st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2).filter(bad_value))
        if d.tname in ("int", "float"):
            lo, hi = d.meta.get("minimum"), d.meta.get("maximum")
            outside: list[Any] = [NAN, INF, -INF] if d.tname == "float" else [1.0, 2.5]
            if lo is not None:
                outside += [lo - 1, -(10**30), lo - 1e-9 if d.tname == "float" else lo - 1]
                outside += [lo] if d.meta.get("exclusive") else []
            if hi is not None:
                outside += [hi + 1, hi * 10 + 1, 10**30]
                outside += [hi] if d.meta.get("exclusive") else []
            options.append(st.sampled_from([b for b in outside if d.oracle(b) is False] or [Opaque()]))
        if d.choices is not None:
            strings = [c for c in d.choices if isinstance(c, str)]
            near = [s.upper() for s in strings] + [s + " " for s in strings] + ["nope", ""]
            numbers = [c for c in d.choices if isinstance(c, int) and not isinstance(c, bool)]
            near += [n + 1 for n in numbers] + [float(n) for n in numbers] + [str(n) for n in numbers]
            options.append(st.sampled_from([v for v in near if d.oracle(v) is False] or [Opaque()]))
    strategy = st.one_of(*options)
    return strategy.filter(lambda v: not any(v is a or (type(v) is type(a) and v == a) for a in accepted)
                           if not isinstance(v, Late) else True)


def draw_value(draw, d: Declared, want_valid: bool, kinds: KindStrategies, cheap: dict, aliases: dict,
               bad: dict | None = None, late: dict | None = None) -> Arg:
    if want_valid:
        return Arg(d.name, draw(valid_values(d, kinds, cheap)), True)
    value = draw(invalid_values(d, kinds, aliases, bad))
    if isinstance(value, Late):
        return Arg(d.name, value.value, False, late=True)
    return Arg(d.name, value, False, late=bool(late and d.name in late and late[d.name](value)))


@st.composite
def arguments(draw, decl: list[Declared], kinds: KindStrategies, *, cheap: dict | None = None,
              aliases: dict | None = None, fixed: dict[str, st.SearchStrategy] | None = None,
              bad: dict[str, st.SearchStrategy] | None = None, always: tuple[str, ...] = (),
              late: dict[str, Callable[[Any], bool]] | None = None, most: int = 4,
              unknown: bool = True) -> list[Arg]:
    """A call's arguments: every required one, up to ``most`` optional ones, each valid or not, and now and
    then an unknown keyword. Modes: all valid (the call goes deep), one invalid, several invalid, unknown key.
    ``cheap``: an argument's valid values (a strategy) or valid range (low, high); ``bad``: its invalid values;
    ``aliases``: values accepted though not of the declared type; ``fixed``: arguments always given, from
    these strategies (valid); ``always``: arguments always given, valid or not; ``late``: which invalid values
    of an argument only a rule refuses (see Late)."""
    cheap, aliases, fixed = cheap or {}, aliases or {}, fixed or {}
    mode = draw(st.sampled_from(["valid", "valid", "one_bad", "many_bad", "unknown"] if unknown
                                else ["valid", "valid", "one_bad", "many_bad"]))
    def needed(d: Declared) -> bool:
        return (d.required or d.name in always) and d.name not in fixed

    optional = [d for d in decl if not needed(d) and d.name not in fixed]
    chosen = draw(st.lists(st.sampled_from(optional), max_size=most, unique_by=lambda d: d.name)) if optional else []
    given = [d for d in decl if needed(d)] + chosen
    wrong: set[str] = set()
    if mode == "one_bad" and given:
        wrong = {draw(st.sampled_from([d.name for d in given]))}
    elif mode == "many_bad":
        wrong = {d.name for d in given if draw(st.booleans())}
    args = [Arg(name, draw(s), True) for name, s in fixed.items()]
    args += [draw_value(draw, d, d.name not in wrong, kinds, cheap, aliases, bad, late) for d in given]
    if mode == "unknown":
        args.append(Arg(draw(UNKNOWN_KEYS), draw(junk), False))
    return args


def as_kwargs(args: list[Arg]) -> dict[str, Any]:
    return {a.name: a.value for a in args}


def invalid_names(args: list[Arg]) -> list[str]:
    return [a.name for a in args if not a.valid]


# -- values of the kinds (params/kinds.py), shared by the tests --
TEMPLATES_OK = (None, "{input_text}", "Assign a label: {input_text}\nLabel:", "{{literal}} {input_text}",
                "no placeholder at all", "{missing_field}")
TEMPLATES_BAD = ("{", "}", "{input_text", "X {input_text", "{x!r}", "{0}", "{}", "{input_text:>999999999}",
                 "{a.b}", "{a[0]}", "{input_text!s}", 5, ["{input_text}"], b"{input_text}")
JOB_IDS_BAD = ("", "Bad Id!", "a" * 65, "../etc", "UPPER", "job id", "job\n", 5, 1.5, ["job"], True, Opaque())
STOPS_OK = ("\n", "###", ["\n", "###"], ("Label",))
STOPS_BAD = ("", [""], [1], 5, [None], ["\n", ""], {"a": 1}, True)
STEPS_OK = ("final", 0, 4, 10**6)
STEPS_BAD = (-1, "x", "4", 1.5, True, [4], NAN, INF, {"step": 4})
PATHS_BAD = ("", "   ", 5, [], ["a"], b"/tmp/x", True, 1.5, Opaque())


def path_like(path: str | Path) -> st.SearchStrategy:
    return st.sampled_from([str(path), Path(path)])


def fresh_dirs(root: Path) -> st.SearchStrategy:
    """Paths of folders that do not exist yet (a new one per draw)."""
    counter = iter(range(10**9))
    return st.builds(lambda: root / f"out-{os.getpid()}-{next(counter)}")


# -- settings (the profiles are registered in conftest.py) --
def fuzz_settings(examples: int, **changes: Any):
    """This test's settings: the profile of the run (JUPYTER_TUNE_FUZZ=long: 20x the examples) with
    ``examples`` examples in the default profile."""
    from hypothesis import settings

    long = os.environ.get("JUPYTER_TUNE_FUZZ", "").lower() == "long"
    profile = settings.get_profile("jupyter-tune-fuzz-long" if long else "jupyter-tune-fuzz")
    return settings(profile, max_examples=examples * (20 if long else 1), **changes)
