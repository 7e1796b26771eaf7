"""One-pass label scoring against the straightforward reference (prompt+label run separately, fp32), on
tiny models built here: Llama (SDPA), Gemma 3 (sliding window smaller than the prompt, mixed layers),
Gemma 2 (final logit soft-capping, eager attention), Qwen2 (sliding window), and a PEFT model."""

import pytest
import torch

import jupyter_tune as jt
from jupyter_tune.data.formats import Example
from jupyter_tune.evaluation import scoring

LABELS = ["Cardiovascular / Pulmonary", "Gastroenterology", "Neurology", "Orthopedic", "Urology"]
ROWS = [
    {"input_text": "Echocardiogram and chest pain.", "output_text": "Cardiovascular / Pulmonary"},
    {"input_text": "Upper gastrointestinal endoscopy with a long description of the whole procedure.",
     "output_text": "Gastroenterology"},
    {"input_text": "CT head.", "output_text": "Neurology"},
    {"input_text": "Left hip cemented hemiarthroplasty.", "output_text": "Orthopedic"},
    {"input_text": "Cystoscopy and removal of foreign objects.", "output_text": "Urology"},
]
TEMPLATE = "Assign a label to the given medical transcript: the quick {input_text}"
# fp32 on both sides; the one-pass mask and the reference's causal mask sum in different orders.
TOL = 2e-4


def _tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _tiny(kind: str, tok):
    torch.manual_seed(0)
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    if kind == "gemma3":
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        cfg = Gemma3TextConfig(**common, head_dim=8, sliding_window=8, query_pre_attn_scalar=8,
                               layer_types=["sliding_attention", "full_attention", "sliding_attention",
                                            "full_attention"], attn_implementation="sdpa")
        model = Gemma3ForCausalLM(cfg)
    elif kind == "gemma2":
        from transformers import Gemma2Config, Gemma2ForCausalLM

        cfg = Gemma2Config(**common, head_dim=8, sliding_window=8, query_pre_attn_scalar=8,
                           final_logit_softcapping=2.0, attn_logit_softcapping=5.0, attn_implementation="eager")
        model = Gemma2ForCausalLM(cfg)
    elif kind == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        cfg = Qwen2Config(**common, use_sliding_window=True, sliding_window=8, max_window_layers=2,
                          attn_implementation="sdpa")
        model = Qwen2ForCausalLM(cfg)
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        model = LlamaForCausalLM(LlamaConfig(**common, attn_implementation="sdpa"))
    with torch.no_grad():  # large weights: label scores that differ clearly, and errors that show
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return model.eval()


def _reference(model, prompt: list[int], cont: list[int]) -> float:
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([prompt + cont]), use_cache=False).logits[0].float(), -1)
    return sum(lp[len(prompt) - 1 + j, t].item() for j, t in enumerate(cont))


def _prompts(model, tok, template=TEMPLATE):
    dataset = jt.load_dataset(ROWS, template)
    return scoring.prepare_examples(model, tok, dataset.examples, LABELS)


@pytest.mark.parametrize("how", ["cached", "one_pass"])
@pytest.mark.parametrize("kind", ["llama", "gemma3", "gemma2", "qwen2"])
def test_label_scores_equal_the_reference(kind, how, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(scoring, "PASS", how)
    tok = _tokenizer(tiny_model_dir)
    model = _tiny(kind, tok)
    prompts = _prompts(model, tok)
    lengths = [len(p.ids) for p in prompts]
    assert len(set(lengths)) > 1  # left padding is exercised
    window = getattr(model.config, "sliding_window", None)
    assert window is None or min(lengths) > 2 * window  # the window cuts into every prompt
    assert scoring._shared_prefix(prompts) > 0  # the common beginning runs once (cached)
    batched = scoring.score_rows(model, tok, prompts)
    for b, p in enumerate(prompts):
        for k, cont in enumerate(p.continuations):
            assert batched[b][k] == pytest.approx(_reference(model, p.ids, cont), abs=TOL), (kind, b, k)


@pytest.mark.parametrize("how", ["cached", "one_pass"])
def test_the_window_matters_in_the_test(how, tiny_model_dir, monkeypatch):
    """Guard for the test above: a mask without the sliding window gives different scores on Gemma 3."""
    monkeypatch.setattr(scoring, "PASS", how)
    tok = _tokenizer(tiny_model_dir)
    model = _tiny("gemma3", tok)
    p = _prompts(model, tok)[1]
    good = scoring.score_rows(model, tok, [p])[0]
    monkeypatch.setattr(scoring, "_windows", lambda config: None)  # our masks forget the window
    wrong = scoring.score_rows(model, tok, [p])[0]
    assert max(abs(a - b) for a, b in zip(good, wrong, strict=True)) > 1e-2


def test_soft_capping_is_kept(tiny_model_dir):
    """Gemma 2's final soft-capping bounds the logits at 2.0: the scores stay within what it allows."""
    tok = _tokenizer(tiny_model_dir)
    model = _tiny("gemma2", tok)
    p = _prompts(model, tok)[0]
    floor = -4.0 - torch.log(torch.tensor(float(len(tok)))).item()  # logit gap at most 2 x cap
    sums = scoring.score_rows(model, tok, [p])[0]
    assert all(s >= floor * len(c) for s, c in zip(sums, p.continuations, strict=True))


def test_models_without_logits_to_keep_fall_back_to_full_logits(tiny_model_dir, monkeypatch):
    tok = _tokenizer(tiny_model_dir)
    model = _tiny("llama", tok)
    prompts = _prompts(model, tok)
    fast = scoring.score_rows(model, tok, prompts)
    monkeypatch.setattr(scoring, "_takes_logits_to_keep", lambda m: False)
    assert torch.allclose(torch.tensor(scoring.score_rows(model, tok, prompts)), torch.tensor(fast), atol=1e-5)


@pytest.mark.parametrize("unsupported", ["attention", "layer_types"])
def test_attention_without_custom_masks_scores_each_label_separately(unsupported, tiny_model_dir, monkeypatch):
    tok = _tokenizer(tiny_model_dir)
    model = _tiny("gemma3", tok)
    prompts = _prompts(model, tok)
    fast = scoring.score_rows(model, tok, prompts)
    if unsupported == "attention":
        monkeypatch.setattr(scoring, "_mask_style", lambda m: None)
    else:
        def chunked(config):
            raise NotImplementedError("chunked_attention")

        monkeypatch.setattr(scoring, "_windows", chunked)
    slow = scoring.score_rows(model, tok, prompts)
    assert torch.allclose(torch.tensor(slow), torch.tensor(fast), atol=TOL)


@pytest.mark.parametrize("how", ["cached", "one_pass"])
@pytest.mark.parametrize("budget", [1, 10])
def test_label_groups_give_the_same_scores(budget, how, tiny_model_dir, monkeypatch):
    """Labels in groups (the prompt cache cropped back after each) score as labels all at once."""
    monkeypatch.setattr(scoring, "PASS", how)
    tok = _tokenizer(tiny_model_dir)
    model = _tiny("gemma3", tok)
    prompts = _prompts(model, tok)
    whole = scoring.score_rows(model, tok, prompts)
    monkeypatch.setattr(scoring, "_LOGIT_BUDGET", budget * len(tok))
    assert len(scoring._label_groups(prompts, len(tok))) > 1
    assert torch.allclose(torch.tensor(scoring.score_rows(model, tok, prompts)), torch.tensor(whole), atol=TOL)


def test_batches_stay_within_the_token_budget(tiny_model_dir, monkeypatch):
    tok = _tokenizer(tiny_model_dir)
    model = _tiny("llama", tok)
    prompts = _prompts(model, tok)
    monkeypatch.setattr(scoring, "_TOKEN_BUDGET", 200)
    got = list(scoring.batches(prompts, max_rows=16))
    assert sorted(p.index for b in got for p in b) == list(range(len(ROWS)))
    for b in got:
        label_tokens = sum(len(c) for c in b[0].continuations)
        assert len(b) == 1 or len(b) * (max(len(p.ids) for p in b) + label_tokens) <= 200
    assert len(list(scoring.batches(prompts, max_rows=2))) == 3


def test_a_peft_model_in_bf16_scores_close_to_fp32(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    tok = _tokenizer(tiny_model_dir)
    model = get_peft_model(_tiny("llama", tok), LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    prompts = _prompts(model, tok)
    fp32 = scoring.score_rows(model, tok, prompts)
    for b, p in enumerate(prompts[:2]):
        for k, cont in enumerate(p.continuations):
            assert fp32[b][k] == pytest.approx(_reference(model, p.ids, cont), abs=TOL)
    bf16 = scoring.score_rows(model.to(torch.bfloat16), tok, prompts)
    assert torch.allclose(torch.tensor(bf16), torch.tensor(fp32), rtol=0.05, atol=0.5)


def test_content_free_prompts_keep_the_template(tiny_model_dir):
    tok = _tokenizer(tiny_model_dir)
    ex = jt.load_dataset(ROWS[:1], TEMPLATE).examples[0]
    free = scoring.content_free_examples(ex)
    assert [f.prompt_messages[-1]["content"] for f in free] == [
        "Assign a label to the given medical transcript: the quick " + t for t in scoring.CONTENT_FREE_INPUTS]
    plain = scoring.content_free_examples(jt.load_dataset(ROWS[:1]).examples[0])
    assert [f.prompt_messages[-1]["content"] for f in plain] == list(scoring.CONTENT_FREE_INPUTS)
    chat = Example([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which?"},
                    {"role": "assistant", "content": "Urology"}], {"input_text": "Which?"})
    assert [m["content"] for m in scoring.content_free_examples(chat)[0].prompt_messages] == ["Be brief.", "N/A"]
    del tok


def test_to_scores():
    sums, counts, free = [-4.0, -9.0], [2, 6], [-1.0, -8.0]
    assert scoring.to_scores(sums, counts, "sum") == [-4.0, -9.0]
    assert scoring.to_scores(sums, counts, "mean") == [-2.0, -1.5]
    assert scoring.to_scores(sums, counts, "calibrated", free) == [-3.0, -1.0]
    assert scoring.to_scores(sums, counts, "calibrated_mean", free) == [-1.5, pytest.approx(-1 / 6)]
    with pytest.raises(scoring.ScoringError, match="content-free"):
        scoring.to_scores(sums, counts, "calibrated")
    with pytest.raises(scoring.ScoringError, match="'sum', 'mean'"):
        scoring.check_scoring("best")


@pytest.mark.parametrize("how", ["calibrated_mean", "sum"])
def test_label_metrics_on_a_training_model(how, tiny_model_dir):
    """The trainer's entry: a PEFT model in training mode, use_cache=False, the packed attention."""
    from peft import LoraConfig, get_peft_model

    from jupyter_tune.models.loading import LoadedModel
    from jupyter_tune.training import attention

    tok = _tokenizer(tiny_model_dir)
    base = _tiny("llama", tok)
    base.config.use_cache = False
    base.set_attn_implementation(attention.register())
    model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    examples = jt.load_dataset(ROWS, TEMPLATE).examples
    got = scoring.label_metrics(model, tok, examples, LABELS, scoring=how, batch_size=2)
    assert model.training and base.config.use_cache is False
    assert set(got) >= {"macro_f1", "accuracy", "predictions"} and got["scoring"] == how
    assert len(got["predictions"]) == len(ROWS) and set(got["predictions"]) <= set(LABELS)
    truth = [r["output_text"] for r in ROWS]
    assert got["accuracy"] == pytest.approx(sum(p == t for p, t in zip(got["predictions"], truth, strict=True)) / 5)
    model.eval()
    report = jt.evaluate(LoadedModel(model, tok, "tiny"), ROWS, prompt_template=TEMPLATE, scoring=how, progress=False)
    assert list(report.predictions["prediction"]) == got["predictions"]
    assert got["macro_f1"] == pytest.approx(report.macro_f1)
    model.to(torch.bfloat16)
    assert len(scoring.label_metrics(model, tok, examples, scoring=how)["predictions"]) == len(ROWS)
