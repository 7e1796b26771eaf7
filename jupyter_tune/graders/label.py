"""``label_match``: for classification, the answer names the row's label."""

from __future__ import annotations

from dataclasses import dataclass, field

from jupyter_tune.graders.base import (
    check_flag,
    check_name,
    check_template,
    check_threshold,
    options_checked,
    refuse,
    render,
)

KIND = "label_match"


@options_checked
@dataclass
class LabelMatch:
    """1 when the answer, stripped and (by default) case-folded, equals the label (default the row's
    ``label`` field, else its ``reference``), else 0. ``contains=True`` accepts an answer that names the label
    inside a longer text. ``choices`` (the label set) reads a longer answer as the one label of the set it
    names ("The specialty is Urology." -> Urology): an answer naming two or more labels scores 0, so reciting
    the label list earns nothing (``contains`` rewards it), while a model that talks around its answer still
    gets a signal. A label inside a longer one ("Neurology" in "Pediatric Neurology") counts only as the
    longer one."""

    name: str = "label_match"
    label: str | None = None
    case_sensitive: bool = False
    contains: bool = False
    choices: list[str] | None = None
    pass_threshold: float = 1.0
    kind: str = field(default=KIND, init=False)  # the class says it; never an option

    def __post_init__(self):
        check_name(KIND, self.name)
        check_template(KIND, "label", self.label, optional=True)
        for option in ("case_sensitive", "contains"):
            check_flag(KIND, option, getattr(self, option))
        if self.choices is not None:
            if not isinstance(self.choices, (list, tuple)) or not self.choices or \
                    not all(isinstance(c, str) and c.strip() for c in self.choices):
                raise refuse(KIND, "choices", self.choices, "expected None or a non-empty list of labels (str)")
            self.choices = list(self.choices)
        self.pass_threshold = check_threshold(KIND, self.pass_threshold)

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
        if self.choices:
            return float(self.named(got) == want)
        return float(want in got if self.contains else got == want)

    def named(self, answer: str) -> str | None:
        """The one choice an answer (already stripped and, unless case_sensitive, case-folded) names, or None
        when it names none or several."""
        fold = (lambda c: c.strip()) if self.case_sensitive else (lambda c: c.strip().casefold())
        found = {fold(c) for c in self.choices if c and fold(c) in answer}
        found = {c for c in found if not any(c != d and c in d for d in found)}  # "neurology" in "pediatric neurology"
        return found.pop() if len(found) == 1 else None

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "label": self.label, "case_sensitive": self.case_sensitive,
                "contains": self.contains, "choices": self.choices, "pass_threshold": self.pass_threshold}
