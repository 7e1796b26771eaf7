"""TuningJob: the public handle on a job (``jt.tune``, ``jt.get_job``, ``jt.list_jobs``).

It is a JobHandle (jobs/handle.py) plus what needs the layers above the job store: ``view()`` (widgets)
and ``export()`` (export). This module is the API layer: nothing beneath it imports it.
"""

from __future__ import annotations

from ..jobs.handle import JobHandle
from ..jobs.handle import delete_job as _delete_job
from ..jobs.queue import reconcile
from ..jobs.store import JobStore


class TuningJob(JobHandle):
    """A tuning job in the store. Cheap to create; every property reads the store afresh."""

    def export(self, dest, format: str = "merged", **options):
        """Write the tuned model to ``dest`` ("merged", "adapter" or "gguf") and check it answers as this job's
        model does; returns the ParityReport. See ``jt.export`` for the options."""
        from ..export import export

        return export(self, dest, format=format, **options)

    @property
    def evaluation(self):
        """The end-of-job report (``evaluate_after``) as a Comparison: base vs tuned on the validation set,
        with the TF-IDF baseline for classification; None until it exists (job.json's ``evaluation`` says
        why: skipped, or the error)."""
        from ..evaluation.job_report import load_comparison

        return load_comparison(self.dir)

    def view(self):
        """The ipywidgets view: Supervise / Dataset / Details / Test."""
        from ..widgets import JobView

        return JobView(self)

    def _repr_html_(self) -> str:
        r = self.record
        return (f"<b>TuningJob</b> <code>{self.id}</code> &mdash; {r.get('state')} "
                f"(base model {self.base_model}); <code>job.view()</code> shows it live.")


def get_job(job_id: str) -> TuningJob:
    """The job `job_id` (JobNotFoundError / InvalidJobIdError otherwise). Reconciles it first: a job
    whose process died is recorded FAILED and the queue moves."""
    store = JobStore()
    store.read(job_id)  # the id's errors before any write
    reconcile(store, job_id)
    return TuningJob(job_id, store)


def list_jobs() -> list[TuningJob]:
    """Every job, newest first; an unreadable job folder is listed as FAILED with the reason.
    Reconciles the store first (dead jobs recorded FAILED, queued ones started where slots are free)."""
    store = JobStore()
    reconcile(store)
    jobs = []
    for r in store.list():
        try:
            jobs.append(TuningJob(r["id"], store))
        except KeyError:  # JobNotFoundError: deleted while we listed
            continue
    return jobs


def delete_job(job_id: str) -> None:
    """Delete a job and its files. A running job is cancelled first (it must stop writing)."""
    _delete_job(JobStore(), job_id)
