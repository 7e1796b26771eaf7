"""Sweeps: one job per point of a grid, or an Optuna search over it, recorded in the store.

``$JUPYTER_TUNE_HOME/sweeps/<id>/sweep.json`` holds the sweep: its base parameters, grid, objective,
trials (parameters, job id, status, value) and state. Data given as lists or DataFrames is written next to
it once, so every job, and a driver in another process, reads the same rows.

- A grid sweep submits every point as a job at once; the job queue (``$JUPYTER_TUNE_SLOTS``) runs them in
  turn. Its state follows its jobs'.
- ``search="optuna"`` is driven by a driver process (``api/sweep_driver.py``), started like a job
  process in its own session: a search must outlive the kernel as its jobs do, and must not depend on
  a notebook staying open. It asks Optuna for points, submits them, reports each evaluation of the
  objective to Optuna, cancels the trials the pruner stops (recorded ``pruned``), and keeps Optuna's own
  study in a journal file beside sweep.json, so ``sweep.resume()`` continues a sweep whose driver died.

sweep.json is kept by the job store's mechanism (jobs/records.py: atomic writes, a ``filelock`` per
sweep, create-then-rename, checked reads), and a search whose driver died is reported and recorded the
way a job whose process died is: `SweepStore.read` reports it (no side effect), `reconcile` writes it.

Torch-free at import.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..experiments.compare import Run, best_run, greater_is_better
from ..jobs.queue import reconcile
from ..jobs.records import CorruptRecordError, RecordNotFoundError, RecordStore
from ..jobs.states import ACTIVE_STATES, FINAL_STATES, JobState
from ..jobs.store import JobStore, now_iso, process_alive, slugify
from ..params import ParameterError
from ..params.arguments import (  # noqa: F401 (PRUNERS re-exported)
    DEFAULT_MAX_JOBS,
    DEFAULT_PERCENTILE,
    DEFAULT_PRUNER,
    PRUNERS,
    SweepArgs,
    sweep_rules,
)
from ..params.arguments import SEARCHES as SWEEP_SEARCHES
from ..params.gate import checked

SEARCHES = (None, *SWEEP_SEARCHES)
_STATES = frozenset(JobState)  # a str enum: the strings read from sweep.json are found in it
# A search whose driver never recorded its pid within this time is reported FAILED (as a PENDING job).
_DRIVER_GRACE_S = 120.0
# sweep.json's blocks that readers index, and the JSON type each must have.
_RECORD_SHAPES = (("base", dict), ("grid", dict), ("objective", dict), ("trials", list), ("ranges", list),
                  ("driver", dict), ("pruner", dict), ("enqueue", list))

logger = logging.getLogger(__name__)


class SweepError(ParameterError):
    """The sweep cannot be made or continued as asked; the message says why. A ParameterError (so a
    ValueError): the gate's refusals of jt.sweep's arguments and these are caught alike."""


class SweepNotFoundError(RecordNotFoundError):
    pass


class CorruptSweepError(CorruptRecordError):
    """A sweep folder whose sweep.json cannot be used; `.reason` says why."""

    noun = "Sweep"


# -- the record --
class SweepStore(RecordStore):
    """sweeps/<id>/sweep.json beside the job store's jobs/, kept the same way (jobs/records.py)."""

    kind, subdir, noun, lock_subdir = "sweep", "sweeps", "sweep", "sweeps"
    not_found_error, corrupt_error, invalid_id_error = SweepNotFoundError, CorruptSweepError, SweepError

    @property
    def dir(self) -> Path:
        return self.records_dir

    def path(self, sweep_id: str) -> Path:
        return self.record_dir(sweep_id)

    def new_id(self, name: str | None) -> str:
        return f"{slugify(name or 'sweep', 30)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"

    def read(self, sweep_id: str) -> dict[str, Any]:
        """sweep.json for display, with no side effect: a search whose driver died reads FAILED (or
        CANCELLED, if it was being cancelled) with the reason; `reconcile` records it. Raises
        SweepNotFoundError (a KeyError) or CorruptSweepError (a ValueError) saying what is wrong."""
        return self.assess(self.read_raw(sweep_id))

    def check(self, record: dict[str, Any]) -> str | None:
        if record.get("state") not in _STATES:
            return f"sweep.json has no valid state (found {record.get('state')!r})"
        if record.get("search") not in SEARCHES[1:]:
            return f"sweep.json's search is {record.get('search')!r}, not 'grid' or 'optuna'"
        for key in ("trials", "objective", "base"):
            if key not in record:
                return f"sweep.json has no {key!r}"
        problem = self.check_shapes(record, _RECORD_SHAPES)
        if problem:
            return problem
        if not isinstance(record["objective"].get("metric"), str):
            return "sweep.json's objective names no metric"
        for i, t in enumerate(record["trials"]):
            if not isinstance(t, dict) or not isinstance(t.get("number"), int):
                return f"sweep.json's trials[{i}] is not an object with a trial number"
        return None

    def update_trial(self, sweep_id: str, number: int, **changes: Any) -> None:
        with self.lock(sweep_id):
            record = self.read_raw(sweep_id)
            for t in record["trials"]:
                if t["number"] == number:
                    t.update(changes)
            record["update_time"] = now_iso()
            self.write(sweep_id, record)

    def add_trial(self, sweep_id: str, trial: dict[str, Any]) -> None:
        with self.lock(sweep_id):
            record = self.read_raw(sweep_id)
            record["trials"].append(trial)
            self.write(sweep_id, record)

    # -- a search whose driver process died, as a job whose process died (jobs/store.py) --
    def _died(self, record: dict[str, Any]) -> bool:
        if record.get("search") != "optuna" or record.get("state") not in (
                JobState.RUNNING, JobState.CANCELLING):
            return False  # a grid sweep has no process: its jobs run on their own
        driver = record.get("driver") or {}
        if driver.get("pid") is None:  # being started: its pid is recorded right after the start
            since = driver.get("start_unix") or record.get("create_unix") or time.time()
            return time.time() - since > _DRIVER_GRACE_S
        return not process_alive(driver["pid"], driver.get("create_time"))

    def _death_changes(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("state") == JobState.CANCELLING:  # it died while stopping: it did stop
            trials = [{**t, "status": "cancelled"} if t.get("status") in (None, "running") else t
                      for t in record["trials"]]
            return {"state": JobState.CANCELLED, "end_time": now_iso(), "update_time": now_iso(),
                    "trials": trials}
        pid = (record.get("driver") or {}).get("pid")
        log = self.record_dir(record["id"]) / "driver.log"
        why = (f"The sweep's driver process (pid {pid}) ended before the search did: it was killed or crashed"
               if pid is not None else "The sweep's driver process never started")
        return {"state": JobState.FAILED, "end_time": now_iso(), "update_time": now_iso(),
                "error": f"{why} (its log: {log}). sweep.resume() continues the search where it stopped."}

    def reconcile(self, sweep_id: str | None = None) -> list[str]:
        """Record the searches (all, or `sweep_id`) whose driver died, as `read` reports them; returns
        their ids. Never raises for a sweep it cannot read or write."""
        return self.record_deaths(sweep_id)

    def begin_resume(self, sweep_id: str) -> bool:
        """Mark a search whose driver is gone RUNNING, with a driver about to start, in one locked step;
        False if a driver runs or is starting (two racing resumes start one driver)."""
        with self.lock(sweep_id):
            record = self.read_raw(sweep_id)
            if record["state"] in (JobState.RUNNING, JobState.CANCELLING) and not self._died(record):
                return False
            record.update(state=JobState.RUNNING, end_time=None, error=None, update_time=now_iso(),
                          driver={"pid": None, "start_unix": time.time()})
            self.write(sweep_id, record)
            return True


# -- building a sweep --
def _points(grid: dict[str, list]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def _data_file(data: Any, dest: Path) -> str:
    """A path every job reads: a path as given, rows written once as JSONL."""
    if data is None or isinstance(data, (str, os.PathLike)):
        return data if data is None else str(data)
    rows = data.to_dict("records") if type(data).__name__ == "DataFrame" else list(data)
    dest.write_text("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows), encoding="utf-8")
    return str(dest)


def _objective(base: dict[str, Any], objective: str | None, validation: Any) -> dict[str, Any]:
    if objective is None and base.get("select_best"):
        objective = base["select_best"]
    if objective is None and base.get("method") == "grpo":  # the graders' mean reward
        objective = "eval_reward" if validation is not None else "train_reward"
    if objective is None and validation is not None:
        objective = "eval_total_loss"
        if base.get("eval_task_metric") is not False:
            from ..data.loader import load_dataset
            from ..evaluation.classification import looks_like_classification

            with contextlib.suppress(Exception):  # the first job reports a bad set in full
                answers = [ex.answer for ex in load_dataset(validation, base.get("prompt_template")).examples]
                if base.get("eval_task_metric") or looks_like_classification(answers):
                    objective = "eval_macro_f1"
    objective = objective or "train_total_loss"
    return {"metric": objective, "direction": "maximize" if greater_is_better(objective) else "minimize"}


@checked(SweepArgs, sweep_rules)
def sweep(base: dict[str, Any], grid: dict[str, Any], search: str | None = None, n_trials: int | None = None,
          objective: str | None = None, pruner: str | dict | None = "median", parallel: int | None = None,
          enqueue: list[dict[str, Any]] | None = None, seed: int = 0, name: str | None = None,
          max_jobs: int = DEFAULT_MAX_JOBS) -> Sweep:
    """Tune one job per point of ``grid`` (every combination), or let Optuna choose ``n_trials`` points.

    ``base``: the jt.tune(...) arguments every job shares (train_dataset required). ``grid``: parameter ->
    list of values; with ``search="optuna"`` a list is a categorical choice and a ``(low, high)`` tuple a
    range of a numeric parameter without choices (log scale when high >= 10 x low > 0, as for rates).
    ``objective``: the metric that ranks the jobs (default: select_best, else for method="grpo" eval_reward
    (train_reward without validation), else eval_macro_f1 for a classification validation set, else
    eval_total_loss, else train_total_loss); each job counts with its best evaluation. Optuna only: ``pruner``
    ("median" (default), "percentile", "hyperband", "successive_halving", a dict with "type" and the pruner's
    arguments, or None; "min_evaluations", 3 by default: how many evaluations a trial logs before the pruner
    may judge it) stops trials that fall behind, from the job's logged evaluations; ``parallel`` trials at
    once (default: the machine's job slots); ``enqueue``: points to try first; ``seed``: the sampler's.
    ``max_jobs`` (default 64): the most jobs the sweep starts (grid points, or n_trials); a larger sweep is
    refused, naming it, until it is raised.

    The whole sweep is checked before anything is written or started (jt.ParameterError naming each bad
    argument, grid value or range): a refused sweep leaves nothing in the store. Returns at once. Grid jobs
    wait their turn in the job queue; a search runs in a driver process.
    """
    from ..jobs.queue import machine_slots

    search = search or "grid"
    points = _points(grid) if search == "grid" else []
    pruner_spec = _pruner_spec(pruner) if search == "optuna" else None
    if search == "optuna":
        _check_with_optuna(grid, pruner_spec)
    from ..data.loader import validate_dataset
    from ..params import MIN_TRAIN_EXAMPLES

    # every problem listed before anything is written or started, read as each job's jt.tune reads it
    validate_dataset(base["train_dataset"], base.get("validation_dataset"), base.get("prompt_template"),
                     base.get("min_train_examples", MIN_TRAIN_EXAMPLES), preference=base.get("method") == "dpo",
                     require_answer=base.get("method") != "grpo")
    objective_spec = _objective(base, objective, base.get("validation_dataset"))

    store = SweepStore()
    sweep_id = store.new_id(name)
    final = store.path(sweep_id)
    with store.creating(sweep_id) as folder:  # all or nothing: a sweep that fails here leaves no folder
        base = dict(base)
        for key, file_name in (("train_dataset", "train.jsonl"), ("validation_dataset", "validation.jsonl")):
            base[key] = _data_file(base.get(key), folder / file_name)
            if base[key] == str(folder / file_name):  # the jobs read the rows where the folder will be
                base[key] = str(final / file_name)
        record = {
            "id": sweep_id, "name": name or sweep_id, "search": search, "state": JobState.RUNNING,
            "create_time": now_iso(), "create_unix": time.time(), "end_time": None, "error": None,
            "base": base, "grid": {k: list(v) for k, v in grid.items()},
            "ranges": [k for k, v in grid.items() if isinstance(v, tuple)],
            "objective": objective_spec,
            "n_trials": n_trials if search == "optuna" else len(points),
            "parallel": max(1, parallel or machine_slots()), "pruner": pruner_spec, "seed": seed,
            "enqueue": list(enqueue or []), "trials": [], "driver": None, "max_jobs": max_jobs,
        }
        store.write_new(folder, sweep_id, record)
    s = Sweep(sweep_id, store)
    if search == "grid":
        s._submit_grid(points)
    else:
        s._start_driver()
    return s


def _pruner_spec(pruner: str | dict | None) -> dict[str, Any] | None:
    """The pruner as sweep.json keeps it (the driver builds it from this): a dict with "type", the pruner's
    arguments and min_evaluations."""
    if pruner is None:
        return None
    spec = dict(pruner) if isinstance(pruner, dict) else (
        dict(DEFAULT_PRUNER) if pruner == "median" else {"type": pruner})
    if spec["type"] == "percentile":
        spec.setdefault("percentile", DEFAULT_PERCENTILE)
    spec.setdefault("min_evaluations", DEFAULT_PRUNER["min_evaluations"])
    return spec


def _check_with_optuna(grid: dict[str, Any], pruner_spec: dict[str, Any] | None) -> None:
    """Build the search space and the pruner as the driver will, so that whatever Optuna itself refuses
    (beyond the declared rules) is refused here, before anything exists, and not in the driver."""
    problems = []
    try:
        distributions({k: list(v) if isinstance(v, tuple) else v for k, v in grid.items()},
                      [k for k, v in grid.items() if isinstance(v, tuple)])
    except (ValueError, TypeError) as e:
        problems.append(f"grid: Optuna refuses the search space: {e}")
    try:
        make_pruner(pruner_spec)
    except (ValueError, TypeError) as e:
        problems.append(f"pruner: Optuna refuses {pruner_spec}: {e}")
    if problems:
        raise ParameterError.listing(problems, "arguments of jt.sweep")


def make_pruner(spec: dict[str, Any] | None):
    """The Optuna pruner of a sweep.json pruner spec: the driver's, and built once by jt.sweep before the
    sweep exists, so that a spec Optuna refuses is refused there."""
    import optuna

    if not spec:
        return optuna.pruners.NopPruner()
    kwargs = {k: v for k, v in spec.items() if k not in ("type", "min_evaluations")}  # ours, not Optuna's
    return {"median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
            "hyperband": optuna.pruners.HyperbandPruner,
            "successive_halving": optuna.pruners.SuccessiveHalvingPruner}[spec["type"]](**kwargs)


def distributions(grid: dict[str, Any], ranges: list[str]) -> dict[str, Any]:
    """The search space: a list is a choice; a range (low, high) of a whole-number parameter takes whole
    numbers, of another a float, on a log scale when it spans a decade or more above zero (rates)."""
    import typing

    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from ..params import TuningParams

    hints = typing.get_type_hints(TuningParams)
    out = {}
    for name, values in grid.items():
        if name in ranges:
            low, high = values
            whole = int in typing.get_args(hints[name]) or hints[name] is int
            if whole:
                out[name] = IntDistribution(int(low), int(high))
            else:
                out[name] = FloatDistribution(float(low), float(high), log=low > 0 and high / low >= 10)
        else:
            out[name] = CategoricalDistribution(values)
    return out


def no_value_reason(trials: list[dict[str, Any]], metric: str, jobs: JobStore | None = None) -> str:
    """Why no trial of a sweep gave a value of its objective: how its trials ended, and the first failure's
    error (a refused point's, or its job's)."""
    jobs = jobs or JobStore()
    ended: dict[str, int] = {}
    first = None
    for t in sorted(trials, key=lambda t: t.get("number", 0)):
        status, error = t.get("status") or "submitted", t.get("error")
        if t.get("job_id") and status in ("submitted", "running", "complete"):  # the job says how it ended
            try:
                job = jobs.read(t["job_id"])
                status = JobState.of(job).name.lower()
                found = job.get("error")
                error = error or (found.get("message") if isinstance(found, dict) else found)
            except (KeyError, ValueError):
                status, error = "deleted", error or "its job was deleted"
            if status == "succeeded":
                status, error = "succeeded without a value", error or f"no {metric} logged"
        ended[status] = ended.get(status, 0) + 1
        if first is None and error:
            first = (t, error)
    text = f"No job of the sweep gave a value of {metric}"
    if trials:
        text += f" ({', '.join(f'{n} {s}' for s, n in ended.items())})"
    if first:
        t, error = first
        text += f"; trial {t.get('number')} {t.get('params')}: {error}"
    return text


def submit(record: dict[str, Any], params: dict[str, Any], number: int):
    """One trial's job: the base parameters with the point's, named after the sweep and the trial."""
    from .launch import tune

    values = {**record["base"], **params}
    values["tuned_model_display_name"] = f"{record['name']}-{number}"[:60]
    return tune(**values)


# -- the handle --
class Sweep:
    """A sweep in the store. Cheap to create; every property reads sweep.json afresh."""

    def __init__(self, sweep_id: str, store: SweepStore | None = None):
        self.store = store or SweepStore()
        self.store.read(sweep_id)
        self.id = sweep_id

    def __repr__(self) -> str:
        return f"<Sweep {self.id} {self.state} {len(self.trials)} jobs>"

    @property
    def record(self) -> dict[str, Any]:
        return self.store.read(self.id)

    @property
    def trials(self) -> list[dict[str, Any]]:
        return self.record["trials"]

    @property
    def job_ids(self) -> list[str]:
        return [t["job_id"] for t in self.trials if t.get("job_id")]

    @property
    def jobs(self) -> list:
        from .job import TuningJob

        out = []
        for job_id in self.job_ids:
            with contextlib.suppress(KeyError):
                out.append(TuningJob(job_id))
        return out

    @property
    def objective(self) -> dict[str, Any]:
        return self.record["objective"]

    @property
    def state(self) -> JobState:
        """RUNNING while jobs run (or the search goes on), then SUCCEEDED (some job succeeded), FAILED or
        CANCELLED. A search whose driver process died reads FAILED, with the reason; resume() continues it."""
        record = self.record  # SweepStore.read: a dead driver already reads FAILED
        state = JobState.of(record)
        if state in FINAL_STATES or record["search"] == "optuna":
            return state
        job_states = [self._job_state(j) for j in self.job_ids]
        if any(s in ACTIVE_STATES for s in job_states) or len(record["trials"]) < record["n_trials"]:
            return state
        final = JobState.CANCELLED if state is JobState.CANCELLING else (
            JobState.SUCCEEDED if JobState.SUCCEEDED in job_states else JobState.FAILED)
        error = no_value_reason(record["trials"], record["objective"]["metric"]) if final is JobState.FAILED else None
        self.store.update(self.id, state=final, end_time=now_iso(), error=error)
        return final

    @property
    def error(self) -> str | None:
        """Why the sweep failed: how its trials ended and the first failure's error, or why its driver stopped
        (a search whose driver died says so, and that resume() continues it)."""
        _ = self.state  # a grid sweep's end (and its error) is recorded when its state is read
        return self.record.get("error") or None

    @staticmethod
    def _job_state(job_id: str) -> JobState:
        try:
            return JobState.of(JobStore().read(job_id))
        except KeyError:
            return JobState.CANCELLED  # deleted

    def _runs(self) -> list[Run]:
        store, runs = JobStore(), []
        for t in self.trials:
            if not t.get("job_id"):
                continue
            try:
                r = store.read(t["job_id"])
            except KeyError:
                continue
            runs.append(Run(t["job_id"], r.get("display_name") or t["job_id"], JobState.of(r),
                            r.get("params") or {}, store.read_metrics(t["job_id"])))
        return runs

    @property
    def best(self) -> dict[str, Any] | None:
        """The best point so far: {"job_id", "params", "value", "metric"} (each job at its best evaluation)."""
        metric = self.objective["metric"]
        pruned = {t["job_id"] for t in self.trials if t.get("status") == "pruned"}
        run = best_run([r for r in self._runs() if r.id not in pruned], metric, greater_is_better(metric))
        if run is None:
            return None
        trial = next(t for t in self.trials if t.get("job_id") == run.id)
        return {"job_id": run.id, "params": trial["params"], "value": run.best(metric), "metric": metric,
                "number": trial["number"]}

    @property
    def best_job(self):
        from .job import TuningJob

        best = self.best
        return TuningJob(best["job_id"]) if best else None

    def notes(self) -> dict[str, str]:
        out = {}
        for t in self.trials:
            if t.get("job_id") and t.get("status") == "pruned":
                out[t["job_id"]] = f"pruned at step {t.get('pruned_step')}"
            elif t.get("job_id") and t.get("value") is not None:
                out[t["job_id"]] = f"trial {t['number']}"
        return out

    # -- control --
    def wait(self, timeout: float | None = None, poll: float = 1.0) -> JobState:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.store.reconcile(self.id)  # a dead driver recorded, as job.wait records a dead job
            for job in self.jobs:  # a waiting kernel keeps the queue moving (as job.wait does)
                reconcile(job.store, job.id)  # reads have no side effect: this records deaths, starts queued jobs
            state = self.state
            if state.is_final:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Sweep {self.id} still {state} after {timeout} s")
            time.sleep(poll)

    def cancel(self) -> JobState:
        """Cancel the whole sweep: the search stops asking, and every queued or running job is cancelled."""
        if self.state.is_final:
            return self.state
        self.store.update(self.id, state=JobState.CANCELLING)
        for job in self.jobs:
            if job.state.is_active:
                job.cancel()
        with self.store.lock(self.id):  # no driver to finish the cancel: this does, in one step
            record = self.store.read_raw(self.id)
            if record["state"] == JobState.CANCELLING and (
                    record["search"] == "grid" or self.store._died(record)):
                for t in record["trials"]:
                    if t.get("status") in (None, "running"):
                        t["status"] = "cancelled"
                record.update(state=JobState.CANCELLED, end_time=now_iso(), update_time=now_iso())
                self.store.write(self.id, record)
        return self.state

    def resume(self) -> Sweep:
        """Continue a search whose driver process died (or was cancelled) where Optuna's journal left it."""
        record = self.record
        if record["search"] != "optuna":
            raise SweepError("resume() continues an Optuna search; a grid sweep's jobs run on their own "
                             "(jt.resume(job_id) continues a job)")
        if self.store.begin_resume(self.id):  # False: a driver runs (or is starting) already
            self._start_driver()
        return self

    def view(self, **kwargs: Any):
        """The comparison view of the sweep's jobs, live while it runs, the best point starred."""
        from ..widgets.compare import CompareView

        record = self.record
        title = (f"Sweep {record['name']} ({record['search']}, objective {record['objective']['metric']}, "
                 f"{record['objective']['direction']})")
        return CompareView(lambda: self.job_ids, metric=record["objective"]["metric"], title=title,
                           notes=self.notes, active=lambda: not self.state.is_final, **kwargs)

    def _repr_html_(self) -> str:
        best = self.best
        return (f"<b>Sweep</b> <code>{self.id}</code> &mdash; {self.state}, {len(self.job_ids)} jobs"
                + (f"; best <code>{best['job_id']}</code> {best['metric']} {best['value']:.4g}" if best else "")
                + "; <code>sweep.view()</code> compares them.")

    # -- running --
    def _submit_grid(self, points: list[dict[str, Any]]) -> None:
        record = self.record
        for number, point in enumerate(points):
            if self.record["state"] != JobState.RUNNING:
                break  # cancelled while submitting
            try:
                job = submit(record, point, number)
            except Exception as e:  # noqa: BLE001 - one point refused (e.g. memory) does not stop the grid
                self.store.add_trial(self.id, {"number": number, "params": point, "job_id": None,
                                               "status": "failed", "error": f"{type(e).__name__}: {e}"})
                print(f"Sweep {self.id}: point {point} refused: {e}", file=sys.stderr)
                continue
            self.store.add_trial(self.id, {"number": number, "params": point, "job_id": job.id,
                                           "status": "submitted"})

    def _start_driver(self) -> None:
        import psutil

        folder = self.store.path(self.id)
        env = {**os.environ, "JUPYTER_TUNE_HOME": str(self.store.root), "PYTHONUNBUFFERED": "1"}
        with open(folder / "driver.log", "ab") as logf:
            proc = subprocess.Popen([sys.executable, "-m", "jupyter_tune.api.sweep_driver", str(folder)],
                                    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True, cwd=str(folder))
        try:
            created = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            created = None
        self.store.update(self.id, driver={"pid": proc.pid, "create_time": created, "start_unix": time.time()})
        import threading

        threading.Thread(target=proc.wait, daemon=True, name=f"reap-{self.id}").start()


def get_sweep(sweep_id: str) -> Sweep:
    """The sweep `sweep_id` (SweepNotFoundError, CorruptSweepError or SweepError for a bad id otherwise).
    Reconciles it first: a search whose driver died is recorded FAILED, as jt.get_job does for a job."""
    store = SweepStore()
    store.read(sweep_id)  # the id's errors before any write
    store.reconcile(sweep_id)
    return Sweep(sweep_id, store)


def list_sweeps() -> list[Sweep]:
    """Every sweep in the store, newest first (searches whose driver died recorded FAILED first). An
    unreadable sweep.json is left out with a warning that says why."""
    store = SweepStore()
    store.reconcile()
    sweeps = []
    for sweep_id in store.ids():
        try:
            sweeps.append(Sweep(sweep_id, store))
        except CorruptSweepError as e:
            logger.warning("%s", e)
        except KeyError:
            continue  # deleted while we listed
    return sorted(sweeps, key=lambda s: s.record.get("create_unix") or 0, reverse=True)


__all__ = ["sweep", "get_sweep", "list_sweeps", "Sweep", "SweepError", "SweepNotFoundError",
           "CorruptSweepError"]
