"""Sweeps are kept by the job store's mechanism (issue 23): jobs/records.py's RecordStore, with filelock and
atomic writes and no fcntl; concurrent writers lose nothing; a torn sweep.json is a clear error; a search
whose driver died is reported (no side effect) and recorded (reconcile) as a dead job is. No model, no
training: records are written by hand, as the sweep code writes them."""

from __future__ import annotations

import ast
import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import jupyter_tune as jt
from jupyter_tune.api import sweep as sweep_module
from jupyter_tune.api.sweep import CorruptSweepError, SweepError, SweepNotFoundError, SweepStore
from jupyter_tune.jobs.records import RecordStore
from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import JobStore

DEAD = {"pid": os.getpid(), "create_time": 1.0, "start_unix": 1.0}  # this pid, another start time: gone


def _record(sweep_id: str, **changes) -> dict:
    """A sweep.json as jt.sweep writes it."""
    return {"id": sweep_id, "name": sweep_id, "search": "optuna", "state": JobState.RUNNING.value,
            "create_time": "2026-01-01T00:00:00+00:00", "create_unix": time.time(), "end_time": None,
            "error": None, "base": {"train_dataset": "/data/train.jsonl", "validation_dataset": None},
            "grid": {"adapter_size": [4, 8]}, "ranges": [],
            "objective": {"metric": "train_total_loss", "direction": "minimize"}, "n_trials": 2,
            "parallel": 1, "pruner": None, "seed": 0, "enqueue": [], "trials": [], "driver": None, **changes}


def _make(store: SweepStore, sweep_id: str, **changes) -> str:
    store.create(sweep_id, _record(sweep_id, **changes))
    return sweep_id


def test_the_sweep_modules_do_not_import_fcntl():
    for module in (sweep_module, importlib.import_module("jupyter_tune.api.sweep_driver")):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "fcntl" not in imported, module.__file__
    assert issubclass(SweepStore, RecordStore) and issubclass(JobStore, RecordStore)


_WORKER = """
import sys
from jupyter_tune.api.sweep import SweepStore
store, sweep_id, first = SweepStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for number in range(first, first + 50):
    store.add_trial(sweep_id, {"number": number, "params": {}, "job_id": None, "status": "running"})
    with store.lock(sweep_id):  # a read-change-write of its own under the same lock
        record = store.read_raw(sweep_id)
        record["count"] = record.get("count", 0) + 1
        store.write(sweep_id, record)
"""


def test_two_processes_updating_one_sweep_lose_nothing(tune_home):
    store = SweepStore()
    sweep_id = _make(store, "race")
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tune_home), sweep_id, str(first)])
             for first in (0, 1000)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    record = store.read_raw(sweep_id)
    assert sorted(t["number"] for t in record["trials"]) == list(range(50)) + list(range(1000, 1050))
    assert record["count"] == 100
    assert not list((tune_home / "sweeps" / sweep_id).glob(".*tmp"))  # no temporary file left behind


def test_threads_with_their_own_store_objects_lose_no_update(tune_home):
    sweep_id = _make(SweepStore(), "threads", trials=[{"number": 0, "params": {}, "status": "running"}])

    def work():
        store = SweepStore()
        for _ in range(50):
            with store.lock(sweep_id):
                record = store.read_raw(sweep_id)
                record["trials"][0]["reported_step"] = record["trials"][0].get("reported_step", 0) + 1
                store.write(sweep_id, record)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SweepStore().read(sweep_id)["trials"][0]["reported_step"] == 100


def test_a_torn_sweep_json_is_a_clear_error_and_the_rest_still_list(tune_home, caplog):
    store = SweepStore()
    good = _make(store, "good", search="grid", n_trials=0, state=JobState.SUCCEEDED.value)
    torn = _make(store, "torn")
    path = store.path(torn) / "sweep.json"
    path.write_bytes(path.read_bytes()[:40])  # a write cut short (by an older version, or a bad disk)
    with pytest.raises(CorruptSweepError, match=r"Sweep torn is unreadable: sweep.json is not valid JSON \(.* at line"):
        jt.get_sweep(torn)
    with caplog.at_level(logging.WARNING):
        assert [s.id for s in jt.list_sweeps()] == [good]
    assert "torn is unreadable" in caplog.text
    path.write_text(json.dumps({**_record(torn), "trials": {"0": {}}}))  # parses, but a reader would break
    with pytest.raises(CorruptSweepError, match="trials' is a JSON object, not a list"):
        store.read(torn)
    (store.path(torn) / "sweep.json").unlink()
    with pytest.raises(CorruptSweepError, match="its folder has no sweep.json"):
        store.read(torn)
    with pytest.raises(SweepNotFoundError, match="No sweep 'nope'"):
        store.read("nope")
    assert issubclass(SweepNotFoundError, KeyError)  # as before: a missing sweep is a KeyError
    with pytest.raises(SweepError, match="Invalid sweep id"):
        jt.get_sweep("../jobs")


def test_a_search_whose_driver_died_reads_failed_and_reconcile_records_it(tune_home):
    store = SweepStore()
    sweep_id = _make(store, "dead", driver=dict(DEAD))
    on_disk = (store.path(sweep_id) / "sweep.json").read_bytes()
    handle = sweep_module.Sweep(sweep_id, store)
    assert handle.state is JobState.FAILED and "sweep.resume()" in handle.error and "driver.log" in handle.error
    assert (store.path(sweep_id) / "sweep.json").read_bytes() == on_disk  # reading wrote nothing
    assert store.reconcile() == [sweep_id]
    assert store.read_raw(sweep_id)["state"] == JobState.FAILED.value and store.reconcile() == []
    # one being cancelled when its driver died ends CANCELLED; a live driver and a grid sweep are left alone
    cancelling = _make(store, "cancelling", state=JobState.CANCELLING.value, driver=dict(DEAD))
    live = _make(store, "live", driver={"pid": os.getpid(), "create_time": psutil.Process().create_time()})
    starting = _make(store, "starting", driver={"pid": None, "start_unix": time.time()})
    grid = _make(store, "grid", search="grid", n_trials=1)
    assert store.read(cancelling)["state"] == JobState.CANCELLED.value
    assert sorted(store.reconcile()) == [cancelling]
    assert [store.read_raw(i)["state"] for i in (live, starting, grid)] == [JobState.RUNNING.value] * 3
    stale = _make(store, "stale", driver={"pid": None, "start_unix": time.time() - 3600})
    assert "never started" in store.read(stale)["error"]


def test_two_racing_resumes_start_one_driver(tune_home):
    store = SweepStore()
    sweep_id = _make(store, "resume", driver=dict(DEAD))
    results = []
    threads = [threading.Thread(target=lambda: results.append(SweepStore().begin_resume(sweep_id)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    record = store.read(sweep_id)
    assert record["state"] == JobState.RUNNING.value and record["driver"]["pid"] is None and record["error"] is None


def test_a_sweep_folder_written_before_the_shared_store_still_reads(tune_home):
    # The older layout: sweep.json with a lock file of its own beside it (fcntl), a grid sweep's driver null.
    folder = tune_home / "sweeps" / "old-20250101-000000-abcd"
    folder.mkdir(parents=True)
    (folder / ".lock").touch()
    record = _record(folder.name, search="grid", state=JobState.SUCCEEDED.value, n_trials=1,
                     trials=[{"number": 0, "params": {"adapter_size": 4}, "job_id": "gone", "status": "submitted"}])
    (folder / "sweep.json").write_text(json.dumps(record, indent=2))
    s = jt.get_sweep(folder.name)
    assert s.state is JobState.SUCCEEDED and s.job_ids == ["gone"] and s.objective["metric"] == "train_total_loss"
    assert [x.id for x in jt.list_sweeps()] == [folder.name]
    SweepStore().update_trial(folder.name, 0, status="complete")  # and writes under the shared lock
    assert s.trials[0]["status"] == "complete"


def test_a_refused_sweep_leaves_no_folder(tune_home, tiny_model_dir):
    rows = [{"input_text": "too few", "output_text": "rows"}]
    with pytest.raises(Exception, match="(?i)example"):
        jt.sweep(base=dict(base_model=str(tiny_model_dir), train_dataset=rows), grid={"adapter_size": [4, 8]})
    assert not (tune_home / "sweeps").exists() or list((tune_home / "sweeps").iterdir()) == []
