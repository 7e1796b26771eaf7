"""The default model (SmolLM2-135M-Instruct) on real data: score mode gives valid labels."""

import pytest

import jupyter_tune as jt

TEMPLATE = ("Assign a label to the given medical transcript from among these labels: [Cardiovascular / Pulmonary, "
            "Gastroenterology, Neurology, Orthopedic, Urology]. TRANSCRIPT: {input_text}")
LABELS = {"Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"}


@pytest.fixture(scope="module")
def default_model():
    from jupyter_tune.models.resolve import ModelNotFoundError

    try:
        return jt.load_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    except ModelNotFoundError as e:
        pytest.skip(f"the default model is not available offline: {e}")


@pytest.mark.slow
@pytest.mark.real_model
def test_default_model_scores_small_eval(default_model, repo_data):
    import pandas as pd

    rows = pd.read_json(repo_data / "small-eval.jsonl", lines=True).head(10)
    report = jt.evaluate(default_model, rows, prompt_template=TEMPLATE, progress=False)
    assert report.evaluation_status == {"num_successful_rows": 10, "num_total_rows": 10}
    assert set(report.predictions["prediction"]) <= LABELS
    print(f"\nSmolLM2-135M-Instruct, 10 rows of small-eval, score mode: macro F1 {report.macro_f1:.3f}, "
          f"accuracy {report.accuracy:.2f}")
    assert 0.0 <= report.macro_f1 <= 1.0


@pytest.mark.slow
@pytest.mark.real_model
def test_default_model_answers_a_chat_prompt(default_model):
    df = jt.generate_text(default_model, [{"prompt": "What is the capital of France? Answer in one word."}],
                          max_output_tokens=8, progress=False)
    assert df["ml_generate_text_status"][0] == ""
    assert "paris" in df["ml_generate_text_llm_result"][0].lower()


@pytest.mark.slow
@pytest.mark.real_model
def test_default_model_label_scores_equal_the_reference(repo_data):
    """fp32, 3 rows of small-eval: the cached and one-pass label scores equal prompt+label run alone."""
    import pandas as pd
    import torch

    from jupyter_tune.evaluation import scoring
    from jupyter_tune.generation.prompts import load_rows
    from jupyter_tune.models.resolve import ModelNotFoundError

    try:
        lm = jt.load_model("HuggingFaceTB/SmolLM2-135M-Instruct", dtype="float32")
    except ModelNotFoundError as e:
        pytest.skip(f"the default model is not available offline: {e}")
    rows = pd.read_json(repo_data / "small-eval.jsonl", lines=True).head(3)
    prompts = scoring.prepare(lm, load_rows(lm, rows, TEMPLATE, require_answer=True, what="data"), sorted(LABELS))
    pad = lm.tokenizer.pad_token_id
    with torch.inference_mode():
        ref = scoring.score_labels(lm.model, prompts, pad, "separate")
        for how in ("cached", "one_pass"):
            got = scoring.score_labels(lm.model, prompts, pad, how)
            assert torch.allclose(got, ref, atol=2e-3), (how, (got - ref).abs().max())
