"""The job log's line format (log.txt: the job process's stdout): a time stamp, then the message."""

from __future__ import annotations

import time


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
