"""The REST job summary lists a job's past exports (job.json's ``exports``, as export() records them)."""

from __future__ import annotations

import json

import pytest

from jupyter_tune.jobs.store import JobStore

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tune_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_tune": True}}}


async def test_job_summary_lists_past_exports(jp_fetch, tune_home):
    store = JobStore()
    store.create("exported-job", {"state": "JOB_STATE_SUCCEEDED", "params": {"base_model": "m"}})
    entry = {"dest": "/x/merged", "format": "merged", "dtype": "float32", "time": "2026-01-01T00:00:00+00:00",
             "artifact": "/x/merged", "parity": {"num_prompts": 4, "num_identical": 4, "identical_share": 1.0,
                                                 "max_first_token_logprob_diff": 0.0, "mismatches": [],
                                                 "prompts_source": "validation rows", "error": None}}
    store.update("exported-job", exports=[entry])
    reply = json.loads((await jp_fetch("jupyter-tune", "jobs", "exported-job")).body)
    assert reply["exports"] == [entry]
