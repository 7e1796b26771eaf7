"""Text generation metrics, named as Vertex / BigQuery ML.EVALUATE names them."""

from __future__ import annotations

from collections.abc import Sequence


def text_generation_metrics(references: Sequence[str], predictions: Sequence[str]):
    """bleu4_score (sacrebleu corpus BLEU, 0..1), rouge-l precision / recall / f1 (means over rows) and
    exact_match (share of answers equal to the reference after stripping white space at the ends)."""
    import pandas as pd
    import sacrebleu
    from rouge_score import rouge_scorer

    refs, preds = list(references), [p or "" for p in predictions]
    bleu = sacrebleu.corpus_bleu(preds, [refs]).score / 100.0 if refs else 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [scorer.score(r, p)["rougeL"] for r, p in zip(refs, preds, strict=True)]
    n = max(1, len(scores))
    row = {
        "bleu4_score": bleu,
        "rouge-l_precision": sum(s.precision for s in scores) / n,
        "rouge-l_recall": sum(s.recall for s in scores) / n,
        "rouge-l_f1_score": sum(s.fmeasure for s in scores) / n,
        "exact_match": sum(exact_match(r, p) for r, p in zip(refs, preds, strict=True)) / n,
    }
    return pd.DataFrame([row], index=pd.Index(["all"], name="rows"))


def exact_match(reference: str, prediction: str | None) -> bool:
    return prediction is not None and prediction.strip() == reference.strip()
