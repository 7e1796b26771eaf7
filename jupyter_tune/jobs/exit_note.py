"""A job process's last word: the final state it reached and why, written where a full disk cannot stop it.

job.json is replaced atomically, which needs room for a new file: on a full disk (or a store that turned
read-only) the process could not say why it stopped, and the store then guessed "killed". So each job
process reserves ``exit.json`` when it starts (a few kB, written and fsynced) and, on its way out,
overwrites those bytes in place, which needs no new blocks, before it updates job.json as usual. A job
whose process is gone without a final state in job.json is then recorded with this note's state and
reason; the "killed or crashed" guess is left for a process that vanished without a word.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NAME = "exit.json"
RESERVED_BYTES = 8192


def reserve(job_dir: Path) -> None:
    """Make room for the note (called once, when the job process starts)."""
    with open(job_dir / NAME, "wb") as f:
        f.write(b" " * RESERVED_BYTES)
        f.flush()
        os.fsync(f.fileno())


def write(job_dir: Path, state: str, message: str | None, pid: int | None = None) -> bool:
    """Overwrite the reserved bytes with the final state and reason; False when there is no reservation
    (or the write fails): job.json is then the only record."""
    path = job_dir / NAME
    note: dict[str, Any] = {"state": state, "message": message, "pid": pid or os.getpid()}
    data = json.dumps(note, ensure_ascii=False).encode("utf-8")
    if len(data) > RESERVED_BYTES:  # a huge message: keep its start, still valid JSON
        room = RESERVED_BYTES - len(json.dumps({**note, "message": ""}).encode()) - 64
        note["message"] = (message or "").encode("utf-8")[:room].decode("utf-8", "ignore") + " [...]"
        data = json.dumps(note, ensure_ascii=False).encode("utf-8")
    try:
        with open(path, "r+b") as f:  # in place: no new blocks are needed
            f.write(data.ljust(RESERVED_BYTES))
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return False
    return True


def read(job_dir: Path, pid: int | None = None) -> dict[str, Any] | None:
    """The note of process ``pid`` (any process when None), or None when it left none."""
    try:
        text = (job_dir / NAME).read_text(encoding="utf-8").strip()
        note = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or not isinstance(note.get("state"), str):
        return None
    if pid is not None and note.get("pid") != pid:  # a note from an earlier run of the job (before a resume)
        return None
    return note
