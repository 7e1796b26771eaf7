"""Job states, named as Vertex AI names them."""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    QUEUED = "JOB_STATE_QUEUED"
    PENDING = "JOB_STATE_PENDING"
    RUNNING = "JOB_STATE_RUNNING"
    SUCCEEDED = "JOB_STATE_SUCCEEDED"
    FAILED = "JOB_STATE_FAILED"
    CANCELLING = "JOB_STATE_CANCELLING"
    CANCELLED = "JOB_STATE_CANCELLED"

    def __str__(self) -> str:
        return self.value

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
