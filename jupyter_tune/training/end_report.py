"""The job process's end-of-job report (``evaluate_after``; evaluation/job_report.py does the work).

Runs after the tuned model is saved, while the job is still RUNNING, with job.json's progress saying
"evaluating" and which model. A failure of the report never fails the job: it is logged and stored in
job.json's ``evaluation.error``. A cancel during it stops it; the reports finished by then are kept and
the job ends CANCELLED (its model is complete).
"""

from __future__ import annotations

import gc
import time
import traceback

from ..evaluation import job_report
from ..jobs.cancel import CancelWatch, JobCancelled
from ..jobs.states import JobState
from ..jobs.store import JobStore
from .log import log

_PHASE_KEYS = ("phase", "evaluating", "report_step", "report_steps")
def _free_memory() -> None:
    """Forget loaded models between the reports: one model in memory at a time."""
    from ..models.loading import clear_cache

    clear_cache()
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _set_progress(store: JobStore, job_id: str, **phase) -> None:
    # training has ended: nothing else writes progress now
    progress = {k: v for k, v in (store.read_raw(job_id).get("progress") or {}).items() if k not in _PHASE_KEYS}
    store.update(job_id, progress={**progress, **phase})


def run(store: JobStore, job_id: str, params, train, val, watch: CancelWatch, test=None) -> JobState:
    """Evaluate base, tuned and baseline on the test rows (test_dataset) or else the validation rows, and
    store them, saying which rows they are; returns the job's final state: SUCCEEDED, or CANCELLED when a
    cancel came during the report."""
    from ..models.from_job import FULL_MODEL_DIR, job_is_full

    scored = test if test is not None else val
    task_type, why = job_report.plan(params, [ex.answer for ex in train.examples],
                                     [ex.answer for ex in scored.examples] if scored is not None else None)
    if task_type is None:
        if why:
            log(why)
            store.update(job_id, evaluation={"skipped": why})
        return JobState.SUCCEEDED
    job_dir = store.job_dir(job_id)
    folder = job_dir / job_report.EVAL_DIR
    (train_rows, rows), template = job_report.eval_rows([train, scored], params.prompt_template)
    # which rows the headline is on: the validation rows chose the checkpoint (and early stopping), so a score
    # on them is biased upwards; test rows played no part
    chose = test is None and store.read(job_id).get("best") is not None
    which = {"rows": "test" if test is not None else "validation", "count": len(rows), "chose_checkpoint": chose}
    model_dir = job_dir / (FULL_MODEL_DIR if job_is_full(job_dir) else "adapter")
    options = job_report.evaluate_options(params)  # a GRPO job: its answers, scored by its graders
    steps = [("base", "base model",
              lambda: job_report.base_report(params.base_model, rows, template, task_type, **options)),
             ("tuned", "tuned model", lambda: job_report.tuned_report(model_dir, rows, template, task_type, **options))]
    what = job_report.BASELINE_WHAT[task_type]
    steps.append(("baseline", what, lambda: job_report.baseline_report(train_rows, rows, template, task_type)))
    log(f"End-of-job report: {why} (base model, tuned model, {what})")
    reports, error, cached, final = {}, None, False, JobState.SUCCEEDED
    start = time.perf_counter()
    try:
        with watch.interruptible():
            for i, (name, what, make) in enumerate(steps, 1):
                _set_progress(store, job_id, phase="evaluating", evaluating=what, report_step=i,
                              report_steps=len(steps))
                try:
                    result = make()
                except Exception as e:  # noqa: BLE001 - the baseline is optional, the models are not
                    if name != "baseline":
                        raise
                    log(f"No baseline in the report: {type(e).__name__}: {e}")
                    continue
                if name == "base":
                    result, cached = result
                    if cached:
                        log("Base model's report: cached from an earlier job on the same data")
                reports[name] = result
                job_report.write_report(folder / f"{name}.json", result)
                _free_memory()
    except JobCancelled:
        error = "Cancelled during the end-of-job report"
        final = JobState.CANCELLED
        log(f"{error}; kept: {', '.join(sorted(reports)) or 'nothing'}")
    except Exception as e:  # noqa: BLE001 - a failed report must not fail the job
        traceback.print_exc()
        error = f"{type(e).__name__}: {e}"
        log(f"The end-of-job report failed (the job and its model are fine): {error}")
    seconds = time.perf_counter() - start
    evaluation = job_report.summary(reports, seconds, error, cached, which)
    if evaluation["headline"]:
        log(f"End-of-job report: {evaluation['headline']} ({seconds:.0f} s)")
    try:
        _set_progress(store, job_id)
        store.update(job_id, evaluation=evaluation)
    except OSError as e:  # the job's own end is recorded next (exit note first): the report is not worth failing it
        log(f"Could not store the end-of-job report in job.json ({type(e).__name__}: {e})")
    return final
