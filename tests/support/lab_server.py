"""A real JupyterLab server for the browser tests: started on a free port, stopped afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_lab(root: Path, token: str, env: dict[str, str], timeout: float = 90) -> Iterator[str]:
    """Serve `root` with JupyterLab (its log in root/lab.log); yields the base URL once the
    jupyter_tune server extension answers."""
    port = free_port()
    log_path = root / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", f"--port={port}",
             f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
             f"--LabApp.workspaces_dir={root / 'workspaces'}", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             # jupyter-server-mcp (the agents' tools) is on in this venv: a free port of its own, never 3001
             # shared by two test servers
             "--MCPExtensionApp.mcp_port=0"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(f"{url}/jupyter-tune/schema?token={token}", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"jupyter lab did not start:\n{log_path.read_text()[-3000:]}") from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
