"""Fuzz jt.split, jt.check_dataset and jt.baseline: arguments drawn from their declarations (SplitArgs,
CheckDatasetArgs, BaselineArgs), on tiny files and lists; each call succeeds or is refused by name, and never
touches the job store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jupyter_tune as jt
from jupyter_tune.params.arguments import BaselineArgs, CheckDatasetArgs, SplitArgs

from .declared import arguments, declared, fuzz_settings
from .kinds import kinds
from .outcomes import call
from .rows import TRAIN_ROWS


@pytest.fixture(scope="module")
def data_kinds(fuzz_data, fuzz_home, tmp_path_factory):
    return kinds(fuzz_data, store=fuzz_home, out=tmp_path_factory.mktemp("fuzz-out"))


SPLIT = declared(SplitArgs, jt.split)
CHECK = declared(CheckDatasetArgs, jt.check_dataset)
BASELINE = declared(BaselineArgs, jt.baseline)


@fuzz_settings(100)
@given(data=st.data())
def test_split(data, data_kinds, fuzz_home):
    args = data.draw(arguments(SPLIT, data_kinds, most=5), label="arguments")
    result, refused = call("jt.split", jt.split, args, store=fuzz_home, declared=[d.name for d in SPLIT], every=True)
    if refused is None:  # the rows split: every kept row on one side
        train, validation = result
        assert len(train) + len(validation) == result.report["train_rows"] + result.report["validation_rows"]


@fuzz_settings(80)
@given(data=st.data())
def test_check_dataset(data, data_kinds, fuzz_home):
    args = data.draw(arguments(CHECK, data_kinds), label="arguments")
    call("jt.check_dataset", jt.check_dataset, args, store=fuzz_home, declared=[d.name for d in CHECK], every=True)


@fuzz_settings(80)
@given(data=st.data())
def test_baseline(data, data_kinds, fuzz_home):
    args = data.draw(arguments(BASELINE, data_kinds, cheap={"labels": st.one_of(
        st.none(), st.sampled_from([["Urology", "Neurology"], ["Urology"], ["x", "y"], []]),
        st.lists(st.text(min_size=1, max_size=6), max_size=3))}), label="arguments")
    call("jt.baseline", jt.baseline, args, store=fuzz_home, declared=[d.name for d in BASELINE], every=True)


@pytest.mark.parametrize("threshold", [0.98, 0.99, 0.999, 1.0])
def test_split_takes_every_declared_threshold(threshold, fuzz_data):
    """Found by test_split: jt.split(train.jsonl, test_size=0.5, stratify=False, threshold=1.0) raised
    datasketch's raw "ValueError: The number of bands are too small (b < 2)" for any threshold above 0.98,
    inside the declared range [0, 1]. Texts with the same word triples are still one group at 1.0."""
    result = jt.split(fuzz_data["train"], test_size=0.5, stratify=False, threshold=threshold)
    assert result.report["train_rows"] + result.report["validation_rows"] == 24
    from jupyter_tune.data.near import group_texts

    groups = group_texts(["x y z x y z", "x y z x y z x y z", "a b c d", "a b c e"], threshold)
    assert groups.group[0] == groups.group[1] and len({*groups.group[1:]}) == 3


@pytest.mark.parametrize(("rows", "template"), [
    (TRAIN_ROWS, "no placeholder at all"),  # every prompt the same: each word in every row, all pruned
    ([{"input_text": "!!!", "output_text": t} for t in "AB" * 5], None),  # no word of two letters
    ([{"input_text": "a", "output_text": t} for t in "AB" * 5], None),
])
def test_baseline_without_words_is_refused_by_name(rows, template):
    """Found by test_baseline: jt.baseline(train.jsonl, train.jsonl, prompt_template='no placeholder at all')
    raised sklearn's raw "ValueError: After pruning, no terms remain" (and "empty vocabulary" for inputs with
    no word of two letters); now an EvaluationError saying what to change."""
    from jupyter_tune.evaluation.run import EvaluationError

    with pytest.raises(EvaluationError, match="prompt_template.*kind='majority'"):
        jt.baseline(rows, rows, prompt_template=template)
    assert jt.baseline(rows, rows, prompt_template=template, kind="majority").model_name
