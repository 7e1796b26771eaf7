"""JobView: the live view of one tuning job (header + Supervise / Dataset / Details / Test tabs).

It reads everything from the job store, so ``jt.get_job(id).view()`` re-attaches from any kernel. While the
job is active a daemon thread polls the store and sets widget values; ipykernel sends those comm updates
from any thread, so the charts move while other cells run. The thread ends when the job reaches a final
state or the view is closed.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.handle import JobHandle
from ..jobs.queue import reconcile
from ..jobs.states import JobState
from ..jobs.store import JobNotFoundError
from .checkpoints import CheckpointsSection
from .dataset import DatasetTab
from .details import DetailsTab
from .evaluate_tab import EvaluateTab
from .header import JobHeader
from .poller import LivePoller
from .supervise import SuperviseTab
from .test_tab import TestTab

TAB_TITLES = ("Supervise", "Dataset", "Details", "Test", "Evaluate")


class JobView(LivePoller, w.VBox):
    """``JobView(job_or_id, poll_interval=1.5, live=True)``; ``job.view()`` builds one."""

    def __init__(self, job: JobHandle | str, poll_interval: float = 1.5, live: bool = True):
        self.job = job if isinstance(job, JobHandle) else JobHandle(job)
        self.store = self.job.store
        self.poll_interval = poll_interval
        self.header = JobHeader(on_cancel=self.cancel)
        self.supervise = SuperviseTab()
        self.dataset = DatasetTab()
        self.test = TestTab(self.job)
        self.checkpoints = CheckpointsSection(self.job, on_change=lambda: self.test.refresh(self.job.record))
        self.details = DetailsTab(self.checkpoints)
        self.evaluate = EvaluateTab(self.job)  # the end-of-job report (evaluate_after)
        self.tabs = w.Tab(children=[self.supervise, self.dataset, self.details, self.test, self.evaluate],
                          titles=TAB_TITLES)
        self.message = w.HTML()
        super().__init__([self.header, self.tabs, self.message], layout=w.Layout(max_width="900px"))
        # Markers for the front end (labextension/src/reattach.ts): it finds the views of a notebook whose
        # kernel restarted and marks them disconnected, with a Re-attach to this job. Ids are [a-z0-9-].
        self.add_class("jt-job-view")
        self.add_class(f"jt-job-id-{self.job.id}")
        self.thread_name = f"jt-view-{self.job.id}"
        self._init_poller()
        self._metrics: list[dict[str, Any]] = []
        self._metrics_size = -1
        self._state: JobState | None = None
        self.updates = 0  # refreshes that changed something (for tests and debugging)
        final = self.refresh()
        if live and not final:
            self.start()

    # -- reading the store --
    def _read_metrics(self) -> list[dict[str, Any]]:
        path = self.store.job_dir(self.job.id) / "metrics.jsonl"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size != self._metrics_size:
            self._metrics = self.store.read_metrics(self.job.id)
            self._metrics_size = size
        return self._metrics

    def refresh(self) -> bool:
        """Read the store and update every tab; returns True once the job is in a final state."""
        with self._lock:
            record = self.store.read(self.job.id)  # first: the metrics read next are at least as new
            metrics = self._read_metrics()
            state = JobState.of(record)
            total = (record.get("progress") or {}).get("total_steps") or (record.get("tuning") or {}).get(
                "total_steps")
            self.header.update(record, metrics, self.store.log_tail(self.job.id, 15)
                               if state is JobState.FAILED else "")
            if self.supervise.update(metrics, total, record=record):
                self.updates += 1
            if self.supervise.samples.refresh(self.store, self.job.id):
                self.updates += 1
            if self.supervise.completions.refresh(self.store, self.job.id):
                self.updates += 1
            self.dataset.update(self.store.read_dataset_stats(self.job.id))
            self.details.update(record)
            self.checkpoints.update(record, metrics)
            if self.evaluate.update(record):
                self.updates += 1
            if state != self._state:
                self._state = state
                self.test.refresh(record)
                self.updates += 1
            return state.is_final

    # -- the poller (widgets/poller.py) --
    def _tick(self) -> bool:
        try:
            final = self.refresh()  # first: the widgets' updates are not held up by the reconcile
        except JobNotFoundError:
            self.message.value = f'<span style="{theme.ERROR_STYLE}">This job was deleted.</span>'
            return True
        # The kernel watching a job is a defined reconcile point: its death is recorded and the queue moves
        # even when nothing else runs.
        reconcile(self.store, self.job.id)
        return final

    # -- actions --
    def cancel(self) -> None:
        self.job.cancel()
        self.refresh()
