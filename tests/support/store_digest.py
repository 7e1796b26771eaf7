"""A sha256 of a whole folder (every entry's relative path, kind and bytes): equal before and after an
operation means the operation changed nothing there."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def folder_digest(root: Path) -> str:
    h = hashlib.sha256()
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = Path(top) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                h.update(f"L {rel} -> {os.readlink(p)}\n".encode())
            elif p.is_dir():
                h.update(f"D {rel}\n".encode())
            else:
                h.update(f"F {rel} {p.stat().st_size}\n".encode())
                h.update(p.read_bytes())
    return h.hexdigest()
