"""Jobs on a tiny model: they train for real in their own process, and survive cancel, kill -9 and resume."""

import json
import os
import signal
import threading
import time

import pytest

import jupyter_tune as jt
from jupyter_tune.jobs.store import InvalidJobIdError, JobStore
from tests.support.waiting import wait_for

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(24) for topic in ("Urology", "Neurology")]


def test_job_succeeds_logs_contract_metrics_and_trains_the_adapter(tune_home, tiny_model_dir):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:8], evaluate_after=False, sample_prompts=0,
                  tuned_model_display_name="tiny", max_steps=6, batch_size=4, eval_steps=3)
    assert job.state in (jt.JobState.PENDING, jt.JobState.RUNNING)  # returned at once
    assert job.wait(timeout=180) is jt.JobState.SUCCEEDED, job.log()
    rows = [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "train_total_loss" in r]
    evals = [r for r in rows if "eval_total_loss" in r]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    for key in ("epoch", "train_fraction_of_correct_next_step_preds", "train_num_predictions",
                "learning_rate", "tokens_per_second"):
        assert key in train[0]
    assert train[0]["train_num_predictions"] > 0 and train[0]["tokens_per_second"] > 0
    assert evals and {"eval_fraction_of_correct_next_step_preds", "eval_num_predictions"} <= set(evals[0])
    assert list(job.metrics["step"]) == [1, 2, 3, 4, 5, 6]

    # The adapter loads with peft and its weights moved away from their initial values (B starts at 0).
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, job.adapter_path)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)
    rec = job.record
    assert rec["tuning"]["method"] == "LoRA" and rec["tuning"]["lora_alpha"] == 16
    assert {"q_proj", "v_proj", "down_proj"} <= set(rec["tuning"]["target_modules"])
    stats = job.dataset_stats
    assert stats["train"]["tuning_dataset_example_count"] == 48 and stats["validation"] is not None


def test_same_seed_same_run(tune_home, tiny_model_dir):
    losses = []
    for _ in range(2):
        job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=3, batch_size=4, seed=7)
        assert job.wait(timeout=180) is jt.JobState.SUCCEEDED
        losses.append(list(job.metrics["train_total_loss"]))
    assert losses[0] == losses[1]


def test_cancel_keeps_the_adapter(tune_home, tiny_model_dir):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=5000, batch_size=2,
                  save_steps=1000, num_threads=1)
    wait_for(lambda: len(job.metrics) >= 3, what="three logged steps")
    assert job.cancel() in (jt.JobState.CANCELLING, jt.JobState.CANCELLED)
    assert job.wait(timeout=120) is jt.JobState.CANCELLED, job.log()
    assert (job.adapter_path / "adapter_config.json").exists()
    assert job.store.latest_checkpoint(job.id) is not None  # resume can continue from here
    assert job.metrics["step"].max() < 5000


def test_killed_job_reads_failed_and_resume_finishes(tune_home, tiny_model_dir):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=120, batch_size=2,
                  save_steps=5, num_threads=1)
    wait_for(lambda: job.store.latest_checkpoint(job.id) is not None, what="a checkpoint")
    os.kill(job.record["pid"], signal.SIGKILL)
    wait_for(lambda: job.state is jt.JobState.FAILED, timeout=30, what="FAILED after kill -9")
    assert "ended without reporting a final state" in job.error
    ckpt_step = int(job.store.latest_checkpoint(job.id).name.split("-")[-1])

    jt.resume(job.id)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    steps = job.metrics["step"]
    assert steps.max() == 120 and ckpt_step in set(steps)
    assert (job.adapter_path / "adapter_model.safetensors").exists()


def test_resume_refuses_a_running_or_succeeded_job(tune_home, tiny_model_dir):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=1, batch_size=4)
    job.wait(timeout=120)
    with pytest.raises(RuntimeError, match="only FAILED or CANCELLED"):
        jt.resume(job.id)


def test_rejected_dataset_leaves_nothing_in_the_store(tune_home, tiny_model_dir):
    with pytest.raises(jt.DatasetError, match="item 1, field 'output_text'"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=[{"input_text": "x"}] * 20)
    with pytest.raises(jt.DatasetError, match="at least 16"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS[:3])
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


def test_bad_parameters(tune_home, tiny_model_dir):
    with pytest.raises(ValueError, match="adapter_size: 3 is not one of"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, adapter_size=3)
    with pytest.raises(ValueError, match="Unknown tuning parameter"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, learnig_rate=1)
    with pytest.raises(FileNotFoundError, match="Cannot find model 'no-such/model'. Tried:"):
        jt.tune(base_model="no-such/model", train_dataset=ROWS)
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())


@pytest.mark.parametrize("bad", ["../etc", "UPPER", "a/b", "", "x" * 65, "white space", None])
def test_bad_job_ids_are_refused(tune_home, bad):
    with pytest.raises(InvalidJobIdError):
        jt.get_job(bad)


def test_concurrent_writers_do_not_corrupt_the_store(tune_home):
    store = JobStore()
    store.create("race", {"state": "JOB_STATE_RUNNING", "pid": os.getpid(), "create_unix": time.time()})

    def writer(key):
        for i in range(50):
            store.update("race", **{key: i})
            store.append_metrics("race", {"step": i, "who": key})

    threads = [threading.Thread(target=writer, args=(f"k{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec = store.read("race")
    assert all(rec[f"k{i}"] == 49 for i in range(4))  # no update lost
    lines = (store.job_dir("race") / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 200 and all(json.loads(line)["who"] for line in lines)  # no line torn or lost
    assert [r["step"] for r in store.read_metrics("race")] == list(range(50))  # one row per step
