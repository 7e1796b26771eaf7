"""The parity check: the same prompts, greedy, through the tuned model (base + adapter, as ``jt.load_model``
gives it) and through the exported artifact loaded by plain transformers; answers and first-token
log-probabilities compared, and a changed chat template or end-of-turn token named."""

from __future__ import annotations

import copy
import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import theme


@dataclass
class ParityReport:
    """What ``job.export`` returns: where the export went and how closely it answers like the tuned model."""

    format: str
    dest: str
    artifact: str                      # what was loaded back: the folder, or the .gguf file
    prompts_source: str                # "validation rows", "prompts=" or "training rows"
    num_prompts: int = 0
    num_identical: int = 0
    max_first_token_logprob_diff: float | None = None   # nats, on the tuned model's first answer token
    mismatches: list[str] = field(default_factory=list)  # named problems: chat template, end-of-turn token
    examples: list[dict[str, Any]] = field(default_factory=list)
    dtype: str = ""
    seconds: float = 0.0
    error: str | None = None           # the check could not run (the export itself is there)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def identical_share(self) -> float | None:
        return self.num_identical / self.num_prompts if self.num_prompts else None

    @property
    def ok(self) -> bool:
        """Every answer identical and nothing flagged."""
        return self.error is None and not self.mismatches and self.num_prompts > 0 \
            and self.num_identical == self.num_prompts

    @property
    def max_margin_of_differing(self) -> float | None:
        """Among the answers that differ, the largest top-2 log-prob gap of the tuned model at the token where
        the two answers part: small means the export only changed choices the tuned model nearly tied on."""
        gaps = [x["tuned_margin_where_they_part"] for x in self.examples
                if not x["identical"] and x.get("tuned_margin_where_they_part") is not None]
        return max(gaps) if gaps else None

    def summary(self) -> dict[str, Any]:
        """The short form kept in job.json's ``exports``."""
        share = self.identical_share
        return {"num_prompts": self.num_prompts, "num_identical": self.num_identical,
                "identical_share": None if share is None else round(share, 4),
                "max_first_token_logprob_diff": None if self.max_first_token_logprob_diff is None
                else round(self.max_first_token_logprob_diff, 5),
                "max_margin_of_differing": self.max_margin_of_differing,
                "prompts_source": self.prompts_source, "mismatches": list(self.mismatches),
                "notes": list(self.notes), "error": self.error}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _headline(self) -> str:
        if self.error:
            return f"parity check did not run: {self.error}"
        if not self.num_prompts:
            return "parity check skipped"
        lp = self.max_first_token_logprob_diff
        gap = self.max_margin_of_differing
        return (f"{self.num_identical}/{self.num_prompts} identical greedy answers "
                f"({100 * (self.identical_share or 0):.1f} %), largest first-token log-prob difference "
                f"{'—' if lp is None else f'{lp:.2g}'}"
                + ("" if gap is None else f"; where answers differ, the tuned model's top-2 margin at the token where "
                                         f"they part ≤ {gap:.2g} nats"))

    def __repr__(self) -> str:
        lines = [f"<ParityReport {self.format} -> {self.dest}: {self._headline()}>"]
        lines += [f"  mismatch: {m}" for m in self.mismatches]
        lines += [f"  note: {m}" for m in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        color = theme.SUCCESS if self.ok else (theme.ERROR if self.mismatches or self.error else theme.WARN)
        out = [f"<div><b>Export</b> <code>{e(self.format)}</code> &rarr; <code>{e(self.dest)}</code><br>",
               f'<span style="color:{color};font-weight:600">{e(self._headline())}</span>'
               f" <small>(on {self.num_prompts} {e(self.prompts_source)}, {e(self.dtype)}, "
               f"{self.seconds:.0f} s)</small>"]
        if self.mismatches:
            out.append("<ul>" + "".join(f'<li style="{theme.ERROR_STYLE}">{e(m)}</li>' for m in self.mismatches)
                       + "</ul>")
        if self.notes:
            out.append("<ul>" + "".join(f"<li>{e(m)}</li>" for m in self.notes) + "</ul>")
        rows = [x for x in self.examples if not x["identical"]][:5] or self.examples[:3]
        if rows:
            out.append("<table><tr><th>prompt</th><th>tuned model</th><th>export</th></tr>")
            for x in rows:
                out.append("<tr>" + "".join(f'<td style="text-align:left">{e(str(x[k])[:200])}</td>'
                                            for k in ("prompt", "tuned", "exported")) + "</tr>")
            out.append("</table>")
        return "".join(out) + "</div>"


def parity_prompts(job, prompts: Any = None, max_prompts: int = 32):
    """The prompts to compare on: ``prompts`` if given, else the job's validation rows, else its training
    rows; as a Dataset, and where they came from."""
    from ..data.loader import Dataset, load_dataset
    from ..training.worker import read_records

    if prompts is not None:
        if isinstance(prompts, str):
            prompts = [prompts]
        if isinstance(prompts, list) and all(isinstance(p, str) for p in prompts):
            prompts = [{"prompt": p} for p in prompts]
        ds = load_dataset(prompts, job.params.get("prompt_template"), require_answer=False, what="prompts")
        source = "prompts="
    else:
        for name, label in (("validation.jsonl", "validation rows"), ("train.jsonl", "training rows")):
            path = job.dir / name
            if path.is_file():
                ds, source = Dataset.from_records(name, read_records(path)), label
                break
        else:
            raise FileNotFoundError(f"Job {job.id} keeps no copy of its data; pass prompts=[...].")
    ds.examples = ds.examples[:max_prompts]
    return ds, source


def load_exported(fmt: str, dest: Path, artifact: Path, dtype: str, notes: list[str] | None = None,
                  fallback_tokenizer: Any = None):
    """The export as a LoadedModel, read with nothing but its own files (and plain transformers).

    A GGUF whose vocabulary transformers cannot rebuild (seen: Gemma 3 written by llama.cpp's converter
    from tokenizer.json) is read with ``fallback_tokenizer`` when given, and a note says so."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.loading import LoadedModel, load_model

    if fmt == "adapter":
        return load_model(dest, dtype=dtype)
    if fmt == "merged" and (dest / "config.json").is_file():
        from ..models.head import head_of

        if head_of(dest) is not None:  # a classifier: loaded as any saved classifier folder is
            return load_model(dest, dtype=dtype)
    kwargs = {"gguf_file": artifact.name} if fmt == "gguf" else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(dest, **kwargs)
    except Exception as e:  # noqa: BLE001 - the tokenizers library raises a bare Exception here
        if fmt != "gguf" or fallback_tokenizer is None:
            raise
        if notes is not None:
            notes.append(f"transformers cannot rebuild this GGUF's tokenizer ({e}); its weights were checked "
                         "with the tuned model's tokenizer (llama.cpp reads the vocabulary itself)")
        tokenizer = copy.deepcopy(fallback_tokenizer)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(dest, dtype=getattr(torch, dtype), **kwargs)
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(artifact), dtype=dtype)


def _next_token_logprobs(lm, ids: list[int]):
    import torch

    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0, -1].float()
    return torch.log_softmax(logits, -1)


def _margin_where_they_part(tuned, prompt_ids: list[int], a: str, b: str) -> float:
    """The tuned model's top-2 log-prob gap at the first token where answers ``a`` and ``b`` differ (both
    re-tokenized with the tuned tokenizer; the shared tokens before it are appended to the prompt)."""
    ta = tuned.tokenizer(a, add_special_tokens=False)["input_ids"]
    tb = tuned.tokenizer(b, add_special_tokens=False)["input_ids"]
    k = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
    top = _next_token_logprobs(tuned, list(prompt_ids) + ta[:k]).topk(2).values
    return round(float(top[0] - top[1]), 5)


def _token_names(tokenizer, ids) -> list[str]:
    return [str(t) for t in tokenizer.convert_ids_to_tokens(list(ids))]


def compare(tuned, exported, dataset, report: ParityReport, max_output_tokens: int = 48,
            progress: bool = True) -> ParityReport:
    """Fill ``report`` with the answers of both models on ``dataset``'s prompts and what differs."""
    from ..data.tokenize import encode_prompt
    from ..generation.generate import generate_for
    from .turns import end_of_turn_ids

    t0 = time.monotonic()
    opts = dict(temperature=0.0, max_output_tokens=max_output_tokens, progress=progress)
    a, _, _ = generate_for(tuned, dataset, desc="Parity: tuned model", **opts)
    b, _, _ = generate_for(exported, dataset, desc="Parity: export", **opts)
    # Prompts as each side writes them: a lost or changed chat template shows here.
    differ = 0
    first_diff = ""
    max_lp = 0.0
    for ex, ta, tb in zip(dataset.examples, a, b):
        msgs = ex.prompt_messages
        ids_a, ids_b = encode_prompt(tuned.tokenizer, msgs), encode_prompt(exported.tokenizer, msgs)
        if ids_a != ids_b:
            differ += 1
            first_diff = first_diff or (f"{tuned.tokenizer.decode(ids_a)[-120:]!r} vs "
                                        f"{exported.tokenizer.decode(ids_b)[-120:]!r}")
        lp_a, lp_b = _next_token_logprobs(tuned, ids_a), _next_token_logprobs(exported, ids_b)
        tok = int(lp_a.argmax())
        if tok < lp_b.shape[0]:
            max_lp = max(max_lp, abs(float(lp_a[tok]) - float(lp_b[tok])))
        same = ta is not None and ta == tb
        report.num_identical += same
        example = {"prompt": msgs[-1]["content"] if msgs else "", "tuned": ta, "exported": tb, "identical": same}
        if not same and ta is not None and tb is not None:
            # How sure the tuned model was where the answers part: a near-tie flips under small weight changes
            # (q8_0), a confident token that flips points at a real difference.
            example["tuned_margin_where_they_part"] = _margin_where_they_part(tuned, ids_a, ta, tb)
        report.examples.append(example)
    report.num_prompts = len(dataset.examples)
    report.max_first_token_logprob_diff = max_lp if report.num_prompts else None
    if differ:
        report.mismatches.append(f"chat template: the export writes {differ} of {report.num_prompts} prompts "
                                 f"differently from training (end of the first: {first_diff})")
    want = _token_names(tuned.tokenizer, end_of_turn_ids(tuned.tokenizer)[:1])
    have = _token_names(exported.tokenizer, exported.eos_token_ids)
    missing = [t for t in want if t not in have]
    if missing:
        report.mismatches.append(f"end-of-turn token: {missing[0]} closed every trained answer but does not end "
                                 f"generation in the export (its end tokens: {', '.join(have) or 'none'})")
    report.seconds += time.monotonic() - t0
    return report


def compare_heads(tuned, exported, dataset, report: ParityReport, progress: bool = True) -> ParityReport:
    """A classifier's parity: the same labels in the same order, and each row's predicted label and label
    probabilities through both (``max_first_token_logprob_diff`` holds the largest difference of a label's
    log-probability)."""
    import dataclasses
    import math

    from ..evaluation.head import classify

    t0 = time.monotonic()
    # prompts cut where training cut them, on both sides: the weights are compared, not the prompt length
    exported = dataclasses.replace(exported, max_seq_length=exported.max_seq_length or tuned.max_seq_length)
    if list(exported.head_labels or []) != list(tuned.head_labels):
        report.mismatches.append(f"labels: the export's head has {exported.head_labels} where the tuned model's "
                                 f"has {tuned.head_labels}")
        return report
    a, pa, _ = classify(tuned, dataset, progress=progress)
    b, pb, _ = classify(exported, dataset, progress=progress)
    max_lp = 0.0
    for ex, la, lb, sa, sb in zip(dataset.examples, a, b, pa, pb, strict=True):
        max_lp = max([max_lp] + [abs(math.log(max(sa[k], 1e-30)) - math.log(max(sb[k], 1e-30))) for k in sa])
        same = la == lb
        report.num_identical += same
        msgs = ex.prompt_messages
        report.examples.append({"prompt": msgs[-1]["content"] if msgs else "", "tuned": la, "exported": lb,
                                "identical": same})
    report.num_prompts = len(dataset.examples)
    report.max_first_token_logprob_diff = max_lp if report.num_prompts else None
    report.notes.append("classification head: compared each row's predicted label and the largest difference of "
                        "a label's log-probability (in place of the first answer token's)")
    report.seconds += time.monotonic() - t0
    return report


def write_report(report: ParityReport, dest: Path) -> None:
    (dest / "parity.json").write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n",
                                      encoding="utf-8")
