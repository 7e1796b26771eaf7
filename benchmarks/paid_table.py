"""Did tuning pay? One table from bench_quality.py's results: for each task and model, the majority class,
TF-IDF + linear SVM, the base model, the tuned generative model (label scoring) and the tuned label head
(--head), with macro F1, the tuning job's time and tokens/s, and the machine each figure was measured on.

    python benchmarks/paid_table.py            # prints a Markdown table (README, "Did tuning pay?")
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rows() -> list[dict]:
    out = []
    for path in sorted(RESULTS.glob("quality*.json")):
        r = json.loads(path.read_text())
        if r.get("name") != "quality":
            continue
        m = r.get("machine") or {}
        out.append({"file": path.name, "task": r.get("dataset"), "model": r.get("model", "SmolLM2-135M"),
                    "method": r.get("task", "generation"), "majority": r.get("majority_macro_f1"),
                    "tfidf": r.get("baseline_macro_f1"), "base": r.get("base_macro_f1"),
                    "tuned": r.get("tuned_macro_f1"), "job_s": (r.get("times") or {}).get("tuning_job_s"),
                    "loop_s": (r.get("times") or {}).get("loop_s"),
                    "tps": (r.get("job") or {}).get("median_tokens_per_second"),
                    "cpu": m.get("cpu"), "load": m.get("load_average")})
    return out


def table(items: list[dict]) -> str:
    f = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
    lines = ["| task | model | tuned as | majority | TF-IDF + SVM | base | tuned | tuned − TF-IDF | job min | "
             "loop min | tokens/s | file |", "|" + " --- |" * 12]
    for r in items:
        gain = None if r["tuned"] is None or r["tfidf"] is None else r["tuned"] - r["tfidf"]
        minutes = lambda s: "—" if s is None else f"{s / 60:.1f}"  # noqa: E731
        cells = [r["task"], str(r["model"]).split("/")[-1], r["method"], f(r["majority"]), f(r["tfidf"]),
                 f(r["base"]), f(r["tuned"]), "—" if gain is None else f"{gain:+.3f}", minutes(r["job_s"]),
                 minutes(r["loop_s"]), "—" if r["tps"] is None else f"{r['tps']:.0f}", r["file"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(rows()))
