import pytest
from generation.model_helpers import build_chatty_model


@pytest.fixture(scope="session")
def chatty_model_dir(tiny_model_dir, tmp_path_factory):
    return build_chatty_model(tiny_model_dir, tmp_path_factory.mktemp("chatty-model"))


@pytest.fixture
def fresh_models():
    """Each test starts and ends with no models kept in the kernel."""
    from jupyter_tune.models.loading import clear_cache

    clear_cache()
    yield
    clear_cache()
