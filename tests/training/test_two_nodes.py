"""Two nodes on loopback (issue 35.4): a job with nnodes=2 really joined, each node launched as its own job
in its own job store, as on two machines, one process per node (torchrun's static rendezvous on
127.0.0.1). It trains as the one-node two-process job does (the same per-step loss), both stores read
SUCCEEDED, and kill -9 of node 1's rank fails both jobs with the reason while resuming both finishes."""

from __future__ import annotations

import re
import shutil

import pytest

import jupyter_tune as jt
from jupyter_tune.jobs.states import JobState
from jupyter_tune.training import distributed
from tests.support.nodes import free_port, job_tree, kill_jobs, on_node
from tests.support.waiting import wait_for

ROWS = [{"input_text": f"Example number {i} about {topic}.", "output_text": topic}
        for i in range(12) for topic in ("Urology", "Neurology")]
FAST = dict(num_threads=1, max_seq_length=256, seed=3, batch_size=2)
LOSS_TOLERANCE = 0.002  # relative, as tests/training/test_distributed.py (bf16 on CPU)


@pytest.fixture
def nodes(tmp_path, monkeypatch):
    """Two job stores, one per node; every process of their jobs is killed at the end, passed or not."""
    homes = [tmp_path / "node0", tmp_path / "node1"]
    monkeypatch.setenv("JUPYTER_TUNE_HOME", str(tmp_path / "unused"))  # neither node's: each call picks its own
    yield homes
    kill_jobs(*homes, tmp_path / "one-node")


def launch(homes, node_rank: int, **params):
    with on_node(homes[node_rank]):
        return jt.tune(node_rank=node_rank, **params)


def train_rows(job) -> list[dict]:
    return [r for r in job.store.read_metrics(job.id) if "train_total_loss" in r]


def gone(procs) -> bool:
    import psutil

    return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in procs)


@pytest.mark.slow  # about 30 s on 2 cores: three jobs, four ranks
def test_two_nodes_train_as_one_node_of_two_processes(nodes, tiny_model_dir):
    base = dict(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=6, **FAST)
    two_nodes = dict(base, num_processes=1, nnodes=2, rdzv_endpoint=f"127.0.0.1:{free_port()}")
    # Node 1 first: with c10d the node started first took global rank 0 whatever its node_rank (fixed).
    node1 = launch(nodes, 1, **two_nodes)
    node0 = launch(nodes, 0, **two_nodes)
    with on_node(nodes[0].parent / "one-node"):  # the reference: one machine, two processes
        one_node = jt.tune(num_processes=2, **base)
    for job in (node0, node1, one_node):
        assert job.wait(timeout=600) is JobState.SUCCEEDED, (job.error, job.log(60))

    a, b = train_rows(one_node), train_rows(node0)
    print("loss 1 node x 2 processes:", [r["train_total_loss"] for r in a])
    print("loss 2 nodes x 1 process: ", [r["train_total_loss"] for r in b])
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    assert [r["train_num_predictions"] for r in b] == [r["train_num_predictions"] for r in a]  # global batch
    for x, y in zip(a, b):
        x, y = x["train_total_loss"], y["train_total_loss"]
        assert abs(x - y) <= LOSS_TOLERANCE * max(1.0, abs(x)), (a, b)
    # Node 0 (global rank 0) holds the results; node 1's job says where they are.
    assert node0.record["tuning"]["num_processes"] == 2
    assert (node0.adapter_path / "adapter_model.safetensors").exists()
    assert node1.record["note"] == "node_rank 0's job (on 127.0.0.1) holds the adapter and the metrics"
    assert not train_rows(node1) and not node1.adapter_path.exists()
    assert "--rdzv-backend=static" in node1.log(400) and "--node-rank=1" in node1.log(400)


@pytest.mark.slow  # about 40 s on 2 cores: a kill and two resumes
def test_kill_9_of_node_1_fails_both_jobs_and_resuming_both_finishes(nodes, tiny_model_dir):
    params = dict(base_model=str(tiny_model_dir), train_dataset=ROWS, max_steps=20, save_steps=3, num_processes=1,
                  nnodes=2, rdzv_endpoint=f"127.0.0.1:{free_port()}", **FAST)
    node0, node1 = launch(nodes, 0, **params), launch(nodes, 1, **params)
    wait_for(lambda: node0.store.latest_checkpoint(node0.id) is not None, timeout=600, what="a checkpoint")
    procs = job_tree(node0.record["pid"]) + job_tree(node1.record["pid"])
    rank1 = [p for p in job_tree(node1.record["pid"]) if p.environ().get("RANK") == "1"]
    assert len(rank1) == 1, [p.cmdline() for p in procs]
    rank1[0].kill()

    assert node1.wait(timeout=300) is JobState.FAILED
    assert "Rank 1" in node1.error and "SIGKILL" in node1.error, node1.error
    assert node0.wait(timeout=300) is JobState.FAILED  # its rank 0 lost its peer
    assert "another machine died or stopped" in node0.error, node0.error
    wait_for(lambda: gone(procs), timeout=120, what="every process of both nodes to end")
    # A save that finished on node 0 only (a kill between the two machines' saves): a step node 1 lacks.
    latest = node0.store.latest_checkpoint(node0.id)
    ahead = latest.with_name(f"checkpoint-{int(latest.name.rsplit('-', 1)[1]) + 1}")
    shutil.copytree(latest, ahead)
    assert node0.store.latest_checkpoint(node0.id) == ahead

    for node_rank, job in enumerate((node0, node1)):  # as the user would: resume the job on each machine
        with on_node(nodes[node_rank]):
            jt.resume(job.id)
    for job in (node0, node1):
        assert job.wait(timeout=600) is JobState.SUCCEEDED, (job.error, job.log(60))
    steps = [r["step"] for r in train_rows(node0)]
    assert steps[-1] == 20 and len(steps) == len(set(steps))
    # Both nodes resumed from the same step, each from its own store.
    resumed = [re.findall(r"Resuming from .*checkpoint-(\d+)", job.log(400)) for job in (node0, node1)]
    assert resumed[0] and resumed[0] == resumed[1], resumed
    assert f"Removed {ahead.name}: not every machine holds it" in node0.log(400)


def test_failure_reason_on_several_machines():
    lost = ("RuntimeError: [../gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:220. This is "
            "typically caused by a remote worker crashing. (rank 0 of 2)")
    log = "Root Cause (first observed failure):\n  rank      : 0 (local_rank: 0)\n  exitcode  : 1 (pid: 9763)\n"
    reason = distributed.failure_reason(log, 1, lost, nnodes=2)
    assert reason.startswith("A rank on another machine died or stopped") and "Connection closed by peer" in reason
    assert distributed.failure_reason(log, 1, lost) == lost  # one machine: rank 0's own words
    assert distributed.failure_reason(log, 1, "ValueError: bad (rank 0 of 2)", nnodes=2) == "ValueError: bad (rank 0 of 2)"
