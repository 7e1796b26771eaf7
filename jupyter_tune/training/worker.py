"""The job process: ``python -m jupyter_tune.training.worker <job_dir>``.

Reads the job's own copy of its data and parameters, trains, and leaves a final state in job.json
whatever happens: SUCCEEDED, CANCELLED (with the latest adapter) or FAILED (with the reason).
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from pathlib import Path

from ..data.loader import Dataset
from ..jobs.states import JobState
from ..jobs.store import JobStore, atomic_write_json, now_iso
from ..params import TuningParams, choose_epochs


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_trainer(store: JobStore, job_id: str, params: TuningParams, resume: bool):
    """Everything up to a ready Trainer; returns (trainer, info for job.json)."""
    import torch
    from transformers import AutoTokenizer, TrainingArguments, set_seed

    from ..data.stats import encode_dataset, split_stats
    from ..models.resolve import resolve_model
    from .callbacks import CancelCallback, MetricsCallback
    from .collator import PaddedCollator, PaddingFreeCollator
    from .setup import choose_hardware, load_for_training
    from .trainer import TuningTrainer

    job_dir = store.job_dir(job_id)
    hw = choose_hardware(params)
    torch.set_num_threads(hw.num_threads)
    set_seed(params.seed)
    model_path = resolve_model(params.base_model)
    log(f"Base model {params.base_model} from {model_path}")
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    train = Dataset.from_records(params.train_dataset or "train", read_records(job_dir / "train.jsonl"))
    val = None
    if (job_dir / "validation.jsonl").exists():
        val = Dataset.from_records(params.validation_dataset or "validation",
                                   read_records(job_dir / "validation.jsonl"))
    epochs = params.epochs or choose_epochs(len(train))
    train_enc, train_dropped = encode_dataset(tokenizer, train, params.max_seq_length)
    if not train_enc:
        raise ValueError("Every training example was dropped (no answer tokens left); see dataset_stats.json.")
    stats = {"max_seq_length": params.max_seq_length, "epochs": epochs,
             "train": split_stats(tokenizer, train, params.max_seq_length, epochs, params.batch_size,
                                  train_enc, train_dropped),
             "validation": None}
    val_enc = None
    if val is not None:
        val_enc, val_dropped = encode_dataset(tokenizer, val, params.max_seq_length)
        stats["validation"] = split_stats(tokenizer, val, params.max_seq_length, 1, params.batch_size,
                                          val_enc, val_dropped)
        val_enc = val_enc[: params.max_eval_examples or None]
    atomic_write_json(job_dir / "dataset_stats.json", stats)
    if stats["train"]["truncated_example_count"]:
        log(f"{stats['train']['truncated_example_count']} training examples truncated to "
            f"max_seq_length={params.max_seq_length}")

    model, info = load_for_training(str(model_path), params, hw)
    steps_per_epoch = math.ceil(len(train_enc) / (params.batch_size * params.gradient_accumulation_steps))
    total_steps = params.max_steps or steps_per_epoch * epochs
    eval_steps = params.eval_steps or max(1, total_steps // 10)
    save_steps = params.save_steps or max(1, total_steps // 5)
    args = TrainingArguments(
        output_dir=str(job_dir / "checkpoints"),
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        num_train_epochs=epochs,
        max_steps=params.max_steps or -1,
        learning_rate=params.effective_learning_rate,
        lr_scheduler_type=params.lr_scheduler_type,
        warmup_steps=math.ceil(params.warmup_ratio * total_steps),
        weight_decay=params.weight_decay,
        logging_steps=params.logging_steps,
        eval_strategy="steps" if val_enc else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        seed=params.seed,
        data_seed=params.seed,
        # the base weights are already in bf16 (no autocast needed); the adapters train in fp32
        bf16=False,
        fp16=False,
        use_cpu=hw.device == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        label_names=["labels"],
        prediction_loss_only=True,
        report_to=[],
        disable_tqdm=False,
        save_only_model=False,
    )
    collator = PaddingFreeCollator() if params.padding_free else PaddedCollator(
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    as_rows = lambda encs: [{"input_ids": e.input_ids, "labels": e.labels} for e in encs]  # noqa: E731
    trainer = TuningTrainer(model=model, args=args, train_dataset=as_rows(train_enc),
                            eval_dataset=as_rows(val_enc) if val_enc else None, data_collator=collator)
    trainer.add_callback(MetricsCallback(store, job_id, trainer))
    cancel = CancelCallback(store, job_id)
    trainer.add_callback(cancel)
    info.update(base_model=params.base_model, resolved_model_path=str(model_path),
                learning_rate=params.effective_learning_rate, epochs=epochs, total_steps=total_steps,
                batch_size=params.batch_size, gradient_accumulation_steps=params.gradient_accumulation_steps,
                max_seq_length=params.max_seq_length, eval_steps=eval_steps if val_enc else None,
                save_steps=save_steps, padding_free=params.padding_free)
    return trainer, tokenizer, cancel, info


def run(job_dir: Path, resume: bool) -> int:
    store = JobStore(job_dir.parent.parent)
    job_id = job_dir.name
    record = store.read_raw(job_id)
    params = TuningParams.from_dict(record["params"])
    if record.get("state") == JobState.CANCELLING.value:
        store.update(job_id, state=JobState.CANCELLED.value, end_time=now_iso())
        return 0
    store.update(job_id, state=JobState.RUNNING.value, start_time=record.get("start_time") or now_iso())
    try:
        trainer, tokenizer, cancel, info = build_trainer(store, job_id, params, resume)
        store.update(job_id, tuning=info, progress={"step": 0, "total_steps": info["total_steps"], "epoch": 0.0})
        log(f"{info['method']} r={info['adapter_size']} on {', '.join(info['target_modules'])}: "
            f"{info['trainable_params']:,} trainable of {info['total_params']:,} parameters; "
            f"{info['device']} {info['dtype']}, {info['total_steps']} steps")
        checkpoint = store.latest_checkpoint(job_id) if resume else None
        if resume:
            log(f"Resuming from {checkpoint}" if checkpoint else "No checkpoint yet: starting over")
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        adapter = job_dir / "adapter"
        trainer.model.save_pretrained(adapter)
        tokenizer.save_pretrained(adapter)
        final = JobState.CANCELLED if cancel.requested else JobState.SUCCEEDED
        log(f"Adapter saved to {adapter}; {final.value}")
        store.update(job_id, state=final.value, end_time=now_iso(), error=None)
        return 0
    except BaseException as e:  # noqa: BLE001 - the job must always end in a final state
        traceback.print_exc()
        message = f"{type(e).__name__}: {e}"
        store.update(job_id, state=JobState.FAILED.value, end_time=now_iso(), error={"message": message})
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m jupyter_tune.training.worker JOB_DIR [--resume]", file=sys.stderr)
        return 2
    return run(Path(argv[0]), "--resume" in argv)


if __name__ == "__main__":
    sys.exit(main())
