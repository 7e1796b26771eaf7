"""Polling for a condition in job tests: generous by default, since a loaded 2-core machine is slow."""

from __future__ import annotations

import time


def wait_for(cond, timeout: float = 300.0, what: str = "condition", poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
