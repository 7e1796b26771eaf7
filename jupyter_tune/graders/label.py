"""``label_match``: for classification, the answer names the row's label."""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_tune.graders.base import render


@dataclass
class LabelMatch:
    """1 when the answer, stripped and (by default) case-folded, equals the label (default the row's
    ``label`` field, else its ``reference``), else 0. ``contains=True`` accepts an answer that names the label
    inside a longer text."""

    name: str = "label_match"
    label: str | None = None
    case_sensitive: bool = False
    contains: bool = False
    pass_threshold: float = 1.0
    kind: str = "label_match"

    def grade(self, sample: str, item: dict) -> float:
        if self.label is not None:
            want = render(self.label, sample, item)
        elif "label" in item:
            want = str(item["label"])
        elif "reference" in item:
            want = str(item["reference"])
        else:
            raise KeyError("label_match: the row has no 'label' or 'reference' field")
        got = "" if sample is None else str(sample)
        got, want = got.strip(), want.strip()
        if not self.case_sensitive:
            got, want = got.casefold(), want.casefold()
        return float(want in got if self.contains else got == want)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "label": self.label, "case_sensitive": self.case_sensitive,
                "contains": self.contains, "pass_threshold": self.pass_threshold}
