"""The side panel's TypeScript unit tests (jest: labextension/src/__tests__), run by `make test` too.

`make install` installs labextension/node_modules with its dev dependencies: hatch-jupyter-builder runs
`npm install` before building the extension.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def test_jest_unit_tests_pass():
    if not (LABEXTENSION / "node_modules").is_dir():
        pytest.skip("labextension/node_modules is missing: run `make install` (or `npm install` in labextension/)")
    npm = shutil.which("npm")
    assert npm, "npm is not on PATH: install Node.js 20 or newer"
    assert (LABEXTENSION / "node_modules" / ".bin" / "jest").exists(), (
        "labextension/node_modules has no jest: run `npm install` in labextension/ (its devDependencies)")
    result = subprocess.run([npm, "test", "--silent", "--", "--ci"], cwd=LABEXTENSION, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"jest failed (cd labextension && npm test):\n{result.stdout}\n{result.stderr}"
