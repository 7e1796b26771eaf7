"""Whether bf16 pays on this CPU: measured, not read from the CPU flags.

AVX512-BF16 in /proc/cpuinfo does not mean bf16 matrix multiplies are fast: on one 2-vCPU Xeon here the
flag is set, yet a bf16 matmul ran at 105 GFLOP/s against fp32's 158 (benchmarks/results/train.json), so
bf16 training there was slower than fp32. A short probe of both (about 0.1 s, once per process) decides.
Shared by training and inference (``models`` sits below ``training``).
"""

from __future__ import annotations

import functools
import os
import time

# bf16 must beat fp32 by this much to be chosen: it also costs casts and master weights.
_MARGIN = 1.15


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


@functools.cache
def cpu_bf16_speedup() -> float:
    """bf16 over fp32 matmul throughput on this CPU (0.0 without native bf16).

    Measured once per machine and kept in the cache folder: a decision that changed between a job's first
    run and its resume (a busy neighbour skews a timing) would change its optimizer and break the resume.
    """
    flags = cpu_flags()
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        return 0.0
    if os.environ.get("JUPYTER_TUNE_CPU_BF16") in ("0", "1"):  # an override, e.g. for reproducible tests
        return 10.0 if os.environ["JUPYTER_TUNE_CPU_BF16"] == "1" else 0.0
    import json

    from .resolve import cache_dir

    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")),
                 "unknown")
    path = cache_dir() / "cpu-bf16.json"
    try:
        saved = json.loads(path.read_text())
        if saved.get("cpu") == model and isinstance(saved.get("speedup"), float):
            return saved["speedup"]
    except (OSError, ValueError, AttributeError):
        pass
    speedup = _measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"cpu": model, "speedup": speedup}))
        os.replace(tmp, path)
    except OSError:
        pass
    return speedup


def _measure() -> float:
    import torch

    def rate(dtype) -> float:
        a, b = torch.randn(256, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
        for _ in range(2):
            a @ b
        best = float("inf")
        for _ in range(3):  # the best of three: a busy neighbour only ever makes a run slower
            t = time.perf_counter()
            for _ in range(8):
                a @ b
            best = min(best, time.perf_counter() - t)
        return 1.0 / best

    return rate(torch.bfloat16) / rate(torch.float32)


def cpu_has_fast_bf16() -> bool:
    """bf16 matrix multiplies measurably faster than fp32 on this CPU (AVX512-BF16 or AMX that pays)."""
    return cpu_bf16_speedup() >= _MARGIN
