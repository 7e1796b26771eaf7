"""make demo: execute notebooks/quickstart.ipynb headless against a real kernel, save the executed copy,
print base, tuned and baseline macro F1.

A newcomer waits about 11 minutes on a CPU: each notebook step is printed as it starts (and how long it
took), and while the tuning job runs its progress (step / total, epoch, ETA) is read from the job store."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "notebooks" / "quickstart.ipynb"
OUT = ROOT / "notebooks" / "quickstart.executed.ipynb"
POLL_S = 5.0        # how often the job store is read
PRINT_EVERY_S = 20  # a progress line at most this often (and at every state change)


def cell_labels(nb) -> dict[int, str]:
    """Code cell index -> '2. Measure the base model: base = jt.load_model(BASE_MODEL)': the section's
    heading (the last markdown heading above it) and the cell's first line."""
    labels, section = {}, ""
    for i, cell in enumerate(nb.cells):
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        if cell.cell_type == "markdown" and first.startswith("#"):
            section = first.lstrip("#").strip()
        elif cell.cell_type == "code":
            code = first if len(first) <= 70 else first[:69] + "…"
            labels[i] = f"{section}: {code}" if section else code
    return labels


def progress_line(record: dict) -> str:
    """One job's state for the console: 'medical-specialty: running, step 12 / 30, epoch 1.20, ETA 2 min 5 s'."""
    from jupyter_tune.widgets.format import duration

    state = str(record.get("state") or "").removeprefix("JOB_STATE_").lower() or "unknown"
    parts = [f"{record.get('display_name') or record.get('id')}: {state}"]
    progress = record.get("progress") or {}
    step, total = progress.get("step") or 0, progress.get("total_steps")
    if total:
        parts.append(f"step {step} / {total}")
        if progress.get("epoch") is not None:
            parts.append(f"epoch {float(progress['epoch']):.2f}")
        if progress.get("eta_seconds") is not None and state == "running" and step < total:
            parts.append(f"ETA {duration(progress['eta_seconds'])}")
    elif state == "running":
        parts.append("preparing (tokenizing, loading the model)")
    return ", ".join(parts)


class JobProgress(threading.Thread):
    """Prints the progress of the jobs created after `since`, read from the job store (read only: the
    kernel's jt.tune and the job process write it)."""

    def __init__(self, since: float, out=sys.stdout, poll_s: float = POLL_S, every_s: float = PRINT_EVERY_S):
        super().__init__(daemon=True, name="job-progress")
        self.since, self.out, self.poll_s, self.every_s = since, out, poll_s, every_s
        self.stopped = threading.Event()
        self._last: dict[str, tuple[str, float]] = {}  # job id -> (state, when printed)

    def tick(self) -> None:
        from jupyter_tune.jobs.store import JobStore

        for record in JobStore().list():
            if (record.get("create_unix") or 0) < self.since:
                continue
            state, now = record.get("state"), time.monotonic()
            last = self._last.get(record["id"])
            if last is None or last[0] != state or now - last[1] >= self.every_s:
                print(f"      {progress_line(record)}", file=self.out, flush=True)
                self._last[record["id"]] = (state, now)

    def run(self) -> None:
        while not self.stopped.wait(self.poll_s):
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - progress is a courtesy; the notebook's result decides
                print(f"      (job progress unavailable: {type(e).__name__}: {e})", file=self.out, flush=True)
                return


def make_client(nb, out=sys.stdout):
    """An nbclient NotebookClient that prints each code cell as it starts and its time when done."""
    from nbclient import NotebookClient

    labels = cell_labels(nb)
    order = {i: n for n, i in enumerate(labels, start=1)}
    started: dict[int, float] = {}

    def on_start(cell, cell_index, **_):
        if cell_index in labels:  # nbclient calls the hooks for markdown cells too
            started[cell_index] = time.monotonic()
            print(f"[{order[cell_index]}/{len(labels)}] {labels[cell_index]}", file=out, flush=True)

    def on_done(cell, cell_index, **_):
        if cell_index in started:
            print(f"      done in {time.monotonic() - started[cell_index]:.0f} s", file=out, flush=True)

    return NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(SRC.parent)}},
                          on_cell_start=on_start, on_cell_executed=on_done)


def main() -> int:
    import nbformat

    nb = nbformat.read(SRC, as_version=4)
    t0 = time.time()
    watcher = JobProgress(since=t0)
    watcher.start()
    try:
        make_client(nb).execute()
    finally:
        watcher.stopped.set()
        nbformat.write(nb, OUT)
        print(f"executed notebook saved to {OUT} ({time.time() - t0:.0f} s)")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        print("\n".join(errors[0]["traceback"]), file=sys.stderr)
        return 1
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    summary = json.loads(last.strip().splitlines()[-1])
    print(f"base macro F1:     {summary['base_macro_f1']:.3f}\ntuned macro F1:    {summary['tuned_macro_f1']:.3f}"
          f"\nbaseline macro F1: {summary['baseline_macro_f1']:.3f} (TF-IDF + linear SVM)"
          f"\njob {summary['job_id']}: {summary['state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
