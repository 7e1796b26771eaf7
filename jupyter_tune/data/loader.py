"""One loader for every dataset format and source: rows in, validated Examples out (or every problem)."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from ..params.kinds import template_problem
from .errors import DatasetError, Problem
from .formats import FORMATS, Example, convert_row, detect_format
from .preference import PREFERENCE_FORMATS
from .readers import RawRows, read_rows

_USABLE_COLUMNS = ("input_text", "output_text", "prompt", "label", "contents", "messages", "chosen", "rejected",
                   "completions")


@dataclass
class Dataset:
    source: str
    examples: list[Example]
    warnings: list[Problem] = field(default_factory=list)
    format: str | None = None
    unit: str = "line"      # how `Example.line` counts in the source: "line", "row", "item" or "index"

    def __len__(self) -> int:
        return len(self.examples)

    def to_records(self) -> list[dict[str, Any]]:
        """The examples in the chat form, for the job's own copy of its data (each text stored once); each
        keeps its line in the user's source, and how that counts when it is not a line."""
        unit = {} if self.unit == "line" else {"unit": self.unit}
        return [{**_compact(e), **unit} for e in self.examples]

    @classmethod
    def from_records(cls, source: str, records: list[dict[str, Any]]) -> Dataset:
        unit = records[0].get("unit", "line") if records else "line"
        return cls(source, [_expand(r, i) for i, r in enumerate(records)], unit=unit)

    @property
    def is_preference(self) -> bool:
        return bool(self.examples) and self.examples[0].is_preference


_REJECTED = -1  # field_turns' index for a preference row's rejected answer


def _compact(ex: Example) -> dict[str, Any]:
    """One example as a job stores it, each text once (a 50 MB input is 50 MB in the job, not 150): a turn
    filled from the prompt template is stored as the template, re-filled on reading; a field whose text
    is a turn's (or the rejected answer, or another field's) as that turn's index (or that field's name)
    in ``field_turns``."""
    messages = [dict(m) for m in ex.messages]
    record: dict[str, Any] = {"line": ex.line}
    if ex.template is not None:
        turn = max(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[turn]["content"] = None
        record["template"] = ex.template
    where = {m["content"]: i for i, m in reversed(list(enumerate(messages))) if isinstance(m["content"], str)}
    if ex.rejected is not None:
        where.setdefault(ex.rejected, _REJECTED)
    fields, turns = {}, {}
    for key, value in ex.fields.items():
        if isinstance(value, str) and value in where:
            turns[key] = where[value]
        else:
            fields[key] = value
            if isinstance(value, str):
                where.setdefault(value, key)  # an alias (BigQuery's prompt = input_text) names its twin
    record.update(messages=messages, fields=fields)
    if turns:
        record["field_turns"] = turns
    if ex.rejected is not None:
        record["rejected"] = ex.rejected
    return record


def _expand(record: dict[str, Any], index: int) -> Example:
    messages = [dict(m) for m in record["messages"]]
    fields = dict(record.get("fields", {}))
    for key, turn in (record.get("field_turns") or {}).items():
        if isinstance(turn, str):
            fields[key] = fields[turn]
        else:
            fields[key] = record.get("rejected") if turn == _REJECTED else messages[turn]["content"]
    ex = Example(messages, fields, record.get("line", 0), index, rejected=record.get("rejected"))
    if record.get("template") is not None:
        apply_template(ex, record["template"])
    return ex


class TemplateError(ValueError):
    """prompt_template cannot be used; the message names it and says what to write instead."""


def template_fields(prompt_template: str) -> list[str]:
    """The {field} placeholders of a template, in order. Raises TemplateError for anything but plain
    {field} placeholders and {{ }} literals, before any formatting: a conversion ({x!r}) or a format
    spec ({x:d}, {x:>999999999}) could fail per row or allocate gigabytes."""
    problem = template_problem(prompt_template)
    if problem:
        raise TemplateError(problem)
    return [name for _, name, _, _ in string.Formatter().parse(prompt_template) if name is not None]


def _load(data: Any, prompt_template: str | None, require_answer: bool,
          preference: bool | None = None) -> tuple[RawRows, list[Example], str | None]:
    placeholders = template_fields(prompt_template) if prompt_template else []  # before any data work
    raw = read_rows(data)
    examples: list[Example] = []
    if raw.problems and not raw.rows:
        return raw, examples, None
    if raw.columns is not None and not set(raw.columns) & set(_USABLE_COLUMNS):
        raw.problem(None, None, f"No usable columns: found {', '.join(raw.columns) or 'none'}.",
                    "Name the columns input_text and output_text (or prompt and label).")
        return raw, examples, None
    first_fmt = None
    for line, row in raw.rows:
        fmt = detect_format(row)
        if fmt is None:
            keys = ", ".join(map(str, row.keys())) if isinstance(row, dict) else type(row).__name__
            raw.problem(line, None, f"Row of an unknown format (keys: {keys or 'none'}).",
                        "Use one of: " + "; ".join(FORMATS.values()) + ".")
            continue
        if first_fmt is None:
            first_fmt = fmt
            if preference is not None and (fmt in PREFERENCE_FORMATS) != preference:
                _wrong_kind(raw, line, fmt, preference)
                return raw, examples, None
        elif fmt != first_fmt:
            raw.problem(line, None, f"Mixed formats: this row is {FORMATS[fmt]}, the first is {FORMATS[first_fmt]}.",
                        "Use one format per dataset.")
            continue
        ex = convert_row(raw, line, row, fmt, require_answer)
        if ex is None:
            continue
        missing = [p for p in placeholders if not isinstance(ex.fields.get(p), str)]
        if missing:
            for p in missing:
                raw.problem(line, p, f"The prompt template uses {{{p}}}, which this row lacks.",
                            f"Add '{p}' to every row or change the template (the row has: "
                            f"{', '.join(sorted(ex.fields)) or 'no text fields'}).")
            continue
        if prompt_template:
            apply_template(ex, prompt_template)
        ex.index = len(examples)
        examples.append(ex)
    if not raw.rows and not raw.problems:
        raw.problem(None, None, "No examples found.", "Add at least one example.")
    return raw, examples, first_fmt


def _wrong_kind(raw: RawRows, line: int, fmt: str, preference: bool) -> None:
    if preference:
        raw.problem(line, None, f"method='dpo' needs preference rows; this row is {FORMATS[fmt]}.",
                    "Give each row a prompt, a chosen and a rejected answer: "
                    + "; ".join(PREFERENCE_FORMATS.values()) + ".")
    else:
        raw.problem(line, None, f"This row is {FORMATS[fmt]}: preference data trains with method='dpo'.",
                    "Pass method='dpo', or give supervised rows (input_text/output_text, messages, contents).")


def apply_template(ex: Example, prompt_template: str) -> None:
    """Replace the last user turn by the template filled with the row's fields."""
    text = prompt_template.format_map(ex.fields)
    for m in reversed(ex.messages):
        if m["role"] == "user":
            m["content"] = text
            ex.template = prompt_template
            return


def load_dataset(data: Any, prompt_template: str | None = None, *, require_answer: bool = True,
                 min_examples: int = 1, what: str = "dataset", preference: bool | None = None) -> Dataset:
    """Read and validate `data` (path, list of dicts, DataFrame); raise DatasetError listing every problem.

    preference: True to accept only preference rows (prompt, chosen, rejected: method="dpo"), False to
    refuse them, None for either."""
    raw, examples, fmt = _load(data, prompt_template, require_answer, preference)
    errors = [p for p in raw.problems if p.severity == "error"]
    if not errors and len(examples) < min_examples:
        raw.problem(None, None, f"{len(examples)} examples; at least {min_examples} are needed.",
                    "Add examples, or lower min_train_examples if you know what you are doing.")
        errors = raw.problems
    if errors:
        raise DatasetError(raw.problems, what)
    return Dataset(raw.source, examples, [p for p in raw.problems if p.severity == "warning"], fmt, raw.unit)


def validate_dataset(train_dataset: Any, validation_dataset: Any = None, prompt_template: str | None = None,
                     min_examples: int = 16, preference: bool | None = None,
                     require_answer: bool = True) -> tuple[Dataset, Dataset | None]:
    """Validate a training (and validation) dataset together; every problem of both is listed at once.
    require_answer=False (method="grpo") also takes rows that end with the user's turn (prompts whose fields
    the graders read)."""
    problems: list[Problem] = []
    train = val = None
    try:
        train = load_dataset(train_dataset, prompt_template, min_examples=min_examples, what="training dataset",
                             preference=preference, require_answer=require_answer)
    except DatasetError as e:
        problems += e.problems
    if validation_dataset is not None:
        try:
            val = load_dataset(validation_dataset, prompt_template, what="validation dataset",
                               preference=preference, require_answer=require_answer)
        except DatasetError as e:
            problems += e.problems
    if problems:
        raise DatasetError(problems, "dataset")
    assert train is not None
    # Overlap between the two (exact and near, with conflicting labels) is data/health.py's finding.
    return train, val
