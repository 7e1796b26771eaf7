"""The one gate: every public entry point's arguments are checked here, before anything is read, written or
started, against declarations of the same kind as TuningParams' (type, choices, range, kind).

An entry point declares its arguments once, as a dataclass in ``params/arguments.py`` (torch-free: the server
and the cells check the same declarations), and is wrapped with ``@checked(TheirArgs)``. A bad call raises
``ParameterError`` (a ValueError) listing every problem, each naming the argument, its value and what is
allowed; unknown or missing arguments are refused the same way. The same declarations feed ``schema()``,
which the side panel's form reads, so the panel, the REST API and Python refuse the same values.

Kinds beyond the JSON types (``_f(kind=...)``), for Python-only values:
- "dataset": a file path (str or os.PathLike), a list of dicts or a pandas DataFrame;
- "job": a job handle (anything with ``.id``) or a job id (``[a-z0-9-]{1,64}``);
- "path": a non-empty str or os.PathLike;
- "model_like": a loaded model, a job, or a non-empty model id / folder / .gguf path;
- "template": a prompt template with plain ``{field}`` placeholders only;
- "stops", "step", "graders": stop sequences, a checkpoint step, a list of graders.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from . import ParameterError, field_problems

Rules = Callable[[dict[str, Any]], list[str]]


def declared_problems(spec: type, values: dict[str, Any], *, python_data: bool = True) -> list[str]:
    """field_problems for every declared argument present in ``values``."""
    hints = typing.get_type_hints(spec)
    return [p for f in dataclasses.fields(spec) if f.name in values
            for p in field_problems(f.name, values[f.name], hints[f.name], f.metadata, python_data=python_data)]


def check_values(spec: type, values: dict[str, Any], rules: Rules | None = None, *, what: str,
                 python_data: bool = True) -> dict[str, Any]:
    """Raise ParameterError listing every problem of ``values`` against ``spec`` (fields, then ``rules``,
    which run only once every field passed its own check); return the values unchanged."""
    problems = declared_problems(spec, values, python_data=python_data)
    if not problems and rules is not None:
        problems = rules(values)
    if problems:
        raise ParameterError.listing(problems, what)
    return values


def checked(spec: type, rules: Rules | None = None, *, name: str | None = None):
    """Decorate a public entry point so that its call is checked against ``spec`` (and ``rules``) before its
    body runs. The spec's fields must be parameters of the function with the same defaults (checked here,
    at import, so that a declaration cannot drift from the signature)."""

    def wrap(fn):
        sig = inspect.signature(fn)
        label = name or f"jt.{fn.__name__}"
        for f in dataclasses.fields(spec):
            p = sig.parameters.get(f.name)
            assert p is not None, f"{label}: declared argument {f.name!r} is not a parameter"
            default = f.default if f.default is not dataclasses.MISSING else inspect.Parameter.empty
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            assert p.default is inspect.Parameter.empty or p.default == default, (
                f"{label}: {f.name}'s default {p.default!r} differs from its declaration's {default!r}")

        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:  # an unknown keyword, a missing argument, too many positional ones
                takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
                unknown = [] if takes_any else [k for k in kwargs if k not in sig.parameters]
                # bind names only its first complaint (a missing argument hides an unknown one): name each
                problems = [f"{k}: {label} has no argument {k!r}" for k in unknown] or [f"{label}: {e}"]
                if unknown:
                    try:
                        sig.bind(*args, **{k: v for k, v in kwargs.items() if k not in unknown})
                    except TypeError as rest:
                        problems.append(f"{label}: {rest}")
                known = {k: v for k, v in kwargs.items() if k not in unknown}
                try:  # and every given value's own problems, so that one refusal lists them all
                    given = sig.bind_partial(*args, **known).arguments
                    problems += declared_problems(spec, {k: v for k, v in given.items()
                                                         if k in {f.name for f in dataclasses.fields(spec)}})
                except TypeError:
                    pass
                raise ParameterError.listing(problems, f"arguments of {label}") from None
            bound.apply_defaults()
            values = {f.name: bound.arguments[f.name] for f in dataclasses.fields(spec)
                      if f.name in bound.arguments}
            check_values(spec, values, rules, what=f"arguments of {label}")
            return fn(*bound.args, **bound.kwargs)

        inner.__gate__ = spec  # type: ignore[attr-defined]
        return inner

    return wrap
