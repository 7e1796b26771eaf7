"""The pre-flight estimate (training/estimate.py) measures a few real steps in a child process: the
kernel's torch threads, random state and memory stay as they were."""

from __future__ import annotations

import random

import pytest

from jupyter_tune.data.errors import DatasetError
from jupyter_tune.params import TuningParams
from jupyter_tune.training import estimate

ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t}
        for i in range(12) for t in ("Urology", "Neurology")]


def test_the_estimate_runs_in_a_child_and_leaves_the_kernel_alone(tiny_model_dir, monkeypatch):
    import numpy as np
    import torch

    in_this_process = []
    monkeypatch.setattr(estimate, "measure", lambda *a: in_this_process.append(a))
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    random.seed(5)
    np.random.seed(6)
    before = (torch.get_num_threads(), torch.get_rng_state().clone(), random.getstate(), np.random.get_state()[1].copy())
    params = TuningParams(base_model=str(tiny_model_dir), batch_size=4, max_steps=7, num_threads=2, seed=99)
    result = estimate.estimate_cost(ROWS, params, steps=3)
    assert not in_this_process  # the probe ran elsewhere
    assert torch.get_num_threads() == before[0]
    assert torch.equal(torch.get_rng_state(), before[1])
    assert random.getstate() == before[2] and (np.random.get_state()[1] == before[3]).all()
    assert result["total_steps"] == 7 and result["measured_steps"] == 2
    assert result["seconds_per_step"] > 0 and result["estimated_seconds"] == pytest.approx(7 * result["seconds_per_step"])
    assert result["peak_memory_bytes"] > 0 and result["device"] == "cpu"


def test_bad_data_is_refused_in_the_kernel_and_a_failing_probe_says_why(tmp_path, monkeypatch):
    with pytest.raises(DatasetError):
        estimate.estimate_cost([{"input_text": "only a prompt"}] * 20, TuningParams(), steps=2)
    params = TuningParams(base_model=str(tmp_path / "no-such-model"), batch_size=4)
    with pytest.raises(estimate.EstimateError, match="no-such-model"):
        estimate.estimate_cost(ROWS, params, steps=2)
