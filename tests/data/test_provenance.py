"""Provenance through jt.split: its parts, and everything that reads them (warnings, data errors, health
findings, the job's copy of its data, job.json, the Dataset and Details tabs), name the user's file and its
lines (a DataFrame's index labels), not "<DataFrame>" and the part's own row positions."""

import json

import pandas as pd
import pytest

import jupyter_tune as jt
from jupyter_tune.data.errors import DatasetError
from jupyter_tune.data.loader import Dataset, load_dataset

TOPICS = ("Urology", "Neurology")
TEMPLATE = "{context}: {input_text}"


def write_file(path, bad: bool = False) -> dict:
    """24 rows, a blank line after every fifth (so lines are not positions), one input repeated under the
    other label (a conflict), one row without the `context` the template reads, and with bad=True one line
    that is not JSON. Returns the lines of each."""
    lines, where, n = [], {}, 0
    for i in range(12):
        for t in TOPICS:
            row = {"input_text": f"Example number {i} about {t}.", "output_text": t, "context": "note"}
            if (i, t) == (7, "Neurology"):
                del row["context"]
                where["no_context"] = len(lines) + 1
            lines.append(json.dumps(row))
            n += 1
            if n % 5 == 0:
                lines.append("")
    where["conflict"] = [lines.index(json.dumps({"input_text": "Example number 3 about Urology.",
                                                 "output_text": "Urology", "context": "note"})) + 1,
                         len(lines) + 1]
    lines.append(json.dumps({"input_text": "Example number 3 about Urology.", "output_text": "Neurology",
                             "context": "note"}))
    if bad:
        where["bad"] = len(lines) + 1
        lines.append('{"input_text": "unclosed')
    path.write_text("\n".join(lines) + "\n")
    return where


def side_of(parts, lines: list[int]) -> str:
    train, val = parts
    return "training" if set(lines) <= set(train.index) else "validation"


def test_a_bad_row_in_the_file_is_named_by_its_line(tmp_path):
    path = tmp_path / "small-train.jsonl"
    where = write_file(path, bad=True)
    with pytest.raises(DatasetError) as e:
        jt.split(str(path), test_size=0.25)
    assert f"{path}, line {where['bad']}: Invalid JSON" in str(e.value)


def test_the_parts_carry_the_file_and_its_lines(tmp_path):
    path = tmp_path / "small-train.jsonl"
    where = write_file(path)
    parts = jt.split(str(path), test_size=0.25, seed=0)
    file_lines = path.read_text().split("\n")
    for part in parts:  # each row's index is its line in the file
        assert all(json.loads(file_lines[n - 1]) == {k: v for k, v in row.items() if isinstance(v, str)}
                   for n, row in part.iterrows())
    side = side_of(parts, where["conflict"])
    name = f"{path} ({side} part of jt.split)"

    # the conflict warning: the file and its real lines
    health = jt.check_dataset(*parts)
    (finding,) = [f for f in health.findings if f.kind == "conflict"]
    a, b = where["conflict"]
    assert finding.message.startswith(f"{name} lines {a}, {b}: the same input labelled 'Neurology' vs 'Urology'")
    assert finding.lines == {"train" if side == "training" else "validation": [a, b]}

    # a data error: the file, the line and the field
    with pytest.raises(DatasetError) as e:
        jt.check_dataset(*parts, prompt_template=TEMPLATE)
    (problem,) = e.value.problems
    part = side_of(parts, [where["no_context"]])
    assert str(problem).startswith(f"{path} ({part} part of jt.split), line {where['no_context']}, field 'context'")

    # rows filtered, sorted or sampled keep their origin; a reset index loses it (and says so: <DataFrame>)
    train = parts.train
    for changed in (train[train["output_text"] == "Urology"], train.sort_values("input_text"), train.sample(frac=1)):
        ds = load_dataset(changed)
        assert ds.source == f"{path} (training part of jt.split)" and ds.unit == "line"
        assert [ex.line for ex in ds.examples] == list(changed.index)
    assert load_dataset(train.reset_index(drop=True)).source == "<DataFrame>"

    # splitting a part again still names the file
    again = jt.split(parts.train, test_size=0.25, seed=1)
    assert load_dataset(again.validation).source == f"{path} (validation part of jt.split)"
    assert set(again.validation.index) <= set(parts.train.index)


def test_a_dataframe_keeps_its_index_labels():
    rows = [{"input_text": f"Example number {i} about {t}.", "output_text": t} for i in range(12) for t in TOPICS]
    rows.append({"input_text": "Example number 3 about Urology.", "output_text": "Neurology"})
    df = pd.DataFrame(rows, index=range(100, 100 + len(rows)))
    parts = jt.split(df, test_size=0.25, seed=0)
    assert sorted([*parts.train.index, *parts.validation.index]) == list(df.index)
    lines = [106, 124]  # "Example number 3 about Urology." under both labels
    side = side_of(parts, lines)
    (finding,) = [f for f in jt.check_dataset(*parts).findings if f.kind == "conflict"]
    assert finding.message.startswith(f"<DataFrame> ({side} part of jt.split) indices 106, 124:")
    # the DataFrame itself is named by its labels too (what df.loc takes)
    (finding,) = [f for f in jt.check_dataset(df).findings if f.kind == "conflict"]
    assert finding.message.startswith("training <DataFrame> indices 106, 124:")


def test_the_jobs_copy_keeps_lines_and_unit():
    ds = load_dataset(pd.DataFrame([{"input_text": "a b", "output_text": "x"}] * 2, index=[0, 9]))
    copy = Dataset.from_records(ds.source, ds.to_records())
    assert [ex.line for ex in copy.examples] == [0, 9] and copy.unit == "index"


@pytest.mark.slow  # a job process: about 30 s on a quiet 2-core machine
def test_a_job_of_split_parts_names_the_file(tmp_path, tune_home, tiny_model_dir):
    from jupyter_tune.widgets.details import details_rows

    path = tmp_path / "small-train.jsonl"
    where = write_file(path)
    parts = jt.split(str(path), test_size=0.25, seed=0)
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=parts.train, validation_dataset=parts.validation,
                  max_steps=1, batch_size=4, seed=0)
    record = json.loads((tune_home / "jobs" / job.id / "job.json").read_text())
    assert record["params"]["train_dataset"] == f"{path} (training part of jt.split)"
    assert record["params"]["validation_dataset"] == f"{path} (validation part of jt.split)"
    a, b = where["conflict"]
    assert any(f"{path} ({side_of(parts, [a, b])} part of jt.split) lines {a}, {b}" in w for w in record["warnings"])
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()

    stats = job.dataset_stats
    assert stats["train"]["source"] == f"{path} (training part of jt.split)" and stats["train"]["unit"] == "line"
    samples = stats["train"]["user_dataset_examples"]
    assert [s["line"] for s in samples] == list(parts.train.index[:len(samples)])
    view = job.view()
    try:
        html = view.dataset.content.value
        assert f"{path} (training part of jt.split)" in html and f"{path} (validation part of jt.split)" in html
        assert f"example 1, line {parts.train.index[1]}" in html
        details = dict(details_rows(job.record))
        assert details["Train dataset"] == f"{path} (training part of jt.split)"
        assert "(training part of jt.split)" in view.details.content.value
    finally:
        view.stop()
