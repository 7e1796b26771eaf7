"""The kinds of value that the JSON types do not say (``_f(kind=...)``): datasets, jobs, paths, models and
prompt templates. Imports nothing of the project's: params' field check and the gate both use it."""

from __future__ import annotations

import os
import re
import string
from typing import Any


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


JOB_ID = re.compile(r"[a-z0-9-]{1,64}")


def template_problem(template: Any, name: str = "prompt_template") -> str | None:
    """Why a prompt template cannot be used (None: it can). Only plain {field} placeholders and {{ }}
    literals: a conversion ({x!r}) or a format spec ({x:>999999999}) could fail per row or allocate
    gigabytes, and a stray brace fails on every row."""
    if not isinstance(template, str):
        return f"{name}: expected str, got {type(template).__name__} {_short(template)}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:  # "Single '}' encountered", "expected '}' before end of string"
        return f"{name}: {_short(template)}: {e}; write {{{{ and }}}} for literal braces."
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field or not field.isidentifier():
            return (f"{name}: placeholder {{{field}}} is not a field name; write {{input_text}}, and {{{{ }}}} "
                    "for literal braces.")
        if conversion or spec:
            shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return (f"{name}: placeholder {{{shown}}} has a conversion or format spec; only plain placeholders "
                    f"like {{{field}}} are allowed.")
    return None


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict")


def kind_problems(name: str, value: Any, kind: str | None, *, python_data: bool = True) -> list[str] | None:
    """The check of a value of one of the kinds above (None: the kind has no check of its own here, the
    field's type decides)."""
    if kind == "dataset":
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            return [] if isinstance(text, str) and text.strip() else [f"{name}: empty; give a file path"]
        if not python_data:
            return [f"{name}: expected a file path (str), got {type(value).__name__} {_short(value)}"]
        if _is_dataframe(value):
            return []
        if isinstance(value, (list, tuple)):
            bad = next((i for i, row in enumerate(value) if not isinstance(row, dict)), None)
            if bad is None:
                return []
            return [f"{name}: row {bad} is {type(value[bad]).__name__} {_short(value[bad])}; a list of rows holds "
                    "dicts (e.g. {'input_text': ..., 'output_text': ...})"]
        return [f"{name}: expected a file path, a list of dicts or a pandas DataFrame, got "
                f"{type(value).__name__} {_short(value)}"]
    if kind == "job":
        job_id = getattr(value, "id", value)
        if isinstance(job_id, str) and JOB_ID.fullmatch(job_id):
            return []
        return [f"{name}: {_short(value)} is not a job or a job id (lowercase letters, digits and '-', at most "
                "64; see jt.list_jobs())"]
    if kind == "path":
        if isinstance(value, (str, os.PathLike)) and isinstance(os.fspath(value), str) and os.fspath(value).strip():
            return []
        return [f"{name}: expected a non-empty path (str or os.PathLike), got {type(value).__name__} "
                f"{_short(value)}"]
    if kind == "model_like" and python_data and not isinstance(value, (str, os.PathLike)):
        # a loaded model, a job handle, ...: jt.load_model says what it cannot load
        if isinstance(value, (bool, int, float, list, tuple, dict, set)) or value is None:
            return [f"{name}: expected a model id, a model folder, a .gguf file, a job or a loaded model, got "
                    f"{type(value).__name__} {_short(value)}"]
        return []
    if kind == "stops":
        if isinstance(value, str):
            return [] if value else [f"{name}: an empty string stops nothing; give a non-empty string or None"]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
            return []
        return [f"{name}: expected a non-empty string or a list of non-empty strings, got {_short(value)}"]
    if kind == "step":
        if value == "final" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return []
        return [f"{name}: {_short(value)} is not a checkpoint step (a whole number, see job.checkpoints) or "
                "None / 'final' for the job's own model"]
    if kind == "graders":
        if isinstance(value, (list, tuple)):
            return []  # each grader is checked by the entry point's rules (params.grader_problems)
        return [f"{name}: expected a list of graders (objects such as LabelMatch() or specs such as "
                f"{{'kind': 'label_match'}}), got {type(value).__name__} {_short(value)}"]
    if kind == "template":
        problem = template_problem(value, name)
        return [problem] if problem else []
    return None
