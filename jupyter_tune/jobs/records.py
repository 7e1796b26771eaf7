"""The record store that jobs (jobs/store.py) and sweeps (api/sweep.py) share.

One folder per record, ``<root>/<subdir>/<id>/<kind>.json``. The mechanism, written once:

- ``<kind>.json`` is replaced whole (`atomic_write_json`): readers see the old or the new file, never half;
- writers take the record's lock (``filelock``: POSIX and Windows) around read-change-write, so several
  processes can update a record without losing each other's changes; the lock files live in
  ``<root>/.locks``, beside the folders, so taking a lock never re-creates a deleted record's folder;
- a record is created in a hidden folder and renamed into place, so it appears whole or not at all;
- reading checks the file and says what is wrong (CorruptRecordError), names the missing record
  (RecordNotFoundError) and refuses ids that are not 1 to 64 of a-z, 0-9 and '-';
- a record whose process died is reported with its final state by `assess` (no side effect), and
  recorded by `record_deaths`, the one explicit step that writes it (subclasses say what "died" means).

Torch-free: the server imports it. JSON it writes never holds NaN or Infinity (a browser's JSON.parse
rejects them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

# \Z, not $: "$" also matches before a trailing newline. Use fullmatch (or match: \Z anchors the end).
RECORD_ID_RE = re.compile(r"[a-z0-9-]{1,64}\Z")


def default_root() -> Path:
    env = os.environ.get("JUPYTER_TUNE_HOME")
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "tune"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def json_kind(value: Any) -> str:
    """The JSON name of `value`'s type, for error messages."""
    return {str: "string", bool: "boolean", int: "number", float: "number", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


# -- JSON that every reader (a browser's JSON.parse included) accepts --
def json_safe(obj: Any) -> Any:
    """`obj` with NaN/Infinity as None, enum members (a JobState) as their values, numpy/torch scalars as
    numbers and anything else as str."""
    if isinstance(obj, Enum):
        return json_safe(obj.value)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy and torch scalars and arrays
        with contextlib.suppress(Exception):
            return json_safe(obj.tolist())
    return str(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def _no_constants(name: str) -> None:
    return None  # NaN / Infinity written by an older version read as null


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_no_constants)


def atomic_write_json(path: Path, data: Any) -> None:
    """Replace `path` whole (readers see the old or the new file); leaves no temporary file on failure."""
    text = dumps(data, indent=2)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def process_alive(pid: int | None, create_time: float | None = None) -> bool:
    """True while process `pid` runs and is the one that was recorded (pids get reused)."""
    if not pid or not isinstance(pid, int):
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if isinstance(create_time, (int, float)) and abs(proc.create_time() - create_time) > 1.0:
            return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError, OverflowError):
        return False


# -- errors (each store subclasses them: JobNotFoundError, CorruptSweepError, ...) --
class InvalidRecordIdError(ValueError):
    pass


class RecordNotFoundError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0]) if self.args else "record not found"


class CorruptRecordError(ValueError):
    """A record folder whose ``<kind>.json`` cannot be used; `.reason` says why."""

    noun = "Record"

    def __init__(self, record_id: str, reason: str):
        self.record_id, self.reason = record_id, reason
        super().__init__(f"{self.noun} {record_id} is unreadable: {reason}")


class RecordStore:
    """``<root>/<subdir>/<id>/<kind>.json``, one folder per record. Subclasses set the class attributes
    and may check a record's shape (`check`) and say when its process died (`_died`, `_death_changes`)."""

    kind: ClassVar[str] = "record"  # the file is <kind>.json
    subdir: ClassVar[str] = "records"
    noun: ClassVar[str] = "record"  # in messages: "No <noun> 'x' in <folder>"
    lock_subdir: ClassVar[str] = ""  # under <root>/.locks, so two kinds' ids never share a lock
    not_found_error: ClassVar[type[RecordNotFoundError]] = RecordNotFoundError
    corrupt_error: ClassVar[type[CorruptRecordError]] = CorruptRecordError
    invalid_id_error: ClassVar[type[ValueError]] = InvalidRecordIdError

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.records_dir = self.root / self.subdir

    @property
    def file_name(self) -> str:
        return f"{self.kind}.json"

    # -- ids and paths --
    def validate_id(self, record_id: Any) -> str:
        if not isinstance(record_id, str) or not RECORD_ID_RE.fullmatch(record_id):
            raise self.invalid_id_error(
                f"Invalid {self.kind} id {record_id!r}: {self.kind} ids are 1 to 64 characters of a-z, 0-9 "
                f"and '-'.")
        return record_id

    def record_dir(self, record_id: str) -> Path:
        return self.records_dir / self.validate_id(record_id)

    def exists(self, record_id: str) -> bool:
        return (self.record_dir(record_id) / self.file_name).is_file()

    def ids(self) -> list[str]:
        """The ids of the record folders (hidden ones, being created or deleted, left out)."""
        if not self.records_dir.is_dir():
            return []
        return [d.name for d in self.records_dir.iterdir()
                if not d.name.startswith(".") and RECORD_ID_RE.fullmatch(d.name) and d.is_dir()]

    def _not_found(self, record_id: str) -> RecordNotFoundError:
        return self.not_found_error(f"No {self.noun} {record_id!r} in {self.records_dir}")

    def _lock_path(self, record_id: str) -> Path:
        # Beside the record folders, not in them: taking the lock must never re-create a deleted folder.
        return self.root / ".locks" / self.lock_subdir / f"{self.validate_id(record_id)}.lock"

    @contextlib.contextmanager
    def lock(self, record_id: str) -> Iterator[None]:
        """The record's exclusive lock, across processes; the not-found error for a missing record."""
        from filelock import FileLock

        if not self.record_dir(record_id).is_dir():
            raise self._not_found(record_id)
        path = self._lock_path(record_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path)):
            yield

    # -- creating --
    @contextlib.contextmanager
    def creating(self, record_id: str) -> Iterator[Path]:
        """A new record's folder, all or nothing: the block fills the hidden folder it is given (writing
        ``<kind>.json`` there with `write_new`), which is renamed into place when the block ends and
        removed if it fails. FileExistsError if the record exists."""
        self.validate_id(record_id)
        self.records_dir.mkdir(parents=True, exist_ok=True)
        final = self.records_dir / record_id
        if final.exists():
            raise FileExistsError(f"{self.kind.capitalize()} {record_id} already exists in {self.records_dir}")
        tmp = self.records_dir / f".creating-{record_id}-{secrets.token_hex(3)}"
        tmp.mkdir()
        try:
            yield tmp
            if not (tmp / self.file_name).is_file():
                raise RuntimeError(f"{self.kind} {record_id} was created without its {self.file_name}")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def write_new(self, folder: Path, record_id: str, record: dict[str, Any]) -> None:
        """Write a new record's ``<kind>.json`` into the folder `creating` gave (its id set)."""
        atomic_write_json(folder / self.file_name, {**record, "id": record_id})

    def create(self, record_id: str, record: dict[str, Any], files: dict[str, bytes | str] | None = None) -> Path:
        """Create a record folder with its ``<kind>.json`` and extra files, all or nothing."""
        with self.creating(record_id) as tmp:
            for name, content in (files or {}).items():
                mode = "wb" if isinstance(content, bytes) else "w"
                with open(tmp / name, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
                    f.write(content)
            self.write_new(tmp, record_id, record)
        return self.records_dir / record_id

    # -- reading --
    def read_raw(self, record_id: str) -> dict[str, Any]:
        """``<kind>.json`` as written. Raises the not-found error, or the corrupt error saying what is
        wrong with it."""
        folder, name = self.record_dir(record_id), self.file_name
        corrupt = self.corrupt_error
        try:
            data = (folder / name).read_bytes()
        except FileNotFoundError:
            if folder.is_dir():
                raise corrupt(record_id, f"its folder has no {name}") from None
            raise self._not_found(record_id) from None
        except OSError as e:
            raise corrupt(record_id, f"{name} cannot be read ({e.strerror or e})") from None
        try:
            record = loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise corrupt(record_id, f"{name} is not UTF-8 text (byte 0x{data[e.start]:02x} at "
                                     f"offset {e.start})") from None
        except json.JSONDecodeError as e:
            raise corrupt(record_id, f"{name} is not valid JSON ({e.msg} at line {e.lineno} "
                                     f"column {e.colno})") from None
        except RecursionError:
            raise corrupt(record_id, f"{name} is nested too deeply") from None
        if not isinstance(record, dict):
            raise corrupt(record_id, f"{name} holds a JSON {type(record).__name__}, not an object")
        if record.get("id") != record_id:
            raise corrupt(record_id, f"{name} names {self.kind} {record.get('id')!r}, not its folder's "
                                     f"name {record_id!r}")
        problem = self.check(record)
        if problem:
            raise corrupt(record_id, problem)
        return record

    def check(self, record: dict[str, Any]) -> str | None:
        """What makes a parsed record unusable (a missing state, a block of the wrong type), or None."""
        return None

    def check_shapes(self, record: dict[str, Any], shapes: tuple[tuple[str, type], ...]) -> str | None:
        """The first (key, JSON type) in `shapes` the record breaks (absent or null is allowed), or None."""
        for key, kind in shapes:  # readers index these: a wrong type is this error, not theirs
            if record.get(key) is not None and not isinstance(record[key], kind):
                return (f"{self.file_name}'s {key!r} is a JSON {json_kind(record[key])}, not "
                        f"{'an object' if kind is dict else 'a list'}")
        return None

    def write(self, record_id: str, record: dict[str, Any]) -> None:
        """Replace ``<kind>.json`` whole. Hold `lock` around the read this record came from."""
        atomic_write_json(self.record_dir(record_id) / self.file_name, record)

    def update(self, record_id: str, **changes: Any) -> dict[str, Any]:
        """Set `changes` (and update_time) in one locked read-change-write; returns the new record."""
        with self.lock(record_id):
            record = self.read_raw(record_id)
            record.update(changes)
            record["update_time"] = now_iso()
            self.write(record_id, record)
            return record

    # -- a record whose process died --
    def _died(self, record: dict[str, Any]) -> bool:
        """True if the process the record waits on is gone while the record says it is active."""
        return False

    def _death_changes(self, record: dict[str, Any]) -> dict[str, Any]:
        """The changes that record a death (a final state and the reason)."""
        raise NotImplementedError

    def assess(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` as readers see it: its final state, with the reason, if its process died (nothing
        is written)."""
        if not self._died(record):
            return record
        return {**record, **self._death_changes(record)}

    def record_death(self, record_id: str) -> bool:
        """Write the death `assess` reports, checked again under the lock; True if it was written."""
        with self.lock(record_id):
            current = self.read_raw(record_id)
            if not self._died(current):
                return False
            current.update(self._death_changes(current))
            self.write(record_id, current)
            return True

    def record_deaths(self, record_id: str | None = None) -> list[str]:
        """Record the death of every record (or `record_id` alone) whose process died; returns their ids.
        Never raises for a record it cannot read or write (readers still see the death through
        `assess`, and the next call tries again)."""
        recorded = []
        for rid in [self.validate_id(record_id)] if record_id is not None else self.ids():
            try:
                if self._died(self.read_raw(rid)) and self.record_death(rid):
                    recorded.append(rid)
            except (OSError, CorruptRecordError, RecordNotFoundError) as e:
                logger.debug("could not record %s %s's end: %s", self.kind, rid, e)
        return recorded

    def delete(self, record_id: str) -> None:
        """Remove the record's folder; renamed first so readers never see it half deleted."""
        d = self.record_dir(record_id)
        if not d.is_dir():
            raise self._not_found(record_id)
        trash = self.records_dir / f".deleting-{record_id}-{secrets.token_hex(3)}"
        os.rename(d, trash)
        shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._lock_path(record_id).unlink()


def watch_child(proc, name: str) -> float | None:
    """A started job or task process: reap it when it ends (no zombie of whoever started it) and return its
    creation time, which with the pid tells it apart from a later process given the same pid."""
    import threading

    import psutil

    try:  # before the reaper runs: an exited child is still there to read until it is reaped
        created = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        created = None
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{name}").start()
    return created
