"""Dataset health (data/health.py, data/near.py): each check on small synthetic data, the refusal of
data_checks="error", and the repository's own eval.jsonl vs train.jsonl."""

import json
import random
from pathlib import Path

import numpy as np
import pytest

import jupyter_tune as jt
from jupyter_tune.data import near
from jupyter_tune.data.health import check_health
from jupyter_tune.data.loader import load_dataset

DATA = Path(__file__).resolve().parents[2] / "notebooks" / "data"
WORDS = [f"word{i}" for i in range(500)]


def text(seed: int, n: int = 200) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def rows(*pairs):
    return [{"input_text": i, "output_text": o} for i, o in pairs]


def ds(data):
    return load_dataset(data, min_examples=1)


def kinds(report, kind):
    return [f for f in report.findings if f.kind == kind]


def test_signatures_equal_datasketch_minhash():
    from datasketch import MinHash

    texts = [text(1, 40), "a b", "", text(2, 10)]
    words, counts = near.word_hashes(texts)
    assert list(counts) == [len(near.normalise(t)) for t in texts]
    shingles, per_text = near.shingle_hashes(words, counts)
    sig = near.signatures(shingles, per_text)
    ends = np.cumsum(per_text)
    for k in range(len(texts)):
        m = MinHash(num_perm=near.NUM_PERM, seed=near.SEED, scheme="affine32", hashfunc=int)
        m.update_batch(shingles[ends[k] - per_text[k]:ends[k]].tolist())
        assert (m.hashvalues == sig[k]).all()


def test_exact_duplicate_ignores_case_white_space_and_punctuation():
    t = text(1)
    r = check_health(ds(rows((t, "A"), (text(2), "B"), ("  " + t.upper().replace(" ", " ,  "), "A"))))
    (dup,) = kinds(r, "duplicate")
    assert dup.lines == {"train": [1, 3]} and dup.match == "exact" and dup.severity == "info"
    assert "<list> items 1, 3" in dup.message and "remove the extra copies" in dup.message
    assert not r.warnings


def test_near_duplicate():
    base = text(1).split()
    changed = base.copy()
    changed[100] = "different"
    r = check_health(ds(rows((" ".join(base), "A"), (text(2), "B"), (" ".join(changed), "A"))))
    (dup,) = kinds(r, "near_duplicate")
    assert dup.lines == {"train": [1, 3]} and dup.match == "near" and dup.similarity >= 0.9
    # unrelated texts are not near-duplicates
    assert check_health(ds(rows(*[(text(s), "A") for s in range(30)]))).findings == []


def test_conflict_names_lines_and_both_labels():
    t = text(1)
    r = check_health(ds(rows((text(2), "B"), (t, "Surgery"), (text(3), "B"), (t.lower() + ".", "Orthopedic"))))
    (c,) = kinds(r, "conflict")
    assert c.severity == "warning" and c.lines == {"train": [2, 4]} and c.labels == ["Orthopedic", "Surgery"]
    assert "items 2, 4" in c.message and "'Orthopedic' vs 'Surgery'" in c.message
    assert r.warning_count == 1 and "conflicts" in r.summary()[0]


def test_train_validation_overlap_exact_and_near(tmp_path):
    shared, near_shared = text(1), text(2).split()
    near_copy = near_shared.copy()
    near_copy[50] = "changed"
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows(
        (shared, "A"), (text(3), "B"), (" ".join(near_shared), "B"))))
    val = rows((text(4), "A"), (shared, "B"), (" ".join(near_copy), "B"))
    r = check_health(ds(train), ds(val))
    leaks = kinds(r, "overlap")
    assert [(f.match, f.lines) for f in leaks] == [("exact", {"train": [1], "validation": [2]}),
                                                   ("near", {"train": [3], "validation": [3]})]
    assert all(f.severity == "warning" for f in leaks)
    assert leaks[0].message.startswith(f"validation <list> item 2 and training {train} line 1: the same input")
    assert "under different labels ('A' in training, 'B' in validation)" in leaks[0].message
    assert "under different labels" not in leaks[1].message
    assert json.loads(json.dumps(r.to_json()))["counts"]["overlap"] == 2


def test_label_distribution_imbalance_and_one_split_labels():
    train = rows(*[(text(i), "common") for i in range(20)], (text(100), "rare"), (text(101), "train-only"))
    val = rows((text(200), "common"), (text(201), "val-only"))
    r = check_health(ds(train), ds(val))
    assert r.labels["train"] == {"common": 20, "rare": 1, "train-only": 1}
    assert r.labels["imbalance_ratio"] == 20.0
    assert r.labels["only_in_train"] == ["rare", "train-only"] and r.labels["only_in_validation"] == ["val-only"]
    (imb,) = kinds(r, "label_imbalance")
    assert "'common' has 20 examples" in imb.message
    one = kinds(r, "label_one_split")
    assert {f.split for f in one} == {"train", "validation"} and all(f.severity == "info" for f in one)
    assert next(f for f in one if f.split == "validation").lines == {"validation": [2]}
    # free-text answers get no label distribution
    assert check_health(ds(rows(*[(text(i), text(i + 50, 5)) for i in range(10)]))).labels is None


def test_check_dataset_reads_files_and_reports_bad_ones(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input_text": "x", "output_text": "y"}\n{"input_text": 3}\n')
    with pytest.raises(jt.DatasetError, match="line 2, field 'input_text'"):
        jt.check_dataset(bad)
    before = bad.read_bytes()
    assert bad.read_bytes() == before


def test_data_checks_error_refuses_before_any_job(tune_home, tiny_model_dir):
    t = text(999)
    train = rows(*[(text(i), "A" if i % 2 else "B") for i in range(20)], (t, "A"))
    val = rows((t, "B"))
    with pytest.raises(jt.DatasetError, match="(?s)data_checks='error'.*validation <list> item 1 and training <list> item 21: the same input under different labels"):
        jt.tune(base_model=str(tiny_model_dir), train_dataset=train, validation_dataset=val, data_checks="error")
    assert not (tune_home / "jobs").exists() or not any((tune_home / "jobs").iterdir())
    with pytest.raises(ValueError, match="data_checks"):
        jt.TuningParams(data_checks="strict")


def test_repository_eval_leaks_33_conflicting_transcripts_of_train():
    r = jt.check_dataset(DATA / "train.jsonl", DATA / "eval.jsonl")
    leaked = [f for f in kinds(r, "overlap") if len(f.labels) > 1]
    assert sum(len(f.lines["validation"]) for f in leaked) == 33
    assert all("under different labels" in f.message for f in leaked)
    # the transcripts filed under two or more mtsamples categories: same input, different labels
    conflicts = kinds(r, "conflict")
    assert any(f.split == "train" for f in conflicts) and all(len(f.labels) > 1 for f in conflicts)


def test_data_checks_warn_starts_the_job_with_the_findings(tune_home, tiny_model_dir, capsys):
    t = text(999)
    train = rows(*[(text(i), "A" if i % 2 else "B") for i in range(20)], (t, "A"))
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=train, validation_dataset=rows((t, "B")),
                  max_steps=1)
    try:
        record = job.record
        assert any("share an input (leakage)" in w for w in record["warnings"])
        assert record["data_health"]["counts"]["overlap"] == 1
        assert "leakage" in capsys.readouterr().err
        assert job.wait(timeout=300).value == "JOB_STATE_SUCCEEDED", job.error
        assert job.dataset_stats["health"]["counts"]["overlap"] == 1  # the Dataset tab shows it
    finally:
        job.cancel()


def test_dataset_tab_shows_a_red_line_per_leak_or_conflict():
    from jupyter_tune import theme
    from jupyter_tune.widgets.dataset import dataset_html

    t = text(999)
    r = check_health(ds(rows((t, "A"), (text(1), "B"), (t, "B"))), ds(rows((t, "C"))))
    html = dataset_html({"train": {}, "health": r.to_json()})
    assert "Dataset health" in html and "2 leaks or conflicts" in html
    assert html.count(f'class="jt-health-warning" style="{theme.ERROR_STYLE}"') == 2
    assert "Labels" in html
