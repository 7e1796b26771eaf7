"""OpenAI's ``text_similarity`` grader: fuzzy_match, bleu, rouge_1, rouge_l (the libraries the evaluation
metrics already use: sacrebleu and rouge_score, imported when grading)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from jupyter_tune.graders.base import (
    check_choice,
    check_name,
    check_template,
    check_threshold,
    options_checked,
    render,
)

KIND = "text_similarity"

METRICS = ("fuzzy_match", "bleu", "rouge_1", "rouge_l")


def fuzzy_ratio(a: str, b: str) -> float:
    """Similarity in [0, 1]: rapidfuzz's ratio if installed, else difflib's (the same definition)."""
    try:
        from rapidfuzz import fuzz
    except ImportError:
        return difflib.SequenceMatcher(None, a, b).ratio()
    return fuzz.ratio(a, b) / 100.0


@options_checked
@dataclass
class TextSimilarity:
    """Similarity of ``input`` (default the answer) to ``reference`` (default the row's ``reference``);
    the row passes when the score reaches ``pass_threshold``."""

    name: str = "text_similarity"
    evaluation_metric: str = "fuzzy_match"
    input: str = "{{ sample.output_text }}"
    reference: str = "{{ item.reference }}"
    pass_threshold: float = 0.5
    kind: str = field(default=KIND, init=False)  # the class says it; never an option

    def __post_init__(self):
        check_name(KIND, self.name)
        check_choice(KIND, "evaluation_metric", self.evaluation_metric, METRICS)
        check_template(KIND, "input", self.input)
        check_template(KIND, "reference", self.reference)
        self.pass_threshold = check_threshold(KIND, self.pass_threshold)

    def grade(self, sample: str, item: dict) -> float:
        a, b = render(self.input, sample, item), render(self.reference, sample, item)
        metric = self.evaluation_metric
        if metric == "fuzzy_match":
            return fuzzy_ratio(a, b)
        if metric == "bleu":
            import sacrebleu

            return sacrebleu.sentence_bleu(a, [b]).score / 100.0
        from rouge_score import rouge_scorer

        key = "rouge1" if metric == "rouge_1" else "rougeL"
        return rouge_scorer.RougeScorer([key]).score(b, a)[key].fmeasure

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "evaluation_metric": self.evaluation_metric,
                "input": self.input, "reference": self.reference, "pass_threshold": self.pass_threshold}
