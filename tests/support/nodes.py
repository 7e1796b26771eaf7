"""Two "machines" on one: each node of a multi-node job gets its own job store, as a second machine would.

jt.tune and jt.resume read the store from $JUPYTER_TUNE_HOME when called; the job's processes are then
started with that store (jobs/queue.spawn_worker) and the returned handle keeps it. So switching the
variable around each call is enough: nothing else is shared between the two nodes' jobs.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from jupyter_tune.jobs.store import JobStore, process_alive


@contextlib.contextmanager
def on_node(home: Path) -> Iterator[None]:
    """$JUPYTER_TUNE_HOME set to this node's store for the calls inside."""
    old = os.environ.get("JUPYTER_TUNE_HOME")
    os.environ["JUPYTER_TUNE_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("JUPYTER_TUNE_HOME", None)
        else:
            os.environ["JUPYTER_TUNE_HOME"] = old


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_tree(pid: int | None) -> list:
    """A job's processes: its supervisor, torchrun and the ranks (which torchrun starts in sessions of their
    own, so killing the supervisor's process group would miss them)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except (psutil.NoSuchProcess, ValueError, TypeError):
        return []


def kill_jobs(*homes: Path) -> None:
    """SIGKILL every process of every live job of these stores."""
    import psutil

    for home in homes:
        for record in JobStore(home).list():
            if process_alive(record.get("pid"), record.get("pid_create_time")):
                for proc in job_tree(record["pid"]):
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
