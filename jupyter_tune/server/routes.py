"""Handlers and the route table of the ``/jupyter-tune/`` REST API."""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from ..cells import CellsError, actions, render_cells
from ..jobs.job import TuningJob, delete_job
from ..jobs.store import InvalidJobIdError, JobNotFoundError, JobStore, validate_job_id
from ..params import ParameterError, schema

NAMESPACE = "jupyter-tune"

class BadRequest(ValueError):
    """The request body is not what the route takes (answers 400)."""


class BodyTooLarge(ValueError):
    """The request body is over MAX_BODY_BYTES (answers 413)."""


# Domain errors and the HTTP status they answer with; anything else is a 500.
ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidJobIdError, 400),
    (JobNotFoundError, 404),
    (CellsError, 400),
    (ParameterError, 400),
    (json.JSONDecodeError, 400),
    (BadRequest, 400),
    (BodyTooLarge, 413),
)


def _status_for(exc: BaseException | None) -> int | None:
    for cls, status in ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return None


# The panel sends a few kB; a big body is refused without being kept in memory or parsed.
MAX_BODY_BYTES = 1 << 20
_MAX_BODY_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    if limit < 0:
        return 0
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def _reject_constant(name: str) -> None:
    raise BadRequest(f"The request body is not valid JSON: {name} is not a JSON value")


@tornado.web.stream_request_body
class TuneHandler(APIHandler):
    """Base handler: a fresh JobStore per request and domain errors as JSON ``{"message": ...}``.

    Bodies are streamed in and counted, so an oversized one is answered 413 after being read in chunks
    and dropped, never held whole or parsed on the event loop.
    """

    _body: bytearray
    _body_size: int

    @property
    def store(self) -> JobStore:
        return JobStore()  # root from $JUPYTER_TUNE_HOME, read on each request

    def data_received(self, chunk: bytes) -> None:
        if not hasattr(self, "_body"):
            self._body, self._body_size = bytearray(), 0
        self._body_size += len(chunk)
        if self._body_size <= MAX_BODY_BYTES:
            self._body += chunk

    def read_json(self) -> dict[str, Any]:
        size = getattr(self, "_body_size", 0)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"The request body has {size:,} bytes; at most {MAX_BODY_BYTES:,} are accepted")
        raw = bytes(getattr(self, "_body", b"")) or b"{}"
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError as e:
            raise BadRequest(f"The request body is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                             f"{e.start})") from None
        except (json.JSONDecodeError, RecursionError, ValueError) as e:
            if isinstance(e, BadRequest):
                raise
            raise BadRequest(f"The request body is not valid JSON: {e}"[:300]) from None
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        if _depth(body, _MAX_BODY_DEPTH) > _MAX_BODY_DEPTH:
            raise BadRequest(f"The request body is nested deeper than {_MAX_BODY_DEPTH} levels")
        return body

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if _status_for(value) is not None:
            self.log.info("%s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status = _status_for(exc)
        if status is None and isinstance(exc, tornado.web.HTTPError):
            return super().write_error(status_code, **kwargs)
        if status is None:  # an unexpected error: still say what happened, the panel shows it
            status = 500
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": str(exc) or type(exc).__name__, "reason": type(exc).__name__}))


class JobsHandler(TuneHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        store = self.store
        self.finish({"jobs": [store.summary(r) for r in store.list()]})


class JobHandler(TuneHandler):
    @tornado.web.authenticated
    def get(self, job_id: str) -> None:
        store = self.store
        record = store.read(validate_job_id(job_id))
        self.finish({**record, "latest_metrics": _latest_metrics(store.read_metrics(job_id))})

    @tornado.web.authenticated
    async def delete(self, job_id: str) -> None:
        store = self.store
        store.read(validate_job_id(job_id))  # 400 / 404 before any work
        # A running job is cancelled and waited for (up to 30 s): off the event loop.
        await IOLoop.current().run_in_executor(None, delete_job, job_id)
        self.set_status(204)
        self.finish()


class CancelJobHandler(TuneHandler):
    @tornado.web.authenticated
    def post(self, job_id: str) -> None:
        store = self.store
        job = TuningJob(validate_job_id(job_id), store)
        job.cancel()
        self.finish(store.summary(store.read(job_id)))


class TemplatesHandler(TuneHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"actions": actions()})


class CellsHandler(TuneHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        body = self.read_json()
        if "action" not in body:
            raise CellsError("The request body needs an 'action'")
        unknown = sorted(set(body) - {"action", "params"})
        if unknown:
            raise CellsError(f"Unknown field(s) in the request body: {', '.join(unknown)}")
        if not isinstance(body["action"], str):
            raise CellsError(f"'action' must be a string, got {type(body['action']).__name__}")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise CellsError(f"'params' must be a JSON object, got {type(params).__name__}")
        self.finish({"cells": render_cells(body["action"], params)})


class SchemaHandler(TuneHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(schema())


def _latest_metrics(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last logged step, its train and eval lines merged (later lines win ties)."""
    if not rows:
        return None
    last_step = rows[-1].get("step")
    merged: dict[str, Any] = {}
    for row in rows:
        if row.get("step") == last_step:
            for k, v in row.items():
                merged[k] = v
    return merged


# The job id part matches anything but '/', so a bad id reaches validate_job_id and gets a 400.
_JOB = r"(?P<job_id>[^/]+?)"
ROUTES = [
    (r"jobs", JobsHandler),
    (rf"jobs/{_JOB}(?::|%3[aA])cancel", CancelJobHandler),
    (rf"jobs/{_JOB}", JobHandler),
    (r"templates", TemplatesHandler),
    (r"cells", CellsHandler),
    (r"schema", SchemaHandler),
]


def setup_route_handlers(web_app: Any) -> None:
    """Add the ``/jupyter-tune/`` routes to the server's tornado application."""
    base_url = web_app.settings["base_url"]
    handlers = [(url_path_join(base_url, NAMESPACE, pattern) + "/?$", handler) for pattern, handler in ROUTES]
    web_app.add_handlers(".*$", handlers)
