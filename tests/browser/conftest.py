"""The browser tests' own fixtures."""

import pytest

# pytest-jupyter's plugin loads with the server tests (their `pytest_plugins`), so in one `make test` session
# its autouse fixtures apply here too: one closes the thread's event loop after each test, the other cleans up
# a ServerApp in it. Here that loop is the one playwright's sync API runs in, and closing it fails ("Cannot
# close a running event loop"). The browser tests start their own JupyterLab process and need neither.


@pytest.fixture
def jp_asyncio_loop():
    yield None


@pytest.fixture
def jp_server_cleanup():
    yield
