"""Preference rows (DPO): a prompt, a chosen answer and a rejected one, in three formats.

- ``{"prompt": str, "chosen": str, "rejected": str}`` (TRL's standard form)
- the chat form: ``chosen`` / ``rejected`` as message lists, with ``prompt`` as messages (or a string), or
  without ``prompt`` as two whole conversations that differ only in their last (assistant) turn
- Vertex's preference format: ``contents`` ending with a user turn (``system_instruction`` optional) and
  ``completions``: two ``{"score": 1 | 0, "completion": {"role": "model", "parts": [...]}}``

Each becomes an ``Example`` whose ``messages`` are the prompt plus the chosen answer (so everything that reads
supervised examples reads these too) and whose ``rejected`` holds the rejected answer. Problems are named by
line and field like every other dataset problem.
"""

from __future__ import annotations

from typing import Any

from .readers import RawRows
from .rows import check_text, check_turns, gemini_turns, parts_text

PREFERENCE_FORMATS = {
    "preference": "preference {'prompt', 'chosen', 'rejected'}",
    "preference_chat": "chat preference {'prompt'?: [messages], 'chosen': [messages], 'rejected': [messages]}",
    "vertex_preference": "Vertex preference {'contents', 'completions': [{'score': 1|0, 'completion'}] x2}",
    "openai_preference": "OpenAI preference {'input': {'messages'}, 'preferred_output': [message], "
                         "'non_preferred_output': [message]}",
}
_ROLES = ("system", "user", "assistant")


def detect_preference(row: dict) -> str | None:
    if "preferred_output" in row or "non_preferred_output" in row:
        return "openai_preference"
    if "completions" in row:
        return "vertex_preference"
    if "chosen" in row or "rejected" in row:
        if isinstance(row.get("chosen"), list) or isinstance(row.get("rejected"), list):
            return "preference_chat"
        return "preference"
    return None


def convert_preference(raw: RawRows, line: int, row: dict, fmt: str) -> tuple[list[dict], str, str] | None:
    """(prompt messages, chosen, rejected) of one row, or None with its problems recorded on ``raw``."""
    before = len(raw.problems)
    if fmt == "preference":
        out = _plain(raw, line, row)
    elif fmt == "preference_chat":
        out = _chat(raw, line, row)
    elif fmt == "openai_preference":
        out = _openai(raw, line, row)
    else:
        out = _vertex(raw, line, row)
    if out is None or len(raw.problems) != before:
        return None
    prompt, chosen, rejected, where = out
    if chosen.strip() == rejected.strip():
        raw.problem(line, where, "The chosen and rejected answers are the same text.",
                    "A preference pair needs two different answers: give a worse one as rejected, or remove "
                    "the row.")
        return None
    key = {"vertex_preference": "contents", "openai_preference": "input.messages"}.get(fmt, "prompt")
    check_turns(raw, line, prompt + [{"role": "assistant", "content": chosen}], key, True,
                 "gemini" if fmt == "vertex_preference" else "messages")
    if len(raw.problems) != before:
        return None
    return prompt, chosen, rejected


def _text(raw: RawRows, line: int, fld: str, value: Any) -> str | None:
    return check_text(raw, line, fld, value, True)


def _plain(raw: RawRows, line: int, row: dict):
    prompt = _text(raw, line, "prompt", row.get("prompt"))
    chosen = _text(raw, line, "chosen", row.get("chosen"))
    rejected = _text(raw, line, "rejected", row.get("rejected"))
    if prompt is None or chosen is None or rejected is None:
        return None
    return [{"role": "user", "content": prompt}], chosen, rejected, "rejected"


def _messages(raw: RawRows, line: int, key: str, value: Any) -> list[dict[str, str]] | None:
    if value is None:
        raw.problem(line, key, "Missing.", f"Add '{key}' as a list of messages "
                                           "[{'role': 'assistant', 'content': ...}].")
        return None
    if not isinstance(value, list) or not value:
        raw.problem(line, key, "Expected a non-empty list of messages.",
                    f"Write '{key}': [{{'role': 'assistant', 'content': ...}}].")
        return None
    out = []
    for i, m in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(m, dict):
            raw.problem(line, where, f"Expected an object, got {type(m).__name__}.")
            return None
        if m.get("role") not in _ROLES:
            raw.problem(line, f"{where}.role", f"Unknown role {m.get('role')!r}.",
                        "Roles are system, user and assistant.")
            return None
        text = _text(raw, line, f"{where}.content", m.get("content"))
        if text is None:
            return None
        out.append({"role": m["role"], "content": text})
    return out


def _chat(raw: RawRows, line: int, row: dict):
    chosen = _messages(raw, line, "chosen", row.get("chosen"))
    rejected = _messages(raw, line, "rejected", row.get("rejected"))
    if chosen is None or rejected is None:
        return None
    for key, msgs in (("chosen", chosen), ("rejected", rejected)):
        if msgs[-1]["role"] != "assistant":
            raw.problem(line, f"{key}[{len(msgs) - 1}].role", "The last message is not the assistant's answer.",
                        f"End '{key}' with the assistant's {key} answer.")
            return None
    if "prompt" in row:
        value = row["prompt"]
        if isinstance(value, str):
            prompt = [{"role": "user", "content": t}] if (t := _text(raw, line, "prompt", value)) else None
        else:
            prompt = _messages(raw, line, "prompt", value)
        if prompt is None:
            return None
        for key, msgs in (("chosen", chosen), ("rejected", rejected)):
            if len(msgs) != 1:
                raw.problem(line, key, f"{len(msgs)} messages with a separate 'prompt'.",
                            f"With 'prompt' given, '{key}' is the one assistant answer.")
                return None
    else:  # implicit prompt: two whole conversations that share everything but the answer
        if chosen[:-1] != rejected[:-1]:
            raw.problem(line, "rejected", "The chosen and rejected conversations differ before their last turn.",
                        "Both must repeat the same prompt turns and differ only in the final assistant answer "
                        "(or give the prompt separately as 'prompt').")
            return None
        prompt = chosen[:-1]
        if not prompt:
            raw.problem(line, "prompt", "Missing: no prompt turns before the answers.",
                        "Add 'prompt' (messages or text), or start both conversations with the user's turn.")
            return None
    return prompt, chosen[-1]["content"], rejected[-1]["content"], "rejected"


def _openai(raw: RawRows, line: int, row: dict):
    """OpenAI's DPO rows: ``input.messages`` (the prompt), ``preferred_output`` and ``non_preferred_output``
    (each one assistant message)."""
    inp = row.get("input")
    if not isinstance(inp, dict):
        raw.problem(line, "input", f"Expected an object with 'messages', got {type(inp).__name__}.",
                    "Write 'input': {'messages': [{'role': 'user', 'content': ...}]}.")
        return None
    prompt = _messages(raw, line, "input.messages", inp.get("messages"))
    answers = []
    for key in ("preferred_output", "non_preferred_output"):
        msgs = _messages(raw, line, key, row.get(key))
        if msgs is None:
            return None
        if len(msgs) != 1 or msgs[0]["role"] != "assistant":
            raw.problem(line, key, f"Expected one assistant message, got {len(msgs)} message(s) "
                        f"(roles {', '.join(m['role'] for m in msgs)}).",
                        f"Write '{key}': [{{'role': 'assistant', 'content': ...}}].")
            return None
        answers.append(msgs[0]["content"])
    if prompt is None:
        return None
    return prompt, answers[0], answers[1], "non_preferred_output"


def _vertex(raw: RawRows, line: int, row: dict):
    gem = dict(row)
    if "system_instruction" in gem and "systemInstruction" not in gem:
        gem["systemInstruction"] = gem.pop("system_instruction")
    before = len(raw.problems)
    prompt = gemini_turns(raw, line, gem)
    if len(raw.problems) != before:
        return None
    if not prompt or prompt[-1]["role"] != "user":
        raw.problem(line, "contents", "The contents do not end with a user turn.",
                    "In a preference row the contents end with the user's turn; the answers go in 'completions'.")
        return None
    comps = row.get("completions")
    if not isinstance(comps, list) or len(comps) != 2:
        got = f"{len(comps)} items" if isinstance(comps, list) else type(comps).__name__
        raw.problem(line, "completions", f"Expected a pair of completions, got {got}.",
                    "Write 'completions': [{'score': 1, 'completion': {...}}, {'score': 0, 'completion': {...}}].")
        return None
    texts: dict[int, str] = {}
    for i, c in enumerate(comps):
        where = f"completions[{i}]"
        if not isinstance(c, dict):
            raw.problem(line, where, f"Expected an object, got {type(c).__name__}.")
            return None
        score = c.get("score")
        if score not in (0, 1) or isinstance(score, bool):
            raw.problem(line, f"{where}.score", f"Expected 1 (preferred) or 0 (dispreferred), got {score!r}.")
            return None
        comp = c.get("completion")
        if not isinstance(comp, dict):
            raw.problem(line, f"{where}.completion", "Missing.", "Add {'role': 'model', 'parts': [{'text': ...}]}.")
            return None
        if comp.get("role", "model") != "model":
            raw.problem(line, f"{where}.completion.role", f"Unknown role {comp.get('role')!r}.",
                        "A completion is the model's turn: 'role': 'model'.")
            return None
        text = parts_text(raw, line, f"{where}.completion", comp)
        if text is None:
            return None
        if int(score) in texts:
            raw.problem(line, f"{where}.score", f"Both completions have score {score}.",
                        "One completion is preferred (score 1), the other dispreferred (score 0).")
            return None
        texts[int(score)] = text
    return prompt, texts[1], texts[0], "completions"
