"""Each layer of jupyter_tune imports only the layers beneath it (issue 16).

Every ``import`` in the package is read with ``ast``, function-level ones included (they hide cycles
from Python but not from a reader), and checked against LAYERS, lowest first. A module may import its
own layer and any layer below; never one above. The order is the one the code has, and README's layout
section describes it:

    theme < params < store < models < data < generation < evaluation < training < export < widgets < api
           < cells < server < jupyter_tune (the package's lazy names and Jupyter hooks)

- ``theme``: the colours that follow JupyterLab's light and dark themes (imports nothing).
- ``store``: the job store and what every process shares about a job (jobs/states, store, checkpoints,
  cancel, queue, handle). Torch-free; the job process (training/worker) writes through it.
- ``models`` loads a job's adapter through the store, beneath the data that tokenises with a model's
  tokenizer (data/stats); hardware choice (models/hardware) is here, beneath training.
- ``training`` ranks validation labels with evaluation's scorer during training, so it sits above it.
- ``experiments``: what compares runs (experiments/compare), read by widgets/compare. Sweeps and their
  driver (experiments/sweep, driver) launch jobs and show views: they are API, like jobs/launch.
- ``api`` is the public job handle and launcher (jobs/job: TuningJob with view() and export();
  jobs/launch: jt.tune / jt.resume; any other jobs/ module, e.g. sweeps). Nothing beneath imports it:
  widgets, export and models take a store-level JobHandle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jupyter_tune

PACKAGE = Path(jupyter_tune.__file__).parent

# Lowest first. A name is a module or a package prefix; the longest matching prefix decides. "" is the
# package's own __init__ only: a new subpackage must be placed here before its imports are checked.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("theme", ("theme",)),
    ("params", ("params",)),
    ("store", ("jobs.states", "jobs.store", "jobs.records", "jobs.checkpoints", "jobs.cancel", "jobs.queue",
               "jobs.handle", "jobs.exit_note", "jobs.guard", "jobs.choice", "jobs.samples")),
    ("models", ("models",)),
    ("data", ("data",)),
    ("generation", ("generation",)),
    ("evaluation", ("evaluation",)),
    ("training", ("training",)),
    ("export", ("export",)),
    ("experiments", ("experiments",)),
    ("widgets", ("widgets",)),
    ("api", ("jobs", "experiments.sweep", "experiments.driver")),
    ("cells", ("cells",)),
    ("server", ("server",)),
    ("jupyter_tune", ("",)),
]


def layer_of(module: str) -> int:
    """Index in LAYERS of a module named relative to the package ("jobs.store", "" for the package)."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or (prefix and module.startswith(prefix + "."))) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    assert best is not None, f"jupyter_tune.{module} is in no layer: add it to LAYERS in {__file__}"
    return best


def package_modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if "labextension" in rel.parts or "node_modules" in rel.parts:
            continue
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported jupyter_tune module relative to the package, line) for every import in the file."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if module else []
    package = here if is_pkg else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                if node.module:
                    names = [".".join(["jupyter_tune", *base, node.module])]
                    # from ..jobs import exit_note: the module exit_note, when it is one
                    subs = [f"{names[0]}.{a.name}" for a in node.names]
                    if all((PACKAGE.parent / (s.replace(".", "/") + ".py")).is_file() for s in subs):
                        names = subs
                else:  # from .. import x: x may be a module
                    names = [".".join(["jupyter_tune", *base, a.name]) for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name == "jupyter_tune" or name.startswith("jupyter_tune."):
                found.append((name[len("jupyter_tune."):] if "." in name else "", node.lineno))
    return found


def test_the_layer_table_covers_every_module():
    for module in package_modules():
        layer_of(module)  # asserts


def test_each_layer_imports_only_downward():
    wrong = []
    for module, path in package_modules().items():
        mine = layer_of(module)
        for target, line in imports_of(module, path):
            theirs = layer_of(target)
            if theirs > mine:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module or 'jupyter_tune'} "
                             f"({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert not wrong, "imports that point up a layer:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module,expected", [("jobs.store", "store"), ("jobs.job", "api"),
                                             ("jobs.launch", "api"), ("models.hardware", "models"),
                                             ("training.worker", "training"), ("", "jupyter_tune")])
def test_layer_names(module, expected):
    assert LAYERS[layer_of(module)][0] == expected


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from ..widgets import JobView\n    from .. import generation\n")
    assert imports_of("jobs.handle", f) == [("widgets", 2), ("generation", 3)]
