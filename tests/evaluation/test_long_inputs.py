"""Long inputs in score mode (evaluation/long_inputs.py): cut the way training cuts, or windows whose label
log-likelihoods are averaged, or whole; "auto" cuts a tuned job's model to its max_seq_length."""

import pytest

import jupyter_tune as jt
from jupyter_tune.data.formats import Example
from jupyter_tune.data.tokenize import _cut_middle
from jupyter_tune.evaluation import scoring
from jupyter_tune.evaluation.long_inputs import mean_sums, resolve, row_text, windows
from jupyter_tune.evaluation.report import EvaluationReport

LABELS = ["Neurology", "Urology"]
TEMPLATE = "Label this transcript. TRANSCRIPT: {input_text}"
LONG = " ".join(f"word{i} finding" for i in range(150))  # about 600 tokens with the tiny tokenizer
ROWS = [{"input_text": LONG, "output_text": "Neurology"}, {"input_text": "CT head.", "output_text": "Neurology"},
        {"input_text": "Cystoscopy. " + LONG, "output_text": "Urology"}]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return jt.load_model(str(tiny_model_dir))


def examples(tiny):
    from jupyter_tune.generation.prompts import load_rows

    return load_rows(tiny, ROWS, TEMPLATE, require_answer=True, what="rows").examples


def test_cut_is_the_training_cut(tiny):
    whole = scoring.prepare_examples(tiny.model, tiny.tokenizer, examples(tiny), LABELS)
    cut = scoring.prepare_examples(tiny.model, tiny.tokenizer, examples(tiny), LABELS, "cut", 128)
    longest = max(len(c) for c in whole[0].continuations)
    assert len(whole[0].ids) + longest > 128 and whole[0].part == ""
    assert cut[0].ids == _cut_middle(whole[0].ids, 128 - longest) and cut[0].part == "cut"
    assert cut[1].ids == whole[1].ids and cut[1].part == ""  # a short row is untouched


def test_windows_cover_the_text_and_their_scores_are_the_mean(tiny):
    exs = examples(tiny)
    prompts = scoring.prepare_examples(tiny.model, tiny.tokenizer, exs, LABELS, "chunks", 128)
    first = [p for p in prompts if p.index == 0]
    assert len(first) >= 4 and all(p.part == "window" for p in first)
    longest = max(len(c) for c in first[0].continuations)
    assert all(len(p.ids) + longest <= 128 for p in prompts)
    # the windows, put back together, are the row's text
    parts = windows(tiny.tokenizer, exs[0], len(scoring.prepare_examples(tiny.model, tiny.tokenizer, exs[:1],
                                                                          LABELS)[0].ids), 128 - longest)
    texts = [row_text(w)[1] or w.prompt_messages[-1]["content"].split("TRANSCRIPT: ", 1)[1] for w in parts]
    assert "".join(texts).replace(" ", "") == LONG.replace(" ", "")
    # each window scores as that window alone would; the row's score is their mean
    alone = scoring.score_rows(tiny.model, tiny.tokenizer, scoring.prepare_examples(tiny.model, tiny.tokenizer,
                                                                                    parts, LABELS))
    got = scoring.score_rows(tiny.model, tiny.tokenizer, first)
    assert mean_sums(got) == pytest.approx(mean_sums(alone), abs=1e-4)


def test_evaluate_reports_what_became_of_long_rows(tiny):
    chunks = jt.evaluate(tiny, ROWS, prompt_template=TEMPLATE, labels=LABELS, long_inputs="chunks",
                         max_input_tokens=128, progress=False)
    assert chunks.evaluation_status["num_successful_rows"] == 3
    assert chunks.long_inputs["rows_in_windows"] == 2 and chunks.long_inputs["prompts"] > 3
    cut = jt.evaluate(tiny, ROWS, prompt_template=TEMPLATE, labels=LABELS, long_inputs="cut", max_input_tokens=128,
                      progress=False)
    assert cut.long_inputs == {"mode": "cut", "max_input_tokens": 128, "prompts": 3, "rows_cut": 2,
                               "rows_in_windows": 0}
    assert EvaluationReport.from_json(cut.to_json()).long_inputs == cut.long_inputs
    base = jt.evaluate(tiny, ROWS, prompt_template=TEMPLATE, labels=LABELS, progress=False)
    assert base.long_inputs["mode"] == "whole" and base.long_inputs["rows_cut"] == 0  # auto, untuned: whole
    with pytest.raises(ValueError, match="long_inputs: 'middle' is not one of"):
        jt.evaluate(tiny, ROWS, prompt_template=TEMPLATE, labels=LABELS, long_inputs="middle")
    with pytest.raises(ValueError, match="max_input_tokens: 8 is below the minimum 16"):
        jt.evaluate(tiny, ROWS, prompt_template=TEMPLATE, labels=LABELS, long_inputs="cut", max_input_tokens=8)


def test_auto_cuts_a_tuned_model_to_its_max_seq_length():
    assert resolve("auto", None, 512) == ("cut", 512)
    assert resolve("auto", 256, 512) == ("cut", 256)
    assert resolve("auto", None, None) == ("whole", None)
    assert resolve("chunks", None, 512) == ("chunks", 512)


def test_a_content_free_prompt_keeps_the_template(tiny):
    ex = examples(tiny)[1]
    free = scoring.content_free_examples(ex)
    assert [f.prompt_messages[-1]["content"] for f in free] == [TEMPLATE.replace("{input_text}", t)
                                                                  for t in scoring.CONTENT_FREE_INPUTS]
    assert isinstance(free[0], Example) and not free[0].has_answer
