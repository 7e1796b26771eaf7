"""Fault injection (issue 11): cancel at every phase, kill -9 at random points, torn checkpoints, racing
resumes, corrupt job folders, NaN, full disks. Nothing a user started may be lost or lie about its state.

Job processes pause at named points through tests/support/faults (a sitecustomize on the job process's PYTHONPATH) so a cancel
lands in the phase a test names; several jobs run at once to keep the suite fast on two cores.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import struct
import threading
import time
from pathlib import Path

import pytest

import jupyter_tune as jt
from jupyter_tune.api import launch
from jupyter_tune.jobs.checkpoints import COMPLETE_MARKER, checkpoint_problem
from jupyter_tune.jobs.queue import reconcile
from jupyter_tune.jobs.states import JobState
from jupyter_tune.jobs.store import (
    InvalidJobIdError,
    JobStateError,
    JobStore,
    atomic_write_json,
    process_alive,
)
from tests.support import faults
from tests.support.waiting import wait_for

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(12) for topic in ("Urology", "Neurology")]
FAST = dict(batch_size=4, num_threads=1, max_seq_length=256)


def strict_json(path: Path):
    """Parse as a browser would: NaN / Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{path.name} holds {name}")
    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines() if line] \
        if path.suffix == ".jsonl" else json.loads(path.read_text(), parse_constant=refuse)


def log_has(job: jt.TuningJob, text: str) -> bool:
    return text in (job.dir / "log.txt").read_text(errors="replace")


@pytest.fixture
def no_leftover_jobs(tune_home):
    """No job process of a test outlives it, whatever the test did."""
    yield
    for record in JobStore().list():
        pid = record.get("pid")
        if pid and process_alive(pid, record.get("pid_create_time")):
            os.kill(pid, signal.SIGKILL)


# -- 1. cancel at every phase ends CANCELLED, with an adapter once something was trained --
PHASES = {
    # name: (pause, how to cancel, extra tune kwargs, adapter expected, what the job's log says)
    "right-after-tune": (None, "cancel", {}, False, ""),
    "pending, process starting": ("start:60", "cancel", {}, False, "Not starting: the job is JOB_STATE_CANCELLED"),
    "loading the model": ("load:60", "cancel", {}, False, "Cancelled before training started"),
    "loading, no signal": ("load:60", "mark", {}, False, "Cancelled before training started"),
    "mid-step": ("step:60", "cancel", {}, True, "JOB_STATE_CANCELLED"),
    "mid-step, no signal": ("step:60", "mark", {}, True, "JOB_STATE_CANCELLED"),
    "saving a checkpoint": ("save:60", "cancel", {"save_steps": 2}, True, "JOB_STATE_CANCELLED"),
    "evaluating": ("eval:60", "cancel", {"validation_dataset": ROWS[:8], "eval_steps": 2}, True,
                   "Cancelled at step 2; adapter saved"),
}


def test_cancel_at_every_phase_ends_cancelled(tune_home, tiny_model_dir, monkeypatch, no_leftover_jobs):
    # Every pause is set before the first job starts and picked by the job's name: a job process that ends
    # starts queued jobs itself, with its own environment (a per-call variable once reached the wrong job).
    faults.inject_by_name(monkeypatch, {name: pause for name, (pause, *_) in PHASES.items() if pause})
    jobs = {}
    for name, (pause, _, extra, _, _) in PHASES.items():
        jobs[name] = jt.tune(train_dataset=ROWS, tuned_model_display_name=name, base_model=str(tiny_model_dir),
                             max_steps=400, **{**FAST, "save_steps": 1000, **extra})
        if pause is None:
            jobs[name].cancel()  # before the process could install anything
    for name, (pause, how, _, _, _) in PHASES.items():
        job = jobs[name]
        if pause is None:
            continue
        point = pause.split(":")[0]
        wait_for(lambda job=job, point=point: log_has(job, f"test pause at {point}") or job.state.is_final,
                 what=f"{name}: the pause")
        assert log_has(job, f"test pause at {point}"), f"{name} ended {job.state.value} unpaused:\n{job.log(30)}"
        if how == "cancel":
            job.cancel()
        else:  # what a platform without signals does: only job.json says CANCELLING
            job.store.update(job.id, state=JobState.CANCELLING.value)
    for name, (_, _, _, adapter, said) in PHASES.items():
        job = jobs[name]
        assert job.wait(timeout=300) is JobState.CANCELLED, f"{name}: {job.error}\n{job.log(30)}"
        assert log_has(job, said), f"{name}: {job.log(30)}"
        assert job.error is None, name
        assert (job.adapter_path / "adapter_config.json").exists() is adapter, name
        if adapter:
            assert job.metrics["step"].max() < 400, name
            ckpt = job.store.latest_checkpoint(job.id)
            assert ckpt is not None and (ckpt / COMPLETE_MARKER).exists(), name
        else:
            assert job.metrics.empty, name
        wait_for(lambda job=job: not process_alive(job.record.get("pid"), job.record.get("pid_create_time")),
                 timeout=60, what=f"{name}: the process to end")


def test_cancel_before_any_process_and_a_late_start(tune_home, tiny_model_dir, monkeypatch, no_leftover_jobs):
    real_spawn = launch._spawn
    monkeypatch.setattr(launch, "_spawn", lambda store, job_id, resume: None)
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, **FAST)
    assert job.state is JobState.PENDING and job.record["pid"] is None
    assert job.cancel() is JobState.CANCELLED
    # The process the launcher was about to start finds the job cancelled and leaves it so.
    real_spawn(job.store, job.id, resume=False)
    wait_for(lambda: not process_alive(job.record["pid"], job.record["pid_create_time"]), timeout=120,
             what="the late process to exit")
    assert job.state is JobState.CANCELLED and job.record.get("start_time") is None
    assert "Not starting: the job is JOB_STATE_CANCELLED" in job.log()


def test_cancel_mid_evaluation_keeps_the_best_of_the_evaluations_done(tune_home, tiny_model_dir, monkeypatch,
                                                                     no_leftover_jobs):
    """A cancel inside an evaluation abandons it (JobCancelled); the evaluations before it still name the
    best checkpoint in job.json (the GRPO benchmark once ended this way with no best recorded)."""
    faults.inject(monkeypatch, faults.PAUSE_ENV, "eval@4:60")
    job = jt.tune(train_dataset=ROWS, validation_dataset=ROWS[:8], base_model=str(tiny_model_dir), max_steps=400,
                  eval_steps=2, sample_prompts=0, evaluate_after=False, **FAST)
    wait_for(lambda: log_has(job, "test pause at eval@4") or job.state.is_final, what="the pause")
    job.cancel()
    assert job.wait(timeout=300) is JobState.CANCELLED, job.log(30)
    assert log_has(job, "Cancelled at step 4; adapter saved"), job.log(30)
    best = job.record.get("best")
    assert best is not None and best["step"] == 2 and best["metric"] == "eval_macro_f1", (best, job.log(30))
    assert (job.adapter_path / "adapter_config.json").exists()


# -- kill -9 at random points: FAILED every time, and resuming finishes with every step logged once --
def kill_chain(tiny_model_dir, kills: int, seed: int, out: dict) -> None:
    """Kill a job's process `kills` times at random moments, resuming after each; a job that finishes
    before the next kill is replaced by a new one. Leaves the jobs in out[seed]."""
    rng = random.Random(seed)
    jobs: list[jt.TuningJob] = []
    for _ in range(kills):
        if not jobs or jobs[-1].state is JobState.SUCCEEDED:
            jobs.append(jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=40, save_steps=1,
                                tuned_model_display_name=f"kill-{seed}-{len(jobs)}", **FAST))
        job = jobs[-1]
        pid = job.record["pid"]
        if rng.random() < 0.6:  # anywhere in start-up: imports, model load, first steps
            time.sleep(rng.uniform(0.0, 3.0))
        else:  # among the steps and their checkpoint saves
            seen = len(job.store.read_metrics(job.id))
            wait_for(lambda job=job, seen=seen: len(job.store.read_metrics(job.id)) > seen or job.state.is_final,
                     what="a step")
            time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda job=job: job.state.is_final, timeout=60, what="a final state after kill -9")
        if job.state is JobState.SUCCEEDED:  # it finished just before the kill
            continue
        assert job.state is JobState.FAILED and "ended without reporting a final state" in job.error
        jt.resume(job.id)
    out[seed] = jobs


@pytest.mark.slow  # 20 kills and resumes of real job processes: minutes on 2 cores
def test_kill_9_at_random_points_then_resume_finishes(tune_home, tiny_model_dir, no_leftover_jobs):
    out: dict = {}
    # Two chains at once: each job process spends most of its life importing torch on one core.
    threads = [threading.Thread(target=kill_chain, args=(tiny_model_dir, 10, seed, out)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert len(out) == 2, "a kill chain failed (see the thread's traceback above)"
    jobs = out[1] + out[2]
    for job in jobs:
        assert job.wait(timeout=300) is JobState.SUCCEEDED, job.log(40)
        # no torn file read as if whole (an exception's "JSONDecodeError: ..." line); "Skipping checkpoint-2:
        # trainer_state.json is torn (0 bytes: JSONDecodeError)" is the resume saying what it left out
        assert "JSONDecodeError:" not in (job.dir / "log.txt").read_text(errors="replace")
        steps = [r["step"] for r in job.store.read_metrics(job.id) if "train_total_loss" in r]
        assert steps == list(range(1, 41)), steps  # unique, increasing, none missing
        assert list(job.metrics["step"]) == steps
        assert (job.adapter_path / "adapter_model.safetensors").exists()
        assert not list(job.dir.glob(".adapter-*"))
        strict_json(job.dir / "metrics.jsonl")
        strict_json(job.dir / "job.json")
    torn = sum((j.dir / "log.txt").read_text(errors="replace").count("Removed torn") for j in jobs)
    print(f"kill -9: 20 kills over {len(jobs)} jobs, {sum(j.record.get('resume_count', 0) for j in jobs)} "
          f"resumes ({torn} past a torn checkpoint), all SUCCEEDED with steps 1..40 once each")


# -- 2. torn checkpoints are skipped, and say so --
def fake_checkpoint(ckpts: Path, step: int) -> Path:
    d = ckpts / f"checkpoint-{step}"
    d.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (d / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": [{"loss": 1.0}]}))
    return d


def test_torn_checkpoints_are_skipped_and_reported(tune_home, caplog):
    store = JobStore()
    store.create("torn", {"state": JobState.FAILED.value})
    ckpts = store.job_dir("torn") / "checkpoints"
    good = fake_checkpoint(ckpts, 5)
    assert checkpoint_problem(good, 5) is None
    zero = fake_checkpoint(ckpts, 10)
    (zero / "trainer_state.json").write_bytes(b"")  # kill -9 during the save
    cut = fake_checkpoint(ckpts, 15)
    weights = cut / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-3])  # a full disk
    half = fake_checkpoint(ckpts, 20)
    (half / "trainer_state.json").unlink()
    nan = fake_checkpoint(ckpts, 25)
    (nan / "trainer_state.json").write_text('{"global_step": 25, "log_history": [{"loss": NaN}]}')
    marked = fake_checkpoint(ckpts, 30)
    atomic_write_json(marked / COMPLETE_MARKER, {"step": 30, "files": {"adapter_model.safetensors": 999}})
    reported = []
    assert store.latest_checkpoint("torn", report=reported.append) == good
    assert [r.split(":")[0] for r in reported] == [f"Skipping checkpoint-{s}" for s in (30, 25, 20, 15, 10)]
    assert "trainer_state.json is torn (0 bytes" in reported[-1] and "cut short" in reported[-2]
    assert store.latest_checkpoint("torn") == good
    assert "Skipping checkpoint-10" in caplog.text  # logged by default
    # The resumed process clears the torn ones: the Trainer's rotation keeps the highest numbers.
    store.discard_torn_checkpoints("torn", good, report=reported.append)
    assert [p.name for p in ckpts.iterdir()] == ["checkpoint-5"] and reported[-1] == "Removed torn checkpoint-10"


# -- 3. non-finite: refused as input, never written as JSON, a diverging job stops FAILED --
@pytest.mark.parametrize("bad", [dict(learning_rate=float("inf")), dict(learning_rate_multiplier=float("nan")),
                                 dict(lora_dropout=float("nan")), dict(seed=2**32), dict(seed=-1)])
def test_non_finite_and_out_of_range_parameters_are_refused(tune_home, tiny_model_dir, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, **bad)
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


def test_nan_never_reaches_the_json_the_panel_reads(tune_home):
    store = JobStore()
    store.create("nan-job", {"state": JobState.SUCCEEDED.value, "best": {"value": float("nan")}})
    store.update("nan-job", progress={"eta_seconds": float("inf"), "loss": float("-inf")})
    store.append_metrics("nan-job", {"step": 1, "train_total_loss": float("nan")})
    job_json = strict_json(store.job_dir("nan-job") / "job.json")
    assert job_json["best"]["value"] is None and job_json["progress"]["eta_seconds"] is None
    assert strict_json(store.job_dir("nan-job") / "metrics.jsonl") == [{"step": 1, "train_total_loss": None}]
    # Files written by an older version with NaN in them read as null.
    (store.job_dir("nan-job") / "metrics.jsonl").write_text('{"step": 2, "train_total_loss": NaN}\n')
    assert store.read_metrics("nan-job") == [{"step": 2, "train_total_loss": None}]


def test_max_seq_length_beyond_the_model_context_warns(tune_home, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(launch, "_spawn", lambda *a, **k: None)
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_seq_length=2048)
    warning = next(w for w in job.record["warnings"] if "max_seq_length" in w)
    assert "2048 exceeds the model's context of 512 tokens" in warning
    assert warning in capsys.readouterr().err
    job2 = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_seq_length=512)
    assert not any("max_seq_length" in w for w in job2.record["warnings"])


def poisoned_model(tiny_model_dir: Path, out: Path) -> Path:
    """The tiny model with an infinite norm weight: the loss is NaN from the first step."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_model_dir, out)
    weights = load_file(out / "model.safetensors")
    weights["model.norm.weight"].fill_(float("inf"))
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return out


def test_a_job_whose_loss_goes_non_finite_fails_with_the_step_and_a_hint(tune_home, tiny_model_dir, tmp_path,
                                                                        no_leftover_jobs):
    model = poisoned_model(tiny_model_dir, tmp_path / "poisoned")
    job = jt.tune(base_model=str(model), train_dataset=ROWS, max_steps=20, save_steps=3, **FAST)
    assert job.wait(timeout=300) is JobState.FAILED, job.log(30)
    assert "Training diverged at step 1: the training loss is nan" in job.error
    assert "Lower the learning rate" in job.error
    assert "No checkpoint was saved before it" in job.error
    assert job.store.checkpoints(job.id) == []  # nothing non-finite was saved
    assert not job.adapter_path.exists()
    assert strict_json(job.dir / "metrics.jsonl")[0]["train_total_loss"] is None
    strict_json(job.dir / "job.json")


def test_guard_keeps_the_last_finite_checkpoint(tune_home, tiny_model_dir, tmp_path):
    """In process: weights turned NaN after step 3 stop training before checkpoint 3 is written."""
    import torch
    from transformers import TrainerCallback

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.params import TuningParams
    from jupyter_tune.training.build import build_trainer
    from jupyter_tune.training.guards import CheckpointMarker, NonFiniteGuard

    params = TuningParams(base_model=str(tiny_model_dir), max_steps=8, save_steps=1, **FAST)
    trainer, _, _, _ = build_trainer(params, load_dataset(ROWS), None, tmp_path / "checkpoints")

    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                with torch.no_grad():
                    next(p for p in trainer.model.parameters() if p.requires_grad).fill_(float("nan"))

    guard = NonFiniteGuard(trainer.model)
    for cb in (Poison(), guard, CheckpointMarker()):
        trainer.add_callback(cb)
    trainer.train()
    assert guard.tripped == {"step": 3, "what": "the adapter weights hold NaN or infinity"}
    saved = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "checkpoints").glob("checkpoint-*"))
    assert saved[-1] == 2 and all((tmp_path / "checkpoints" / f"checkpoint-{s}" / COMPLETE_MARKER).exists()
                                  for s in saved)
    assert "The last finite checkpoint, checkpoint-2, is kept." in guard.message("checkpoint-2")


# -- 4. racing resumes start one process --
def test_concurrent_resumes_start_one_worker(tune_home, monkeypatch):
    store = JobStore()
    store.create("race", {"state": JobState.RUNNING.value, "pid": 2**22 + 12345, "create_unix": time.time()})
    spawned = []
    monkeypatch.setattr(launch, "_spawn", lambda s, job_id, resume: spawned.append(job_id))
    errors, barrier = [], threading.Barrier(8)

    def resume():
        barrier.wait()
        try:
            jt.resume("race")
        except JobStateError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spawned == ["race"] and len(errors) == 7
    assert all("JOB_STATE_PENDING; only FAILED or CANCELLED" in e for e in errors)
    record = store.read_raw("race")
    assert record["resume_count"] == 1 and "ended without reporting" in record["previous_error"]["message"]


# -- 5. one bad job folder breaks nothing --
CORRUPT = {
    "not-an-object": (b"[1, 2, 3]", "holds a JSON list, not an object"),
    "not-utf8": (b'{"id": "not-utf8", "state": "JOB_STATE_FAILED", "x": "\xff"}', "not UTF-8"),
    "wrong-id": (b'{"id": "someone-else", "state": "JOB_STATE_FAILED"}', "names job 'someone-else'"),
    "torn-json": (b'{"id": "torn-json", "sta', "not valid JSON"),
    "no-state": (b'{"id": "no-state", "state": 7}', "no valid state"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
}


def make_corrupt_store() -> JobStore:
    store = JobStore()
    store.create("good-job", {"state": JobState.SUCCEEDED.value, "create_unix": time.time(),
                              "params": {"base_model": "tiny"}})
    for job_id, (content, _) in CORRUPT.items():
        store.create(job_id, {"state": JobState.FAILED.value})
        (store.job_dir(job_id) / "job.json").write_bytes(content)
    store.create("unreadable", {"state": JobState.FAILED.value})
    (store.job_dir("unreadable") / "job.json").unlink()
    (store.job_dir("unreadable") / "job.json").mkdir()  # EISDIR: unreadable as a file
    store.jobs_dir.joinpath("no-job-json").mkdir()
    return store


def test_a_corrupt_job_lists_the_rest_and_can_be_deleted(tune_home):
    store = make_corrupt_store()
    jobs = {j.id: j for j in jt.list_jobs()}
    assert set(jobs) == {"good-job", "unreadable", "no-job-json", *CORRUPT}
    assert jobs["good-job"].state is JobState.SUCCEEDED
    for job_id, (_, reason) in CORRUPT.items():
        assert jobs[job_id].state is JobState.FAILED and reason in jobs[job_id].error, job_id
        assert jobs[job_id].record["unreadable"] is True
        assert jobs[job_id].cancel() is JobState.FAILED
        with pytest.raises(ValueError, match="unreadable"):
            jt.resume(job_id)
    assert "cannot be read" in jobs["unreadable"].error and "no job.json" in jobs["no-job-json"].error
    for job_id in [*CORRUPT, "unreadable", "no-job-json"]:
        jt.delete_job(job_id)
    assert [j.id for j in jt.list_jobs()] == ["good-job"]
    assert [r["id"] for r in store.list()] == ["good-job"]


# -- 6. the small ones --
def test_reading_never_writes_even_on_a_full_disk(tune_home, monkeypatch):
    store = JobStore()
    store.create("dead", {"state": JobState.RUNNING.value, "pid": 2**22 + 4321, "create_unix": time.time()})
    before = (store.job_dir("dead") / "job.json").read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    record = store.read("dead")  # reading has no side effect: the reader gets the truth, nothing is written
    assert record["state"] == JobState.FAILED.value and "ended without reporting" in record["error"]["message"]
    assert reconcile(store, "dead") == []  # the reconcile cannot write: it says so and leaves nothing
    assert jt.get_job("dead").state is JobState.FAILED
    assert [r["state"] for r in store.list()] == [JobState.FAILED.value]
    assert (store.job_dir("dead") / "job.json").read_bytes() == before
    assert not list(store.job_dir("dead").glob(".*.tmp"))
    monkeypatch.undo()
    store.read("dead")
    store.list()
    assert (store.job_dir("dead") / "job.json").read_bytes() == before  # reads alone never write
    assert reconcile(store) == ["dead"]  # with space again, the one explicit reconcile step records it
    assert store.read_raw("dead")["state"] == JobState.FAILED.value


def test_a_torn_metrics_line_loses_only_itself_and_replayed_steps_keep_the_latest(tune_home):
    store = JobStore()
    store.create("m", {"state": JobState.RUNNING.value})
    path = store.job_dir("m") / "metrics.jsonl"
    store.append_metrics("m", {"step": 1, "train_total_loss": 3.0})
    with open(path, "a") as f:
        f.write('{"step": 2, "train_total_lo')  # kill -9 mid-line
    store.append_metrics("m", {"step": 2, "train_total_loss": 2.5})  # the resumed process
    store.append_metrics("m", {"step": 2, "eval_total_loss": 2.7})
    # An older writer glued the next row onto a torn line: the row is still found.
    with open(path, "a") as f:
        f.write('{"step": 3, "train_tot{"step": 3, "train_total_loss": 2.0}\n')
    store.append_metrics("m", {"step": 1, "train_total_loss": 2.9})  # replayed after a resume
    rows = store.read_metrics("m")
    assert rows == [{"step": 1, "train_total_loss": 2.9}, {"step": 2, "train_total_loss": 2.5},
                    {"step": 2, "eval_total_loss": 2.7}, {"step": 3, "train_total_loss": 2.0}]
    assert list(jt.get_job("m").metrics["step"]) == [1, 2, 3]


@pytest.mark.parametrize("bad", ["abc\n", "abc\r", " abc", "abc/..", "\u0430bc"])
def test_job_ids_must_match_whole(tune_home, bad):
    with pytest.raises(InvalidJobIdError):
        jt.get_job(bad)


def test_base_model_empty_and_symlink_loop_get_accurate_messages(tune_home, tmp_path):
    with pytest.raises(ValueError, match="base_model: empty"):
        jt.tune(base_model="", train_dataset=ROWS)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(FileNotFoundError, match="symbolic link that loops"):
        jt.tune(base_model=str(loop), train_dataset=ROWS)


def test_resume_from_the_last_checkpoint_trains_no_extra_step(tune_home, tiny_model_dir):
    """Killed after its final checkpoint: the resume adds no step past max_steps (Trainer would add one)."""
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=4, batch_size=4, save_steps=4)
    assert job.wait(timeout=300) is JobState.SUCCEEDED, job.log()
    job.store.update(job.id, state=JobState.FAILED.value, error={"message": "killed after its last save"})
    jt.resume(job.id)
    assert job.wait(timeout=300) is JobState.SUCCEEDED, job.log()
    assert [r["step"] for r in job.store.read_metrics(job.id) if "train_total_loss" in r] == [1, 2, 3, 4]
    assert "nothing left to train" in job.log(20)
