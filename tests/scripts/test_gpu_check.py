"""make gpu-check's CPU-side parts: argument parsing, the wheel folder, the step plan and budget, and the
clear refusal where CUDA is absent (the GPU part itself needs a CUDA machine: README, 'Checks on a GPU')."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_arguments():
    a = gpu_check.parse_args([])
    assert a.budget == 480 and a.steps == 30 and a.only == {"bench", "jobs"} and a.wheels == ROOT / ".gpu-wheels"
    a = gpu_check.parse_args(["--budget", "60", "--only", "jobs", "--steps", "5", "--allow-cpu", "--quick"])
    assert (a.budget, a.only, a.steps, a.allow_cpu, a.quick) == (60, {"jobs"}, 5, True, True)
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--only", "bench,everything"])


def test_the_wheel_folder_names_what_is_missing(tmp_path):
    with pytest.raises(SystemExit, match=r"missing bitsandbytes==0\.50\.2, tokenizer/tokenizer\.json.*make gpu-wheels"):
        gpu_check.wheel_files(tmp_path)
    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    wheel.write_bytes(b"")
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer.json").write_text("{}")
    assert gpu_check.wheel_files(tmp_path) == [wheel]
    assert ".gpu-wheels/" in (ROOT / ".gitignore").read_text().splitlines()  # carried, never committed


def test_plan_covers_both_architectures_both_lengths_and_the_jobs(tmp_path):
    a = gpu_check.parse_args(["--results", str(tmp_path)])
    steps = gpu_check.plan(a, {"smollm2": tmp_path / "s", "gemma3": tmp_path / "g"})
    names = [n for n, _ in steps]
    assert names == ["train-smollm2-short", "train-smollm2-long", "train-gemma3-short", "train-gemma3-long", "jobs"]
    bench = dict(steps)["train-gemma3-long"]
    assert bench[bench.index("--configs") + 1] == "b1,ours" and bench[bench.index("--model-dir") + 1] == str(tmp_path / "g")
    assert bench[bench.index("--result-file") + 1] == str(tmp_path / "gpu-train-gemma3-long.json")
    assert json.loads(gpu_check.CONFIGS["gemma3"].read_text())["model_type"].startswith("gemma3")


def test_steps_run_within_the_budget_and_later_ones_are_skipped():
    quick = [sys.executable, "-c", "pass"]
    slow = [sys.executable, "-c", "import time; time.sleep(30)"]
    done = gpu_check.run_steps([("a", quick), ("b", slow), ("c", quick)], budget=4.0, env=None, min_step_s=0.5)
    assert [d["status"] for d in done] == ["ok", "timed out", "skipped"]


def test_without_cuda_it_says_it_needs_one(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main([]) == 2
    assert "make gpu-check needs a CUDA GPU and this machine has none" in capsys.readouterr().err
    # through make, with the venv's python as the GPU machine's python3
    proc = subprocess.run(["make", "-s", "gpu-check", f"GPU_PY={sys.executable}"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr
