import pytest

from jupyter_tune.jobs.store import JobStore


@pytest.fixture
def store(tune_home) -> JobStore:
    return JobStore(tune_home)


@pytest.fixture
def views():
    """Views made by a test; their pollers are stopped at the end even when the test fails."""
    made = []
    yield made
    for v in made:
        v.stop()
