"""Fault injection into job processes, from the tests alone (no hook in the product).

A job runs in its own process (``python -m jupyter_tune.training.worker``), so a test cannot monkeypatch it
directly. ``inject`` puts ``child/`` first on the job process's PYTHONPATH (spawn_worker passes the
environment on; an existing PYTHONPATH is kept after it) and sets one of the variables below; Python then
imports ``child/sitecustomize.py`` at start-up, which patches the product's functions as they are imported:

- PAUSE_ENV "point:seconds,...": pause once at start (before the job claims its process), load (inside the
  loading block, where a cancel interrupts), step (a step begins after step 1), eval (a prediction step), eval@N (a prediction step of the evaluation at step N),
  save (mid-checkpoint: weights written, optimizer state not yet). The job log says "test pause at POINT".
- PAUSE_BY_NAME_ENV, JSON {display name: PAUSE_ENV value}: the pause of the job whose
  tuned_model_display_name it is. For tests that start several jobs with different pauses: a job process
  that ends starts the queued jobs itself (jobs/queue.kick), with its own environment, so a variable set
  for one jt.tune call can reach another job's process, or miss it.
- REPORT_PAUSE_ENV "name:seconds": pause before the end-of-job report's base / tuned / baseline step.
- REPORT_FAIL_ENV "name": that report step raises ("test failure injected ...").

Without one of these variables set the sitecustomize does nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CHILD_DIR = Path(__file__).resolve().parent / "child"
PAUSE_ENV = "JUPYTER_TUNE_TEST_PAUSE"
PAUSE_BY_NAME_ENV = "JUPYTER_TUNE_TEST_PAUSE_BY_NAME"
REPORT_PAUSE_ENV = "JUPYTER_TUNE_TEST_REPORT_PAUSE"
REPORT_FAIL_ENV = "JUPYTER_TUNE_TEST_REPORT_FAIL"


def inject_by_name(monkeypatch, pauses: dict[str, str]) -> None:
    """Pause each job named in `pauses` (tuned_model_display_name -> "point:seconds,...")."""
    inject(monkeypatch, PAUSE_BY_NAME_ENV, json.dumps(pauses))


def inject(monkeypatch, name: str, value: str) -> None:
    """Set a fault variable for the job processes started from here on (undone with the monkeypatch)."""
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(CHILD_DIR) not in path:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(CHILD_DIR), *path]))
    monkeypatch.setenv(name, value)
