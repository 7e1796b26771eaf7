"""Job states are JobState members in the code and their Vertex strings in job.json."""

import json

import pytest

from jupyter_tune.jobs.states import FINAL_STATES, JobState
from jupyter_tune.jobs.store import JobStore


def test_of_reads_a_records_state_as_a_member():
    assert JobState.of({"state": "JOB_STATE_RUNNING"}) is JobState.RUNNING
    assert JobState.of({"state": JobState.FAILED}) is JobState.FAILED
    for bad in ({"state": "RUNNING"}, {}, {"state": ["JOB_STATE_RUNNING"]}):
        with pytest.raises(ValueError):
            JobState.of(bad)


def test_members_meet_the_strings_read_from_json():
    assert JobState.SUCCEEDED == "JOB_STATE_SUCCEEDED" and "JOB_STATE_FAILED" in FINAL_STATES
    assert f"{JobState.CANCELLED}" == str(JobState.CANCELLED) == "JOB_STATE_CANCELLED"


def test_the_store_writes_the_string_values(tmp_path):
    store = JobStore(tmp_path)
    store.create("a-job", {"state": JobState.QUEUED, "create_unix": 1.0})
    path = store.job_dir("a-job") / "job.json"
    assert json.loads(path.read_text())["state"] == "JOB_STATE_QUEUED"
    store.update("a-job", state=JobState.FAILED)
    text = path.read_text()
    assert '"state": "JOB_STATE_FAILED"' in text and "JobState" not in text
    assert type(json.loads(text)["state"]) is str
    assert JobState.of(store.read("a-job")) is JobState.FAILED
