"""The dataset formats of the contract, each turned into one canonical chat form.

Every row becomes an ``Example``: ``messages`` in OpenAI roles (system / user / assistant) plus the row's
flat fields (for prompt templates and for putting results back beside the rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .preference import PREFERENCE_FORMATS, convert_preference, detect_preference
from .readers import RawRows

GEMINI_ROLES = {"user": "user", "model": "assistant"}
CHAT_ROLES = ("system", "user", "assistant")
FORMATS = {
    "gemini": "Vertex Gemini {'contents': [{'role', 'parts': [{'text'}]}], 'systemInstruction'?}",
    "text": "Vertex {'input_text', 'output_text'}",
    "prompt": "BigQuery {'prompt', 'label'}",
    "messages": "chat {'messages': [{'role', 'content'}]}",
    **PREFERENCE_FORMATS,  # method="dpo" (data/preference.py)
}
_FORMAT_HINT = "Use one of: " + "; ".join(FORMATS.values()) + "."


@dataclass
class Example:
    messages: list[dict[str, str]]
    fields: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    index: int = 0          # 0-based position among the source's valid examples
    format: str = ""
    rejected: str | None = None  # preference rows: the rejected answer (messages end with the chosen one)
    template: str | None = None  # the prompt template that filled the last user turn, if one did

    @property
    def is_preference(self) -> bool:
        return self.rejected is not None

    @property
    def has_answer(self) -> bool:
        return bool(self.messages) and self.messages[-1]["role"] == "assistant"

    @property
    def answer(self) -> str | None:
        return self.messages[-1]["content"] if self.has_answer else None

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        return self.messages[:-1] if self.has_answer else list(self.messages)


def detect_format(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    pref = detect_preference(row)  # before "contents" / "prompt", which preference rows also carry
    if pref:
        return pref
    if "contents" in row:
        return "gemini"
    if "messages" in row:
        return "messages"
    if "input_text" in row or "output_text" in row:
        return "text"
    if "prompt" in row or "label" in row:
        return "prompt"
    return None


def _check_text(raw: RawRows, line: int, fld: str, value: Any, required: bool) -> str | None:
    if value is None:
        if required:
            raw.problem(line, fld, "Missing.", f"Add a non-empty string '{fld}'.")
        return None
    if not isinstance(value, str):
        raw.problem(line, fld, f"Expected a string, got {type(value).__name__} {str(value)[:40]!r}.",
                    "Quote the value (e.g. \"42\").")
        return None
    if not value.strip():
        raw.problem(line, fld, "Empty text.", "Give it some text or remove the example.")
        return None
    return value


def convert_row(raw: RawRows, line: int, row: dict, fmt: str, require_answer: bool) -> Example | None:
    """Turn one row into an Example, or record its problems on `raw` and return None."""
    before = len(raw.problems)
    flat = {k: v for k, v in row.items() if isinstance(v, str)}
    messages: list[dict[str, str]] = []
    if fmt in PREFERENCE_FORMATS:
        pref = convert_preference(raw, line, row, fmt)
        if pref is None:
            return None
        prompt, chosen, rejected = pref
        user_turns = [m["content"] for m in prompt if m["role"] == "user"]
        flat.setdefault("input_text", user_turns[-1])
        flat.setdefault("prompt", user_turns[-1])
        return Example(messages=prompt + [{"role": "assistant", "content": chosen}], fields=flat, line=line,
                       format=fmt, rejected=rejected)
    if fmt in ("text", "prompt"):
        in_key, out_key = ("input_text", "output_text") if fmt == "text" else ("prompt", "label")
        prompt = _check_text(raw, line, in_key, row.get(in_key), True)
        answer = _check_text(raw, line, out_key, row.get(out_key), require_answer)
        if prompt is not None:
            messages.append({"role": "user", "content": prompt})
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
    elif fmt == "gemini":
        messages = _gemini(raw, line, row)
    else:
        messages = _chat(raw, line, row)
    if len(raw.problems) == before and fmt in ("gemini", "messages"):
        _check_turns(raw, line, messages, "contents" if fmt == "gemini" else "messages", require_answer, fmt)
    if len(raw.problems) != before:
        return None
    user_turns = [m["content"] for m in messages if m["role"] == "user"]
    # The last user turn is what a prompt template's {input_text} / {prompt} means for chat formats.
    if user_turns:
        flat.setdefault("input_text", user_turns[-1])
        flat.setdefault("prompt", user_turns[-1])
    return Example(messages=messages, fields=flat, line=line, format=fmt)


def _gemini(raw: RawRows, line: int, row: dict) -> list[dict[str, str]]:
    messages = []
    si = row.get("systemInstruction", row.get("system_instruction"))
    if si is not None:
        text = _parts_text(raw, line, "systemInstruction", si)
        if text is not None:
            messages.append({"role": "system", "content": text})
    contents = row.get("contents")
    if not isinstance(contents, list) or not contents:
        raw.problem(line, "contents", "Expected a non-empty list of turns.",
                    "Write 'contents': [{'role': 'user', 'parts': [{'text': ...}]}, {'role': 'model', ...}].")
        return messages
    for i, turn in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(turn, dict):
            raw.problem(line, where, f"Expected an object, got {type(turn).__name__}.")
            continue
        role = turn.get("role")
        if role == "system":
            raw.problem(line, f"{where}.role", "'system' is misplaced inside contents.",
                        "Put the system prompt in 'systemInstruction'.")
            continue
        if role not in GEMINI_ROLES:
            raw.problem(line, f"{where}.role", f"Unknown role {role!r}.", "Gemini roles are 'user' and 'model'.")
            continue
        text = _parts_text(raw, line, where, turn)
        if text is not None:
            messages.append({"role": GEMINI_ROLES[role], "content": text})
    return messages


def _parts_text(raw: RawRows, line: int, where: str, obj: Any) -> str | None:
    parts = obj.get("parts") if isinstance(obj, dict) else None
    if not isinstance(parts, list) or not parts:
        raw.problem(line, f"{where}.parts", "Expected a non-empty list of parts.", "Write 'parts': [{'text': ...}].")
        return None
    texts = []
    for j, part in enumerate(parts):
        value = part.get("text") if isinstance(part, dict) else None
        text = _check_text(raw, line, f"{where}.parts[{j}].text", value, True)
        if text is None:
            return None
        texts.append(text)
    return "".join(texts)


def _chat(raw: RawRows, line: int, row: dict) -> list[dict[str, str]]:
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raw.problem(line, "messages", "Expected a non-empty list of messages.",
                    "Write 'messages': [{'role': 'user', 'content': ...}, {'role': 'assistant', ...}].")
        return []
    messages = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raw.problem(line, where, f"Expected an object, got {type(m).__name__}.")
            continue
        role = m.get("role")
        if role not in CHAT_ROLES:
            raw.problem(line, f"{where}.role", f"Unknown role {role!r}.", "Roles are system, user and assistant.")
            continue
        text = _check_text(raw, line, f"{where}.content", m.get("content"), True)
        if text is not None:
            messages.append({"role": role, "content": text})
    return messages


def _check_turns(raw: RawRows, line: int, messages: list[dict], key: str, require_answer: bool, fmt: str) -> None:
    model = "model" if fmt == "gemini" else "assistant"
    for i, m in enumerate(messages):
        if m["role"] == "system" and i != 0:
            raw.problem(line, f"{key}[{i}].role", "A system message is misplaced: only the first may be system.",
                        "Move it to the start.")
            return
    turns = [m for m in messages if m["role"] != "system"]
    if not turns:
        raw.problem(line, key, "No user or model turns.", "Add a user turn and a model answer.")
        return
    if turns[0]["role"] != "user":
        raw.problem(line, key, f"The conversation starts with the {model}'s turn.", "Start with a user turn.")
        return
    for a, b in zip(turns, turns[1:]):
        if a["role"] == b["role"]:
            raw.problem(line, key, f"Two {a['role'] if fmt != 'gemini' else ('model' if a['role'] == 'assistant' else 'user')} "
                        "turns in a row.", "Turns must alternate between user and model.")
            return
    if require_answer and turns[-1]["role"] != "assistant":
        raw.problem(line, key, f"The conversation does not end with the {model}'s turn.",
                    f"End each example with the {model}'s answer: that is what the model learns.")
