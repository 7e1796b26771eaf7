"""The fuzzer's settings and shared fixtures.

Two Hypothesis profiles: ``jupyter-tune-fuzz`` (the default in ``make test``: a fixed seed, few examples per
entry point, the whole of tests/fuzz in about a minute on two cores) and ``jupyter-tune-fuzz-long``
(``JUPYTER_TUNE_FUZZ=long``, ``make fuzz``: 20x the examples, a fresh seed each run, the failing example's
blob printed to replay it with ``@reproduce_failure``). Each test names its own example count
(``fuzz_settings(n)``), scaled by the profile.

Every module gets its own empty job store ($JUPYTER_TUNE_HOME) and no job or sweep process can start:
``launch._spawn``, ``queue.spawn_worker`` and a search sweep's driver start are replaced by recorders; any job
process or sweep driver that starts anyway is killed at the module's end and the module fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.fuzz.rows import EVAL_ROWS, TRAIN_ROWS

# Both profiles: no deadline (a call that loads a model takes seconds on a busy machine), no example database
# (a fixed seed replays the same examples; the long profile prints each failure's blob instead), no
# "explain" phase (it reruns each failure many times), and no health check about slow or filtered draws.
_COMMON = dict(deadline=None, print_blob=True, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                      HealthCheck.large_base_example],
               phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
settings.register_profile("jupyter-tune-fuzz", derandomize=True, max_examples=10, **_COMMON)
settings.register_profile("jupyter-tune-fuzz-long", derandomize=False, max_examples=200, **_COMMON)


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def fuzz_data(tmp_path_factory) -> dict[str, Path]:
    """Tiny datasets on disk: good ones and ones each bad in its own way (the data, not the argument)."""
    d = tmp_path_factory.mktemp("fuzz-data")
    files = {
        "train": _jsonl(d / "train.jsonl", TRAIN_ROWS),
        "eval": _jsonl(d / "eval.jsonl", EVAL_ROWS),
        "prompts": _jsonl(d / "prompts.jsonl", [{"input_text": r["input_text"]} for r in EVAL_ROWS]),
        "one_label": _jsonl(d / "one_label.jsonl", [{"input_text": f"row {i}", "output_text": "A"} for i in range(20)]),
        "duplicates": _jsonl(d / "duplicates.jsonl", [{"input_text": "same text here", "output_text": t}
                                                      for t in ("A", "B") * 10]),
        "pairs": _jsonl(d / "pairs.jsonl", [{"prompt": f"q {i}", "chosen": "good", "rejected": "bad"}
                                            for i in range(20)]),
        "empty": d / "empty.jsonl",
        "broken": d / "broken.jsonl",
        "csv": d / "train.csv",
        "missing": d / "no-such-file.jsonl",
        "folder": d,
        "wrong_suffix": d / "data.txt",
    }
    files["empty"].write_text("")
    files["broken"].write_text('{"input_text": "a", "output_text": "b"}\n{not json\n[1, 2]\n')
    files["csv"].write_text("input_text,output_text\n" + "".join(f"row {i},{'AB'[i % 2]}\n" for i in range(20)))
    files["wrong_suffix"].write_text("hello\n")
    return files


@pytest.fixture(scope="module", autouse=True)
def data_unchanged(fuzz_data):
    """No call changes the files it reads (nor the folder they lie in): the examples all read the same data."""
    from tests.support.store_digest import folder_digest

    before = folder_digest(fuzz_data["folder"])
    yield
    assert folder_digest(fuzz_data["folder"]) == before, f"{fuzz_data['folder']} changed"


@pytest.fixture(scope="module", autouse=True)
def fuzz_home(tmp_path_factory):
    """An empty job store for the module ($JUPYTER_TUNE_HOME)."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("fuzz-home")
    mp.setenv("JUPYTER_TUNE_HOME", str(home))
    yield home
    mp.undo()


def _job_processes() -> list[psutil.Process]:
    """Job processes and sweep drivers started by this test process (its children, in their own sessions)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "jupyter_tune.training." in cmd or "sweep_driver" in cmd:
            out.append(p)
    return out


@pytest.fixture(scope="module", autouse=True)
def no_job_starts():
    """No job process or sweep driver starts: each start is recorded instead (``spawned``). Any that starts
    anyway is killed at the end, and the module fails."""
    from jupyter_tune.api import launch, sweep
    from jupyter_tune.jobs import queue

    spawned: list[tuple] = []
    mp = pytest.MonkeyPatch()
    mp.setattr(launch, "_spawn", lambda store, job_id, resume: spawned.append(("job", job_id)))
    mp.setattr(queue, "spawn_worker", lambda store, job_id, resume: spawned.append(("job", job_id)))
    if hasattr(sweep.Sweep, "_start_driver"):
        mp.setattr(sweep.Sweep, "_start_driver", lambda self, *a, **k: spawned.append(("sweep", self.id)))
    before = {p.pid for p in _job_processes()}
    yield spawned
    mp.undo()
    started = [p for p in _job_processes() if p.pid not in before]
    for p in started:  # only processes this module started, each by its id
        try:
            p.kill()
            p.wait(10)
        except psutil.NoSuchProcess:
            pass
    assert not started, f"job or sweep processes started by the fuzzer: {[p.pid for p in started]}"
