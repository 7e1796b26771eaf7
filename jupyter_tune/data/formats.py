"""The dataset formats of the contract, each turned into one canonical chat form.

Every row becomes an ``Example``: ``messages`` in OpenAI roles (system / user / assistant) plus the row's
flat fields (for prompt templates and for putting results back beside the rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .preference import PREFERENCE_FORMATS, convert_preference, detect_preference
from .readers import RawRows
from .rows import chat_turns, check_text, check_turns, gemini_turns

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


def convert_row(raw: RawRows, line: int, row: dict, fmt: str, require_answer: bool) -> Example | None:
    """Turn one row into an Example, or record its problems on `raw` and return None."""
    before = len(raw.problems)
    flat = {k: v for k, v in row.items() if isinstance(v, str)}
    if fmt == "messages":  # OpenAI reinforcement rows: every extra field (numbers, lists too) is kept for graders
        flat.update({k: v for k, v in row.items() if k not in ("messages", "tools") and k not in flat})
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
        prompt = check_text(raw, line, in_key, row.get(in_key), True)
        answer = check_text(raw, line, out_key, row.get(out_key), require_answer)
        if prompt is not None:
            messages.append({"role": "user", "content": prompt})
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
    elif fmt == "gemini":
        messages = gemini_turns(raw, line, row)
    else:
        messages = chat_turns(raw, line, row)
    if len(raw.problems) == before and fmt in ("gemini", "messages"):
        check_turns(raw, line, messages, "contents" if fmt == "gemini" else "messages", require_answer, fmt)
    if len(raw.problems) != before:
        return None
    user_turns = [m["content"] for m in messages if m["role"] == "user"]
    # The last user turn is what a prompt template's {input_text} / {prompt} means for chat formats.
    if user_turns:
        flat.setdefault("input_text", user_turns[-1])
        flat.setdefault("prompt", user_turns[-1])
    return Example(messages=messages, fields=flat, line=line, format=fmt)
