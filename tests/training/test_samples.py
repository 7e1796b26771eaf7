"""Sample answers at every evaluation (issue 26): samples.jsonl, job.samples, the rows chosen."""

from __future__ import annotations

import json

import pytest

import jupyter_tune as jt
from jupyter_tune.jobs.samples import read_evaluations, sample_rows
from jupyter_tune.params import ParameterError, TuningParams
from jupyter_tune.training.samples import choose_rows

LABELS = ("Urology", "Neurology", "Orthopedic")
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(8) for t in LABELS]


def test_rows_are_spread_over_the_answers():
    answers = ["A", "B", "A", "C", "A", "B", None]
    assert choose_rows(answers, 3) == [0, 1, 3]  # the first row of each answer, most common first
    assert choose_rows(answers, 4) == [0, 1, 2, 3]  # then the second row of the most common
    assert choose_rows(answers, 0) == []
    assert choose_rows([f"text {i}" for i in range(8)], 4) == [0, 2, 4, 6]  # free text: evenly spaced
    assert choose_rows(["A", "B"], 10) == [0, 1]


def test_default_is_four_and_off_for_dpo():
    assert TuningParams().effective_sample_prompts == 4
    assert TuningParams(method="dpo").effective_sample_prompts == 0
    assert TuningParams(method="dpo", sample_prompts=2).effective_sample_prompts == 2
    with pytest.raises(ParameterError, match="sample_prompts"):
        TuningParams(sample_prompts=65)


def test_changed_and_became_markers():
    evs = [{"step": 2, "samples": [{"row": 0, "expected": "A", "answer": "B", "correct": False},
                                   {"row": 1, "expected": "B", "answer": "B", "correct": True}]},
           {"step": 4, "samples": [{"row": 0, "expected": "A", "answer": "A", "correct": True},
                                   {"row": 1, "expected": "B", "answer": "B", "correct": True}]}]
    rows = sample_rows(evs)
    assert [(r["changed"], r["became"]) for r in rows] == [(False, None), (False, None), (True, "right"),
                                                          (False, None)]


def test_job_records_samples_at_each_evaluation(tune_home, tiny_model_dir):
    long_row = {"input_text": "word " * 400 + "about Urology.", "output_text": "Urology"}
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=[long_row] + ROWS[:8],
                  max_steps=4, batch_size=4, eval_steps=2, min_train_examples=1, max_seq_length=64,
                  sample_prompts=3, data_checks="off")
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    evs = read_evaluations(job.store, job.id)
    assert [e["step"] for e in evs] == [2, 4]
    for e in evs:
        assert [s["row"] for s in e["samples"]] == [0, 2, 3]  # the same rows at every evaluation
        assert e["seconds"] > 0 and 1 <= e["max_new_tokens"] <= 32
        for s in e["samples"]:
            assert set(s) >= {"row", "prompt", "expected", "answer", "correct"}
            assert isinstance(s["answer"], str) and isinstance(s["correct"], bool)
    first = evs[0]["samples"][0]
    assert first["truncated"] is True and len(first["prompt"]) <= 200  # cut as training cuts it
    df = job.samples
    assert list(df.columns[:4]) == ["step", "row", "expected", "answer"]
    assert len(df) == 6 and set(df["step"]) == {2, 4}
    assert job.record["samples"]["evaluations"] == 2
    assert "Sample answers: 2 evaluation(s)" in job.log(200)


def test_a_cancelled_job_keeps_its_samples(tune_home, tiny_model_dir):
    from tests.support.waiting import wait_for

    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=ROWS[:6],
                  max_steps=500, batch_size=4, eval_steps=1, min_train_examples=1, sample_prompts=2,
                  early_stopping_patience=0)  # a stalled tiny model must not end (SUCCEEDED) before the cancel
    wait_for(lambda: len(read_evaluations(job.store, job.id)) >= 2, what="two sampled evaluations")
    job.cancel()
    assert job.wait(timeout=300) is jt.JobState.CANCELLED, job.log()
    n = len(read_evaluations(job.store, job.id))
    assert n >= 2 and job.record["samples"]["evaluations"] == n
    assert job.log(400).count("Sample answers at step") == n  # the log says so, even when cancelled mid-evaluation


def test_off_when_zero_by_default_for_dpo_and_without_validation(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.jobs.store import JobStore
    from jupyter_tune.training.samples import sample_answers

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    store = JobStore(tmp_path)
    val = load_dataset(ROWS[:6])
    for params, data in ((TuningParams(sample_prompts=0), val), (TuningParams(), None)):
        assert sample_answers(params, data, tok, store, "job") is None
    pairs = [{"prompt": f"Question {i}?", "chosen": "Yes.", "rejected": "No."} for i in range(4)]
    dpo_val = load_dataset(pairs)
    assert sample_answers(TuningParams(method="dpo"), dpo_val, tok, store, "job") is None
    on = sample_answers(TuningParams(method="dpo", sample_prompts=2), dpo_val, tok, store, "job")
    assert [ex.answer for ex in on.examples] == ["Yes.", "Yes."]  # asked for: the chosen answers are expected


def test_torn_lines_are_skipped(tune_home):
    from jupyter_tune.jobs.store import JobStore
    from tests.support.fixtures import make_job

    store = JobStore(tune_home)
    d = make_job(store, "torn-1", "JOB_STATE_CANCELLED")
    line = {"step": 3, "samples": [{"row": 0, "expected": "A", "answer": "A", "correct": True}]}
    (d / "samples.jsonl").write_text('{"step": 1, "samp\n' + json.dumps(line) + "\n" + '{"step": 5')
    assert [e["step"] for e in read_evaluations(store, "torn-1")] == [3]
    assert jt.get_job("torn-1").samples["answer"].tolist() == ["A"]


def test_the_prompt_shown_is_the_rows_own_text():
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.training.samples import _user_text

    templated = load_dataset(ROWS[:2], "Assign a label from a long list of labels. TRANSCRIPT: {input_text}")
    assert _user_text(templated.examples[0]) == "Example number 0 about Urology."  # not the template's words
    assert _user_text(load_dataset(ROWS[:2]).examples[1]) == "Example number 0 about Neurology."


def test_a_generation_error_stops_the_samples_not_the_job(tiny_model_dir, tmp_path, capsys):
    from transformers import AutoTokenizer

    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.jobs.store import JobStore
    from jupyter_tune.training.samples import SampleAnswers

    class Broken:
        def parameters(self):
            raise RuntimeError("no weights")

    class State:
        global_step, epoch = 3, 1.0

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    cb = SampleAnswers(JobStore(tmp_path), "job", tok, load_dataset(ROWS[:2]).examples, 64)
    cb.on_evaluate(None, State(), None, model=Broken())
    assert cb.off and cb.evaluations == 0 and "sample answers stopped at step 3" in capsys.readouterr().out
