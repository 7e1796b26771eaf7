"""The REST API under hostile input (issue 11): corrupt job folders, NaN on disk, bad bodies, huge bodies,
and a bounded random fuzz of every route. Nothing answers 500."""

from __future__ import annotations

import json
import random
import time

import pytest
import tornado.httpclient

from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import JobStore
from jupyter_tune.server.routes import MAX_BODY_BYTES

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tune_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_tune": True}}}


async def call(jp_fetch, method: str, path: str, body: bytes | str | None = None) -> tuple[int, bytes]:
    kwargs = {"method": method}
    if body is not None or method == "POST":
        kwargs.update(body=body if body is not None else b"", allow_nonstandard_methods=True)
    try:
        response = await jp_fetch("jupyter-tune", *path.split("/"), **kwargs)
        return response.code, response.body
    except tornado.httpclient.HTTPClientError as e:
        return e.code, e.response.body if e.response is not None else b""


def strict(body: bytes):
    def refuse(name):
        raise ValueError(f"the body holds {name}")
    return json.loads(body, parse_constant=refuse)


def make_jobs(store: JobStore) -> None:
    store.create("good-job", {"state": JobState.SUCCEEDED.value, "create_unix": time.time(),
                              "params": {"base_model": "tiny"}, "progress": {"step": 2}})
    store.append_metrics("good-job", {"step": 1, "train_total_loss": 1.0})
    store.create("bad-job", {"state": JobState.FAILED.value})
    (store.job_dir("bad-job") / "job.json").write_bytes(b'{"id": "bad-job", "state": "\xff"}')
    store.create("list-job", {"state": JobState.FAILED.value})
    (store.job_dir("list-job") / "job.json").write_text("[]")
    store.create("nan-job", {"state": JobState.SUCCEEDED.value})
    # Written by an older version: NaN on disk must not reach the browser.
    (store.job_dir("nan-job") / "metrics.jsonl").write_text('{"step": 1, "train_total_loss": NaN}\n')


async def test_corrupt_jobs_are_listed_as_unreadable_and_can_be_deleted(jp_fetch, tune_home):
    store = JobStore()
    make_jobs(store)
    code, body = await call(jp_fetch, "GET", "jobs")
    assert code == 200
    jobs = {j["id"]: j for j in strict(body)["jobs"]}
    assert set(jobs) == {"good-job", "bad-job", "list-job", "nan-job"}
    assert jobs["good-job"]["state"] == JobState.SUCCEEDED.value and "unreadable" not in jobs["good-job"]
    assert jobs["bad-job"]["unreadable"] and "not UTF-8" in jobs["bad-job"]["error"]["message"]
    assert "holds a JSON list" in jobs["list-job"]["error"]["message"]
    code, body = await call(jp_fetch, "GET", "jobs/bad-job")
    assert code == 200 and strict(body)["state"] == JobState.FAILED.value
    code, body = await call(jp_fetch, "POST", "jobs/bad-job:cancel")
    assert code == 200 and strict(body)["state"] == JobState.FAILED.value
    code, body = await call(jp_fetch, "GET", "jobs/nan-job")
    assert code == 200 and strict(body)["latest_metrics"] == {"step": 1, "train_total_loss": None}
    for job_id in ("bad-job", "list-job"):
        assert (await call(jp_fetch, "DELETE", f"jobs/{job_id}"))[0] == 204
    code, body = await call(jp_fetch, "GET", "jobs")
    assert {j["id"] for j in strict(body)["jobs"]} == {"good-job", "nan-job"}


@pytest.mark.parametrize("body,status,needle", [
    (b'{"action": "tune", "params": {"tuned_model_display_name": "\xff"}}', 400, "not UTF-8"),
    (b'{"action": ["tune"], "params": {}}', 400, "'action' must be a string"),
    (b'{"action": {"a": 1}, "params": {}}', 400, "'action' must be a string"),
    (b'{"action": "tune", "params": [1, 2]}', 400, "  - params: must be a JSON object"),
    (b'{"action": "tune", "params": []}', 400, "  - params: must be a JSON object"),  # never taken as {}
    (b'{"action": "tune", "params": ""}', 400, "  - params: must be a JSON object"),
    (b'{"action": "tune", "params": {"learning_rate": NaN}}', 400, "NaN is not a JSON value"),
    (b'{"action": "tune", "params": {"epochs": 1' + b"0" * 5000 + b"}}", 400, "not valid JSON"),
    (b'{"action": "tune", "params": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, 400, "not valid JSON"),
    (b'{"action": "tune", "params": ' + b"[" * 60 + b"]" * 60 + b"}", 400, "nested deeper"),
    (b'"just a string"', 400, "must be a JSON object"),
    (b"\x00\x01\x02", 400, "not valid JSON"),
])
async def test_bad_bodies_are_400(jp_fetch, body, status, needle):
    code, reply = await call(jp_fetch, "POST", "cells", body)
    assert code == status, reply
    assert needle in strict(reply)["message"]


async def test_a_huge_body_is_413_and_quick(jp_fetch):
    body = b'{"action": "tune", "params": {"prompt_template": "' + b"x" * (8 * MAX_BODY_BYTES) + b'"}}'
    start = time.monotonic()
    code, reply = await call(jp_fetch, "POST", "cells", body)
    assert code == 413 and "at most 1,048,576" in strict(reply)["message"]
    assert time.monotonic() - start < 30
    code, _ = await call(jp_fetch, "GET", "templates")  # the server still answers
    assert code == 200


async def test_job_id_with_a_trailing_newline_is_400(jp_fetch, tune_home):
    make_jobs(JobStore())
    for path in ("jobs/good-job\n", "jobs/good-job\n:cancel"):
        assert (await call(jp_fetch, "GET" if "cancel" not in path else "POST", path))[0] == 400


# -- a bounded, seeded fuzz of every route --
ROUTES = [("GET", "jobs"), ("GET", "jobs/{id}"), ("DELETE", "jobs/{id}"), ("POST", "jobs/{id}:cancel"),
          ("GET", "templates"), ("GET", "schema"), ("POST", "cells")]
PARAM_NAMES = ["base_model", "train_dataset", "epochs", "adapter_size", "learning_rate_multiplier",
               "prompt_template", "max_seq_length", "seed", "target_modules", "learning_rate", "job_id",
               "dataset", "prompt", "max_output_tokens", "task_type", "no_such_param"]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.choice(["none", "bool", "int", "bigint", "float", "str", "unicode", "list", "dict"]
                      if depth < 3 else ["none", "int", "str"])
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 3, 8, 2**31, 2**32, -(2**63), 10**18])
    if kind == "bigint":
        return 10 ** rng.randint(20, 4000)
    if kind == "float":
        return rng.choice([0.0, -0.0, 1e-300, 1e308, 0.5, -3.5, 1e-9])
    if kind == "str":
        return rng.choice(["", "tune", "view", "../etc", "x" * 10_000, "{input_text:>999}", "a\nb", "${x}"])
    if kind == "unicode":
        return "".join(chr(rng.randint(1, 0x10FFFF)) for _ in range(rng.randint(1, 20))
                       ).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(PARAM_NAMES): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def random_body(rng: random.Random) -> bytes:
    mode = rng.random()
    if mode < 0.6:
        body = {"action": rng.choice(["tune", "evaluate", "generate", "test", "view", "nope", 3, None, ["x"]]),
                "params": {rng.choice(PARAM_NAMES): random_value(rng) for _ in range(rng.randint(0, 5))}}
        if rng.random() < 0.2:
            body[rng.choice(["extra", "params", "action"])] = random_value(rng)
        return json.dumps(body).encode()
    if mode < 0.75:
        return json.dumps(random_value(rng)).encode()
    if mode < 0.85:  # cut-off or garbage JSON
        text = json.dumps({"action": "tune", "params": {"epochs": 2}}).encode()
        return text[: rng.randint(0, len(text))]
    if mode < 0.95:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 64)))
    return b'{"action": "tune", "params": {"prompt": "' + b"y" * rng.randint(MAX_BODY_BYTES - 100,
                                                                             MAX_BODY_BYTES * 2) + b'"}}'


def random_id(rng: random.Random) -> str:
    return rng.choice(["good-job", "bad-job", "list-job", "nan-job", "no-such-job", "UPPER", "a" * 65, "..",
                       "a b", "%00", "job\n", "\u00e9t\u00e9", "-", "a:b", "x" * 64])


async def test_rest_fuzz_never_answers_500(jp_fetch, tune_home):
    make_jobs(JobStore())
    rng = random.Random(11)
    counts: dict[int, int] = {}
    for _ in range(300):
        method, pattern = rng.choice(ROUTES)
        path = pattern.format(id=random_id(rng))
        body = random_body(rng) if method == "POST" and pattern == "cells" or rng.random() < 0.1 else None
        if method in ("GET", "DELETE") and body is not None:
            body = None  # tornado's client refuses bodies on these
        code, reply = await call(jp_fetch, method, path, body)
        counts[code] = counts.get(code, 0) + 1
        assert code < 500, (method, path, (body or b"")[:200], reply[:500])
        if reply and code != 204:
            strict(reply)  # always JSON a browser can parse
    print(f"REST fuzz: 300 requests, statuses {dict(sorted(counts.items()))}")
    assert set(counts) <= {200, 204, 400, 404, 413}
