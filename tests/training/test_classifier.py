"""task="classification": a label head trained through the one pipeline (training/classifier.py).

- The head's loss on packed and padded batches equals ``AutoModelForSequenceClassification``'s own
  ``model(input_ids, labels=...)`` loss, per architecture family, and the LoRA and head gradients agree
  (and are not zero); class_weights=True weights each row as documented.
- A tiny job trains, saves (the adapter with its head and labels), is loaded by jt.load_model, evaluated by
  jt.evaluate, compared by jt.compare; its sample answers are labels and the end-of-job report runs.
- Exports: merged loads with AutoModelForSequenceClassification and gives the job model's logits; adapter
  keeps the head; gguf is refused before anything is written.
- What cannot run is refused before a job exists (dpo + classification, one label, class_weights alone).
"""

from __future__ import annotations

import json

import pytest
import torch

import jupyter_tune as jt
from jupyter_tune.params import ParameterError, TuningParams
from tests.support.architectures import ARCHITECTURES, build_arch_model

LABELS = ("Urology", "Neurology", "Orthopedic")
# Imbalanced on purpose (Urology 3x the others), so balanced class weights change the loss.
ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t}
        for i in range(6) for t in ("Urology", "Urology", "Urology", "Neurology", "Orthopedic")]
VAL = [{"input_text": f"Another example {i} about {t}.", "output_text": t} for i in range(2) for t in LABELS]


def _trainer(model_dir, tmp_path, **kw):
    from jupyter_tune.data.loader import validate_dataset
    from jupyter_tune.training.build import build_trainer

    params = TuningParams(base_model=str(model_dir), task="classification", precision="fp32", max_seq_length=64,
                          batch_size=5, min_train_examples=1, num_threads=1, save_steps=10**6, **kw)
    train, _ = validate_dataset(ROWS, None, None, 1)
    return build_trainer(params, train, None, tmp_path)


def _reference(model_dir, trainer):
    """The library's own classifier (eager attention) with the trainer's adapter and head weights."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForSequenceClassification

    cfg = trainer.model.get_base_model().config
    base = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", num_labels=cfg.num_labels,
        id2label=cfg.id2label, label2id=cfg.label2id, pad_token_id=cfg.pad_token_id)
    ref = get_peft_model(base, trainer.model.peft_config["default"])
    set_peft_model_state_dict(ref, {k: v.detach().clone() for k, v in get_peft_model_state_dict(trainer.model).items()})
    return ref


def _randomize_lora_b(model):
    """LoRA B starts at zero (so A's gradient is zero): random B makes every adapter gradient count."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.fixture(scope="module")
def arch_dirs(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cls-archs")
    return {a: build_arch_model(a, tiny_model_dir, root / a) for a in ARCHITECTURES}


@pytest.mark.parametrize("arch,padding_free", [(a, True) for a in ARCHITECTURES] + [("llama", False)])
def test_head_loss_and_gradients_equal_the_librarys_classifier(arch, padding_free, arch_dirs, tmp_path):
    model_dir = arch_dirs[arch]
    trainer, _, info, _ = _trainer(model_dir, tmp_path, padding_free=padding_free)
    assert info["task"] == "classification" and info["labels"] == sorted(LABELS)
    assert not info["fast_path"]["answer_only_logits"]["on"]
    assert "classification" in info["fast_path"]["answer_only_logits"]["why"]
    model = trainer.model
    _randomize_lora_b(model)
    ref = _reference(model_dir, trainer)
    model.eval()  # no dropout (GPT-2 has some): the algebra is compared, gradients flow all the same
    ref.eval()
    rows = trainer.train_dataset[:5]
    batch = trainer.data_collator(rows)
    assert ("position_ids" in batch) is padding_free and batch["input_ids"].shape[0] == (1 if padding_free else 5)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    # the library, example by example (no padding) and as one padded batch
    labels = torch.tensor([r["label"] for r in rows])
    each = [ref(input_ids=torch.tensor([r["input_ids"]]), labels=labels[i:i + 1]).loss for i, r in enumerate(rows)]
    width = max(len(r["input_ids"]) for r in rows)
    pad = ref.config.pad_token_id
    ids = torch.tensor([r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in rows])
    mask = (torch.arange(width)[None] < torch.tensor([len(r["input_ids"]) for r in rows])[:, None]).long()
    padded = ref(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(loss.detach(), torch.stack(each).mean().detach(), atol=2e-5, rtol=2e-4)
    torch.testing.assert_close(loss.detach(), padded.detach(), atol=2e-5, rtol=2e-4)
    torch.stack(each).mean().backward()
    ours = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    theirs = {n: p.grad for n, p in ref.named_parameters() if p.requires_grad}
    assert set(ours) == set(theirs) and any("score" in n for n in ours)
    for name, g in ours.items():
        assert g is not None and g.abs().sum() > 0, f"{name}: no gradient"
        torch.testing.assert_close(g, theirs[name], atol=2e-5, rtol=2e-3, msg=name)


def test_class_weights_weight_each_rows_cross_entropy(tiny_model_dir, tmp_path):
    """class_weights=True: sum over rows of weight[label] x cross-entropy, over the rows; the weights are
    rows / (labels x rows of the label), so the common label counts less and the loss changes."""
    import torch.nn.functional as F

    plain, _, _, _ = _trainer(tiny_model_dir, tmp_path / "plain")
    weighted, _, info, _ = _trainer(tiny_model_dir, tmp_path / "weighted", class_weights=True)
    n, counts = len(ROWS), {lab: sum(r["output_text"] == lab for r in ROWS) for lab in LABELS}
    expected = {lab: n / (3 * counts[lab]) for lab in LABELS}
    assert info["class_weights"] == pytest.approx(expected)
    assert info["class_weights"]["Urology"] < 1 < info["class_weights"]["Neurology"]
    rows = plain.train_dataset[:5]
    batch = plain.data_collator(rows)
    plain.model.eval()
    weighted.model.eval()
    with torch.no_grad():
        a = plain.compute_loss(plain.model, dict(batch))
        b = weighted.compute_loss(weighted.model, dict(batch))  # same seed: the same head and adapters
        logits = plain.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    per_row = []
    for r in rows:
        with torch.no_grad():
            out = plain.model(input_ids=torch.tensor([r["input_ids"]])).logits
        per_row.append(F.cross_entropy(out, torch.tensor([r["label"]]), reduction="sum"))
    assert logits.shape[0] == 1  # a packed row: the library's own pooling gives one row (why we read the head)
    w = torch.tensor([info["class_weights"][lab] for lab in info["labels"]])
    want = sum(w[r["label"]] * ce for r, ce in zip(rows, per_row, strict=True)) / len(rows)
    torch.testing.assert_close(b, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a, torch.stack(per_row).mean(), atol=1e-5, rtol=1e-4)
    assert abs(float(a - b)) > 1e-4


def test_what_cannot_run_is_refused_before_a_job_exists(tune_home, tiny_model_dir):
    with pytest.raises(ParameterError, match="task: 'classification'.*method='dpo'"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, method="dpo", task="classification")
    with pytest.raises(ParameterError, match="class_weights: only for task='classification'"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, class_weights=True)
    one_label = [{"input_text": f"row {i}", "output_text": "Urology"} for i in range(20)]
    with pytest.raises(ValueError, match="at least two labels"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=one_label, task="classification")
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())
    schema = {p["name"]: p for p in jt.params.schema()["parameters"]}
    assert schema["task"]["choices"] == ["generation", "classification"] and schema["task"]["group"] == "basic"
    assert schema["class_weights"]["default"] is False


@pytest.fixture(scope="module")
def head_job(store_home, tiny_model_dir):
    """One finished classification job: validation set, task metric, best checkpoint, sample answers and the
    end-of-job report all on (each handles a head job)."""
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, validation_dataset=VAL, task="classification",
                  max_steps=4, batch_size=5, eval_steps=2, seed=0, learning_rate=5e-3, sample_prompts=2,
                  tuned_model_display_name="head")
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    return job


def test_a_classification_job_trains_saves_and_reports(head_job):
    rec = head_job.record
    tuning = rec["tuning"]
    assert tuning["task"] == "classification" and tuning["labels"] == sorted(LABELS)
    assert "classification head" in tuning["method"] and tuning["select_best"] == "eval_macro_f1"
    evals = [r for r in head_job.store.read_metrics(head_job.id) if "eval_total_loss" in r]
    assert evals and all(0 <= r["eval_macro_f1"] <= 1 and 0 <= r["eval_accuracy"] <= 1 for r in evals)
    assert rec["best"]["metric"] == "eval_macro_f1"
    adapter = head_job.dir / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    config = json.loads((adapter / "config.json").read_text())
    assert config["id2label"] == {str(i): lab for i, lab in enumerate(sorted(LABELS))}
    assert config["architectures"] == ["LlamaForSequenceClassification"] and config["use_cache"] is True
    from safetensors.torch import load_file

    assert any("score" in k for k in load_file(str(adapter / "adapter_model.safetensors")))
    # the sample answers are the head's labels
    samples = [json.loads(line) for line in (head_job.dir / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["answer"] in LABELS for line in samples for s in line["samples"])
    # the end-of-job report: base (label scoring) vs the tuned head vs the TF-IDF baseline
    evaluation = rec["evaluation"]
    assert evaluation["error"] is None and evaluation["task_type"] == "classification", evaluation
    assert set(evaluation["reports"]) == {"base", "tuned", "baseline"} and evaluation["tuned_macro_f1"] is not None
    assert head_job.evaluation.tuned.mode == "head"


def test_load_evaluate_compare_and_no_generation(head_job, fresh_models):
    model = jt.load_model(head_job, dtype="float32")
    assert model.is_classifier and model.head_labels == sorted(LABELS) and model.max_seq_length == 1024
    report = jt.evaluate(model, VAL)
    assert report.mode == "head" and report.scoring is None
    assert report.evaluation_status == {"num_successful_rows": 6, "num_total_rows": 6}
    assert list(report.metrics.index[:3]) == sorted(LABELS) and "macro avg" in report.metrics.index
    probs = report.predictions["label_scores"]
    assert all(abs(sum(p.values()) - 1) < 1e-5 and set(p) == set(LABELS) for p in probs)
    assert list(report.predictions["prediction"]) == [max(p, key=p.get) for p in probs]
    base = jt.evaluate(jt.load_model(head_job.base_model, dtype="float32"), VAL)
    cmp = jt.compare(base, report, baseline=jt.baseline(ROWS, VAL))
    assert cmp.macro_f1_change is not None and "tuned: classification head" in cmp.summary()
    # a label the head never saw: warned, and always wrong
    odd = VAL + [{"input_text": "Something else entirely.", "output_text": "Dermatology"}]
    with pytest.warns(UserWarning, match="not labels of .*head.*count as wrong"):
        report2 = jt.evaluate(model, odd)
    assert not report2.predictions["correct"].iloc[-1] and "Dermatology" in report2.metrics.index
    with pytest.raises(ValueError, match="is a classifier"):
        jt.generate_text(model, [{"prompt": "hello"}])
    with pytest.raises(ValueError, match="is a classifier"):
        jt.evaluate(model, VAL, mode="generate")


def test_exports_merged_adapter_and_gguf_refused(head_job, tmp_path, fresh_models):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from jupyter_tune.data.tokenize import encode_prompt
    from jupyter_tune.evaluation.head import classify
    from jupyter_tune.generation.prompts import load_rows

    with pytest.raises(ValueError, match="format='gguf'.*classification"):
        head_job.export(tmp_path / "g", format="gguf")
    assert not (tmp_path / "g").exists() and not list(tmp_path.iterdir())
    report = head_job.export(tmp_path / "merged", format="merged", dtype="float32", max_prompts=6)
    assert report.error is None and report.num_prompts == 6 and report.ok, report
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    assert plain.config.id2label == dict(enumerate(sorted(LABELS)))
    tuned = jt.load_model(head_job, dtype="float32")
    dataset = load_rows(tuned, VAL, None, require_answer=True, what="rows")
    _, want, _ = classify(tuned, dataset, progress=False)
    for ex, p in zip(dataset.examples, want, strict=True):
        ids = torch.tensor([encode_prompt(tuned.tokenizer, ex.prompt_messages)])
        got = plain(input_ids=ids).logits.softmax(-1)[0]
        torch.testing.assert_close(got, torch.tensor([p[lab] for lab in sorted(LABELS)]), atol=1e-5, rtol=1e-4)
    report = head_job.export(tmp_path / "adapter", format="adapter", max_prompts=6)
    assert report.error is None and report.ok, report
    config = AutoConfig.from_pretrained(tmp_path / "adapter")
    base = AutoModelForSequenceClassification.from_pretrained(head_job.base_model, config=config, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    ex = dataset.examples[0]
    ids = torch.tensor([encode_prompt(tuned.tokenizer, ex.prompt_messages)])
    torch.testing.assert_close(model(input_ids=ids).logits.softmax(-1)[0],
                               torch.tensor([want[0][lab] for lab in sorted(LABELS)]), atol=1e-5, rtol=1e-4)
    assert "AutoModelForSequenceClassification" in (tmp_path / "merged" / "README.md").read_text()


def test_the_test_tab_ranks_a_heads_labels(head_job, fresh_models):
    from jupyter_tune.widgets import test_prompt

    model = jt.load_model(head_job, dtype="float32")
    assert test_prompt.job_labels(head_job) == sorted(LABELS)
    ranked, how = test_prompt.rank_labels(model, [{"input_text": "Example number 1 about Urology."}], "",
                                          sorted(LABELS))
    assert how == test_prompt.HEAD_SCORES and len(ranked) == 3
    assert abs(sum(s for _, s in ranked) - 1) < 1e-5 and ranked[0][1] >= ranked[-1][1]
    assert "softmax" in test_prompt.ranking_html(ranked, how)
    # the tab itself: the answer is the top label, the ranking the head's softmax
    from jupyter_tune.widgets.test_tab import TestTab

    tab = TestTab(head_job)
    tab.prompt.value = "Example number 1 about Urology."
    tab.generate()
    assert "Done" in tab.status.value, tab.status.value
    assert any(f">{lab}<" in tab.tuned_answer.value for lab in LABELS)
    assert "softmax" in tab.ranking.value and tab.ranking.value.count("<tr>") == 3


def test_a_head_job_is_not_the_base_of_another(head_job):
    with pytest.raises(ValueError, match="classification-head job"):
        jt.tune(base_model=head_job.id, train_dataset=ROWS)


def test_full_fine_tuning_with_a_head(tune_home, tiny_model_dir, fresh_models):
    """method="full" + task="classification": every weight and the head train; model/ is a classifier folder."""
    from transformers import AutoModelForSequenceClassification

    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, task="classification", method="full",
                  max_steps=2, batch_size=5, evaluate_after=False, sample_prompts=0)
    assert job.wait(timeout=180) is jt.JobState.SUCCEEDED, job.log()
    folder = job.dir / "model"
    plain = AutoModelForSequenceClassification.from_pretrained(folder)
    assert plain.config.id2label == dict(enumerate(sorted(LABELS)))
    model = jt.load_model(job, dtype="float32")
    assert model.is_classifier and model.adapter_path is None
    assert jt.evaluate(model, VAL).mode == "head"


def test_cancel_resume_and_a_chosen_checkpoint_keep_the_head(tune_home, tiny_model_dir, monkeypatch, fresh_models):
    """The worker's cancel / resume and job.use_checkpoint work on a head job unchanged; a Trainer checkpoint
    holds no config.json, so its labels come from job.json."""
    from tests.support import faults
    from tests.support.waiting import wait_for

    faults.inject(monkeypatch, faults.PAUSE_ENV, "step:60")  # held after step 1 (checkpointed) until cancelled
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=ROWS, task="classification", max_steps=4,
                  batch_size=5, save_steps=1, num_threads=1, evaluate_after=False, sample_prompts=0)
    wait_for(lambda: job.store.latest_checkpoint(job.id) is not None, what="a checkpoint")
    job.cancel()
    assert job.wait(timeout=120) is jt.JobState.CANCELLED, job.log()
    assert jt.load_model(job, dtype="float32").head_labels == sorted(LABELS)
    monkeypatch.delenv(faults.PAUSE_ENV)
    job = jt.resume(job.id)
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    assert int(job.metrics["step"].max()) == 4 and "Resuming from" in job.log()
    checkpoint = job.store.latest_checkpoint(job.id)
    assert not (checkpoint / "config.json").exists()
    job.use_checkpoint(int(checkpoint.name.rsplit("-", 1)[1]))
    model = jt.load_model(job, dtype="float32")
    assert model.is_classifier and model.adapter_path.endswith(checkpoint.name)
    assert jt.evaluate(model, VAL, progress=False).mode == "head"
