"""Builds the well-posed specialty task from mtsamples.csv: notebooks/data/specialty-train.jsonl (519 rows,
the size of the walkthrough's training set), specialty-eval.jsonl (a stratified held-out set) and
specialty-labels.txt.

Why: mtsamples.csv files most transcripts several times, once under a clinical specialty and again under
document-type categories ("Surgery", "Consult - History and Phy.", "Discharge Summary", ...). A task that keeps
one of those labels per row (train.jsonl / eval.jsonl) asks the model to guess which filing was kept. Here each
distinct transcript appears once, with the one clinical specialty it is filed under.

    python scripts/make_specialty_task.py [MTSAMPLES_CSV] [--out notebooks/data]

Deterministic: sorted inputs and a fixed seed; re-running it on the same CSV rewrites the same bytes
(tests/data/test_specialty_task.py checks that when the CSV is present).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "mtsamples" / "mtsamples.csv"
DEFAULT_OUT = ROOT / "notebooks" / "data"

# Categories that say what kind of document a transcript is, not which specialty wrote it: mtsamples.com files
# a transcript under them beside its specialty (an operative note under Surgery and Orthopedic, a consult under
# its specialty and "Consult - History and Phy."). "General Medicine" and "Radiology" are here too: the site uses
# them as catch-alls (history-and-physical notes, imaging reports of every organ) beside the ordering specialty.
DOCUMENT_TYPES = (
    "Consult - History and Phy.",
    "Discharge Summary",
    "Emergency Room Reports",
    "General Medicine",
    "IME-QME-Work Comp etc.",
    "Letters",
    "Office Notes",
    "Radiology",
    "SOAP / Chart / Progress Notes",
    "Surgery",
)
MIN_SUPPORT = 15  # distinct transcripts a specialty needs to be kept: enough for train, validation and eval
EXPECTED_LABELS = 19  # what MIN_SUPPORT leaves of the CC0 release (environment.md); another count means another CSV
TRAIN_ROWS = 519  # the walkthrough's training set size
EVAL_SHARE = 0.25  # of the transcripts left after training: 288 rows, about the 243 of eval.jsonl
SEED = 0


def normalise(text: str) -> str:
    """The form transcripts are grouped and compared by: copies differ in white space and case."""
    return " ".join(text.split()).lower()


def build(csv_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Returns (train, eval, labels): rows with input_text (the transcript, stripped) and output_text (its
    specialty), and the sorted label list."""
    src = pd.read_csv(csv_path, usecols=["medical_specialty", "transcription"], dtype=str, keep_default_na=False)
    src = src.assign(text=src["transcription"].str.strip(), label=src["medical_specialty"].str.strip())
    src = src[src["text"] != ""]
    src = src.assign(key=src["text"].map(normalise))
    # One row per distinct transcript; of its copies, the first in sorted order is the one shipped.
    groups = src.groupby("key").agg(text=("text", "min"), labels=("label", lambda s: sorted(set(s) - set(DOCUMENT_TYPES))))
    groups = groups[groups["labels"].map(len) == 1].sort_index()
    groups = groups.assign(output_text=groups["labels"].str[0])
    support = groups["output_text"].value_counts()
    labels = sorted(support[support >= MIN_SUPPORT].index)
    if len(labels) != EXPECTED_LABELS:
        raise SystemExit(f"{csv_path}: {len(labels)} specialties have >= {MIN_SUPPORT} distinct transcripts, "
                         f"expected {EXPECTED_LABELS}: is this the CC0 mtsamples.csv (4,999 rows)? "
                         f"Check the file, or change EXPECTED_LABELS in {Path(__file__).name} if it is meant.")
    rows = groups[groups["output_text"].isin(labels)].reset_index()
    train, rest = train_test_split(rows, train_size=TRAIN_ROWS, stratify=rows["output_text"], random_state=SEED)
    _, evald = train_test_split(rest, test_size=EVAL_SHARE, stratify=rest["output_text"], random_state=SEED)
    check(train, evald)
    cols = ["text", "output_text"]
    return (train[cols].rename(columns={"text": "input_text"}), evald[cols].rename(columns={"text": "input_text"}),
            labels)


def check(train: pd.DataFrame, evald: pd.DataFrame) -> None:
    """The split's promises: no transcript in both files, not even a copy that differs in white space or case;
    every eval label trained on."""
    shared = set(train["key"]) & set(evald["key"])
    assert not shared, f"{len(shared)} transcripts in both train and eval"
    assert set(evald["output_text"]) <= set(train["output_text"]), "an eval label has no training row"


def write_jsonl(rows: pd.DataFrame, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows.itertuples(index=False):
            f.write(json.dumps({"input_text": r.input_text, "output_text": r.output_text}, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV, help=f"mtsamples.csv (default {DEFAULT_CSV})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write the three files to")
    a = ap.parse_args()
    if not a.csv.is_file():
        raise SystemExit(f"{a.csv} is missing: pass the path of mtsamples.csv (CC0; Kaggle tboyle10/medicaltranscriptions)")
    train, evald, labels = build(a.csv)
    a.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(train, a.out / "specialty-train.jsonl")
    write_jsonl(evald, a.out / "specialty-eval.jsonl")
    (a.out / "specialty-labels.txt").write_text("".join(f"{x}\n" for x in labels), encoding="utf-8")
    counts = pd.DataFrame({"train": train["output_text"].value_counts(), "eval": evald["output_text"].value_counts()})
    print(counts.fillna(0).astype(int).sort_values("train", ascending=False).to_string())
    print(f"wrote {len(train)} train rows, {len(evald)} eval rows, {len(labels)} labels to {a.out}")


if __name__ == "__main__":
    main()
