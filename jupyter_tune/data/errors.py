"""Dataset problems: each names where it is (file, line, field), what is wrong and what to do."""

from __future__ import annotations

from dataclasses import dataclass

_MAX_LISTED = 50


def plural(unit: str, n: int) -> str:
    """A unit of numbering ("line", "index", ...) for n numbers."""
    return unit if n == 1 else ("indices" if unit == "index" else unit + "s")


@dataclass(frozen=True)
class Problem:
    source: str             # file path, "<DataFrame>" or "<list>" (a jt.split part: its file, and which part)
    line: int | None        # 1-based line (JSONL, CSV), row/item number or index label; None: the whole source
    field: str | None       # e.g. "output_text", "contents[1].role"
    message: str            # what is wrong
    hint: str = ""          # what to do about it
    severity: str = "error"  # "error" rejects the dataset; "warning" is reported only
    unit: str = "line"      # "line", "row", "item" or "index" (a DataFrame's label): how `line` counts

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f", {self.unit} {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        text = f"{where}: {self.message}"
        return text + (f" {self.hint}" if self.hint else "")


class DatasetError(ValueError):
    """The dataset was rejected; `.problems` lists every problem found (not only the first)."""

    def __init__(self, problems: list[Problem], what: str = "dataset"):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        lines = [f"  - {p}" for p in errors[:_MAX_LISTED]]
        if len(errors) > _MAX_LISTED:
            lines.append(f"  ... and {len(errors) - _MAX_LISTED} more problems")
        super().__init__(f"The {what} was rejected ({len(errors)} problem{'s' * (len(errors) != 1)}):\n"
                         + "\n".join(lines))
