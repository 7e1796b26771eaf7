"""Issue 21: no export may touch the job store. The issue's three reproductions (the job's own folder by
``adapter/..``, the jobs folder by ``<job>/..``, the job's adapter) and their kin are refused before
anything is written, the store's bytes stay the same and the job still loads; ``overwrite=True`` replaces
only an earlier export's folder; ``..`` and symlinks are resolved first."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import jupyter_tune as jt
from jupyter_tune.jobs.guard import MARKER, UnsafeDestinationError, check_destination, write_file
from tests.support.store_digest import folder_digest
from tests.support.tiny_model import TWO_LABEL_ROWS

ROWS = TWO_LABEL_ROWS


@pytest.fixture(scope="module")
def job(finished_tiny_job):
    return finished_tiny_job


# The reproductions first, then the same mistakes by other roads.
STORE_PATHS = {
    "job folder via adapter/..": lambda job: job.dir / "adapter" / "..",
    "jobs folder via <job>/..": lambda job: job.dir / "..",
    "the job's adapter": lambda job: job.dir / "adapter",
    "a new folder inside the job": lambda job: job.dir / "exports" / "mine",
    "the checkpoints": lambda job: job.dir / "checkpoints",
    "the store root": lambda job: job.store.root,
    "the folder holding the store": lambda job: job.store.root / "..",
    "the store through a relative path": lambda job: Path(os.path.relpath(job.dir, Path.cwd())) / "adapter",
}


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "no-overwrite"])
@pytest.mark.parametrize("where", list(STORE_PATHS))
def test_an_export_into_or_above_the_store_is_refused_and_the_store_is_unchanged(job, where, overwrite,
                                                                                  fresh_models):
    dest = STORE_PATHS[where](job)
    before = folder_digest(job.store.root)
    with pytest.raises(UnsafeDestinationError) as refused:
        job.export(dest, format="adapter", overwrite=overwrite, parity=False, progress=False)
    assert str(Path(dest).resolve()) in str(refused.value) and "Choose" in str(refused.value)
    assert folder_digest(job.store.root) == before
    assert job.id in [j.id for j in jt.list_jobs()] and job.state is jt.JobState.SUCCEEDED
    assert jt.load_model(job).model is not None  # the adapter is where it was


def test_a_symlink_into_the_store_is_resolved_and_refused(job, tmp_path):
    link = tmp_path / "looks-harmless"
    link.symlink_to(job.dir, target_is_directory=True)
    before = folder_digest(job.store.root)
    for dest in (link, link / "adapter", link / "new"):
        with pytest.raises(UnsafeDestinationError, match="inside the job store"):
            job.export(dest, format="adapter", overwrite=True, parity=False, progress=False)
    assert folder_digest(job.store.root) == before


def test_a_dotdot_path_outside_the_store_is_resolved_before_anything_is_made(job, tmp_path):
    report = job.export(tmp_path / "never" / ".." / "out", format="adapter", parity=False, progress=False)
    assert report.dest == str(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no "never" folder was made
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["job_id"] == job.id and marker["format"] == "adapter"


def test_overwrite_replaces_an_earlier_export_but_never_another_folder(job, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        job.export(mine, format="adapter", parity=False, progress=False)
    with pytest.raises(UnsafeDestinationError, match=f"not made by an export .*{MARKER}"):
        job.export(mine, format="adapter", overwrite=True, parity=False, progress=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # A file where the folder should go is not replaced either.
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UnsafeDestinationError, match="is a file"):
        job.export(tmp_path / "a-file", format="adapter", overwrite=True, parity=False, progress=False)

    earlier = tmp_path / "earlier"
    job.export(earlier, format="adapter", parity=False, progress=False)
    job.export(earlier, format="merged", overwrite=True, parity=False, progress=False)
    assert (earlier / "model.safetensors").is_file() and not (earlier / "adapter_config.json").exists()
    assert json.loads((earlier / MARKER).read_text())["format"] == "merged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "earlier", "mine"]  # no staging left


def test_a_marked_folder_that_holds_jobs_is_not_replaced(job, tmp_path):
    """A marker copied (or an export folder reused) to hold a store: the jobs inside still win."""
    dest = tmp_path / "export"
    job.export(dest, format="adapter", parity=False, progress=False)
    shutil.copytree(job.dir, dest / "backup" / "jobs" / job.id)
    with pytest.raises(UnsafeDestinationError, match="holds .*job.json"):
        job.export(dest, format="adapter", overwrite=True, parity=False, progress=False)
    assert (dest / "backup" / "jobs" / job.id / "job.json").is_file()


# -- the guard alone (no job needed): what other writers (data splits, reports) call --
@pytest.fixture
def other_store(tmp_path, monkeypatch):
    """A store at $JUPYTER_TUNE_HOME with one job folder, and a job folder outside any known store."""
    home = tmp_path / "home"
    (home / "jobs" / "a-job").mkdir(parents=True)
    (home / "jobs" / "a-job" / "job.json").write_text("{}")
    stray = tmp_path / "elsewhere" / "old-job"
    stray.mkdir(parents=True)
    (stray / "job.json").write_text("{}")
    monkeypatch.setenv("JUPYTER_TUNE_HOME", str(home))
    return home, stray


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_the_guard_refuses_the_store_and_job_folders_and_touches_nothing(other_store, tmp_path, kind):
    home, stray = other_store
    before = folder_digest(tmp_path)
    for dest in (home, home / "jobs", home / "jobs" / "a-job" / "train.jsonl", home / "new" / "x",
                 tmp_path, tmp_path / "out" / ".." / "home" / "x", stray, stray / "split" / "train.jsonl",
                 "~/" + os.path.relpath(home / "x", Path.home())):
        for overwrite in (False, True):
            with pytest.raises(UnsafeDestinationError):
                check_destination(dest, kind=kind, overwrite=overwrite)
    # The job's own store root counts even when $JUPYTER_TUNE_HOME names another.
    with pytest.raises(UnsafeDestinationError, match="inside the job store"):
        check_destination(tmp_path / "second" / "x", kind=kind, store_root=tmp_path / "second")
    assert check_destination(tmp_path / "new" / ".." / "out", kind=kind) == tmp_path / "out"
    assert folder_digest(tmp_path) == before


def test_the_guard_on_files(other_store, tmp_path):
    out = tmp_path / "data" / "train.jsonl"
    assert write_file(out, "one\n") == out and out.read_text() == "one\n"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_file(out, "two\n")
    write_file(tmp_path / "data" / ".." / "data" / "train.jsonl", "two\n", overwrite=True)
    assert out.read_text() == "two\n" and sorted(p.name for p in out.parent.iterdir()) == ["train.jsonl"]
    with pytest.raises(UnsafeDestinationError, match="is a folder"):
        check_destination(tmp_path / "data", kind="file", overwrite=True)
    with pytest.raises(ValueError, match="kind="):
        check_destination(out, kind="dir")
