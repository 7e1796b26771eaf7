"""What a chat template puts around each turn, read by rendering it with marker texts.

The export needs this twice: the end-of-turn token that closed every trained answer (it must end
generation in the exported model too) and an Ollama TEMPLATE that renders prompts as training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SYS, _U1, _A1, _U2 = "SYSTEMxq7", "USERxq7one", "ANSWERxq7", "USERxq7two"


@dataclass
class TurnFormat:
    """The text around each role's content; ``exact`` once a rebuilt conversation matched the template."""

    bos: str = ""                    # text the template puts first (a BOS token the runtime adds itself)
    system_prefix: str = ""
    system_suffix: str = ""
    system_in_user: bool = False     # no system turn: the system text opens the first user turn
    system_separator: str = ""       # between that system text and the user's text
    default_system: str = ""         # what the template says when the conversation has no system turn
    user_prefix: str = ""
    user_suffix: str = ""
    assistant_prefix: str = ""
    assistant_suffix: str = ""
    generation_prompt: str = ""      # what opens the answer (add_generation_prompt=True)
    chat: bool = True                # False: no chat template, turns are plain lines of text
    exact: bool = False
    problems: list[str] = field(default_factory=list)

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The conversation as this format writes it (to compare with the chat template's own text)."""
        out = [self.bos]
        system = next((m["content"] for m in messages if m["role"] == "system"), self.default_system)
        if system and not self.system_in_user:
            out.append(self.system_prefix + system + self.system_suffix)
        pending = system if self.system_in_user else ""
        for m in messages:
            if m["role"] == "user":
                text = (pending + self.system_separator + m["content"]) if pending else m["content"]
                pending = ""
                out.append(self.user_prefix + text + self.user_suffix)
            elif m["role"] == "assistant":
                out.append(self.assistant_prefix + m["content"] + self.assistant_suffix)
        if add_generation_prompt and messages and messages[-1]["role"] != "assistant":
            out.append(self.generation_prompt)
        return "".join(out)


def _render(tok, messages, gen=False) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)


def _between(text: str, start: str | None, end: str | None) -> str:
    i = text.index(start) + len(start) if start else 0
    j = text.index(end, i) if end else len(text)
    return text[i:j]


def _strip_prefix(text: str, prefix: str) -> str:
    if prefix and not text.startswith(prefix):
        raise ValueError(f"{text!r} does not start with {prefix!r}")
    return text[len(prefix):]


def _strip_suffix(text: str, suffix: str) -> str:
    if suffix and not text.endswith(suffix):
        raise ValueError(f"{text!r} does not end with {suffix!r}")
    return text[: len(text) - len(suffix)] if suffix else text


def read_turn_format(tokenizer) -> TurnFormat:
    """The tokenizer's chat template as a TurnFormat; ``exact`` is False (with the reason in ``problems``)
    when the template does more than wrap turns, so that the format cannot stand in for it."""
    fmt = TurnFormat()
    if not getattr(tokenizer, "chat_template", None):
        # Training's plain-text turns (data/tokenize.py): each prompt turn on its own line.
        fmt.chat, fmt.exact = False, True
        fmt.system_suffix = fmt.user_suffix = "\n"
        return fmt
    u1 = {"role": "user", "content": _U1}
    a1 = {"role": "assistant", "content": _A1}
    u2 = {"role": "user", "content": _U2}
    try:
        only_user = _render(tokenizer, [u1])
        fmt.user_suffix = _between(only_user, _U1, None)
        fmt.generation_prompt = _strip_prefix(_render(tokenizer, [u1], gen=True), only_user)
        answered = _render(tokenizer, [u1, a1])
        fmt.assistant_suffix = _between(answered, _A1, None)
        fmt.assistant_prefix = _strip_prefix(_between(answered, _U1, _A1), fmt.user_suffix)
        two = _render(tokenizer, [u1, a1, u2], gen=True)
        fmt.user_prefix = _strip_prefix(_between(two, _A1, _U2), fmt.assistant_suffix)
        preamble = _strip_suffix(only_user[: only_user.index(_U1)], fmt.user_prefix)
        bos = getattr(tokenizer, "bos_token", None) or ""
        # A BOS the template writes itself (Gemma's <bos>), not one that opens every turn (SmolLM2's).
        if bos and preamble.startswith(bos) and not fmt.user_prefix.startswith(bos):
            fmt.bos, preamble = bos, preamble[len(bos):]
        with_system = _render(tokenizer, [{"role": "system", "content": _SYS}, u1])
        if _SYS in with_system:
            before = _strip_prefix(with_system[: with_system.index(_SYS)], fmt.bos)
            after = _between(with_system, _SYS, _U1)
            if before == fmt.user_prefix:
                fmt.system_in_user, fmt.system_separator = True, after
            else:
                fmt.system_prefix, fmt.system_suffix = before, _strip_suffix(after, fmt.user_prefix)
        if preamble:
            if fmt.system_prefix and preamble.startswith(fmt.system_prefix) and preamble.endswith(fmt.system_suffix):
                fmt.default_system = preamble[len(fmt.system_prefix): len(preamble) - len(fmt.system_suffix)]
            else:
                fmt.problems.append(f"the chat template writes {preamble!r} before the first turn")
    except Exception as e:  # noqa: BLE001 - templates raise their own errors (role order, ...)
        fmt.problems.append(f"the chat template could not be read turn by turn ({type(e).__name__}: {e})")
        return fmt
    checks = [[u1], [u1, a1, u2], [{"role": "system", "content": "Be brief."}, u1, a1, u2]]
    for msgs in checks:
        try:
            expected = _render(tokenizer, msgs, gen=True)
        except Exception:  # noqa: BLE001 - e.g. a template without system turns
            continue
        got = fmt.render(msgs)
        if got != expected:
            fmt.problems.append(f"rebuilt turns differ from the chat template: {got!r} vs {expected!r}")
    fmt.exact = not fmt.problems
    return fmt


def end_of_turn_ids(tokenizer, fmt: TurnFormat | None = None) -> list[int]:
    """Tokens that end an answer: the token that closed every trained answer (e.g. <|im_end|>,
    <end_of_turn>), then the tokenizer's EOS."""
    fmt = fmt or read_turn_format(tokenizer)
    ids: list[int] = []
    suffix = fmt.assistant_suffix.strip() if fmt.assistant_suffix else ""
    if suffix:
        first = tokenizer(suffix, add_special_tokens=False)["input_ids"][:1]
        if first and first[0] in tokenizer.all_special_ids + list(getattr(tokenizer, "added_tokens_decoder", {})):
            ids.append(int(first[0]))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return ids
