import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPO_DATA = ROOT / "notebooks" / "data"


@pytest.fixture(scope="module")
def store_home(tmp_path_factory):
    """A job store shared by one module's tests (for a finished job built once per module)."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("tune-home")
    mp.setenv("JUPYTER_TUNE_HOME", str(home))
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def finished_tiny_job(store_home, tiny_model_dir):
    """One finished 3-step job on the tiny model, shared by a module's tests (exports, write faults)."""
    import jupyter_tune as jt
    from tests.support.tiny_model import TWO_LABEL_ROWS

    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=TWO_LABEL_ROWS, max_steps=3, batch_size=4,
                  seed=0, tuned_model_display_name="finished")
    assert job.wait(timeout=300) is jt.JobState.SUCCEEDED, job.log()
    return job


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with a ChatML tokenizer, saved with save_pretrained."""
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tune_home(tmp_path, monkeypatch) -> Path:
    """An empty job store for one test."""
    home = tmp_path / "tune-home"
    monkeypatch.setenv("JUPYTER_TUNE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def repo_data() -> Path:
    """The data the repo ships (notebooks/data): real-model tests read it, never a folder outside the repo."""
    return REPO_DATA


def pytest_configure(config):
    # Tests never reach a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Many tests run several jobs at once on purpose; the queue's own tests set one slot.
    os.environ.setdefault("JUPYTER_TUNE_SLOTS", "64")


@pytest.fixture(scope="session")
def chatty_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with weights that make it say something (generation tests)."""
    from tests.support.model_helpers import build_chatty_model

    return build_chatty_model(tiny_model_dir, tmp_path_factory.mktemp("chatty-model"))


@pytest.fixture
def fresh_models():
    """Each test starts and ends with no models kept in the kernel."""
    from jupyter_tune.models.loading import clear_cache

    clear_cache()
    yield
    clear_cache()
