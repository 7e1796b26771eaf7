"""A job on more than one process: ``python -m jupyter_tune.training.distributed <job_dir> [--resume]``.

This process is the job's process in job.json (its pid): it starts ``torchrun`` (torch.distributed.run)
with one worker per device, waits for it, and records FAILED with the reason when torchrun ends without
a final state (a rank killed with -9, a crash: torchrun tears the whole group down). Rank 0 of the
workers writes everything else (jupyter_tune.training.worker); the other ranks write nothing.

torchrun rather than ``accelerate launch``: the Trainer already drives DDP/FSDP through accelerate from
the environment variables torchrun sets, so accelerate's launcher would only add a config layer; torchrun
is part of torch (nothing more to install), gives the rendezvous for several machines (--nnodes,
--node-rank, --rdzv-endpoint) and stops every rank when one dies, which is what a job needs.

Several machines: each runs its own job (its own store) with the same parameters but node_rank. Global
rank 0 runs on node_rank 0, so that job holds the adapter and metrics; every machine keeps its own
checkpoints (save_on_each_node), and a resume starts from the newest step every machine holds.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

# Whether a job runs as several processes is the queue's decision (it counts their slots).
from ..jobs.queue import needs_torchrun, resolve_num_processes  # noqa: F401

# Set for the workers: the supervising process (the job's recorded pid) and the job's store.
SUPERVISOR_ENV = "JUPYTER_TUNE_SUPERVISOR_PID"
# Debug/tests: each rank logs a checksum of its adapter weights before rank 0 saves them.
CHECKSUM_ENV = "JUPYTER_TUNE_DEBUG_ADAPTER_CHECKSUM"


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) for a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return world()[1] > 1 or SUPERVISOR_ENV in os.environ


def torchrun_command(params: dict, job_dir: Path, resume: bool) -> list[str]:
    nproc = resolve_num_processes(params.get("num_processes"))
    nnodes = int(params.get("nnodes") or 1)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes > 1:
        # The static rendezvous, not c10d: c10d ignores --node-rank and numbers the machines by host name and
        # agent pid, so global rank 0 (which writes the adapter and metrics) could run on node_rank 1 while
        # node_rank 0's job ended FAILED ("torchrun exited with code 0"); seen on loopback when node 1 started
        # first. Static gives node_rank N the ranks N*nproc.. and node_rank 0's agent hosts the store.
        cmd += [f"--node-rank={int(params.get('node_rank') or 0)}", "--rdzv-backend=static",
                f"--rdzv-endpoint={params['rdzv_endpoint']}", f"--rdzv-id={rendezvous_id(params)}"]
    else:
        cmd += ["--standalone"]  # a free local port, no endpoint to configure
    return cmd + ["-m", "jupyter_tune.training.worker", str(job_dir)] + (["--resume"] if resume else [])


def trainer_arguments(params) -> dict:
    """TrainingArguments for more than one process.

    - sharding="fsdp": the Trainer's FSDP (FSDP2 through accelerate) shards the model over the ranks,
      each layer gathered for its forward and backward (full shard); checkpoints as full state dicts.
    - several machines: each machine checkpoints into its own job store, so a resume finds the same
      checkpoint on every machine.
    """
    out: dict = {}
    if getattr(params, "sharding", None) == "fsdp":
        out.update(fsdp=True, fsdp_config={"reshard_after_forward": True, "state_dict_type": "FULL_STATE_DICT"})
    if int(getattr(params, "nnodes", 1) or 1) > 1:
        out.update(save_on_each_node=True)
    return out


def common_checkpoint(store, job_id: str) -> Path | None:
    """The newest checkpoint that every machine of a multi-node job holds complete (the process group is up).

    Each machine checkpoints into its own store, and a kill can leave one a step ahead of another (a save
    that finished on one machine only); ranks resuming from different steps would train out of step. The
    complete steps are gathered from every rank and the newest common one is used; None starts over."""
    import torch.distributed as dist

    mine = {step: path for step, path, problem in store.checkpoints(job_id) if problem is None}
    if not (dist.is_available() and dist.is_initialized()):
        return mine[max(mine)] if mine else None
    every: list = [None] * dist.get_world_size()
    dist.all_gather_object(every, sorted(mine))
    common = set(mine).intersection(*every)
    step = max(common) if common else -1
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # newer steps here belong to a run not continued
        import shutil

        from .log import log

        for newer in sorted(s for s in mine if s > step):
            log(f"Removed {mine[newer].name}: not every machine holds it")
            shutil.rmtree(mine[newer], ignore_errors=True)
    return mine[step] if common else None


def rendezvous_id(params: dict) -> str:
    """The same on every machine of one run (their job ids differ): the parameters but node_rank."""
    import hashlib
    import json

    same = {k: v for k, v in params.items() if k != "node_rank"}
    return "jt-" + hashlib.sha256(json.dumps(same, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _die_with_parent() -> None:
    """In the torchrun child: SIGTERM when this supervisor dies (even by kill -9), so no rank is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# How Gloo (and NCCL) report a peer process that vanished: on several machines, a rank elsewhere died.
_PEER_LOST = re.compile(r"Connection (closed|reset) by peer|Broken pipe|remote worker crash"
                        r"|NCCL communicator was aborted", re.IGNORECASE)


def failure_reason(log_text: str, returncode: int, rank0_error: str | None = None, nnodes: int = 1) -> str:
    """Why the group ended, from torchrun's failure summary: a rank killed by a signal first (the others'
    errors are its consequence: their peer vanished), else rank 0's own error, else the first failure.

    torchrun only sees this machine's ranks: with several machines, a lost connection means a rank on
    another machine ended first (seen on loopback: kill -9 of node 1's rank gave node 0's rank 0
    "Connection closed by peer"), and that machine's job says how."""
    pattern = r"rank\s*:\s*(\d+)\s*\(local_rank[^\n]*\n\s*exitcode\s*:\s*(-?\d+)\s*\(pid:\s*(\d+)\)"
    head, _, root = log_text.rpartition("Root Cause")
    # torchrun's root cause first; SIGTERM is how torchrun stops the survivors, not a cause.
    failures = re.findall(pattern, root) + re.findall(pattern, head) if head else re.findall(pattern, log_text)
    for rank, code, pid in failures:
        if int(code) < 0 and int(code) != -signal.SIGTERM:
            try:
                name = signal.Signals(-int(code)).name
            except ValueError:
                name = "a signal"
            return (f"Rank {rank} (pid {pid}) was killed by signal {-int(code)} ({name}); torchrun stopped the "
                    "other ranks.")
    if rank0_error and nnodes > 1 and _PEER_LOST.search(rank0_error):
        return ("A rank on another machine died or stopped: this machine's ranks lost their connection to it "
                f"({rank0_error}). That machine's job says why.")
    if rank0_error:
        return rank0_error
    if failures:
        rank, code, _ = failures[0]
        return f"Rank {rank} exited with code {code}; torchrun stopped the other ranks (see log.txt)."
    return f"torchrun exited with code {returncode} before the job reached a final state."


def run(job_dir: Path, resume: bool) -> int:
    from ..jobs.states import JobState
    from ..jobs.store import JobStore, now_iso
    from .log import log

    store = JobStore(job_dir.parent.parent)
    job_id = job_dir.name
    # Cancel reaches the ranks through job.json (rank 0 polls it): a signal here is not forwarded, since
    # SIGUSR1 would kill torchrun's agent and leave its workers behind.
    for name in ("SIGUSR1", "SIGINT"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    import psutil

    if not store.start_worker(job_id, os.getpid(), psutil.Process().create_time()):
        log(f"Not starting: the job is {store.read_raw(job_id)['state']}")
        return 0
    params = store.read_raw(job_id)["params"]
    cmd = torchrun_command(params, job_dir, resume)
    log("Starting " + " ".join(cmd[1:]))
    env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
    log_path = job_dir / "log.txt"
    start = log_path.stat().st_size
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent, cwd=str(job_dir))

    def stop(signum, frame):  # SIGTERM (delete_job's last resort): take the group down with us
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    rc = proc.wait()
    record = store.read_raw(job_id)
    state = JobState.of(record)
    if state.is_final:
        return 0 if state is not JobState.FAILED else 1
    node_rank = int(params.get("node_rank") or 0)
    if rc == 0 and node_rank > 0:  # global rank 0, which writes the results, ran on node_rank 0
        log("This machine's ranks finished; the adapter and metrics are in node_rank 0's job store.")
        host = str(params.get("rdzv_endpoint") or "").rpartition(":")[0]
        store.update(job_id, state=JobState.SUCCEEDED, end_time=now_iso(), error=None,
                     note=f"node_rank 0's job (on {host}) holds the adapter and the metrics")
        return 0
    with open(log_path, "rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    reason = failure_reason(text, rc, record.get("rank_error"), int(params.get("nnodes") or 1))
    log(reason)
    store.update(job_id, state=JobState.FAILED, end_time=now_iso(), error={
        "message": f"{reason} Resume it with jt.resume({job_id!r}) to continue from the last checkpoint."})
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0])
    try:
        return run(job_dir, "--resume" in argv)
    finally:
        from ..jobs.queue import kick
        from ..jobs.store import JobStore

        kick(JobStore(job_dir.parent.parent))  # this job's slots are free


if __name__ == "__main__":
    sys.exit(main())
