"""Read a dataset source (file, list of dicts, DataFrame) into numbered raw rows, collecting problems."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
# JSON too deep for the parser is reported at the line where it passes this depth.
MAX_DEPTH = 100
# DataFrame.attrs key of jt.split's parts: {"source": the user's file (or "<DataFrame>", "<list>"), "part":
# "training" | "validation", "unit": how "lines" count, "lines": each row's number there}. The parts' index
# holds the same numbers, so rows filtered, sorted or sampled (pandas copies attrs) keep their origin.
ORIGIN = "jupyter_tune_source"


@dataclass
class RawRows:
    source: str
    unit: str                                   # how rows are numbered: "line", "row", "item" or "index"
    rows: list[tuple[int, Any]] = field(default_factory=list)   # (number, row)
    problems: list[Problem] = field(default_factory=list)
    columns: list[str] | None = None            # for tabular sources

    def problem(self, line: int | None, fld: str | None, message: str, hint: str = "",
                severity: str = "error") -> None:
        self.problems.append(Problem(self.source, line, fld, message, hint, severity, self.unit))


def describe_source(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    if type(data).__name__ == "DataFrame":
        return _frame_numbering(data)[0]
    return "<list>"


def frame_origin(df: Any) -> dict[str, Any] | None:
    """The origin jt.split gave this DataFrame (ORIGIN), or None when it has none or its rows no longer
    match it: a reset or foreign index (a reset index counts from 0, which no line or item number is)."""
    origin = df.attrs.get(ORIGIN)
    if not (isinstance(origin, dict) and {"source", "part", "unit"} <= set(origin)
            and isinstance(origin.get("lines"), list)):
        return None
    index = df.index
    if not (index.is_unique and _int_index(index)):
        return None
    known = set(origin["lines"])
    return origin if all(int(i) in known for i in index) else None


def _int_index(index: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_integer_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index.dtype)


def _frame_numbering(df: Any) -> tuple[str, str, list[int]]:
    """How a DataFrame's rows are named: a jt.split part by its file's lines (or its DataFrame's index); any
    other by its index labels when they are unique integers (what df.loc takes), else by position from 1."""
    origin = frame_origin(df)
    if origin is not None:
        return f"{origin['source']} ({origin['part']} part of jt.split)", origin["unit"], [int(i) for i in df.index]
    if df.index.is_unique and _int_index(df.index):
        return "<DataFrame>", "index", [int(i) for i in df.index]
    return "<DataFrame>", "row", list(range(1, len(df) + 1))


def read_rows(data: Any) -> RawRows:
    if isinstance(data, (str, os.PathLike)):
        return _read_file(Path(data))
    if type(data).__name__ == "DataFrame":
        source, unit, numbers = _frame_numbering(data)
        out = RawRows(source, unit, columns=[str(c) for c in data.columns])
        for i, rec in zip(numbers, data.to_dict(orient="records")):
            out.rows.append((i, {str(k): _clean_nan(v) for k, v in rec.items()}))
        return out
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, (list, tuple)):
        out = RawRows("<list>", "item")
        out.rows = list(enumerate(data, start=1))
        return out
    out = RawRows(describe_source(data), "item")
    out.problem(None, None, f"Unsupported dataset type {type(data).__name__}.",
                "Pass a file path (.jsonl, .json, .csv, .parquet), a list of dicts or a pandas DataFrame.")
    return out


def _clean_nan(v: Any) -> Any:
    # pandas gives NaN for empty cells; treat them as missing, not as the float nan.
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        return v.tolist()
    return v


def _read_file(path: Path) -> RawRows:
    src = str(path)
    suffix = path.suffix.lower()
    unit = {"": "line", ".jsonl": "line", ".csv": "line", ".parquet": "row", ".json": "item"}.get(suffix, "line")
    out = RawRows(src, unit)
    if not path.exists():
        if path.is_symlink():  # exists() follows links: a dangling or looping link is not "not found"
            try:
                os.stat(path)
                what = "The file cannot be reached through this symbolic link."
            except OSError as e:
                what = ("This is a symbolic link that loops back on itself." if e.errno == errno.ELOOP
                        else f"This symbolic link points to {os.readlink(path)!r}, which does not exist.")
            out.problem(None, None, what, "Point it at the data file, or pass the file's own path.")
            return out
        out.problem(None, None, "File not found.",
                    f"Check the path (relative paths start from {os.getcwd()}).")
        return out
    if path.is_dir():
        out.problem(None, None, "This is a folder, not a data file.", f"Name a file ending in {', '.join(SUFFIXES)}.")
        return out
    if suffix not in SUFFIXES:
        out.problem(None, None, f"Unknown file type {suffix or '(no suffix)'}.",
                    f"Use one of {', '.join(SUFFIXES)}.")
        return out
    if path.stat().st_size == 0:
        out.problem(None, None, "The file is empty.", "Add at least one example.")
        return out
    if suffix == ".parquet":
        import pandas as pd

        try:
            df = pd.read_parquet(path)
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types
            out.problem(None, None, f"Cannot read Parquet: {e}.", "Check that the file is valid Parquet.")
            return out
        out.columns = [str(c) for c in df.columns]
        for i, rec in enumerate(df.to_dict(orient="records"), start=1):
            out.rows.append((i, {str(k): _clean_nan(v) for k, v in rec.items()}))
        return out

    raw = path.read_bytes()
    text_lines = _decode_lines(raw, out)
    if suffix == ".jsonl":
        for n, line in text_lines:
            if not line.strip():
                continue  # blank lines (a trailing newline) are not examples
            try:
                out.rows.append((n, _loads(line)))
            except json.JSONDecodeError as e:
                out.problem(n, None, f"Invalid JSON: {e.msg} at column {e.colno}.",
                            "Each line must be one JSON object.")
            except _DuplicateKey as e:
                out.problem(n, e.key, f"Duplicate key {e.key!r} in one JSON object.", "Keep one of them.")
            except RecursionError:
                out.problem(n, None, "JSON nested too deeply to read.",
                            "Examples are flat objects of text fields (or chat turns).")
    elif suffix == ".json":
        if out.problems:
            return out
        text = "\n".join(t for _, t in text_lines)
        try:
            doc = _loads(text)
        except json.JSONDecodeError as e:
            out.unit = "line"
            out.problem(e.lineno, None, f"Invalid JSON: {e.msg} at column {e.colno}.",
                        "A .json file holds one JSON array of examples (use .jsonl for one per line).")
            return out
        except _DuplicateKey as e:
            out.unit = "line"
            out.problem(_line_of_second(text, e.key), e.key, f"Duplicate key {e.key!r} in one JSON object.",
                        "Keep one of them.")
            return out
        except RecursionError:
            out.unit = "line"
            out.problem(_line_of_depth(text, MAX_DEPTH), None, "JSON nested too deeply to read.",
                        "Examples are flat objects of text fields (or chat turns).")
            return out
        if isinstance(doc, dict) and isinstance(doc.get("data"), list):
            doc = doc["data"]
        if not isinstance(doc, list):
            doc = [doc]
        out.rows = list(enumerate(doc, start=1))
    else:  # csv
        good = "\n".join(t for _, t in text_lines) + "\n"
        lines_by_index = [n for n, _ in text_lines]
        reader = csv.DictReader(io.StringIO(good))
        out.columns = list(reader.fieldnames or [])
        for rec in reader:
            # reader.line_num counts physical lines read so far in the decoded text
            n = lines_by_index[min(reader.line_num, len(lines_by_index)) - 1]
            out.rows.append((n, {k: (v if v != "" else None) for k, v in rec.items() if k is not None}))
    return out


def _decode_lines(raw: bytes, out: RawRows) -> list[tuple[int, str]]:
    """Split into numbered lines, naming every line that is not UTF-8 (and leaving it out)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    result = []
    for n, bline in enumerate(raw.split(b"\n"), start=1):
        try:
            result.append((n, bline.decode("utf-8").rstrip("\r")))
        except UnicodeDecodeError as e:
            out.problem(n, None, f"Not UTF-8 text (byte 0x{bline[e.start]:02x} at column {e.start + 1}).",
                        "Save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).")
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise _DuplicateKey(k)  # json.loads would silently keep the last value
        seen[k] = v
    return seen


def _loads(text: str) -> Any:
    """json.loads that names duplicate keys (RecursionError when nested too deeply)."""
    return json.loads(text, object_pairs_hook=_no_duplicates)


def _line_of_depth(text: str, limit: int) -> int | None:
    """The line where nesting (outside strings) first goes deeper than `limit`, or None."""
    depth, line, in_string, escaped = 0, 1, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return line
        elif ch in "]}":
            depth -= 1
    return None


def _line_of_second(text: str, key: str) -> int | None:
    """The line of the second occurrence of "key" (where a duplicate is seen), if it can be found."""
    quoted = json.dumps(key)
    first = text.find(quoted)
    second = text.find(quoted, first + 1) if first >= 0 else -1
    return text.count("\n", 0, second) + 1 if second >= 0 else None
