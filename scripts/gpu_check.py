"""make gpu-check: the CUDA checks, prepared to run at once on a GPU machine with no network.

That machine is expected to have python3 with a CUDA torch, transformers (5.17 or newer), peft, accelerate,
safetensors, sentencepiece, scikit-learn and pandas, but not bitsandbytes; only the working tree travels
(64 MiB at most), so the offline models do not. What it runs, within --budget seconds (8 minutes):
  1. bench_train, B1 vs ours, on the SmolLM2-135M and Gemma 3 270M architectures built from their configs
     (benchmarks/gpu/*.json) with random weights, short and long inputs: tokens/s, peak allocated memory, MFU
     against a bf16 matmul ceiling measured in the same run. Speed only: correctness is the CPU tests' job.
  2. a QLoRA (4-bit) job and a LoRA job of 30 steps each through jt.tune, then one merged export with its
     parity report.
Results: benchmarks/results/gpu-*.json (gpu-summary.json says what ran, how long, and what failed).

    make gpu-wheels        # here, with network: bitsandbytes' manylinux wheel and SmolLM2's tokenizer
                           # into .gpu-wheels/ (ignored by git, carried with the working tree)
    make gpu-check         # there: installs the wheels with --no-deps into a folder of their own
    python3 scripts/gpu_check.py [--budget 480] [--wheels .gpu-wheels] [--steps 30] [--allow-cpu --quick]

The project itself runs from the working tree (PYTHONPATH): installing it would need its build backend
(hatchling, jupyterlab), which that machine lacks. trl is not carried: only DPO imports it. Both
architectures use SmolLM2's tokenizer (Gemma's is 33 MB); the token counts are SmolLM2's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".gpu-wheels"
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = {"smollm2": ROOT / "benchmarks" / "gpu" / "smollm2-135m.json",
           "gemma3": ROOT / "benchmarks" / "gpu" / "gemma3-270m.json"}
BENCH_MODEL = {"smollm2": "default", "gemma3": "gemma3"}  # bench_train's --model names
# Wheels the check installs (--no-deps, from the folder only) and the platform they are fetched for.
PINNED = ("bitsandbytes==0.50.2",)
PLATFORM = ("--platform", "manylinux_2_24_x86_64", "--python-version", "3.12", "--only-binary=:all:")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
NEEDS_CUDA = ("make gpu-check needs a CUDA GPU and this machine has none ({why}). Run it where "
              "torch.cuda.is_available() is True (README, 'Checks on a GPU'); every CPU-side check is in "
              "make test.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for everything (default 480)")
    ap.add_argument("--wheels", type=Path, default=WHEELS, help="the wheel folder (default .gpu-wheels)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where gpu-*.json go")
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps of each job (default 30)")
    ap.add_argument("--bench-steps", type=int, default=20, help="bench_train steps, short inputs (long: half)")
    ap.add_argument("--only", default="bench,jobs", help="comma-separated: bench, jobs")
    ap.add_argument("--fetch-wheels", action="store_true", help="fill the wheel folder (needs network)")
    ap.add_argument("--allow-cpu", action="store_true", help="run without CUDA (testing the script itself)")
    ap.add_argument("--quick", action="store_true", help="2-layer models, few steps (testing the script)")
    ap.add_argument("--jobs-worker", nargs=2, metavar=("MODEL_DIR", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.only = {x.strip() for x in a.only.split(",") if x.strip()}
    unknown = a.only - {"bench", "jobs"}
    if unknown:
        ap.error(f"--only: {', '.join(sorted(unknown))} is not one of bench, jobs")
    return a


def cuda_status() -> tuple[bool, str]:
    """(CUDA usable, what this machine has), without failing where torch is missing."""
    try:
        import torch
    except ImportError as e:
        return False, f"python {sys.version.split()[0]} at {sys.executable} cannot import torch: {e}"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__}, torch.cuda.is_available() is False"
    return True, f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"


def wheel_files(folder: Path) -> list[Path]:
    """The pinned wheels in `folder`, each found; SystemExit naming what is missing and how to get it."""
    found, missing = [], []
    for pin in PINNED:
        name, version = pin.split("==")
        hits = sorted(Path(folder).glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        (found.append(hits[-1]) if hits else missing.append(pin))
    if not (Path(folder) / "tokenizer" / "tokenizer.json").is_file():
        missing.append("tokenizer/tokenizer.json (SmolLM2's)")
    if missing:
        raise SystemExit(f"{folder}: missing {', '.join(missing)}. Run `make gpu-wheels` on a machine with "
                         "network access first; the folder travels with the working tree.")
    return found


def fetch_wheels(folder: Path) -> None:
    """Here, with network: the pinned wheels for the GPU machine's platform, and SmolLM2's tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *PLATFORM, "-d", str(folder),
                    *PINNED], check=True)
    sys.path.insert(0, str(ROOT))
    from jupyter_tune.models.resolve import resolve_model

    src = Path(resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct"))
    (folder / "tokenizer").mkdir(exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, folder / "tokenizer" / name)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"{folder}: {', '.join(p.name for p in wheel_files(folder))} and the tokenizer, {size / 2**20:.1f} MiB")


def install(wheels: list[Path], site: Path) -> None:
    """The wheels into a folder of their own (--no-deps, --no-index): the system's Python stays untouched."""
    site.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-index", "--target", str(site), *map(str, wheels)], check=True)


def build_models(tokenizer: Path, dest: Path, quick: bool) -> dict[str, Path]:
    """Each architecture from its config with random weights (bf16), saved with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = {}
    for name, cfg_file in CONFIGS.items():
        d = dest / name
        d.mkdir(parents=True, exist_ok=True)
        cfg = json.loads(cfg_file.read_text())
        if quick:
            cfg.update(num_hidden_layers=2, **({"layer_types": cfg["layer_types"][:2]} if "layer_types" in cfg else {}))
        (d / "config.json").write_text(json.dumps(cfg))
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(d), dtype=torch.bfloat16)
        model.save_pretrained(d)
        for f in tokenizer.iterdir():
            shutil.copy2(f, d / f.name)
        out[name] = d
    return out


def plan(a: argparse.Namespace, models: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(name, command) for each step, in the order they run."""
    steps = []
    if "bench" in a.only:
        for arch, d in models.items():
            for length in ("short", "long"):
                n = max(2, a.bench_steps if length == "short" else a.bench_steps // 2)
                steps.append((f"train-{arch}-{length}", [
                    sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--model", BENCH_MODEL[arch],
                    "--model-dir", str(d), "--length", length, "--configs", "b1,ours", "--repeats", "1",
                    "--steps", str(n), "--result-file", str(a.results / f"gpu-train-{arch}-{length}.json")]))
    if "jobs" in a.only:
        steps.append(("jobs", [sys.executable, str(Path(__file__).resolve()), "--steps", str(a.steps),
                               "--jobs-worker", str(models["smollm2"]), str(a.results / "gpu-jobs.json")]))
    return steps


def run_steps(steps: list[tuple[str, list[str]]], budget: float, env: dict, min_step_s: float = 20.0) -> list[dict]:
    """Each step in turn, within what is left of the budget; a step that cannot start in time is skipped."""
    t_end = time.monotonic() + budget
    done = []
    for name, cmd in steps:
        left = t_end - time.monotonic()
        if left < min_step_s:
            done.append({"step": name, "status": "skipped", "why": f"{left:.0f} s left of the budget"})
            print(f"[gpu-check] {name}: skipped ({left:.0f} s left)", flush=True)
            continue
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=left)
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
            tail = (proc.stdout + proc.stderr)[-3000:]
        except subprocess.TimeoutExpired as e:
            status, tail = "timed out", ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
                                         else (e.stdout or ""))[-3000:]
        seconds = time.monotonic() - t0
        done.append({"step": name, "status": status, "seconds": round(seconds, 1), "output_tail": tail})
        print(f"[gpu-check] {name}: {status} in {seconds:.0f} s", flush=True)
        if status != "ok":
            print(tail, flush=True)
    return done


def run_jobs(model_dir: str, out: Path, steps: int) -> None:
    """A QLoRA (4-bit) and a LoRA job on the same data and steps, then the QLoRA job merged and exported."""
    import tempfile

    import torch

    os.environ.setdefault("JUPYTER_TUNE_HOME", tempfile.mkdtemp(prefix="jt-gpu-check-"))
    os.environ["JUPYTER_TUNE_SLOTS"] = "1"  # one at a time: their peak memory is read alone
    import jupyter_tune as jt

    data = ROOT / "notebooks" / "data"
    result: dict = {"model_dir": model_dir, "steps": steps, "device": torch.cuda.get_device_name(0)
                    if torch.cuda.is_available() else "cpu", "jobs": {}}
    jobs = {}
    for method in ("qlora", "lora"):
        t0 = time.perf_counter()
        job = jt.tune(base_model=model_dir, train_dataset=str(data / "small-train.jsonl"),
                      validation_dataset=str(data / "small-eval.jsonl"), method=method, max_steps=steps,
                      batch_size=8, eval_steps=steps, save_steps=steps, max_eval_examples=16, seed=0,
                      tuned_model_display_name=f"gpu-check-{method}", data_checks="off")
        state = job.wait(timeout=600)
        m = job.metrics
        train = m.dropna(subset=["train_total_loss"]) if "train_total_loss" in m else m.iloc[0:0]
        rec = job.record
        result["jobs"][method] = {
            "state": state.value, "error": job.error, "seconds": round(time.perf_counter() - t0, 1),
            "first_loss": float(train["train_total_loss"].iloc[0]) if len(train) else None,
            "last_loss": float(train["train_total_loss"].iloc[-1]) if len(train) else None,
            "tokens_per_second_median": float(train["tokens_per_second"].iloc[1:].median()) if len(train) > 1 else None,
            "eval_total_loss": float(m["eval_total_loss"].dropna().iloc[-1]) if "eval_total_loss" in m and
            m["eval_total_loss"].notna().any() else None,
            "tuning": {k: rec.get("tuning", {}).get(k) for k in ("method", "quantization", "device", "dtype",
                                                                  "fast_path", "peak_memory_bytes")},
            "memory_estimate": rec.get("memory_estimate"),
        }
        jobs[method] = job
        print(f"{method}: {state.value}, loss {result['jobs'][method]['first_loss']} -> "
              f"{result['jobs'][method]['last_loss']}", flush=True)
    if jobs["qlora"].state is jt.JobState.SUCCEEDED:
        t0 = time.perf_counter()
        dest = Path(tempfile.mkdtemp(prefix="jt-gpu-export-")) / "qlora-merged"  # outside the job store
        try:
            report = jobs["qlora"].export(dest, format="merged", progress=False)
            result["export"] = {"format": "merged", "job": "qlora", **report.summary(), "error": report.error}
        except Exception as e:  # noqa: BLE001 - recorded; the jobs' results are kept
            result["export"] = {"format": "merged", "job": "qlora", "error": f"{type(e).__name__}: {e}"}
        result["export"]["seconds"] = round(time.perf_counter() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    bad = [k for k, v in result["jobs"].items() if v["state"] != "JOB_STATE_SUCCEEDED"]
    bad += ["export"] if (result.get("export") or {}).get("error") else []
    if bad:
        raise SystemExit(f"not succeeded: {', '.join(bad)}")


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.jobs_worker:
        run_jobs(a.jobs_worker[0], Path(a.jobs_worker[1]), a.steps)
        return 0
    if a.fetch_wheels:
        fetch_wheels(a.wheels)
        return 0
    cuda, why = cuda_status()
    if not cuda and not a.allow_cpu:
        print(NEEDS_CUDA.format(why=why), file=sys.stderr)
        return 2
    t0 = time.monotonic()
    wheels = wheel_files(a.wheels)
    import tempfile

    work = a.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    site = work / "site"
    install(wheels, site)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "JUPYTER_TUNE_HOME": str(work / "tune-home"),
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if a.quick:
        a.steps, a.bench_steps = min(a.steps, 3), min(a.bench_steps, 2)
    models = build_models(a.wheels / "tokenizer", work / "models", a.quick)
    print(f"[gpu-check] {why}; models built in {time.monotonic() - t0:.0f} s", flush=True)
    a.results.mkdir(parents=True, exist_ok=True)
    done = run_steps(plan(a, models), a.budget - (time.monotonic() - t0), env)
    summary = {"device": why, "versions": versions(), "budget_s": a.budget,
               "seconds": round(time.monotonic() - t0, 1), "quick": a.quick, "steps": done}
    (a.results / "gpu-summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[gpu-check] {sum(d['status'] == 'ok' for d in done)}/{len(done)} steps ok in "
          f"{summary['seconds']:.0f} s; results in {a.results}/gpu-*.json", flush=True)
    return 0 if all(d["status"] == "ok" for d in done) else 1


if __name__ == "__main__":
    sys.exit(main())
