"""OpenAI's ``python`` grader: ``grade(sample, item) -> float in [0, 1]``, given as source or as a function.

- ``PythonGrader(source="def grade(sample, item): ...")`` (the spec form GRPO jobs and the panel's cells use):
  the source is compiled and its ``grade`` checked here without running it; it runs in a worker process
  started with multiprocessing's spawn method (graders/worker.py) that stays up from row to row. A call past
  ``time_limit`` kills the process and starts a new one, so nothing keeps running.
- ``PythonGrader(fn)`` (a function, closure or lambda from the notebook): run in a thread with the time limit
  (base.call_in_thread); after its first time-out it is not called again while that call still runs, and the
  further rows are reported as skipped.

The source is kept for job.json and the Details tab (``to_json()``).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from jupyter_tune.graders.base import (
    DEFAULT_TIME_LIMIT,
    call_in_thread,
    check_name,
    check_threshold,
    check_time_limit,
    describe,
    options_checked,
    refuse,
)
from jupyter_tune.params import ParameterError

KIND = "python"
WANT = "grade(sample, item) -> float: two arguments, the answer (str) and the row (dict)"


def source_of(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return repr(fn)


_HAS_DEFAULT = object()  # a parameter's default in a signature read from source (the value is not evaluated)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> inspect.Signature:
    """A function's signature from its source, without running it."""
    a, P = node.args, inspect.Parameter
    positional = a.posonlyargs + a.args
    first_default = len(positional) - len(a.defaults)
    params = [P(arg.arg, P.POSITIONAL_ONLY if i < len(a.posonlyargs) else P.POSITIONAL_OR_KEYWORD,
                default=_HAS_DEFAULT if i >= first_default else P.empty) for i, arg in enumerate(positional)]
    if a.vararg:
        params.append(P(a.vararg.arg, P.VAR_POSITIONAL))
    params += [P(arg.arg, P.KEYWORD_ONLY, default=P.empty if d is None else _HAS_DEFAULT)
               for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.kwarg:
        params.append(P(a.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(params)


def check_arity(signature: inspect.Signature, option: str, value) -> None:
    """ParameterError unless a function of this signature can be called as f(sample, item)."""
    try:
        signature.bind("sample", {})
    except TypeError as e:
        shown = str(signature).replace(repr(_HAS_DEFAULT), "...")
        raise refuse(KIND, option, value, f"grade{shown} cannot be called as grade(sample, item) ({e}); "
                                          f"expected {WANT}") from None


def _dedent(source: str) -> str:
    return textwrap.dedent(source)


def check_source(source) -> None:
    """A python grader's source checked without running it: it compiles, and it defines ``grade`` (or exactly
    one function) that takes (sample, item). A ``grade`` made otherwise (``grade = make()``) is checked when the
    worker runs the source."""
    if not isinstance(source, str) or not source.strip():
        raise refuse(KIND, "source", source, f"expected the text of def {WANT}")
    text = _dedent(source)
    try:
        tree = ast.parse(text)
        compile(tree, "<grader>", "exec")
    except SyntaxError as e:
        raise refuse(KIND, "source", source, f"it does not compile: {e.msg} (line {e.lineno}); expected the "
                                             f"text of def {WANT}") from None
    except ValueError as e:  # a null byte
        raise refuse(KIND, "source", source, f"it does not compile: {e}") from None
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    bound = set()
    for n in tree.body:
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, (ast.AnnAssign,
                                                                                            ast.AugAssign)) else []
        bound |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in n.names}
        if isinstance(n, ast.ClassDef):
            bound.add(n.name)
    if "grade" in bound:
        return  # grade = ... (or imported): the worker checks the function it finds
    node = defs.get("grade")
    if node is None:
        own = [n for name, n in defs.items() if not name.startswith("__")]
        if len(own) != 1:
            raise refuse(KIND, "source", source, f"it must define {WANT} (or exactly one function); it defines "
                                                 f"{len(own)} functions and no grade")
        node = own[0]
    if isinstance(node, ast.AsyncFunctionDef):
        raise refuse(KIND, "source", source, f"async def {node.name}: expected a plain def {WANT}")
    check_arity(_signature(node), "source", source)


def load_source(source: str, name: str = KIND):
    """Run the source (in the worker process) and return its function: ``grade`` if it defines one, else its
    only function. ValueError says what is wrong."""
    namespace: dict = {"__name__": f"jupyter_tune_grader_{name}"}
    filename = f"<grader {name}>"
    try:
        code = compile(_dedent(source), filename, "exec")
    except (SyntaxError, ValueError) as e:
        raise ValueError(f"its source does not compile: {getattr(e, 'msg', e)} (line {getattr(e, 'lineno', '?')})") \
            from None
    try:
        exec(code, namespace)  # noqa: S102 - the user's own grader
    except BaseException as e:  # noqa: BLE001 - a failing top level (SystemExit too) names itself
        raise ValueError(f"running its source failed: {describe(e)}") from None
    fn = namespace.get("grade")
    if not callable(fn):
        own = [v for k, v in namespace.items() if isinstance(v, types.FunctionType) and not k.startswith("__")
               and v.__code__.co_filename == filename]
        if len(own) != 1:
            raise ValueError(f"its source must define {WANT} (or exactly one function)")
        fn = own[0]
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn
    try:
        signature.bind("sample", {})
    except TypeError as e:
        raise ValueError(f"its {getattr(fn, '__name__', 'grade')}{signature} cannot be called as grade(sample, "
                         f"item) ({e}); expected {WANT}") from None
    return fn


@options_checked
@dataclass
class PythonGrader:
    """``fn(sample: str, item: dict) -> float in [0, 1]``, or ``source``: the text of ``def grade(sample,
    item)``. An exception, a time-out (``time_limit`` seconds, finite), NaN or a value outside [0, 1] scores
    the row 0 and is counted; the job goes on. Stop a source grader's worker process with ``close()`` (or a
    ``with`` block); garbage collection and the process's exit stop it too."""

    fn: Callable[[str, dict], float] | None = None
    name: str = "python"
    time_limit: float = DEFAULT_TIME_LIMIT
    pass_threshold: float = 1.0
    kind: str = field(default=KIND, init=False)  # the class says it; never an option
    source: str | None = None

    def __post_init__(self):
        self._worker = None
        check_name(KIND, self.name)
        self.time_limit = check_time_limit(KIND, self.time_limit)
        self.pass_threshold = check_threshold(KIND, self.pass_threshold)
        if (self.fn is None) == (self.source is None):
            raise ParameterError(f"python grader {self.name!r}: give fn (a function {WANT}) or source (its text), "
                                 "not both or neither")
        if self.source is not None:
            check_source(self.source)
            return
        if not callable(self.fn):
            raise refuse(KIND, "fn", self.fn, f"expected a function {WANT}")
        try:
            signature = inspect.signature(self.fn)
        except (TypeError, ValueError):  # a builtin without a signature: called as it is
            return
        check_arity(signature, "fn", self.fn)

    def _source_worker(self):
        if self._worker is None:
            from jupyter_tune.graders.worker import SourceWorker

            self._worker = SourceWorker(self.source, self.name, load_source)
        return self._worker

    def grade(self, sample: str, item: dict) -> float:
        if self.source is not None:  # in the worker process, under the time limit
            return self._source_worker().call(sample, item, self.time_limit)
        return self.fn(sample, item)

    def guarded_grade(self, sample: str, item: dict, time_limit: float | None = None):
        """grade under the time limit (``time_limit`` overrides the grader's): the worker process for source,
        a thread for a function (base.call_in_thread)."""
        limit = self.time_limit if time_limit is None else time_limit
        if self.source is not None:
            return self._source_worker().call(sample, item, limit)
        return call_in_thread(self, self.fn, (sample, item), limit)

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while one runs (source graders)."""
        return self._worker.pid if self._worker is not None else None

    def close(self) -> None:
        """Stop the worker process (a source grader); it starts again if the grader is used again."""
        if self._worker is not None:
            self._worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):  # copies and pickles carry the options, not the worker process
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._worker = None

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind,
                "source": self.source if self.source is not None else source_of(self.fn),
                "time_limit": self.time_limit, "pass_threshold": self.pass_threshold}
