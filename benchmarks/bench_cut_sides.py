"""Which part of a long transcript names its specialty: the beginning, the end, or both?

Training cuts a prompt longer than max_seq_length in the middle (data/tokenize._cut_middle: its beginning and
its last 32 tokens). Whether the beginning is the right side to keep is a property of the data, so this
measures it where it costs seconds, not a 25-minute tuning run per side: the TF-IDF + linear SVM baseline
(jt.baseline) trained and evaluated on the specialty task with every transcript cut to N tokens of the
default model's tokenizer, keeping its head, its tail, the training cut, or the whole text.

    python benchmarks/bench_cut_sides.py [--tokens 256,512,1024]

Writes benchmarks/results/cut_sides.json.
"""

from __future__ import annotations

import argparse
import json
import time

from bench_quality import DATA, MODELS, RESULTS
from machine import machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", default="256,512,1024")
    a = ap.parse_args()
    import pandas as pd
    from transformers import AutoTokenizer

    import jupyter_tune as jt
    from jupyter_tune.data.tokenize import _cut_middle
    from jupyter_tune.models.resolve import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(MODELS["default"]))
    train = pd.read_json(DATA / "specialty-train.jsonl", lines=True)
    evald = pd.read_json(DATA / "specialty-eval.jsonl", lines=True)
    ids = {name: [tok(t, add_special_tokens=False)["input_ids"] for t in df["input_text"]]
           for name, df in (("train", train), ("eval", evald))}
    sides = {"head": lambda x, n: x[:n], "tail": lambda x, n: x[-n:], "head+last 32 (training's cut)": _cut_middle}
    rows = []
    t0 = time.perf_counter()
    whole = jt.baseline(train, evald).macro_f1
    rows.append({"tokens": None, "side": "whole", "macro_f1": whole})
    for n in [int(x) for x in a.tokens.split(",")]:
        cut_rows = sum(len(x) > n for x in ids["eval"])
        for side, cut in sides.items():
            def text(name, df, cut=cut, n=n):
                return df.assign(input_text=[tok.decode(cut(x, n)) if len(x) > n else t
                                             for x, t in zip(ids[name], df["input_text"], strict=True)])
            f1 = jt.baseline(text("train", train), text("eval", evald)).macro_f1
            rows.append({"tokens": n, "side": side, "macro_f1": f1, "eval_rows_cut": cut_rows})
    lengths = pd.Series([len(x) for x in ids["eval"]])
    result = {"name": "cut_sides", "tokenizer": MODELS["default"], "eval_rows": len(evald),
              "eval_tokens": {"mean": float(lengths.mean()), "median": float(lengths.median()),
                              "max": int(lengths.max())},
              "rows": rows, "seconds": time.perf_counter() - t0, "machine": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cut_sides.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"TF-IDF + linear SVM on the specialty task ({len(evald)} eval rows, {lengths.mean():.0f} tokens on "
          f"average), each transcript cut to N tokens:")
    print("| tokens | kept | eval rows cut | macro F1 |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tokens'] or 'all'} | {r['side']} | {r.get('eval_rows_cut', 0)} | {r['macro_f1']:.3f} |")


if __name__ == "__main__":
    main()
