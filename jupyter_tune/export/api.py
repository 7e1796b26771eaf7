"""``jt.export`` / ``job.export``: write the tuned model out as an adapter, a merged folder or a GGUF,
then check that it answers as the tuned model does."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from ..jobs.store import now_iso
from ..params import EXPORT_FORMATS as FORMATS
from ..params.arguments import ExportArgs
from ..params.gate import checked

_GGUF_TYPES = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16", "fp16": "f16",
               "bf16": "bf16", "bfloat16": "bf16"}
_HF_DTYPES = {"float32": "float32", "fp32": "float32", "f32": "float32", "bfloat16": "bfloat16",
              "bf16": "bfloat16", "float16": "float16", "fp16": "float16", "f16": "float16"}


def _job(job_or_id: Any):
    from ..jobs.handle import JobHandle

    return job_or_id if isinstance(job_or_id, JobHandle) else JobHandle(str(job_or_id))


def _check_args(fmt: str, dtype: str | None, quantization: str | None) -> tuple[str | None, str | None]:
    """(dtype for the merged weights, GGUF type); ValueError naming the choices otherwise."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: use 'merged', 'adapter' or 'gguf'.")
    if fmt == "adapter" and (dtype or quantization):
        raise ValueError("An adapter is exported as trained: dtype and quantization apply to 'merged' and 'gguf'.")
    if quantization is not None and (fmt != "gguf" or str(quantization).lower() != "q8_0"):
        raise ValueError(f"quantization={quantization!r}: only format='gguf' is quantised, with 'q8_0'.")
    if dtype is not None:
        table = _GGUF_TYPES if fmt == "gguf" else _HF_DTYPES
        if str(dtype).replace("torch.", "") not in table:
            raise ValueError(f"dtype={dtype!r}: use {', '.join(sorted(set(table.values())))}.")
        dtype = table[str(dtype).replace("torch.", "")]
    if fmt == "gguf":
        return None, "q8_0" if quantization else (dtype or "f16")
    return dtype, None


@checked(ExportArgs)
def export(job_or_id: Any, dest: str | os.PathLike, format: str = "merged", dtype: str | None = None,
           quantization: str | None = None, overwrite: bool = False, prompts: Any = None,
           parity: bool = True, max_prompts: int = 32, max_output_tokens: int = 48, progress: bool = True):
    """Export a tuning job's model to the new folder ``dest``; returns a ``ParityReport``.

    format: "merged" (adapter folded into the base: a plain transformers folder), "adapter" (the PEFT
      adapter, its tokenizer, a model card and dataset_stats.json) or "gguf" (llama.cpp / Ollama: a .gguf
      file and a Modelfile).
    dtype: merged weights' dtype (default: the base checkpoint's); for gguf "f16" (default), "bf16", "f32".
    quantization: "q8_0" for a quantised GGUF.
    overwrite: replace ``dest`` if an earlier export made it (its ``.jupyter_tune_export`` marker); any
      other existing path is refused (FileExistsError without overwrite, UnsafeDestinationError with it).
      ``dest`` is resolved (``..``, ``~``, symlinks) first and never lies in or above the job store or a job.
    prompts: what the parity check asks both models (default: the job's validation rows, at most
      ``max_prompts``); parity=False skips it.
    The export is written beside ``dest`` and renamed into place, so a failure leaves nothing behind.
    It is recorded in job.json under ``exports``.
    """
    from .parity import ParityReport

    job = _job(job_or_id)
    merged_dtype, gguf_type = _check_args(format, dtype, quantization)
    from ..models.head import is_classification

    if format == "gguf" and is_classification(job.record):  # before anything is written
        raise ValueError(f"format='gguf': job {job.id} is a classification-head job (task='classification'). GGUF "
                         "(llama.cpp, Ollama) holds language models that generate text; a sequence-classification "
                         "head has no place in it and nothing there could run it. Export format='merged' (a "
                         "folder AutoModelForSequenceClassification loads) or format='adapter'.")
    from ..jobs.guard import check_destination, missing_parents, remove_empty, write_error, write_marker
    from ..models.loading import job_adapter

    # Resolved (.., ~, symlinks) and checked before anything is touched: never in or above the job store
    # or a job, and overwrite replaces only an earlier export's folder.
    dest = check_destination(dest, kind="folder", overwrite=overwrite, store_root=job.store.root)
    job_adapter(job)  # JobNotReadyError (with the state and what to do) before any work
    created = missing_parents(dest)
    stage = dest.with_name(f".{dest.name}.exporting-{secrets.token_hex(3)}")
    t0 = time.monotonic()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
        written = _write(job, format, stage, dest, merged_dtype, gguf_type, progress)
        artifact_name = written.get("artifact")
        write_marker(stage, {"format": format, "job_id": job.id, "job_name": job.name, "time": now_iso()})
        if dest.exists():
            old = dest.with_name(f".{dest.name}.replaced-{secrets.token_hex(3)}")
            os.rename(dest, old)
            try:
                os.rename(stage, dest)
            except BaseException:
                os.rename(old, dest)  # the earlier export stays where it was
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(stage, dest)
    except BaseException as e:
        shutil.rmtree(stage, ignore_errors=True)
        remove_empty(created)
        if isinstance(e, OSError):
            raise write_error(e, f"{format} export", dest) from e
        raise
    artifact = dest / artifact_name if artifact_name else dest
    report = ParityReport(format=format, dest=str(dest), artifact=str(artifact), prompts_source="",
                          dtype=written.get("parity_dtype", "float32"),
                          files=sorted(p.name for p in dest.iterdir()))
    report.mismatches += written.get("problems", [])
    if parity:
        _run_parity(job, format, dest, artifact, report, prompts, max_prompts, max_output_tokens, progress)
    report.seconds = time.monotonic() - t0
    from .parity import write_report

    write_report(report, dest)
    _record(job, report, format, gguf_type or (report.dtype if format == "merged" else None))
    return report


def _write(job, fmt: str, out: Path, dest: Path, dtype: str | None, gguf_type: str | None,
           progress: bool) -> dict[str, Any]:
    from .card import model_card

    record = job.record
    metrics = job.store.read_metrics(job.id)
    stats = job.dataset_stats
    if fmt == "adapter":
        from .adapter import write_adapter

        write_adapter(job, out)
        (out / "README.md").write_text(model_card(record, metrics, stats, fmt, str(dest)),
                                       encoding="utf-8")
        return {"parity_dtype": "float32"}
    from .merged import write_merged

    if fmt == "merged":
        info = write_merged(job, out, dtype, progress)
        if stats is not None:
            import json

            (out / "dataset_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        (out / "README.md").write_text(model_card(record, metrics, stats, fmt, str(dest)), encoding="utf-8")
        return {"parity_dtype": info["dtype"]}
    # gguf: merge (in fp32 unless asked otherwise) into a scratch folder inside the staging folder.
    from .gguf import convert
    from .modelfile import modelfile
    from .turns import read_turn_format

    scratch = out / ".merged"
    scratch.mkdir()
    info = write_merged(job, scratch, "bfloat16" if gguf_type == "bf16" else "float32", progress)
    tok = info["tokenizer"]
    end_ids = info["eos_token_id"]
    _eos_is_end_of_turn(scratch, tok, end_ids[0])
    from ..jobs.store import slugify

    name = f"{slugify(job.name, 48)}-{gguf_type}.gguf"
    convert(scratch, out / name, gguf_type, model_name=job.name, progress=progress)
    shutil.rmtree(scratch)
    fmt_turns = read_turn_format(tok)
    end_tokens = [str(t) for t in tok.convert_ids_to_tokens(end_ids)]
    (out / "Modelfile").write_text(modelfile(name, fmt_turns, end_tokens, min(info["context_length"], 4096)),
                                   encoding="utf-8")
    (out / "README.md").write_text(model_card(record, metrics, stats, fmt, str(dest), gguf=name),
                                   encoding="utf-8")
    problems = [] if fmt_turns.exact else ["Modelfile TEMPLATE: " + "; ".join(fmt_turns.problems)]
    return {"artifact": name, "parity_dtype": "float32", "problems": problems}


def _eos_is_end_of_turn(folder: Path, tokenizer, end_id: int) -> None:
    """GGUF keeps one EOS id: make it the token that closed every trained answer (Gemma's <end_of_turn>,
    not its <eos>), so readers that stop only at EOS stop where the tuned model did."""
    import json

    if tokenizer.eos_token_id == end_id:
        return
    token = tokenizer.convert_ids_to_tokens(end_id)
    tokenizer.eos_token = token
    tokenizer.save_pretrained(folder)
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["eos_token_id"] = end_id
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def _run_parity(job, fmt, dest, artifact, report, prompts, max_prompts, max_output_tokens, progress) -> None:
    from ..models.loading import load_model
    from .parity import compare, load_exported, parity_prompts

    try:
        dataset, report.prompts_source = parity_prompts(job, prompts, max_prompts)
        tuned = load_model(job, dtype=report.dtype)
        exported = load_exported(fmt, dest, artifact, report.dtype, report.notes, tuned.tokenizer)
        if tuned.is_classifier:  # a label head: the same labels, ranked alike
            from .parity import compare_heads

            compare_heads(tuned, exported, dataset, report, progress=progress)
            return
        compare(tuned, exported, dataset, report, max_output_tokens=max_output_tokens, progress=progress)
    except Exception as e:  # noqa: BLE001 - the export is written; say why the check did not run
        report.error = f"{type(e).__name__}: {e}"


def _record(job, report, fmt: str, dtype: str | None) -> None:
    entry = {"dest": report.dest, "format": fmt, "dtype": dtype, "time": now_iso(),
             "artifact": report.artifact, "parity": report.summary()}
    exports = [e for e in (job.record.get("exports") or []) if e.get("dest") != report.dest]
    job.store.update(job.id, exports=exports + [entry])
