"""Handlers and the route table of the ``/jupyter-tune/`` REST API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import PeriodicCallback

from ..cells import CellsError, actions, render_cells
from ..data.errors import DatasetError
from ..jobs.handle import cancel_job, delete_job
from ..jobs.queue import reconcile
from ..jobs.states import states_schema
from ..jobs.store import InvalidJobIdError, JobNotFoundError, JobStore, validate_job_id
from ..params import ParameterError, schema

NAMESPACE = "jupyter-tune"
# web_app.settings keys: the server's one JobStore and its reconciler.
STORE_SETTING = "jupyter_tune_store"
RECONCILER_SETTING = "jupyter_tune_reconciler"
# How often the server records dead jobs FAILED and starts queued ones (jobs/queue.reconcile).
RECONCILE_INTERVAL_S = 5.0

log = logging.getLogger(__name__)


class Reconciler:
    """The server's defined reconcile point: every RECONCILE_INTERVAL_S, ``queue.reconcile(store)`` in a worker
    thread (it reads job folders, asks psutil about pids and may start a job: never on the event loop).
    GET handlers only read, so a page refresh never writes the store."""

    def __init__(self, store: JobStore, interval_s: float = RECONCILE_INTERVAL_S):
        self.store, self.interval_s = store, interval_s
        self._callback: PeriodicCallback | None = None
        self._busy = False

    def start(self) -> None:
        """Start ticking on the running event loop (idempotent)."""
        if self._callback is None:
            self._callback = PeriodicCallback(self.tick, self.interval_s * 1000)
            self._callback.start()

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    async def tick(self) -> None:
        if self._busy:  # a slow disk: never two at once
            return
        self._busy = True
        try:
            await asyncio.to_thread(reconcile, self.store)
        except Exception as e:  # noqa: BLE001 - the next tick tries again; the server stays up
            log.warning("jupyter_tune: reconciling the job store failed: %s", e)
        finally:
            self._busy = False

class BadRequest(ValueError):
    """The request body is not what the route takes (answers 400)."""


class BodyTooLarge(ValueError):
    """The request body is over MAX_BODY_BYTES (answers 413)."""


class DataFileNotFound(FileNotFoundError):
    """check-dataset: no such file under the server's root (answers 404)."""


# Domain errors and the HTTP status they answer with; anything else is a 500.
ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidJobIdError, 400),
    (JobNotFoundError, 404),
    (CellsError, 400),
    (ParameterError, 400),
    (json.JSONDecodeError, 400),
    (BadRequest, 400),
    (BodyTooLarge, 413),
    (DatasetError, 400),
    (DataFileNotFound, 404),
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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: a repeated key is refused, as the dataset loader refuses
    it, instead of the last one silently winning."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadRequest(f"The request body repeats the key {key!r}; give each key once")
        out[key] = value
    return out


@tornado.web.stream_request_body
class TuneHandler(APIHandler):
    """Base handler: the server's JobStore (``web_app.settings``) and domain errors as JSON
    ``{"message": ...}``. Store work (disk, psutil) runs in a worker thread, never on the event loop.

    Bodies are streamed in and counted, so an oversized one is answered 413 after being read in chunks
    and dropped, never held whole or parsed on the event loop.
    """

    _body: bytearray
    _body_size: int

    @property
    def store(self) -> JobStore:
        return self.settings[STORE_SETTING]

    def prepare(self) -> Any:
        # The reconciler starts with the server (_start_jupyter_server_extension); servers that never
        # run that hook (embedded, tests) start it here, on their first call.
        reconciler = self.settings.get(RECONCILER_SETTING)
        if reconciler is not None:
            reconciler.start()
        return super().prepare()

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
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
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


def _job_summaries(store: JobStore) -> dict[str, Any]:
    return {"jobs": [store.summary(r) for r in store.list()]}


def _job_detail(store: JobStore, job_id: str) -> dict[str, Any]:
    record = store.read(job_id)
    return {**record, "latest_metrics": _latest_metrics(store.read_metrics(job_id))}


def _cancel(store: JobStore, job_id: str) -> dict[str, Any]:
    store.read(job_id)  # 404 for an unknown job
    cancel_job(store, job_id)
    return store.summary(store.read(job_id))


class JobsHandler(TuneHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.finish(await asyncio.to_thread(_job_summaries, self.store))


class JobHandler(TuneHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        self.finish(await asyncio.to_thread(_job_detail, self.store, validate_job_id(job_id)))

    @tornado.web.authenticated
    async def delete(self, job_id: str) -> None:
        store = self.store
        await asyncio.to_thread(store.read, validate_job_id(job_id))  # 400 / 404 before any work
        # A running job is cancelled and waited for (up to 30 s).
        await asyncio.to_thread(delete_job, store, job_id)
        self.set_status(204)
        self.finish()


class CancelJobHandler(TuneHandler):
    @tornado.web.authenticated
    async def post(self, job_id: str) -> None:
        self.finish(await asyncio.to_thread(_cancel, self.store, validate_job_id(job_id)))


class TemplatesHandler(TuneHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"actions": actions()})


class CellsHandler(TuneHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.read_json()
        if "action" not in body:
            raise CellsError("The request body needs an 'action'")
        unknown = sorted(set(body) - {"action", "params"})
        if unknown:
            raise CellsError(f"Unknown field(s) in the request body: {', '.join(unknown)}")
        if not isinstance(body["action"], str):
            raise CellsError(f"'action' must be a string, got {type(body['action']).__name__}")
        # params as sent (absent or null: none), checked by render_cells exactly as from Python: a non-object
        # is refused there, never taken as {}. In a worker thread: the checks read the job store (a named
        # job exists, Test's newest succeeded job, an export's destination outside the store).
        cells = await asyncio.to_thread(render_cells, body["action"], body.get("params"), self.store)
        self.finish({"cells": cells})


# POST check-dataset's fields and the jt.check_dataset argument each one is.
CHECK_FIELDS = {"path": "train_dataset", "validation_path": "validation_dataset",
                "prompt_template": "prompt_template"}


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _data_file(root: str, path: Any, field: str, allow_hidden: bool) -> tuple[str, str]:
    """(the file's absolute path, its path as the file browser shows it) for ``path``, relative to the server's
    root as the contents API takes it (a leading '/' is the root); an absolute path inside the root is taken
    too. Refuses a path outside the root, a hidden file unless the server shows them, a folder, no file."""
    if not isinstance(path, str) or not path.strip():
        raise BadRequest(f"'{field}' must name a data file (.jsonl, .csv, .parquet, ...) under the server's root, "
                         f"got {path!r}"[:300])
    root = os.path.abspath(root)
    given = os.path.abspath(path)
    if not (os.path.isabs(path) and _inside(root, given)):
        given = os.path.abspath(os.path.join(root, path.strip().lstrip("/\\")))
    if not _inside(root, given):
        raise BadRequest(f"'{field}': {path!r} lies outside the server's root; name a file in the file browser")
    shown = os.path.relpath(given, root).replace(os.sep, "/")
    if not allow_hidden and any(part.startswith(".") for part in shown.split("/")):
        raise BadRequest(f"'{field}': {shown!r} is hidden; the server does not show hidden files "
                         "(ContentsManager.allow_hidden)")
    if not os.path.exists(given):
        raise DataFileNotFound(f"'{field}': no file {shown!r} under the server's root")
    if os.path.isdir(given):
        raise BadRequest(f"'{field}': {shown!r} is a folder; name a data file (.jsonl, .csv, .parquet, ...)")
    return given, shown


def check_dataset_under(root: str, body: dict[str, Any], allow_hidden: bool = False) -> dict[str, Any]:
    """``POST check-dataset``: ``jt.check_dataset`` on files under the server's root (paths as the file browser
    gives them), its HealthReport as JSON with each file named as it was given. No job, no model, no torch."""
    from ..data.health import check_dataset  # torch-free (tests/server/test_check_dataset_route.py checks it)

    unknown = sorted(set(body) - set(CHECK_FIELDS))
    if unknown:
        raise BadRequest(f"Unknown field(s) in the request body: {', '.join(unknown)}; check-dataset takes "
                         f"{', '.join(CHECK_FIELDS)}")
    args: dict[str, Any] = {}
    shown: dict[str, str] = {}  # absolute path -> the path as given (root-relative)
    for field, arg in CHECK_FIELDS.items():
        value = body.get(field)
        if field == "prompt_template":
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"'prompt_template' must be text or null, got {type(value).__name__}")
            args[arg] = value or None
        elif field == "path" or value not in (None, ""):
            full, name = _data_file(root, value, field, allow_hidden)
            args[arg], shown[full] = full, name

    def named(text: str) -> str:
        for full, name in shown.items():
            text = text.replace(full, name)
        return text

    try:
        report = check_dataset(**args)
    except DatasetError as e:
        problems = [dataclasses.replace(p, source=named(p.source), message=named(p.message), hint=named(p.hint))
                    for p in e.problems]
        raise DatasetError(problems) from None
    data = report.to_json()
    data["sources"] = {split: named(source) for split, source in data["sources"].items()}
    for finding in data["findings"]:
        finding["message"] = named(finding["message"])
    return data


class CheckDatasetHandler(TuneHandler):
    """POST check-dataset ``{"path": ..., "validation_path"?: ..., "prompt_template"?: ...}``: the dataset's
    health (duplicates, conflicting labels, training rows leaking into validation, label counts) with no job."""

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.read_json()
        contents = self.contents_manager
        root = getattr(contents, "root_dir", None) or self.settings.get("server_root_dir") or os.getcwd()
        allow_hidden = bool(getattr(contents, "allow_hidden", False))
        self.finish(await asyncio.to_thread(check_dataset_under, root, body, allow_hidden))


def full_schema() -> dict[str, Any]:
    """``GET schema``: the tuning parameters (params.schema) and the job states with their active and
    final sets (jobs/states.py), so the panel spells out neither."""
    return {**schema(), "states": states_schema()}


class SchemaHandler(TuneHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(full_schema())


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
    (r"check-dataset", CheckDatasetHandler),
]


def setup_route_handlers(web_app: Any, store: JobStore | None = None) -> None:
    """Add the ``/jupyter-tune/`` routes to the server's tornado application, with the server's one
    JobStore (root: $JUPYTER_TUNE_HOME when the server starts) and its Reconciler in ``web_app.settings``."""
    store = store or JobStore()
    web_app.settings[STORE_SETTING] = store
    web_app.settings[RECONCILER_SETTING] = Reconciler(store)
    base_url = web_app.settings["base_url"]
    handlers = [(url_path_join(base_url, NAMESPACE, pattern) + "/?$", handler) for pattern, handler in ROUTES]
    web_app.add_handlers(".*$", handlers)
