"""OpenAI's ``string_check`` grader: eq, ne, like (contains), ilike (contains, ignoring case)."""

from __future__ import annotations

from dataclasses import dataclass, field

from jupyter_tune.graders.base import (
    check_choice,
    check_flag,
    check_name,
    check_template,
    check_threshold,
    options_checked,
    render,
)

KIND = "string_check"

OPERATIONS = ("eq", "ne", "like", "ilike")


@options_checked
@dataclass
class StringCheck:
    """Compare ``input`` (default the answer) with ``reference`` (default the row's ``reference`` field), both
    templates: ``{{ sample.output_text }}``, ``{{ item.<field> }}`` or a literal. Scores 1 or 0."""

    name: str = "string_check"
    operation: str = "eq"
    input: str = "{{ sample.output_text }}"
    reference: str = "{{ item.reference }}"
    strip: bool = True
    pass_threshold: float = 1.0
    kind: str = field(default=KIND, init=False)  # the class says it; never an option

    def __post_init__(self):
        check_name(KIND, self.name)
        check_choice(KIND, "operation", self.operation, OPERATIONS)
        check_template(KIND, "input", self.input)
        check_template(KIND, "reference", self.reference)  # a string_check needs something to compare with
        check_flag(KIND, "strip", self.strip)
        self.pass_threshold = check_threshold(KIND, self.pass_threshold)

    def grade(self, sample: str, item: dict) -> float:
        a, b = render(self.input, sample, item), render(self.reference, sample, item)
        if self.strip:
            a, b = a.strip(), b.strip()
        if self.operation == "eq":
            return float(a == b)
        if self.operation == "ne":
            return float(a != b)
        if self.operation == "like":
            return float(b in a)
        return float(b.lower() in a.lower())

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "operation": self.operation, "input": self.input,
                "reference": self.reference, "pass_threshold": self.pass_threshold}
