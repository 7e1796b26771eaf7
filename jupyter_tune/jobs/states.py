"""Job states, named as Vertex AI names them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class JobState(str, Enum):
    """A job's (or sweep's) state. A str enum: a member equals, hashes and serialises as its value, so
    records hold members or the strings read from JSON alike (records.json_safe writes the value)."""

    QUEUED = "JOB_STATE_QUEUED"
    PENDING = "JOB_STATE_PENDING"
    RUNNING = "JOB_STATE_RUNNING"
    SUCCEEDED = "JOB_STATE_SUCCEEDED"
    FAILED = "JOB_STATE_FAILED"
    CANCELLING = "JOB_STATE_CANCELLING"
    CANCELLED = "JOB_STATE_CANCELLED"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> JobState:
        """The record's ``state`` as a JobState. The stores check it on every read (a record without a
        valid one reads as a FAILED stub), so the ValueError for an unknown or missing state only meets
        a record that did not come from a store."""
        return cls(record.get("state"))

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self not in FINAL_STATES


# The one definition of which states end a job and which are under way; the widgets and (through
# GET /jupyter-tune/schema) the panel read these.
FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_STATES = frozenset(s for s in JobState if s not in FINAL_STATES)
# Active states a Cancel still acts on (a CANCELLING job is already stopping).
CANCELLABLE_STATES = ACTIVE_STATES - {JobState.CANCELLING}


def states_schema() -> dict[str, list[str]]:
    """The states and their sets as JSON, in JobState's order (for the REST schema)."""
    def names(states: frozenset[JobState]) -> list[str]:
        return [s.value for s in JobState if s in states]

    return {"all": [s.value for s in JobState], "active": names(ACTIVE_STATES), "final": names(FINAL_STATES),
            "cancellable": names(CANCELLABLE_STATES), "succeeded": JobState.SUCCEEDED.value}
