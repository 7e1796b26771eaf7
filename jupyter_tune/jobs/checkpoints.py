"""Telling a complete Trainer checkpoint from a torn one (kill -9 or a full disk during the save).

A checkpoint is marked complete by a file written last, listing every file and its size. Folders
without the marker (saved by an older version, or killed between the save and the marker) are checked
by reading them: trainer_state.json must parse and the weights must be whole. Torch-free.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from pathlib import Path

COMPLETE_MARKER = "jupyter_tune_complete.json"
_WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "adapter_model.bin", "pytorch_model.bin")


def mark_complete(folder: Path, step: int) -> None:
    """Write the marker after every other file of the checkpoint is on disk."""
    from .records import atomic_write_json

    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != COMPLETE_MARKER and not p.name.startswith("."):
            with open(p, "rb") as f:
                os.fsync(f.fileno())  # the marker must never outlive the data after a power cut
            files[p.name] = p.stat().st_size
    atomic_write_json(folder / COMPLETE_MARKER, {"step": step, "files": files})


def checkpoint_problem(folder: Path, step: int | None = None) -> str | None:
    """Why `folder` cannot be resumed from, or None when it is complete."""
    marker = folder / COMPLETE_MARKER
    if marker.is_file():
        try:
            files = json.loads(marker.read_text(encoding="utf-8"))["files"]
            for name, size in files.items():
                actual = (folder / name).stat().st_size
                if actual != size:
                    return f"{name} has {actual} bytes, not the {size} it was saved with"
        except FileNotFoundError as e:
            return f"{Path(e.filename or '?').name} is missing"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return f"its completion marker is unreadable ({type(e).__name__})"
        return None
    state_path = folder / "trainer_state.json"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json (the save did not finish)"
    except (OSError, ValueError) as e:
        size = state_path.stat().st_size if state_path.exists() else 0
        return f"trainer_state.json is torn ({size} bytes: {type(e).__name__})"
    if not isinstance(state, dict):
        return "trainer_state.json is not a JSON object"
    saved_step = state.get("global_step")
    if step is not None and isinstance(saved_step, int) and saved_step != step:
        return f"trainer_state.json is for step {saved_step}, not {step}"
    losses = [e.get("loss") for e in state.get("log_history") or [] if isinstance(e, dict) and "loss" in e]
    if losses and isinstance(losses[-1], float) and not math.isfinite(losses[-1]):
        return f"its last training loss is {losses[-1]} (saved after training diverged)"
    # trainer_state.json is written last, so once it is whole the weights were written; a full disk can
    # still have cut them.
    weights = next((folder / w for w in _WEIGHTS if (folder / w).is_file()), None)
    if weights is not None:
        problem = _safetensors_problem(weights) if weights.suffix == ".safetensors" else _zip_problem(weights)
        if problem:
            return problem
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        if (folder / name).exists():
            problem = _zip_problem(folder / name)
            if problem:
                return problem
    return None


def _safetensors_problem(path: Path) -> str | None:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                return f"{path.name} is cut short (header of {n} bytes in a {size}-byte file)"
            header = json.loads(f.read(n))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as e:
        return f"{path.name} is torn ({type(e).__name__})"
    if 8 + n + end > size:
        return f"{path.name} is cut short ({size} of {8 + n + end} bytes)"
    return None


def _zip_problem(path: Path) -> str | None:
    # torch.save writes a zip archive; its directory is at the end, so a cut file is not a zip.
    try:
        ok = zipfile.is_zipfile(path)
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror or e})"
    return None if ok else f"{path.name} is torn (not a complete archive)"
