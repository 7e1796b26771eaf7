"""Imported by Python at start-up in job processes a test started with tests.support.faults.inject (its
folder first on PYTHONPATH). Patches the product's functions as their modules are imported, to pause or
fail at named points; does nothing unless a fault variable is set. Any other sitecustomize on the path
still runs."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import importlib.util
import os
import sys
import time

PAUSE_ENV = "JUPYTER_TUNE_TEST_PAUSE"  # the names tests/support/faults/__init__.py documents
PAUSE_BY_NAME_ENV = "JUPYTER_TUNE_TEST_PAUSE_BY_NAME"
REPORT_PAUSE_ENV = "JUPYTER_TUNE_TEST_REPORT_PAUSE"
REPORT_FAIL_ENV = "JUPYTER_TUNE_TEST_REPORT_FAIL"
REPORTS = ("base", "tuned", "baseline")

_pauses: dict[str, float] = {}
_watch = []  # the process's CancelWatch, once made


def _log(message: str) -> None:
    print(message, flush=True)  # the job's stdout is its log.txt


def _pause(point: str, until=lambda: False) -> None:
    seconds = _pauses.pop(point, None)
    if seconds is None:
        return
    _log(f"test pause at {point} for {seconds} s")
    deadline = time.monotonic() + seconds
    # Short sleeps: a cancel signal handled in between interrupts them; `until` ends the pause early.
    while time.monotonic() < deadline and not until():
        time.sleep(0.05)


def _requested() -> bool:
    return bool(_watch) and _watch[-1].requested.is_set()


# -- patches, each run once its module is imported --
def _patch_cancel(mod) -> None:
    cls = mod.CancelWatch
    init, interruptible = cls.__init__, cls.interruptible

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        _watch.append(self)

    @contextlib.contextmanager
    def paused_interruptible(self):
        with interruptible(self):
            _pause("load")  # the first interruptible block is the job's loading
            yield

    cls.__init__, cls.interruptible = __init__, paused_interruptible


def _patch_store(mod) -> None:
    cls = mod.JobStore
    start_worker = cls.start_worker

    @functools.wraps(start_worker)
    def paused_start_worker(self, job_id, *args, **kwargs):
        _pause("start", lambda: self.read_raw(job_id)["state"] == "cancelling")
        return start_worker(self, job_id, *args, **kwargs)

    cls.start_worker = paused_start_worker


def _patch_build(mod) -> None:
    build_trainer = mod.build_trainer

    @functools.wraps(build_trainer)
    def paused_build_trainer(*args, **kwargs):
        out = build_trainer(*args, **kwargs)
        trainer = out[0]
        from transformers import TrainerCallback

        class Pauses(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step >= 1:
                    _pause("step", _requested)

            def on_prediction_step(self, args, state, control, **kwargs):
                _pause("eval", _requested)
                _pause(f"eval@{state.global_step}", _requested)  # the evaluation at that step

        trainer.add_callback(Pauses())
        save_model = trainer.save_model

        def paused_save_model(*a, **k):  # mid-checkpoint: weights written, optimizer state not yet
            save_model(*a, **k)
            _pause("save", _requested)

        trainer.save_model = paused_save_model
        return out

    mod.build_trainer = paused_build_trainer


def _patch_job_report(mod) -> None:
    step, _, seconds = os.environ.get(REPORT_PAUSE_ENV, "").partition(":")
    fail = os.environ.get(REPORT_FAIL_ENV)
    for name in REPORTS:
        original = getattr(mod, f"{name}_report")

        @functools.wraps(original)
        def report(*args, _name=name, _original=original, **kwargs):
            if _name == step:  # inside the report's interruptible block: a cancel interrupts the sleeps
                deadline = time.monotonic() + float(seconds or 5)
                while time.monotonic() < deadline:
                    time.sleep(0.05)
            if _name == fail:
                raise RuntimeError(f"test failure injected at the {_name} report ({REPORT_FAIL_ENV})")
            return _original(*args, **kwargs)

        setattr(mod, f"{name}_report", report)


PATCHES = {
    "jupyter_tune.jobs.cancel": _patch_cancel,
    "jupyter_tune.jobs.store": _patch_store,
    "jupyter_tune.training.build": _patch_build,
    "jupyter_tune.evaluation.job_report": _patch_job_report,
}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of a module in PATCHES to patch it once executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            PATCHES[fullname](module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _chain() -> None:
    """Run the sitecustomize this one shadows, if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved, module = sys.path[:], sys.modules.pop("sitecustomize", None)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if module is not None:
            sys.modules["sitecustomize"] = module


def _pause_spec() -> str:
    """PAUSE_ENV, or this job's entry of PAUSE_BY_NAME_ENV (a job process runs in its job folder)."""
    by_name = os.environ.get(PAUSE_BY_NAME_ENV)
    if not by_name:
        return os.environ.get(PAUSE_ENV, "")
    import json

    try:
        with open("job.json", encoding="utf-8") as f:
            name = (json.load(f).get("params") or {}).get("tuned_model_display_name")
    except (OSError, ValueError):
        return ""
    return json.loads(by_name).get(name) or ""


def _install() -> None:
    for item in filter(None, _pause_spec().split(",")):
        point, _, seconds = item.partition(":")
        _pauses[point.strip()] = float(seconds or 5)
    if _pauses or os.environ.get(REPORT_PAUSE_ENV) or os.environ.get(REPORT_FAIL_ENV):
        sys.meta_path.insert(0, _PatchAfterImport())


if __name__ == "sitecustomize":
    _chain()
    _install()
