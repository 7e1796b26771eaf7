"""What every benchmark result records about the machine: the CPU model and the measured matmul ceilings
(the machines are not the same CPU from one session to the next, so figures are only comparable with these)."""

from __future__ import annotations

import os
import platform
import subprocess
import time


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def matmul_ceiling() -> dict:
    """bf16 and fp32 matmul FLOP/s on this machine (CUDA when present), for utilisation figures."""
    import torch

    out = {}
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    n, reps = (8192, 50) if dev == "cuda" else (1024, 10)
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = torch.randn(n, n, dtype=dtype, device=dev), torch.randn(n, n, dtype=dtype, device=dev)
        for _ in range(3):
            a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if dev == "cuda":
            torch.cuda.synchronize()
        out[name] = 2 * n**3 * reps / (time.perf_counter() - t0)
    return out


def machine() -> dict:
    """The record a result carries: CPU, cores, measured ceilings, load average at the end."""
    import torch

    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "matmul_ceiling_flops": matmul_ceiling(), "load_average": os.getloadavg()}
