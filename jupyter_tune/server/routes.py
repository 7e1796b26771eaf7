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

# Domain errors and the HTTP status they answer with; anything else is a 500.
ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidJobIdError, 400),
    (JobNotFoundError, 404),
    (CellsError, 400),
    (ParameterError, 400),
    (json.JSONDecodeError, 400),
)


def _status_for(exc: BaseException | None) -> int | None:
    for cls, status in ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return None


class TuneHandler(APIHandler):
    """Base handler: a fresh JobStore per request and domain errors as JSON ``{"message": ...}``."""

    @property
    def store(self) -> JobStore:
        return JobStore()  # root from $JUPYTER_TUNE_HOME, read on each request

    def read_json(self) -> dict[str, Any]:
        body = json.loads(self.request.body or b"{}")
        if not isinstance(body, dict):
            raise CellsError("The request body must be a JSON object")
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
        self.finish({"cells": render_cells(body["action"], body.get("params") or {})})


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
