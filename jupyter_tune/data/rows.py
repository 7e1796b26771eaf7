"""One row's fields and turns checked, each problem named by line and field: shared by the supervised
formats (formats.py) and the preference formats (preference.py), which both build on these."""

from __future__ import annotations

from typing import Any

from .readers import RawRows

GEMINI_ROLES = {"user": "user", "model": "assistant"}
CHAT_ROLES = ("system", "user", "assistant")


def check_text(raw: RawRows, line: int, fld: str, value: Any, required: bool) -> str | None:
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


def gemini_turns(raw: RawRows, line: int, row: dict) -> list[dict[str, str]]:
    messages = []
    si = row.get("systemInstruction", row.get("system_instruction"))
    if si is not None:
        text = parts_text(raw, line, "systemInstruction", si)
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
        text = parts_text(raw, line, where, turn)
        if text is not None:
            messages.append({"role": GEMINI_ROLES[role], "content": text})
    return messages


def parts_text(raw: RawRows, line: int, where: str, obj: Any) -> str | None:
    parts = obj.get("parts") if isinstance(obj, dict) else None
    if not isinstance(parts, list) or not parts:
        raw.problem(line, f"{where}.parts", "Expected a non-empty list of parts.", "Write 'parts': [{'text': ...}].")
        return None
    texts = []
    for j, part in enumerate(parts):
        value = part.get("text") if isinstance(part, dict) else None
        text = check_text(raw, line, f"{where}.parts[{j}].text", value, True)
        if text is None:
            return None
        texts.append(text)
    return "".join(texts)


def chat_turns(raw: RawRows, line: int, row: dict) -> list[dict[str, str]]:
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
        text = check_text(raw, line, f"{where}.content", m.get("content"), True)
        if "weight" in m and not _check_weight(raw, line, where, role, m["weight"], i == len(msgs) - 1):
            continue
        if text is not None:
            messages.append({"role": role, "content": text})
    return messages


def _check_weight(raw: RawRows, line: int, where: str, role: str, weight: Any, last: bool) -> bool:
    """OpenAI's chat SFT rows may mark assistant turns with ``weight`` 0 or 1. Only the last assistant turn is
    learned here (earlier turns are context whatever their weight), so a last turn of weight 0 would leave
    nothing to learn: it is refused like any other bad field."""
    if role != "assistant":
        raw.problem(line, f"{where}.weight", f"A weight on a {role} turn.", "Only assistant turns carry a weight.")
        return False
    if isinstance(weight, bool) or weight not in (0, 1):
        raw.problem(line, f"{where}.weight", f"Expected 0 or 1, got {weight!r}.",
                    "weight 1 trains on the turn, weight 0 keeps it as context.")
        return False
    if last and weight == 0:
        raw.problem(line, f"{where}.weight", "The final assistant turn has weight 0: nothing to learn.",
                    "The last assistant turn is the answer the model learns: give it weight 1, or end the "
                    "row at the turn to learn.")
        return False
    return True


def check_turns(raw: RawRows, line: int, messages: list[dict], key: str, require_answer: bool, fmt: str) -> None:
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
