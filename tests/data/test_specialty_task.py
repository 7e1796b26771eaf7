"""The specialty task shipped in notebooks/data (scripts/make_specialty_task.py builds it): its promises, and
that the script rebuilds it byte for byte when the source CSV is at hand."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_CSV = ROOT.parent / "shared" / "data" / "mtsamples" / "mtsamples.csv"
FILES = ("specialty-train.jsonl", "specialty-eval.jsonl", "specialty-labels.txt")


def normalise(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def task(repo_data):
    train = pd.read_json(repo_data / FILES[0], lines=True, dtype=str)
    evald = pd.read_json(repo_data / FILES[1], lines=True, dtype=str)
    labels = (repo_data / FILES[2]).read_text(encoding="utf-8").splitlines()
    return train, evald, labels


def test_sizes_and_fields(task):
    train, evald, labels = task
    assert len(train) == 519 and len(labels) == 19 and labels == sorted(labels)
    assert list(train.columns) == ["input_text", "output_text"] == list(evald.columns)
    assert 250 <= len(evald) <= 350, len(evald)
    assert set(train["output_text"]) == set(labels)
    assert set(evald["output_text"]) <= set(train["output_text"])
    assert train["input_text"].str.len().min() > 0 and evald["input_text"].str.len().min() > 0


def test_no_transcript_in_both_files_and_one_label_each(task):
    train, evald, _ = task
    shared = set(train["input_text"].map(normalise)) & set(evald["input_text"].map(normalise))
    assert not shared, f"{len(shared)} eval transcripts (white space and case aside) are in specialty-train"
    both = pd.concat([train, evald]).assign(key=lambda d: d["input_text"].map(normalise))
    assert both["key"].is_unique, "a transcript appears twice: the task has one row per distinct transcript"


def test_eval_is_stratified_like_train(task):
    train, evald, _ = task
    share = lambda d: d["output_text"].value_counts(normalize=True)  # noqa: E731
    assert (share(train) - share(evald)).abs().max() < 0.02


@pytest.mark.skipif(not SOURCE_CSV.is_file(), reason=f"{SOURCE_CSV} is absent: the rebuild check needs the "
                    "source CSV, which the repo does not ship (the shipped files are checked above)")
def test_the_script_rebuilds_the_files_byte_for_byte(tmp_path, repo_data):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_specialty_task.py"), str(SOURCE_CSV),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (repo_data / name).read_bytes(), name
