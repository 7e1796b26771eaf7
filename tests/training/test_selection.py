"""The task metric during training, the best checkpoint as the job's adapter, and early stopping."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import jupyter_tune as jt
from jupyter_tune.params import DEFAULT_EARLY_STOPPING_PATIENCE, TuningParams
from jupyter_tune.training.selection import EarlyStopping, early_stopping_patience, looks_like_classification

LABELS = ("Urology", "Neurology", "Orthopedic")
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(8) for t in LABELS]


@pytest.mark.parametrize("answers, expected", [
    (["A", "B", "A", "B"], True),
    (["Urology"] * 5 + ["Neurology"] * 5, True),
    ([f"free text answer {i}" for i in range(20)], False),  # every answer different: text generation
    (["A"] * 10, False),  # one class: nothing to rank
])
def test_classification_sets_are_recognised(answers, expected):
    assert looks_like_classification(answers) is expected


def test_one_validation_row_per_label_is_a_classification_set():
    labels = [f"Specialty {i}" for i in range(38)]
    train = [lab for lab in labels for _ in range(20)]
    assert looks_like_classification(labels, train)  # 38 rows, 38 labels: every one a repeated training label
    assert not looks_like_classification(labels)  # alone, every answer differs
    # answers never seen in training are judged on their own
    assert not looks_like_classification([f"free text {i}" for i in range(38)], train)


class _State:
    global_step = 0


class _Control:
    should_training_stop = False
    should_save = False


def test_early_stopping_counts_evaluations_without_improvement():
    stop = EarlyStopping("eval_loss", greater_is_better=False, patience=2)
    state, control = _State(), _Control()
    for step, loss in enumerate([1.0, 0.8, 0.9, 0.8, 0.7, 0.75], start=1):
        state.global_step = step
        stop.on_evaluate(None, state, control, metrics={"eval_loss": loss})
        if control.should_training_stop:
            break
    # 0.8 is the best at step 2; steps 3 and 4 do not beat it (0.8 is not better than 0.8)
    assert control.should_training_stop and state.global_step == 4
    assert "eval_loss" in stop.reason and "early_stopping_patience=2" in stop.reason


def test_job_logs_task_metric_and_keeps_the_best_checkpoint(tune_home, tiny_model_dir):
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], evaluate_after=False, sample_prompts=0,
                  max_steps=6, batch_size=4, eval_steps=2, min_train_examples=1)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    m = job.metrics
    evals = m[m["eval_total_loss"].notna()]
    assert list(evals["step"]) == [2, 4, 6]  # every eval_steps, and the last step
    assert evals["eval_macro_f1"].between(0, 1).all() and evals["eval_accuracy"].between(0, 1).all()
    rec = job.record
    assert rec["tuning"]["select_best"] == "eval_macro_f1" and rec["tuning"]["task_metric"]["labels"] == 3
    assert rec["tuning"]["early_stopping_patience"] == DEFAULT_EARLY_STOPPING_PATIENCE  # on by default
    best = rec["best"]
    assert best["metric"] == "eval_macro_f1"
    assert best["value"] == pytest.approx(evals["eval_macro_f1"].max())
    assert best["step"] == int(evals.loc[evals["eval_macro_f1"].idxmax(), "step"])  # the first of the best
    # the job's adapter holds the best checkpoint's weights, exactly (bf16 adapters: both are the fp32 masters)
    adapter = load_file(str(job.adapter_path / "adapter_model.safetensors"))
    chosen = load_file(str(job.dir / "checkpoints" / f"checkpoint-{best['step']}" / "adapter_model.safetensors"))
    assert chosen.keys() == adapter.keys() and all(torch.equal(adapter[k], v) for k, v in chosen.items())


def test_loss_selection_without_task_metric_and_early_stopping(tune_home, tiny_model_dir):
    # a learning rate too small to change anything: the loss never improves, so the job stops early
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:9], evaluate_after=False, sample_prompts=0,
                  max_steps=40, batch_size=4, eval_steps=1, eval_task_metric=False, learning_rate=1e-9,
                  early_stopping_patience=2, min_train_examples=1)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    rec = job.record
    assert rec["tuning"]["select_best"] == "eval_total_loss" and rec["tuning"]["task_metric"] is None
    assert "eval_macro_f1" not in job.metrics.columns
    assert rec["stopped_early"]["step"] < 40 and "early_stopping_patience=2" in rec["stopped_early"]["reason"]
    assert "early stopping" in job.log(80).lower()
    assert json.loads((job.dir / "job.json").read_text())["best"]["metric"] == "eval_total_loss"


@pytest.mark.parametrize(("method", "given", "select", "patience"), [
    ("lora", None, "eval_macro_f1", DEFAULT_EARLY_STOPPING_PATIENCE),  # a validation set: on
    ("full", None, "eval_total_loss", DEFAULT_EARLY_STOPPING_PATIENCE),
    ("lora", None, None, 0),  # no validation set: nothing to stop on
    ("lora", 0, "eval_macro_f1", 0),  # 0: never
    ("lora", 5, "eval_macro_f1", 5),
    ("dpo", None, "eval_total_loss", 0),  # noisy validation metrics: only when asked
    ("grpo", None, "eval_reward", 0),
    ("grpo", 4, "eval_reward", 4),
])
def test_early_stopping_is_on_by_default_with_a_validation_set(method, given, select, patience):
    params = TuningParams(base_model="m", train_dataset="t.jsonl", method=method, early_stopping_patience=given)
    assert early_stopping_patience(params, select) == patience



GEN_ROWS = [{"input_text": f"Write a title for note {i} on {t}.", "output_text": f"A note on {t} number {i}"}
            for i in range(8) for t in LABELS]


def test_a_generation_job_chooses_its_checkpoint_on_rouge_l(tune_home, tiny_model_dir):
    """Issue 34: a generation job's evaluations score ROUGE-L F1 of greedy answers (eval_rouge_l, bounded: at
    most 32 rows, short answers), and the kept checkpoint and early stopping follow it, not the loss."""
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=GEN_ROWS, validation_dataset=GEN_ROWS[:6],
                  evaluate_after=False, sample_prompts=0, max_steps=4, batch_size=4, eval_steps=2,
                  min_train_examples=1)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    evals = job.metrics[job.metrics["eval_total_loss"].notna()]
    assert list(evals["step"]) == [2, 4] and evals["eval_rouge_l"].between(0, 1).all()
    assert (evals["eval_task_metric_seconds"] > 0).all()
    tuning = job.record["tuning"]
    assert tuning["select_best"] == "eval_rouge_l" and tuning["task_metric"]["metric"] == "eval_rouge_l"
    assert tuning["task_metric"]["examples"] == 6 and tuning["task_metric"]["max_new_tokens"] <= 96
    best = job.record["best"]
    assert best["metric"] == "eval_rouge_l" and best["value"] == pytest.approx(evals["eval_rouge_l"].max())


def test_rouge_l_selection_is_refused_where_it_cannot_apply():
    for bad in (dict(method="dpo"), dict(task="classification"), dict(eval_task_metric=False)):
        with pytest.raises(jt.ParameterError, match="select_best"):
            TuningParams(base_model="m", train_dataset="t.jsonl", select_best="eval_rouge_l", **bad)
