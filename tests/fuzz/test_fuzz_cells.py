"""Fuzz ``POST /jupyter-tune/cells``: every action of ``GET templates`` with params drawn from the declarations
(TuningParams, ActionParams), through ``render_cells`` and through a real jupyter server.

The invariant: a 400 (CellsError, a ParameterError) naming every invalid parameter, or a 200 whose cells the
engine accepts (``engine_problems``: every code cell parses; its jt.tune(...) values pass
TuningParams.from_json and its graders build; each gated call's literal arguments pass the gate's
declarations; a job it names is in the store; an export's destination passes jobs/guard.py); never a 5xx, never
a change to the job store. The route answers as render_cells does.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jupyter_tune as jt
from jupyter_tune.cells import ACTIONS, render_cells
from jupyter_tune.jobs.guard import UnsafeDestinationError, check_destination
from jupyter_tune.jobs.store import JobStore
from jupyter_tune.params import ActionParams, ParameterError, TuningParams
from jupyter_tune.params.arguments import ExportArgs, SplitArgs
from jupyter_tune.params.gate import check_values
from jupyter_tune.params.kinds import JOB_ID
from tests.support.lab_server import free_port
from tests.support.store_digest import folder_digest

from .declared import (
    JOB_IDS_BAD,
    TEMPLATES_BAD,
    TEMPLATES_OK,
    Arg,
    KindStrategies,
    Opaque,
    arguments,
    declared,
    fuzz_settings,
    late_unless,
)
from .kinds import GRADERS_BAD, TUNE_ALIASES, TUNE_LATE, existing_paths
from .outcomes import Accepted, Violation, call

TOKEN = secrets.token_hex(16)
DECLARED = {d.name: d for d in declared(TuningParams) + declared(ActionParams)}


# -- the store the cells name, and a real server on it --
@pytest.fixture(scope="module")
def cells_store(fuzz_home, tmp_path_factory) -> JobStore:
    """Jobs in every state the actions care about (records only: cells never load a model)."""
    from tests.support.fixtures import make_job

    store = JobStore()
    make_job(store, "done", state="JOB_STATE_SUCCEEDED")
    make_job(store, "failed", state="JOB_STATE_FAILED")
    make_job(store, "running", state="JOB_STATE_RUNNING")
    return store


@pytest.fixture(scope="module")
def server(cells_store, fuzz_home, tmp_path_factory):
    """``jupyter server`` with the jupyter_tune extension, on the fuzzer's store; yields its base URL."""
    root = tmp_path_factory.mktemp("server-root")
    port = free_port()
    env = {**os.environ, "JUPYTER_TUNE_HOME": str(fuzz_home), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_DATA_DIR": str(root / "data")}
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
           f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.jpserver_extensions={'jupyter_tune': True}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, _ = request(url, "GET", "schema")
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        request(url, "GET", "jobs")  # the reconciler's first pass (it may create the store's lock files)
        time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


def request(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"{url}/jupyter-tune/{path}", data=body, method=method,
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode("utf-8", "replace")


# -- what the engine would do with a cell --
def _literal(node: ast.AST, env: dict[str, Any]) -> tuple[bool, Any]:
    """(known, value) of an argument in a cell: a literal, or a name assigned a literal earlier."""
    if isinstance(node, ast.Name):
        return (node.id in env, env.get(node.id))
    try:
        return True, ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return False, None


def _call_values(fn: Any, call_node: ast.Call, env: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments whose values the cell states (bound to ``fn``'s parameter names)."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    values = {}
    for p, node in zip(params, call_node.args, strict=False):
        known, value = _literal(node, env)
        if known:
            values[p.name] = value
    for kw in call_node.keywords:
        known, value = _literal(kw.value, env)
        if kw.arg and known:
            values[kw.arg] = value
    return values


def engine_problems(cells: list[dict[str, str]], store: JobStore) -> list[str]:
    """Why the engine would refuse these cells, run in a kernel on this store ([] when it would not)."""
    problems: list[str] = []
    env: dict[str, Any] = {}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError as e:
            return [f"the cell does not parse: {e}"]
        for node in tree.body:
            for call_node in [n for n in ast.walk(node) if isinstance(n, ast.Call)]:
                problems += _call_problems(call_node, env, store)
            if isinstance(node, ast.Assign):
                known, value = _literal(node.value, env)
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        if known:
                            env[target.id] = value
                        else:
                            env.pop(target.id, None)
    return problems


def _call_problems(node: ast.Call, env: dict[str, Any], store: JobStore) -> list[str]:
    func = node.func
    if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
        return []
    owner, name = func.value.id, func.attr
    try:
        if owner == "jt" and name == "tune":
            values = {kw.arg: v for kw in node.keywords for known, v in [_literal(kw.value, env)] if known}
            values = {k: v for k, v in values.items() if k not in ("train_dataset", "validation_dataset")
                      or isinstance(v, str) or v is None}
            params = TuningParams.from_json(values)
            if params.method == "grpo":
                from jupyter_tune.graders.spec import graders_from_specs

                graders_from_specs(params.graders)
        elif owner == "jt" and name == "split":
            values = _call_values(jt.split, node, env)
            check_values(SplitArgs, {k: v for k, v in values.items() if k != "data"}, what="jt.split",
                         python_data=False)
        elif owner == "jt" and name in ("get_job", "load_model", "compare_jobs") and node.args:
            known, value = _literal(node.args[0], env)
            if not known:
                return []
            if name == "load_model":  # a base model (any non-empty name) or a job: the template says which
                if not (isinstance(value, str) and value.strip()):
                    return [f"jt.load_model({value!r}): not a model"]
                return []
            for job_id in value if name == "compare_jobs" else [value]:
                if not (isinstance(job_id, str) and JOB_ID.fullmatch(job_id) and store.exists(job_id)):
                    return [f"jt.{name}: no job {job_id!r} in the store"]
        elif owner == "jt" and hasattr(getattr(jt, name, None), "__gate__"):
            fn = getattr(jt, name)
            check_values(fn.__gate__, _call_values(fn, node, env), what=f"jt.{name}", python_data=False)
        elif owner == "job" and name == "export":
            values = _call_values(jt.export, ast.Call(node.func, [ast.Constant("job")] + node.args, node.keywords),
                                  env)
            check_values(ExportArgs, values, what="job.export", python_data=False)
            dest = values.get("dest")
            if isinstance(dest, str):
                try:
                    check_destination(dest, kind="folder", overwrite=False, store_root=store.root)
                except UnsafeDestinationError as e:
                    return [f"job.export: {e}"]
                except FileExistsError as e:
                    if os.path.isabs(dest):
                        return [f"job.export: {e}"]
    except (ParameterError, ValueError) as e:
        return [f"{owner}.{name}: {e}"]
    return []


# -- the params each action reads, drawn from their declarations (JSON values only) --
def json_kinds(fuzz_data: dict[str, Path], store: Path, out: Path) -> KindStrategies:
    files = [str(p) for p in fuzz_data.values()] + ["relative/data.jsonl"]
    in_store = [str(store), str(store / "jobs"), str(store / "jobs" / "done" / "export"), str(store / "x")]
    counter = iter(range(10**9))
    return KindStrategies({
        "dataset": (st.sampled_from(files), st.sampled_from(["", "   ", 5, 1.5, True, {"a": 1}, [1], ["a.jsonl"],
                                                             [{"input_text": "a"}], []])),
        "template": (st.sampled_from([t for t in TEMPLATES_OK if t is None or isinstance(t, str)]),
                     st.sampled_from([t for t in TEMPLATES_BAD if isinstance(t, (str, int, list))])),
        "job": (st.sampled_from(["done", "failed", "running", "no-such-job"]),
                st.sampled_from([j for j in JOB_IDS_BAD if not isinstance(j, Opaque)])),
        "path": (st.one_of(st.builds(lambda: str(out / f"export-{next(counter)}")), st.sampled_from(in_store),
                           st.sampled_from(["exports/x", "~/x", *map(str, existing_paths(out))])),
                 st.sampled_from(["", "   ", 5, [], ["a"], True, 1.5, {"a": 1}])),
        "model": (st.sampled_from([str(out), "HuggingFaceTB/SmolLM2-135M-Instruct", "no-such/model", "done"]),
                  st.sampled_from(["", "   ", 5, True, None, ["x"]])),
    })


JSON_GRADERS_OK = (None, [], [{"kind": "label_match"}],
                   [{"kind": "python", "source": "def grade(sample, item):\n    return 1.0"}],
                   [{"kind": "string_check", "operation": "ilike", "reference": "{{ item.label }}"}],
                   [{"type": "multi", "graders": [{"kind": "label_match"}, {"kind": "text_similarity"}]}])
JSON_GRADERS_BAD = tuple(g for g in GRADERS_BAD if "Opaque" not in repr(g) and "built-in" not in repr(g)) + (
    [{"kind": "python", "source": "def grade(sample):\n    return 1"}],
    [{"kind": "python", "source": "def grade(sample, item):\n    return 1", "time_limit": None}],
    [{"kind": "string_check"}, {"kind": "string_check"}])


def action_declared(action: str) -> list:
    reads = ACTIONS[action].params if action != "tune" else tuple(
        d.name for d in declared(TuningParams)) + ("holdout",)
    return [DECLARED[n] for n in reads if n in DECLARED]


def cells_arguments(action: str, kinds: KindStrategies) -> st.SearchStrategy[list[Arg]]:
    decl = action_declared(action)
    names = {d.name for d in decl}
    always = tuple(n for n in ("train_dataset", "dataset", "job_id") if n in names)
    return arguments(decl, kinds, most=4, always=always, unknown=True, aliases=TUNE_ALIASES, late=TUNE_LATE,
                     cheap={"graders": st.sampled_from(JSON_GRADERS_OK),
                            "job_ids": st.lists(st.sampled_from(["done", "failed", "running", "no-such-job"]),
                                                min_size=1, max_size=3),
                            "holdout": st.one_of(st.none(), st.sampled_from([0.05, 0.1, 0.25, 0.5]))},
                     bad={"graders": st.sampled_from(JSON_GRADERS_BAD).map(late_unless(_not_a_list_of_dicts)),
                          "job_ids": st.sampled_from([[], "done", [5], ["Bad Id!"], 5, [None]]).map(
                              late_unless(lambda v: not (isinstance(v, list) and all(isinstance(i, str) and i
                                                                                      for i in v))))})


def _not_a_list_of_dicts(value: Any) -> bool:
    """What TuningParams.graders' own type check (list[dict]) refuses; the items' contents are a rule's."""
    return not (isinstance(value, list) and all(isinstance(v, dict) for v in value))


@pytest.fixture(scope="module")
def cells_kinds(fuzz_data, fuzz_home, tmp_path_factory, cells_store):
    return json_kinds(fuzz_data, fuzz_home, tmp_path_factory.mktemp("cells-out"))


def _render(action: str, store: JobStore):
    def render(**params):
        cells = render_cells(action, params, store)
        problems = engine_problems(cells, store)
        job_id = params.get("job_id")
        if job_id is not None and not (isinstance(job_id, str) and JOB_ID.fullmatch(job_id) and store.exists(job_id)):
            problems.append(f"job_id: the cell loads job {job_id!r}, which is not in the store")
        if problems:
            raise Accepted("a 200 cell", problems, "\n---\n".join(c["source"] for c in cells))
        return cells
    return render


def _plain(value: Any) -> bool:
    """A value that JSON carries as it is: the types json.loads makes, finite numbers."""
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) in (str, int, bool, type(None)):
        return True
    if type(value) is list:
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _jsonable(args: list[Arg]) -> bytes | None:
    try:
        return json.dumps({a.name: a.value for a in args}).encode()
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("action", sorted(ACTIONS))
@fuzz_settings(40)
@given(data=st.data())
def test_cells(action, data, cells_kinds, cells_store, fuzz_home, server):
    args = data.draw(cells_arguments(action, cells_kinds), label="params")
    what = f"POST cells {action!r}"
    declared_names = [d.name for d in action_declared(action)]
    cells, refused = call(what, _render(action, cells_store), args, store=fuzz_home, declared=declared_names,
                          every=True)
    if isinstance(refused, Violation):
        return  # a known gap (known.py)
    params = _jsonable(args)
    if params is None or not all(_plain(a.value) for a in args):
        return  # a value JSON cannot carry as it is (a tuple, a numpy number, NaN ...): the route never sees it
    before = folder_digest(fuzz_home)
    status, body = request(server, "POST", "cells", b'{"action": "%s", "params": %s}' % (action.encode(), params))
    assert folder_digest(fuzz_home) == before, f"{what}: the route changed the job store"
    assert status < 500, f"{what}({params!r}): {status} {body}"
    if refused is None:
        assert status == 200 and body == {"cells": cells}, f"{what}({params[:300]!r}): {status} {body}"
    elif status == 400 and str(body.get("message", "")).startswith("The request body"):
        pass  # the body itself refused first (nested too deep), before any parameter
    else:  # the same refusal as render_cells'
        assert status == 400 and body["message"] == str(refused), f"{what}({params[:300]!r}): {status} {body}"


# -- the request body itself --
BODIES = st.one_of(
    st.sampled_from([b"", b"{", b"[]", b"null", b"5", b'"tune"', b"{not json", b"\xff\xfe", b'{"action": NaN}',
                     b'{"action": "tune", "action": "view"}', b'{"action": "view", "params": {"job_id": "done"}, '
                     b'"extra": 1}', b'{"params": {}}', b'{"action": 5}', b'{"action": null}',
                     b'{"action": "nope"}', b'{"action": "view", "params": []}', b'{"action": "view", "params": ""}',
                     b'{"action": "view", "params": 0}', b'{"action": "view", "params": false}',
                     b'{"action": "view", "params": [["job_id", "done"]]}', b"[" * 40 + b"]" * 40,
                     b'{"action": "tune", "params": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
                     b'{"action": "view", "params": {"job_id": "done", "job_id": "failed"}}',
                     b'{"action": "tune", "params": {"train_dataset": "t.jsonl", "epochs": 1e999}}',
                     b'{"action": "' + b"x" * 2_000_000 + b'"}']),
    st.binary(max_size=64),
    st.builds(lambda action, params: json.dumps({"action": action, "params": params}).encode(),
              st.one_of(st.sampled_from(sorted(ACTIONS)), st.text(max_size=8)),
              st.one_of(st.none(), st.lists(st.integers(), max_size=2), st.text(max_size=4),
                        st.dictionaries(st.text(max_size=6), st.integers(), max_size=2))),
)


@fuzz_settings(80)
@given(body=BODIES)
def test_cells_request_bodies(body, server, fuzz_home):
    """Whatever the body, a 4xx saying why (or a 200 for a body that is a valid request); never a 5xx, never a
    change to the store. A params that is not a JSON object is refused, never taken as {}."""
    before = folder_digest(fuzz_home)
    status, reply = request(server, "POST", "cells", body)
    assert folder_digest(fuzz_home) == before
    assert status < 500, (body[:200], status, reply)
    if status >= 400:
        assert isinstance(reply, dict) and reply.get("message"), (body[:200], status, reply)
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        parsed = json.loads(body)
        if (isinstance(parsed, dict) and set(parsed) == {"action", "params"} and parsed["action"] in ACTIONS
                and not isinstance(parsed["params"], (dict, type(None)))):
            assert status == 400 and "params" in reply["message"], (body[:200], status, reply)
