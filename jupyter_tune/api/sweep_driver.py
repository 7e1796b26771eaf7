"""The Optuna search's driver process: ``python -m jupyter_tune.api.sweep_driver <sweep dir>``.

Why a process and not a thread in the kernel: the jobs it starts outlive a kernel restart, so the search
that decides the next job must too; it runs in its own session like a job process, with its pid in
sweep.json. Optuna's study lives in a journal file beside sweep.json (``optuna.journal``), and sweep.json
maps each trial to its job, so a new driver (``sweep.resume()``) continues where a dead one stopped.

Each poll: report the running trials' new evaluations of the objective (metrics.jsonl) to Optuna, cancel
the ones its pruner stops (recorded ``pruned``), tell Optuna the finished ones' values (each job's best
evaluation: its adapter is that checkpoint), and ask for new points while fewer than ``parallel`` run.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..experiments.compare import greater_is_better
from ..jobs.queue import reconcile
from ..jobs.states import JobState
from ..jobs.store import JobStore, now_iso
from .sweep import SweepStore, distributions, make_pruner, no_value_reason, submit

POLL_S = 0.5


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _study(record: dict[str, Any], folder: Path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    return optuna.create_study(study_name=record["id"], storage=storage, load_if_exists=True,
                               direction=record["objective"]["direction"],
                               sampler=optuna.samplers.TPESampler(seed=record.get("seed", 0)),
                               pruner=make_pruner(record.get("pruner")))


def _values(rows: list[dict[str, Any]], metric: str) -> list[tuple[int, float]]:
    return [(r["step"], float(r[metric])) for r in rows
            if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]


def run(folder: Path) -> int:
    from optuna.trial import Trial, TrialState

    sweeps = SweepStore(folder.parent.parent)
    sweep_id = folder.name
    record = sweeps.read(sweep_id)
    study = _study(record, folder)
    metric = record["objective"]["metric"]
    greater = greater_is_better(metric)
    jobs = JobStore(sweeps.root)
    if not record.get("enqueued"):
        for point in record.get("enqueue") or []:
            study.enqueue_trial(point)
        sweeps.update(sweep_id, enqueued=True)
    # A trial Optuna handed out that never got a job (the last driver died in between) is void.
    known = {t["number"] for t in record["trials"]}
    for ft in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if ft.number not in known:
            study.tell(ft.number, state=TrialState.FAIL)
    space = distributions(record["grid"], record["ranges"])
    log(f"Sweep {sweep_id}: {record['n_trials']} trials, objective {metric} ({record['objective']['direction']}), "
        f"{record['parallel']} at once, pruner {record.get('pruner')}")

    polls = 0
    while True:
        if polls % 10 == 0:
            reconcile(jobs)  # dead jobs recorded, the queue moved: the driver may be the only one watching
        polls += 1
        record = sweeps.read(sweep_id)
        sweep_state = JobState.of(record)
        if sweep_state is JobState.CANCELLING:
            for t in record["trials"]:
                if t.get("status") == "running":
                    _cancel_job(jobs, t["job_id"])
                    study.tell(t["number"], state=TrialState.FAIL)
                    sweeps.update_trial(sweep_id, t["number"], status="cancelled")
            sweeps.update(sweep_id, state=JobState.CANCELLED, end_time=now_iso())
            log("Cancelled")
            return 0
        if sweep_state.is_final:  # recorded ended by someone else (e.g. judged dead): stop
            log(f"The sweep is {sweep_state}: nothing left to drive")
            return 0
        running = 0
        for t in record["trials"]:
            if t.get("status") != "running":
                continue
            try:
                job_record = jobs.read(t["job_id"])
            except KeyError:
                study.tell(t["number"], state=TrialState.FAIL)
                sweeps.update_trial(sweep_id, t["number"], status="failed", error="its job was deleted")
                continue
            trial = Trial(study, t["trial_id"])
            values = _values(jobs.read_metrics(t["job_id"]), metric)
            last = t.get("reported_step", -1)
            pruned = None
            judged_from = (record.get("pruner") or {}).get("min_evaluations", 0)
            for i, (step, value) in enumerate(values, start=1):
                if step <= last:
                    continue
                trial.report(value, step)
                last = step
                if i >= judged_from and trial.should_prune():
                    pruned = step
                    break
            if last != t.get("reported_step", -1):
                sweeps.update_trial(sweep_id, t["number"], reported_step=last)
            state = JobState.of(job_record)
            if pruned is not None and not state.is_final:
                _cancel_job(jobs, t["job_id"])
                study.tell(t["number"], state=TrialState.PRUNED)
                sweeps.update_trial(sweep_id, t["number"], status="pruned", pruned_step=pruned)
                log(f"Trial {t['number']} ({t['job_id']}) pruned at step {pruned}: {metric} {values[-1][1]:.4g}")
            elif state.is_final:
                best = [v for _, v in values]
                if state is JobState.SUCCEEDED and best:
                    value = max(best) if greater else min(best)
                    study.tell(t["number"], value)
                    sweeps.update_trial(sweep_id, t["number"], status="complete", value=value)
                    log(f"Trial {t['number']} ({t['job_id']}): {metric} {value:.4g}")
                else:
                    study.tell(t["number"], state=TrialState.FAIL)
                    err = job_record.get("error")
                    err = err.get("message") if isinstance(err, dict) else err
                    sweeps.update_trial(sweep_id, t["number"], status="failed",
                                        error=err or f"{state}, no {metric} logged")
                    log(f"Trial {t['number']} ({t['job_id']}) ended {state} without a value")
            else:
                running += 1
        asked = len(record["trials"])
        while running < record["parallel"] and asked < record["n_trials"]:
            if sweeps.read(sweep_id)["state"] != JobState.RUNNING:
                break  # cancelled meanwhile: no new job
            trial = study.ask(space)
            entry = {"number": trial.number, "trial_id": trial._trial_id, "params": trial.params,
                     "status": "running", "job_id": None}
            try:
                job = submit(record, trial.params, trial.number)
            except Exception as e:  # noqa: BLE001 - a point the job refuses is a failed trial, not a dead sweep
                study.tell(trial, state=TrialState.FAIL)
                sweeps.add_trial(sweep_id, {**entry, "status": "failed", "error": f"{type(e).__name__}: {e}"})
                log(f"Trial {trial.number} {trial.params} refused: {e}")
            else:
                sweeps.add_trial(sweep_id, {**entry, "job_id": job.id})
                log(f"Trial {trial.number} {trial.params}: job {job.id}")
                running += 1
            asked += 1
        if running == 0 and asked >= record["n_trials"]:
            try:
                best = study.best_trial
                summary = {"number": best.number, "value": best.value, "params": best.params}
            except ValueError:  # no trial completed
                summary = None
            final = JobState.SUCCEEDED if summary else JobState.FAILED
            error = None if summary else no_value_reason(sweeps.read(sweep_id)["trials"], metric, jobs)
            sweeps.update(sweep_id, state=final, end_time=now_iso(), optuna_best=summary, error=error)
            log(f"Done: best {summary}")
            return 0
        time.sleep(POLL_S)
    return 0  # pragma: no cover


def _cancel_job(jobs: JobStore, job_id: str) -> None:
    from .job import TuningJob

    try:
        TuningJob(job_id, jobs).cancel()
    except (KeyError, ValueError) as e:
        log(f"Could not cancel {job_id}: {e}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m jupyter_tune.api.sweep_driver SWEEP_DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    try:
        return run(folder)
    except BaseException as e:  # the record says why the search stopped
        import traceback

        traceback.print_exc()
        reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        try:
            SweepStore(folder.parent.parent).update(
                folder.name, state=JobState.FAILED, end_time=now_iso(),
                error=f"The sweep's driver stopped: {reason} (its log: {folder / 'driver.log'}). "
                      "sweep.resume() continues the search where it stopped.")
        except Exception as failed:  # noqa: BLE001 - the record cannot be written: the log says both
            log(f"Could not record the failure in sweep.json: {type(failed).__name__}: {failed}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
