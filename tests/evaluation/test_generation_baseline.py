"""jt.baseline's generation baselines (nearest neighbour by TF-IDF, lead words): scored as jt.evaluate scores
text generation, laid beside the models by jt.compare, and run by the end-of-job report of a generation job."""

import json

import pytest

import jupyter_tune as jt
from jupyter_tune.evaluation import EvaluationError, EvaluationReport, job_report
from jupyter_tune.evaluation.baseline import LEAD_NAME, NEAREST_NAME, TFIDF_NAME
from jupyter_tune.evaluation.text_metrics import text_generation_metrics
from jupyter_tune.params import ParameterError

TRAIN = [
    {"input_text": "The cat sat on the warm mat all day", "output_text": "cat on mat"},
    {"input_text": "Dogs bark loudly at the moon every night", "output_text": "dogs bark at night"},
    {"input_text": "Rain falls in the spring across the valley", "output_text": "spring rain falls in valley"},
]  # output lengths 3, 4, 5 words: median 4
EVAL = [
    {"prompt": "a cat on a mat", "label": "cat on mat"},
    {"prompt": "the moon and the dogs", "label": "dogs bark"},
]


def test_nearest_answers_with_the_most_similar_training_rows_output():
    report = jt.baseline(TRAIN, EVAL, kind="nearest")
    assert isinstance(report, EvaluationReport) and report.model_name == NEAREST_NAME
    assert report.task_type == "text_generation" and report.runner_up is None
    assert report.predictions["prediction"].tolist() == ["cat on mat", "dogs bark at night"]
    assert report.predictions["correct"].tolist() == [True, False]  # exact match, as jt.evaluate has it
    assert report.metrics.iloc[0]["exact_match"] == 0.5


def test_lead_cuts_the_input_to_the_median_training_output_length():
    report = jt.baseline(TRAIN, EVAL, kind="lead")
    assert report.model_name == LEAD_NAME
    assert report.predictions["prediction"].tolist() == ["a cat on a", "the moon and the"]
    # the row's own input, not the template's fixed words
    templated = jt.baseline(TRAIN, EVAL, kind="lead", prompt_template="Summarise this text please: {input_text}")
    assert templated.predictions["prediction"].tolist() == ["a cat on a", "the moon and the"]


def test_the_baselines_are_scored_like_jt_evaluate(chatty_model_dir, monkeypatch):
    report = jt.baseline(TRAIN, EVAL, kind="nearest")
    truth, preds = report.predictions["ground_truth"].tolist(), report.predictions["prediction"].tolist()
    assert report.metrics.equals(text_generation_metrics(truth, preds))
    # a model that answers exactly what the baseline answers gets the same report from jt.evaluate
    monkeypatch.setattr("jupyter_tune.evaluation.run.generate_for", lambda lm, ds, **kw: (preds, [""] * 2, 0))
    model = jt.evaluate(str(chatty_model_dir), EVAL, task_type="text_generation", progress=False)
    assert model.metrics.equals(report.metrics) and model.task_type == report.task_type
    assert model.predictions["correct"].tolist() == report.predictions["correct"].tolist()


def test_auto_on_generation_rows_returns_the_better_with_the_other_attached():
    report = jt.baseline(TRAIN, EVAL)  # the default kind: no classification error on free text
    nearest, lead = jt.baseline(TRAIN, EVAL, kind="nearest"), jt.baseline(TRAIN, EVAL, kind="lead")
    best, other = (nearest, lead) if nearest.rouge_l >= lead.rouge_l else (lead, nearest)
    assert report.model_name == best.model_name and report.runner_up.model_name == other.model_name
    assert report.rouge_l == best.rouge_l and report.runner_up.rouge_l == other.rouge_l
    assert f"{other.model_name.removeprefix('baseline: ')}: ROUGE-L F1 {other.rouge_l:.3f}" in report.summary()
    back = EvaluationReport.from_json(json.loads(json.dumps(report.to_json(), default=job_report._plain)))
    assert back.summary() == report.summary() and back.runner_up.metrics.equals(report.runner_up.metrics)
    # classification rows keep the TF-IDF baseline by default
    labelled = [{"input_text": f"{w} exam", "output_text": lab} for lab, w in
                [("A", "knee"), ("B", "brain"), ("A", "hip"), ("B", "nerve")]]
    assert jt.baseline(labelled, labelled[:2]).model_name == TFIDF_NAME


def test_auto_without_words_for_tfidf_falls_back_to_lead_and_nearest_says_so():
    rows = [{"input_text": "! ?", "output_text": f"answer {i} here"} for i in range(3)]
    assert jt.baseline(rows, rows).model_name == LEAD_NAME
    with pytest.raises(EvaluationError, match="no words.*kind='lead'"):
        jt.baseline(rows, rows, kind="nearest")


def test_the_gate_refuses_a_bad_kind_by_name():
    with pytest.raises(ParameterError, match="kind: 'neighbour' is not one of .*'nearest', 'lead'"):
        jt.baseline(TRAIN, EVAL, kind="neighbour")


def test_compare_lays_a_generation_baseline_beside_the_models():
    nearest, lead = jt.baseline(TRAIN, EVAL, kind="nearest"), jt.baseline(TRAIN, EVAL, kind="lead")
    lost = jt.compare(lead, lead, baseline=nearest)  # lead as "base" and "tuned": below the neighbour
    assert lost.beats_baseline is False
    assert (f"tuned {lead.rouge_l:.3f} < baseline (nearest neighbour, TF-IDF) {nearest.rouge_l:.3f}: tuning did "
            "not pay on this data") in lost.summary()
    assert lost.metrics.loc["all", ("rouge-l_f1_score", "baseline")] == nearest.rouge_l
    assert [c[1] for c in lost.metrics.columns if c[0] == "bleu4_score"] == ["base", "tuned", "baseline", "delta"]
    assert lost.fixed.empty and "baseline_prediction" in lost.broken.columns
    html = lost._repr_html_()
    assert "tuning did not pay" in html and "data:image/png;base64" in html
    won = jt.compare(lead, nearest, baseline=lead)
    assert won.beats_baseline is True and "did not pay" not in won.summary()
    with pytest.raises(ValueError, match="baseline= is a classification report"):
        labelled = [{"input_text": f"x {t}", "output_text": t} for t in ("cat on mat", "dogs bark") * 2]
        jt.compare(lead, nearest, baseline=jt.baseline(labelled, EVAL, kind="majority"))


def test_the_job_headline_says_when_tuning_did_not_beat_the_baseline():
    nearest = jt.baseline(TRAIN, EVAL)
    lead = nearest.runner_up
    line = job_report.headline(lead, lead, nearest)
    assert line == (f"ROUGE-L F1 {lead.rouge_l:.2f} -> {lead.rouge_l:.2f}, nearest-neighbour baseline "
                    f"{nearest.rouge_l:.2f} (tuning did not pay)")
    assert "did not pay" not in job_report.headline(lead, nearest, lead)
    ev = job_report.summary({"base": lead, "tuned": lead, "baseline": nearest}, 1.0, None, False)
    assert ev["baselines"] == {"nearest neighbour (TF-IDF)": nearest.rouge_l, "lead words": lead.rouge_l}
    assert ev["baseline_rouge_l_f1"] == nearest.rouge_l and ev["tuned_rouge_l_f1"] == lead.rouge_l


WORDS = ["apple", "river", "stone", "cloud", "maple", "tiger", "ocean", "pearl", "flame", "grape", "lemon", "cedar"]
SHORT = [{"input_text": f"Say {w}", "output_text": f"number {w}"} for w in WORDS]


def test_a_generation_jobs_report_holds_both_baselines(tune_home, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_TUNE_CACHE", str(tmp_path / "cache"))
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=SHORT, validation_dataset=SHORT[:3], max_steps=2,
                  batch_size=4, eval_steps=2, min_train_examples=1, eval_task_metric=False)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    ev = job.record["evaluation"]
    assert ev["error"] is None and ev["task_type"] == "text_generation" and ev["reports"] == ["base", "baseline",
                                                                                                   "tuned"]
    # the validation rows are training rows: the nearest neighbour answers each exactly (ROUGE-L 1.0)
    assert ev["baselines"] == {"nearest neighbour (TF-IDF)": 1.0, "lead words": pytest.approx(0.5)}
    assert ev["headline"].startswith("ROUGE-L F1 ")
    assert ", nearest-neighbour baseline 1.00 (tuning did not pay) · on " in ev["headline"]
    assert "nearest-neighbour and lead baselines" in job.log(80)
    comparison = job.evaluation
    assert comparison.baseline.model_name == NEAREST_NAME and comparison.baseline.runner_up.model_name == LEAD_NAME
    assert comparison.beats_baseline is False and "tuning did not pay" in comparison.summary()
    assert ("rouge-l_f1_score", "baseline") in comparison.metrics.columns
