"""GRPO on the real default model (SmolLM2-135M-Instruct), offline: rewards from a label grader alone, no
demonstrations, and the validation reward rises (benchmarks/bench_grpo.py is the long form of this run).

It samples 8 answers per prompt at every step and takes about 7 minutes on 2 CPU cores, the longest test by
far: it runs with JUPYTER_TUNE_TEST_LONG=1 (``make test-long``), to keep make test inside CI's 45 minutes.
GRPO's mechanics (rewards, graders, cancel and resume, a hanging grader) run in make test on the tiny model
(tests/training/test_grpo.py).
"""

import json
import os

import pytest

import jupyter_tune as jt

LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [" + ", ".join(LABELS)
            + "]. Answer with the label only. TRANSCRIPT: {input_text}")

pytestmark = [pytest.mark.slow, pytest.mark.real_model,
              pytest.mark.skipif(os.environ.get("JUPYTER_TUNE_TEST_LONG") != "1",
                                 reason="about 7 minutes: set JUPYTER_TUNE_TEST_LONG=1 (make test-long)")]


def rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path) if line.strip()]


def test_grpo_from_the_base_learns_to_name_the_label(tune_home, repo_data, tmp_path, monkeypatch, fresh_models):
    monkeypatch.setenv("JUPYTER_TUNE_CACHE", str(tmp_path / "cache"))
    grader = {"kind": "label_match", "name": "one_label", "choices": LABELS}
    job = jt.tune(method="grpo", train_dataset=rows(repo_data / "small-train.jsonl"),
                  validation_dataset=rows(repo_data / "small-eval.jsonl")[-16:], prompt_template=TEMPLATE,
                  graders=[grader], num_generations=8, batch_size=16, max_completion_length=12,
                  learning_rate=1e-3, max_steps=12, eval_steps=6, max_seq_length=256, sample_prompts=0, seed=0)
    assert job.wait(timeout=1800) is jt.JobState.SUCCEEDED, job.log()
    m = job.metrics
    train = m["train_reward"].dropna().tolist()
    assert len(train) == 12
    # The end-of-job report judges greedy answers with the job's own grader, base vs tuned, on the 16 rows.
    graders = job.record["evaluation"]["graders"]
    base, tuned = graders["one_label"]["base"], graders["one_label"]["tuned"]
    assert tuned >= base + 0.15, (base, tuned, train, job.log(60))
    assert sum(train[-4:]) / 4 > sum(train[:4]) / 4, train
    best = job.record["best"]
    assert best["metric"] == "eval_reward" and best["step"] in (6, 12)
