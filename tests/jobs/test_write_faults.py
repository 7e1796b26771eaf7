"""Fault injection for every public write outside the job store (issue 21): each export format and the
guard's own file writer, sent into the store, through a ``..`` path, into a read-only folder and onto a
full disk. Each must raise an error that says what to do, leave no partial destination or staging folder,
and leave the store byte-for-byte as it was (a sha256 of every file's path and bytes).

Read-only and full disks are real (small tmpfs mounts) where this machine lets the tests mount, and
patched at the file-write layer (mkdir/open raising EACCES, open raising ENOSPC) everywhere."""

from __future__ import annotations

import builtins
import contextlib
import errno
import importlib.util
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import jupyter_tune as jt
from jupyter_tune.jobs.guard import UnsafeDestinationError, write_file
from tests.support.store_digest import folder_digest
from tests.support.tiny_model import TWO_LABEL_ROWS

ROWS = TWO_LABEL_ROWS


@pytest.fixture(scope="module")
def job(finished_tiny_job):
    return finished_tiny_job


# -- the writers: (kind of destination, write) --
def _export(fmt: str, **options):
    def write(job, dest, overwrite):
        job.export(dest, format=fmt, overwrite=overwrite, parity=False, progress=False, **options)
    return "folder", write


WRITERS = {
    "export-adapter": _export("adapter"),
    "export-merged": _export("merged"),
    "export-gguf": _export("gguf", dtype="f32"),  # every fault strikes before llama.cpp's converter runs
    "guard-write_file": ("file", lambda job, dest, overwrite: write_file(dest, "{}\n", overwrite=overwrite)),
}
if importlib.util.find_spec("jupyter_tune.data.split") is not None:  # jt.split(out_dir=...): two JSONL files
    WRITERS["split"] = ("folder", lambda job, dest, overwrite: jt.split(ROWS, out_dir=dest, overwrite=overwrite))


# -- real faults: tmpfs mounts, where the machine allows --
def _mount(target: Path, options: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory):
    """{'read_only': folder or None, 'full_disk': folder or None}: a read-only tmpfs and a full one."""
    base = tmp_path_factory.mktemp("mounts")
    mounts = {}
    ro, full = base / "ro", base / "full"
    mounts["read_only"] = ro if _mount(ro, "ro,size=64k") else None
    if _mount(full, "size=64k"):
        mounts["full_disk"] = full
        with contextlib.suppress(OSError), open(full / ".filler", "wb") as f:
            while True:  # fill it: every later write fails with ENOSPC
                f.write(b"\0" * 4096)
                f.flush()
    else:
        mounts["full_disk"] = None
    yield mounts
    for m in mounts.values():
        if m is not None:
            subprocess.run(["umount", str(m)], capture_output=True)


# -- patched faults: the same errors raised at the file-write layer --
def _inside(path, root: Path) -> bool:
    if not isinstance(path, (str, os.PathLike)):
        return False  # a file descriptor
    p = Path(os.path.abspath(os.fspath(path)))
    return p == root or root in p.parents


def _patch(monkeypatch, root: Path, code: int) -> None:
    real_open, real_mkdir = builtins.open, os.mkdir

    def fail(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    def mkdir(path, *args, **kwargs):
        if code != errno.ENOSPC and _inside(path, root):
            fail(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_open(file, mode="r", *args, **kwargs):
        if _inside(file, root) and any(c in mode for c in "wax+"):
            if code == errno.ENOSPC:  # the file is created, its bytes do not fit
                real_open(file, mode, *args, **kwargs).close()
            fail(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)  # pathlib's write_text/open


FAULTS = ["inside-store", "dotdot-into-store", "read-only[tmpfs]", "read-only[patched]",
          "full-disk[tmpfs]", "full-disk[patched]"]


def _fault(name, job, kind, tmp_path, tmpfs, monkeypatch):
    """(destination, overwrite, area that must be left as it was, expected error, message fragment)."""
    leaf = "model" if kind == "folder" else "train.jsonl"
    if name == "inside-store":
        dest = job.dir / "adapter" if kind == "folder" else job.dir / "job.json"
        return dest, True, tmp_path, UnsafeDestinationError, "inside the job store"
    if name == "dotdot-into-store":  # reads as a folder under tmp_path, resolves to the store's jobs folder
        rel = os.path.relpath(job.store.jobs_dir, tmp_path)
        dest = tmp_path / "out" / ".." / rel
        dest = dest if kind == "folder" else dest / job.id / "metrics.jsonl"
        return dest, True, tmp_path, UnsafeDestinationError, "inside the job store"
    fault, how = name.split("[")
    code = {"read-only": errno.EACCES, "full-disk": errno.ENOSPC}[fault]
    if how == "tmpfs]":
        root = tmpfs[fault.replace("-", "_")]
        if root is None:
            pytest.skip("this machine does not let the tests mount a tmpfs (the patched case covers it)")
        code = errno.EROFS if fault == "read-only" else code
        area = root
    else:
        root = area = tmp_path / "target"
        root.mkdir()
        _patch(monkeypatch, root, code)
    dest = root / f"{kind}-{os.urandom(3).hex()}" / leaf
    return dest, False, area, OSError, ("disk is full" if code == errno.ENOSPC else "choose a folder you can"
                                        " write to"), code


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_failed_write_says_why_leaves_nothing_and_never_touches_the_store(job, writer, fault, tmp_path,
                                                                           tmpfs, monkeypatch):
    kind, write = WRITERS[writer]
    dest, overwrite, area, error, message, *code = _fault(fault, job, kind, tmp_path, tmpfs, monkeypatch)
    store_before, area_before = folder_digest(job.store.root), folder_digest(area)
    with pytest.raises(error) as failed:
        write(job, dest, overwrite)
    text = str(failed.value)
    assert message in text and str(Path(os.path.abspath(dest))) in text, text
    if code:
        assert failed.value.errno == code[0], text
    monkeypatch.undo()
    assert folder_digest(area) == area_before, "a partial destination or staging folder was left"
    assert folder_digest(job.store.root) == store_before, "the job store changed"
    assert job.state is jt.JobState.SUCCEEDED and (job.dir / "adapter" / "adapter_config.json").is_file()
