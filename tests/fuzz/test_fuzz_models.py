"""Fuzz the entry points that take a model or a job: jt.evaluate, jt.generate_text, jt.export and
job.use_checkpoint, their arguments drawn from EvaluateArgs, GenerateArgs, ExportArgs and UseCheckpointArgs.

Calls that pass the gate run for real on the tiny model (tests/support/tiny_model.py) and on jobs made in the
fuzzer's store with a real LoRA adapter (no training), with few rows and few tokens, so that the whole module
takes seconds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jupyter_tune as jt
from jupyter_tune.params import ParameterError
from jupyter_tune.params.arguments import EvaluateArgs, ExportArgs, GenerateArgs, UseCheckpointArgs

from .declared import arguments, declared, fuzz_settings
from .kinds import kinds
from .outcomes import call

# Valid values kept cheap: a call that passes the gate generates a few tokens on a few rows.
CHEAP = {"max_output_tokens": (1, 4), "batch_size": (1, 8), "max_prompts": (1, 3)}
# always given (valid or not), so that no call falls back to a costly default (64 new tokens a row)
ALWAYS = ("max_output_tokens",)


@pytest.fixture(scope="module")
def jobs(fuzz_home, tiny_model_dir):
    """A succeeded job with an adapter and a kept checkpoint (step 4), and a failed one with neither."""
    from tests.support.model_helpers import make_job

    make_job(fuzz_home, "done", tiny_model_dir, checkpoint=True)
    make_job(fuzz_home, "failed", tiny_model_dir, state="JOB_STATE_FAILED", adapter=False, error="boom")
    return {"done": jt.get_job("done"), "failed": jt.get_job("failed")}


@pytest.fixture(scope="module")
def model_kinds(fuzz_data, fuzz_home, tmp_path_factory, tiny_model_dir, jobs):
    loaded = jt.load_model(str(tiny_model_dir))
    models = (loaded, str(tiny_model_dir), tiny_model_dir, "done", "failed", jobs["done"], "no-such/model",
              str(fuzz_data["folder"]))
    return kinds(fuzz_data, store=fuzz_home, out=tmp_path_factory.mktemp("fuzz-exports"),
                 jobs=("done", "failed", "no-such-job", jobs["done"], jobs["failed"]), models=models, small=True)


EVALUATE = declared(EvaluateArgs, jt.evaluate)
GENERATE = declared(GenerateArgs, jt.generate_text)
EXPORT = declared(ExportArgs, jt.export)
USE_CHECKPOINT = declared(UseCheckpointArgs)
LABELS = st.one_of(st.none(), st.sampled_from([["Urology", "Neurology"], ["Urology"], ["x", "y"], [],
                                               ["Urology", "Urology"]]))


@fuzz_settings(80)
@given(data=st.data())
def test_evaluate(data, model_kinds, fuzz_home):
    args = data.draw(arguments(EVALUATE, model_kinds, cheap={**CHEAP, "labels": LABELS}, always=ALWAYS,
                               fixed={"progress": st.just(False)}), label="arguments")
    call("jt.evaluate", jt.evaluate, args, store=fuzz_home, declared=[d.name for d in EVALUATE], every=True)


@fuzz_settings(80)
@given(data=st.data())
def test_generate_text(data, model_kinds, fuzz_home):
    args = data.draw(arguments(GENERATE, model_kinds, cheap=CHEAP, always=ALWAYS, fixed={"progress": st.just(False)}),
                     label="arguments")
    result, refused = call("jt.generate_text", jt.generate_text, args, store=fuzz_home,
                           declared=[d.name for d in GENERATE], every=True)
    if refused is None:
        assert "ml_generate_text_llm_result" in result.columns


@fuzz_settings(60)
@given(data=st.data())
def test_export(data, model_kinds, fuzz_home):
    args = data.draw(arguments(EXPORT, model_kinds, cheap=CHEAP, always=ALWAYS, fixed={"progress": st.just(False)}),
                     label="arguments")
    result, refused = call("jt.export", jt.export, args, store=fuzz_home, declared=[d.name for d in EXPORT], every=True,
                           changes_store=True)  # a finished export is recorded in job.json
    if refused is None:
        assert result.dest


@fuzz_settings(40)
@given(data=st.data())
def test_use_checkpoint(data, model_kinds, jobs, fuzz_home):
    job = data.draw(st.sampled_from([jobs["done"], jobs["failed"]]), label="job")
    args = data.draw(arguments(USE_CHECKPOINT, model_kinds), label="arguments")
    call("job.use_checkpoint", job.use_checkpoint, args, store=fuzz_home,
         declared=[d.name for d in USE_CHECKPOINT], every=True, changes_store=True)


def test_export_refuses_a_keyword_named_self_by_name(tmp_path):
    """Found by test_export: once jupyter_tune.export is imported (the package is callable), jt.export(job,
    dest, self=None) raised "TypeError: _CallableModule.__call__() got multiple values for argument 'self'"
    instead of the gate's refusal naming the unknown argument."""
    import jupyter_tune.export  # noqa: F401 - binds jt.export to the callable package

    with pytest.raises(ParameterError, match="'self'"):
        jt.export("done", tmp_path / "x", self=None)
