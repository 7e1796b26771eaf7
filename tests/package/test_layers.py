"""Each folder of jupyter_tune is a layer and imports only the folders beneath it (issues 16 and 23).

The contracts are import-linter's, in pyproject.toml ``[tool.importlinter]``; grimp reads every import,
function-level ones included (they hide cycles from Python but not from a reader). Highest first:

    server > cells > api > widgets > experiments > export > training > evaluation > generation > data
           > models > jobs > params > theme

- ``jobs``: the job store and what every process shares about a job (records, states, checkpoints, cancel,
  queue, handle). Torch-free; the job process (training/worker) writes through it.
- ``models`` loads a job's adapter through the store, beneath the data that tokenises with a model's
  tokenizer (data/stats); hardware choice (models/hardware) is here, beneath training.
- ``training`` ranks validation labels with evaluation's scorer during training, so it sits above it.
- ``experiments``: what compares runs (experiments/compare), read by widgets/compare.
- ``api``: jt.tune / jt.resume (api/launch), TuningJob with view() and export() (api/job), the sweeps and
  their driver process (api/sweep, api/sweep_driver). Nothing beneath imports it: widgets, export and
  models take a store-level JobHandle.

A second contract keeps torch, transformers, peft and TRL out of everything the server imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupyter_tune

PACKAGE = Path(jupyter_tune.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def _contracts() -> list[dict]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_every_folder_and_module_is_a_layer():
    """A layers contract says nothing about a module it does not name: a new folder must be placed."""
    layers = set(next(c for c in _contracts() if c["type"] == "layers")["layers"])
    found = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert found == layers, f"not in [tool.importlinter] layers: {sorted(found - layers)}; " \
                            f"no longer in the package: {sorted(layers - found)}"


def test_the_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(PYPROJECT), "--no-cache"], capture_output=True,
                         text=True, cwd=PACKAGE.parent, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in out.stdout, out.stdout[-2000:]


def test_an_upward_import_is_caught(tmp_path):
    """The contract fails on a file that imports a layer above its own (a copy of the package with one)."""
    import shutil

    copy = tmp_path / "jupyter_tune"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("labextension", "__pycache__", "*.so"))
    (copy / "jobs" / "upward.py").write_text("def f():\n    from ..widgets import JobView\n")
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(PYPROJECT), "--no-cache"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    assert "jupyter_tune.jobs.upward -> jupyter_tune.widgets" in out.stdout, out.stdout[-3000:]
