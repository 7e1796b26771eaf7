"""The job queue (issue 12): with one slot, jobs run one after another in submission order; cancel,
delete, kill -9 and resume keep the queue moving, with no daemon."""

from __future__ import annotations

import os
import signal
import time

import pytest

import jupyter_tune as jt
from jupyter_tune.api import launch
from jupyter_tune.jobs import queue
from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import JobStore, process_alive
from tests.support.waiting import wait_for

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(12) for topic in ("Urology", "Neurology")]
FAST = dict(batch_size=4, num_threads=1, max_seq_length=256)


@pytest.fixture
def one_slot(tune_home, monkeypatch):
    monkeypatch.setenv(queue.SLOTS_ENV, "1")
    yield
    for record in JobStore().list():  # no job process outlives the test
        if process_alive(record.get("pid"), record.get("pid_create_time")):
            os.kill(record["pid"], signal.SIGKILL)


def tune(tiny_model_dir, name, **kwargs):
    return jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, tuned_model_display_name=name,
                   **{**FAST, **kwargs})


def span(job):
    """When the job trained: its first and last logged step (metrics rows carry the wall time)."""
    times = [r["time"] for r in job.store.read_metrics(job.id)]
    return min(times), max(times)


def test_machine_slots(monkeypatch):
    monkeypatch.setenv(queue.SLOTS_ENV, "3")
    assert queue.machine_slots() == 3
    monkeypatch.delenv(queue.SLOTS_ENV)
    queue.gpu_count.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert queue.machine_slots() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    queue.gpu_count.cache_clear()
    assert queue.machine_slots() == 1  # CPU: one
    queue.gpu_count.cache_clear()
    assert queue.slots_needed({"params": {"num_processes": 4}}, 2) == 2  # never more than the machine
    assert queue.slots_needed({"params": {}}, 2) == 1


def test_three_jobs_one_slot_run_in_order_and_never_at_once(one_slot, tiny_model_dir):
    jobs = [tune(tiny_model_dir, f"q{i}", max_steps=3) for i in range(3)]
    assert jobs[0].state in (JobState.PENDING, JobState.RUNNING)
    assert [j.state for j in jobs[1:]] == [JobState.QUEUED] * 2  # returned at once, queued
    assert [j.queue_position for j in jobs[1:]] == [1, 2]
    assert jobs[2].record["queue_position"] == 2
    summary = JobStore().summary(jobs[2].record)
    assert summary["queue_position"] == 2
    # Waiting on the last one alone moves the queue: each finishing job process starts the next.
    assert jobs[2].wait(timeout=600) is JobState.SUCCEEDED, jobs[2].log()
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 3
    spans = [span(j) for j in jobs]
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start, spans  # one after another, in submission order
    records = [j.record for j in jobs]
    for a, b in zip(records, records[1:]):
        assert a["end_time"] <= b["start_time"], (a["end_time"], b["start_time"])
    assert jobs[1].record["queue_position"] is None


def test_cancel_a_queued_job_skips_it_and_kill_starts_the_next(one_slot, tiny_model_dir):
    first = tune(tiny_model_dir, "first", max_steps=2000, save_steps=1000)
    middle = tune(tiny_model_dir, "middle", max_steps=2)
    last = tune(tiny_model_dir, "last", max_steps=2)
    assert middle.state is JobState.QUEUED and last.queue_position == 2
    assert middle.cancel() is JobState.CANCELLED  # never starts
    assert last.queue_position == 1
    wait_for(lambda: len(first.metrics) >= 1, what="the first job training")
    assert last.state is JobState.QUEUED
    os.kill(first.record["pid"], signal.SIGKILL)
    # Nobody but this waiting kernel notices: its read finds the dead job and starts the next.
    assert last.wait(timeout=300) is JobState.SUCCEEDED, last.log()
    assert first.state is JobState.FAILED and "ended without reporting" in first.error
    assert middle.state is JobState.CANCELLED and middle.record.get("start_time") is None
    assert "never started" not in (middle.error or "")
    # A resume goes through the queue too (and reaches the end of it).
    jt.resume(first.id)
    assert first.state in (JobState.PENDING, JobState.RUNNING)
    first.cancel()
    assert first.wait(timeout=300) is JobState.CANCELLED


def test_queued_jobs_are_not_failed_for_lack_of_a_process(one_slot, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(launch, "_spawn", lambda *a: None)  # the first job holds the slot, never runs
    monkeypatch.setattr(queue, "spawn_worker", lambda *a: None)
    held = tune(tiny_model_dir, "held")
    waiting = tune(tiny_model_dir, "waiting")
    store = JobStore()
    store.update(waiting.id, create_unix=time.time() - 3600, queued_unix=time.time() - 3600)
    store.update(held.id, pending_since=time.time() - 60)
    assert waiting.state is JobState.QUEUED  # an hour in the queue is not a death
    deleted = tune(tiny_model_dir, "deleted")
    assert deleted.queue_position == 2
    jt.delete_job(waiting.id)
    assert deleted.queue_position == 1  # deleting takes a job out of the queue
    # The stuck PENDING one is found dead after its grace: reading says so and changes nothing; the
    # reconcile in jt.list_jobs records it, and its slot goes to the next (spawned, here).
    store.update(held.id, pending_since=time.time() - 3600)
    assert held.state is JobState.FAILED and deleted.state is JobState.QUEUED
    assert store.read_raw(held.id)["state"] == JobState.PENDING.value
    assert [j.state for j in jt.list_jobs()] == [JobState.PENDING, JobState.FAILED]
    assert deleted.state is JobState.PENDING and store.read_raw(held.id)["state"] == JobState.FAILED.value


def test_racing_dispatchers_start_each_job_once(one_slot, tiny_model_dir, monkeypatch):
    import threading

    started = []
    monkeypatch.setattr(launch, "_spawn", lambda store, job_id, resume: started.append(job_id))
    monkeypatch.setattr(queue, "spawn_worker", lambda store, job_id, resume: started.append(job_id))
    jobs = [tune(tiny_model_dir, f"r{i}") for i in range(3)]
    store = JobStore()
    for j in jobs[:1]:
        store.update(j.id, state=JobState.SUCCEEDED.value)  # frees the slot: now everyone races
    barrier = threading.Barrier(6)

    def race():
        barrier.wait()
        queue.dispatch(store, spawn=lambda s, job_id, resume: started.append(job_id))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert started == [jobs[0].id, jobs[1].id]  # the second started once, the third still waits
    assert jobs[2].state is JobState.QUEUED and jobs[2].queue_position == 1


def test_the_header_shows_the_queue_position():
    from jupyter_tune.widgets.header import JobHeader

    header = JobHeader()
    header.update({"id": "j", "state": JobState.QUEUED.value, "queue_position": 2, "params": {}}, [])
    assert "queued, position 2" in header.progress_text.value
    assert header.cancel_button.layout.display is None  # a queued job can be cancelled
