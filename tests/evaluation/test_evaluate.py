"""evaluate() and compare() end to end on the tiny model (mechanics), and its errors."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import jupyter_tune as jt
from jupyter_tune.data.errors import DatasetError
from jupyter_tune.evaluation import Comparison, EvaluationError, EvaluationReport, scoring
from jupyter_tune.models.loading import JobNotReadyError
from jupyter_tune.params import ParameterError
from tests.support.model_helpers import make_job

LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
ROWS = [
    {"input_text": "Echocardiogram and chest pain.", "output_text": "Cardiovascular / Pulmonary"},
    {"input_text": "Upper gastrointestinal endoscopy.", "output_text": "Gastroenterology"},
    {"input_text": "CT head without contrast.", "output_text": "Neurology"},
    {"input_text": "Left hip cemented hemiarthroplasty.", "output_text": "Orthopedic"},
    {"input_text": "Cystoscopy and removal of foreign objects.", "output_text": "Urology"},
    {"input_text": "Headache and dizziness for two weeks.", "output_text": "Neurology"},
]


@pytest.fixture
def chatty(chatty_model_dir):
    return jt.load_model(str(chatty_model_dir), dtype="float32")


def test_score_mode_predicts_only_valid_labels(chatty):
    report = jt.evaluate(chatty, ROWS, progress=False)
    assert isinstance(report, EvaluationReport) and report.mode == "score"
    p = report.predictions
    assert set(p["prediction"]) <= set(LABELS)
    assert list(p["ground_truth"]) == [r["output_text"] for r in ROWS]
    assert all(set(s) == set(LABELS) for s in p["label_scores"])
    assert all(max(s, key=s.get) == pred for s, pred in zip(p["label_scores"], p["prediction"], strict=True))
    assert report.evaluation_status == {"num_successful_rows": 6, "num_total_rows": 6}
    assert list(report.metrics.index[-3:]) == ["macro avg", "micro avg", "weighted avg"]
    assert report.confusion_matrix.to_numpy().sum() == 6
    assert list(p["correct"]) == list(p["prediction"] == p["ground_truth"])


def test_label_scores_equal_a_full_forward_pass(chatty):
    """Labels laid after the prompt in one pass give the same log-likelihoods as prompt+label alone."""
    dataset = jt.load_dataset(ROWS[:3], "Assign a label to the given medical transcript: the quick {input_text}")
    prompts = scoring.prepare(chatty, dataset, LABELS)
    batched = scoring.score_batch(chatty, prompts)
    for b, p in enumerate(prompts):
        for k, cont in enumerate(p.continuations):
            with torch.no_grad():
                lp = torch.log_softmax(chatty.model(torch.tensor([p.ids + cont])).logits[0].float(), -1)
            full = sum(lp[len(p.ids) - 1 + j, t].item() for j, t in enumerate(cont))
            assert batched[b][k] == pytest.approx(full, abs=1e-3)
            assert cont[-1] in chatty.eos_token_ids  # the end-of-turn token is scored


def test_label_chunks_give_the_same_scores(chatty, monkeypatch):
    dataset = jt.load_dataset(ROWS)
    prompts = scoring.prepare(chatty, dataset, LABELS)
    whole = scoring.score_batch(chatty, prompts)
    monkeypatch.setattr(scoring, "_MAX_LABEL_TOKENS", 1)  # one label per group
    assert np.allclose(scoring.score_batch(chatty, prompts), whole, atol=1e-4)


@pytest.mark.parametrize("how", scoring.SCORINGS)
def test_scoring_choices_rank_by_their_scores(chatty, how):
    report = jt.evaluate(chatty, ROWS, scoring=how, progress=False)
    p = report.predictions
    assert report.scoring == how and f"({how} scoring)" in repr(report) and f"{how} scoring" in report._repr_html_()
    counts = {lab: len(c) for lab, c in zip(LABELS, scoring.prepare(chatty, jt.load_dataset(ROWS[:1]), LABELS)[0]
                                            .continuations, strict=True)}
    free = report.content_free_logprobs
    assert (free is not None) == how.startswith("calibrated")
    for scores, sums, pred in zip(p["label_scores"], p["label_logprobs"], p["prediction"], strict=True):
        want = scoring.to_scores([sums[k] for k in LABELS], [counts[k] for k in LABELS], how,
                                 [free[k] for k in LABELS] if free else None)
        assert [scores[k] for k in LABELS] == pytest.approx(want)
        assert max(scores, key=scores.get) == pred


def test_default_scoring_and_an_unknown_one(chatty):
    report = jt.evaluate(chatty, ROWS, progress=False)  # a base model: auto means calibrated
    assert scoring.DEFAULT_SCORING == "auto" and report.scoring == "calibrated" and report.scoring_auto
    assert "auto: calibrated scoring" in report.summary()
    assert not jt.evaluate(chatty, ROWS, scoring="sum", progress=False).scoring_auto
    assert jt.evaluate(chatty, ROWS, mode="generate", max_output_tokens=2, progress=False).scoring is None
    with pytest.raises(ParameterError, match="scoring: 'best' is not one of.*'calibrated_mean'"):
        jt.evaluate(chatty, ROWS, scoring="best", progress=False)


def test_auto_scoring_ranks_a_tuned_job_by_summed_likelihood(tune_home, tiny_model_dir):
    make_job(tune_home, "auto-job", tiny_model_dir)
    tuned = jt.evaluate("auto-job", ROWS, progress=False)
    assert tuned.scoring == "sum" and tuned.scoring_auto
    assert scoring.resolve_scoring("auto", tuned=False) == "calibrated"
    assert scoring.resolve_scoring("mean", tuned=True) == "mean"


def test_generate_mode_maps_answers_and_keeps_unmapped_ones(chatty, monkeypatch):
    answers = ["cardiovascular / pulmonary.", " GASTROENTEROLOGY ", "It is Neurology", "Urology", "urology!", "zzz"]

    def fake_generate(lm, dataset, **kw):
        return answers, [""] * len(answers), 0

    monkeypatch.setattr("jupyter_tune.evaluation.run.generate_for", fake_generate)
    report = jt.evaluate(chatty, ROWS, mode="generate", progress=False)
    p = report.predictions
    assert list(p["raw_answer"]) == answers
    assert [None if pd.isna(x) else x for x in p["prediction"]] == [
        "Cardiovascular / Pulmonary", "Gastroenterology", None, "Urology", "Urology", None]
    assert list(p["correct"]) == [True, True, False, False, True, False]
    assert report.metrics.loc["Neurology", "recall"] == 0.0
    assert report.confusion_matrix.loc["Neurology", "(no label)"] == 2


def test_generate_mode_runs_the_model(chatty):
    report = jt.evaluate(chatty, ROWS, mode="generate", progress=False)
    assert report.evaluation_status["num_successful_rows"] == 6
    assert report.predictions["raw_answer"].map(lambda x: isinstance(x, str)).all()


def test_text_generation_metrics_from_the_model(chatty, monkeypatch):
    answers = [r["output_text"] for r in ROWS[:3]] + ["x", "y", "z"]
    monkeypatch.setattr("jupyter_tune.evaluation.run.generate_for",
                        lambda lm, ds, **kw: (answers, [""] * 6, 0))
    report = jt.evaluate(chatty, ROWS, task_type="text_generation", progress=False)
    assert report.metrics["exact_match"].iloc[0] == pytest.approx(0.5)
    assert report.confusion_matrix is None and report.macro_f1 is None
    real = jt.evaluate(chatty, ROWS, task_type="text_generation", max_output_tokens=4, progress=False)
    assert 0.0 <= real.metrics["rouge-l_f1_score"].iloc[0] <= 1.0


def test_a_failing_row_is_reported_and_left_out(chatty):
    rows = ROWS + [{"input_text": "fox " * 600, "output_text": "Urology"}]
    report = jt.evaluate(chatty, rows, progress=False)
    assert report.evaluation_status == {"num_successful_rows": 6, "num_total_rows": 7}
    assert "context" in report.predictions["status"].iloc[-1]
    assert report.metrics.loc["macro avg", "support"] == 6
    assert "1 rows failed" in report._repr_html_()


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_evaluate_shows_no_library_deprecation_notice(chatty, mode):
    """A user's evaluation cell carries no FutureWarning / DeprecationWarning (transformers 5.24 renamed
    forward's past_key_values to cache: passing the old name warned in every score-mode cell)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jt.evaluate(chatty, ROWS[:3], mode=mode, progress=False)
    noise = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert noise == []


def test_rich_display_and_plot(chatty):
    report = jt.evaluate(chatty, ROWS, progress=False)
    html = report._repr_html_()
    assert "<table" in html and html.count("data:image/png;base64") == 1 and "macro avg" in html
    fig = report.plot()
    assert len(fig.subfigs) == 2  # F1 bars and the confusion heat map


def test_compare_shows_deltas_and_the_rows_fixed_and_broken(tune_home, tiny_model_dir, chatty):
    make_job(tune_home, "cmp-job", tiny_model_dir)
    base = jt.evaluate(tiny_model_dir, ROWS, progress=False)
    tuned = jt.evaluate("cmp-job", ROWS, progress=False)
    # Make the outcome known: base right on rows 0-1, tuned right on rows 1-2.
    for rep, right in ((base, {0, 1}), (tuned, {1, 2})):
        rep.predictions["correct"] = [i in right for i in range(len(ROWS))]
    c = jt.compare(base, tuned)
    assert isinstance(c, Comparison) and "auto scoring: base calibrated, tuned sum" in repr(c)
    assert list(c.fixed.index) == [2] and list(c.broken.index) == [0]
    assert {"base_prediction", "tuned_prediction", "ground_truth"} <= set(c.fixed.columns)
    assert c.macro_f1_change == pytest.approx(tuned.macro_f1 - base.macro_f1)
    assert c.metrics.loc["macro avg", ("f1_score", "delta")] == pytest.approx(c.macro_f1_change)
    assert "data:image/png;base64" in c._repr_html_() and "Fixed by tuning" in c._repr_html_()
    other = jt.evaluate(tiny_model_dir, ROWS, scoring="mean", progress=False)
    assert "scoring differs: base mean, tuned sum" in jt.compare(other, tuned).summary()
    with pytest.raises(ValueError, match="same dataset"):
        jt.compare(base, jt.evaluate(chatty, ROWS[:3], progress=False))


def test_errors_say_what_to_do(tmp_path, tune_home, tiny_model_dir, chatty):
    f = tmp_path / "eval.jsonl"
    f.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"input_text": "no answer"}) + "\n")
    with pytest.raises(DatasetError, match=r"(?s)eval.jsonl, line 2, field 'output_text'.*jt.generate_text"):
        jt.evaluate(chatty, str(f), progress=False)
    with pytest.raises(ParameterError, match="task_type: 'regression' is not one of.*'classification'"):
        jt.evaluate(chatty, ROWS, task_type="regression")
    with pytest.raises(ParameterError, match="mode: 'vote' is not one of.*'score'"):
        jt.evaluate(chatty, ROWS, mode="vote")
    with pytest.raises(DatasetError, match="No examples"):
        jt.evaluate(chatty, [], progress=False)
    with pytest.raises(DatasetError, match=r"\{specialty\}"):
        jt.evaluate(chatty, ROWS, prompt_template="Classify {specialty}", progress=False)
    with pytest.raises(EvaluationError, match="not in labels="):
        jt.evaluate(chatty, ROWS, labels=["Neurology", "Urology"], progress=False)
    make_job(tune_home, "running-job", tiny_model_dir, state="JOB_STATE_RUNNING", adapter=False)
    with pytest.raises(JobNotReadyError, match="JOB_STATE_RUNNING"):
        jt.evaluate("running-job", ROWS, progress=False)
    for e in (DatasetError, EvaluationError, JobNotReadyError):
        assert issubclass(e, ValueError)


def test_given_labels_are_the_candidates(chatty):
    labels = LABELS + ["Dermatology"]
    report = jt.evaluate(chatty, ROWS, labels=labels, progress=False)
    assert all(len(s) == 6 for s in report.predictions["label_scores"])
    assert "Dermatology" in report.metrics.index and report.metrics.loc["Dermatology", "support"] == 0
