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
def test_default_model_scores_small_eval(default_model, shared_data):
    import pandas as pd

    rows = pd.read_json(shared_data / "small-eval.jsonl", lines=True).head(10)
    report = jt.evaluate(default_model, rows, prompt_template=TEMPLATE, progress=False)
    assert report.evaluation_status == {"num_successful_rows": 10, "num_total_rows": 10}
    assert set(report.predictions["prediction"]) <= LABELS
    print(f"\nSmolLM2-135M-Instruct, 10 rows of small-eval, score mode: macro F1 {report.macro_f1:.3f}, "
          f"accuracy {report.accuracy:.2f}")
    assert 0.0 <= report.macro_f1 <= 1.0


@pytest.mark.slow
def test_default_model_answers_a_chat_prompt(default_model):
    df = jt.generate_text(default_model, [{"prompt": "What is the capital of France? Answer in one word."}],
                          max_output_tokens=8, progress=False)
    assert df["ml_generate_text_status"][0] == ""
    assert "paris" in df["ml_generate_text_llm_result"][0].lower()
