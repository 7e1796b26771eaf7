"""One guard for every write outside the job store (exports, data splits, anything later).

A destination is resolved first (``~``, ``..`` and symlinks) and refused before anything is touched when
it lies in the job store, holds it, or lies in a folder holding a job (``job.json``). An existing folder
may be replaced only when an earlier export made it (it carries ``MARKER``): a user's folder, the store or
anything holding jobs is never replaced, whatever ``overwrite`` says. Torch-free.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

MARKER = ".jupyter_tune_export"
# Folders an export may replace are small (a model, its tokenizer, a card): a walk this long means the
# folder is something else.
_MAX_SCAN = 10_000


class UnsafeDestinationError(ValueError):
    """A destination that would write into, or replace, the job store, a job or a folder no export made."""


def resolve(dest: str | os.PathLike) -> Path:
    """``dest`` as an absolute path with ``~``, ``..`` and symlinks resolved (it need not exist)."""
    return Path(os.fspath(dest)).expanduser().resolve()


def _store_roots(store_root: str | os.PathLike | Iterable[str | os.PathLike] | None) -> list[Path]:
    from .store import default_root

    given = [] if store_root is None else (
        [store_root] if isinstance(store_root, (str, os.PathLike)) else list(store_root))
    roots: list[Path] = []
    for r in [*given, default_root()]:
        p = resolve(r)
        if p not in roots:
            roots.append(p)
    return roots


def _named(dest: Any, path: Path) -> str:
    return str(path) if str(dest) == str(path) else f"{dest} (resolved: {path})"


def _job_folder_holding(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` that holds a job (a ``job.json``)."""
    for p in (path, *path.parents):
        if (p / "job.json").is_file():
            return p
    return None


def _holds_jobs(folder: Path) -> Path | None:
    """A ``job.json`` somewhere inside ``folder`` (symlinks not followed), or ``folder`` itself when it is
    too large to scan."""
    seen = 0
    for top, dirs, files in os.walk(folder):
        if "job.json" in files:
            return Path(top) / "job.json"
        seen += len(dirs) + len(files)
        if seen > _MAX_SCAN:
            return folder
    return None


def is_export(folder: str | os.PathLike) -> bool:
    """True when ``folder`` carries the marker every export writes (a regular file holding a JSON object)."""
    marker = Path(folder) / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return isinstance(json.loads(marker.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def write_marker(folder: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Mark ``folder`` as written by an export, so a later ``overwrite=True`` may replace it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        written_by = version("jupyter_tune")
    except PackageNotFoundError:  # run from a source tree that was not installed
        written_by = None
    path = Path(folder) / MARKER
    path.write_text(json.dumps({"written_by": "jupyter_tune", "version": written_by, **info}, indent=2,
                               default=str) + "\n", encoding="utf-8")
    return path


def check_destination(dest: str | os.PathLike, *, kind: Literal["folder", "file"] = "folder",
                      overwrite: bool = False,
                      store_root: str | os.PathLike | Iterable[str | os.PathLike] | None = None) -> Path:
    """Resolve ``dest`` and check that writing it cannot touch a job; returns the resolved path.

    Refused (``UnsafeDestinationError``) when the path is the job store (``store_root``, plus
    ``$JUPYTER_TUNE_HOME`` or its default), lies inside it or holds it, or lies in a folder holding a
    ``job.json``. For ``kind="folder"``, an existing path is refused without ``overwrite``
    (``FileExistsError``) and, with it, unless an earlier export made the folder (``MARKER``) and no job
    lies inside it. For ``kind="file"``, an existing file is refused without ``overwrite`` and a folder
    always. Nothing is created or changed here.
    """
    if kind not in ("folder", "file"):
        raise ValueError(f"kind={kind!r}: use 'folder' or 'file'.")
    path = resolve(dest)
    name = _named(dest, path)
    for root in _store_roots(store_root):
        if path == root or root in path.parents:
            raise UnsafeDestinationError(
                f"{name} is inside the job store {root}: writing there could replace a job's files. "
                "Choose a destination outside the store.")
        if path in root.parents:
            raise UnsafeDestinationError(
                f"{name} holds the job store {root}: replacing it would delete every job. "
                "Choose a new folder outside the store.")
    holder = _job_folder_holding(path)
    if holder is not None:
        raise UnsafeDestinationError(
            f"{name} is in {holder}, a tuning job's folder (it holds job.json): writing there could replace "
            "the job's files. Choose a destination outside any job folder.")
    if not (path.exists() or path.is_symlink()):
        return path
    if kind == "file":
        if path.is_dir():
            raise UnsafeDestinationError(f"{name} is a folder, not a file: choose a file name.")
        if not overwrite:
            raise FileExistsError(f"{name} exists: choose a new file name or pass overwrite=True.")
        return path
    if not path.is_dir():
        raise UnsafeDestinationError(f"{name} is a file, not a folder: choose a new folder.")
    if not overwrite:
        raise FileExistsError(f"{name} exists: choose a new folder or pass overwrite=True.")
    if not is_export(path):
        raise UnsafeDestinationError(
            f"{name} exists and was not made by an export (it has no {MARKER} file): overwrite=True replaces "
            "only an earlier export's folder. Choose a new folder, or remove this one yourself.")
    inner = _holds_jobs(path)
    if inner is not None:
        raise UnsafeDestinationError(
            f"{name} carries an export's marker but holds {inner}"
            f"{' (too many files to check)' if inner == path else ''}: replacing it could delete jobs. "
            "Choose a new folder.")
    return path


# -- writing through the guard: shared by every writer so a failure leaves nothing and says why --
def missing_parents(dest: Path) -> list[Path]:
    """The folders above ``dest`` that do not exist yet, deepest first (for ``remove_empty`` on failure)."""
    return [p for p in dest.parents if not p.exists()]


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created, deepest first, each only while still empty."""
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            return


_WHY = {errno.ENOSPC: "the disk is full; free some space or choose a folder on another disk",
        errno.EDQUOT: "the disk quota is used up; free some space or choose another folder",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "permission denied; choose a folder you can write to",
        errno.EROFS: "the file system is read-only; choose a folder you can write to"}


def write_error(e: OSError, what: str, dest: Path) -> OSError:
    """An OSError of the same errno saying what failed where, why, what to do, and that nothing was left."""
    where = f" ({e.filename})" if e.filename else ""
    msg = f"The {what} to {dest} failed: {_WHY.get(e.errno) or e}{where}. Nothing was left at {dest}."
    return OSError(e.errno, msg) if e.errno else OSError(msg)


def write_file(dest: str | os.PathLike, data: str | bytes, *, overwrite: bool = False,
               store_root: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
               what: str = "write") -> Path:
    """Write one file outside the job store (``check_destination(kind="file")`` first), beside it and then
    renamed into place: a failure leaves neither a partial file nor folders it created. Returns the path."""
    path = check_destination(dest, kind="file", overwrite=overwrite, store_root=store_root)
    created = missing_parents(path)
    tmp = path.with_name(f".{path.name}.writing-{secrets.token_hex(3)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):  # never hide the error that stopped the write
            tmp.unlink()
        remove_empty(created)
        if isinstance(e, OSError):
            raise write_error(e, what, path) from e
        raise
    return path
