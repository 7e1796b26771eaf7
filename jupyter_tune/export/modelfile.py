"""The Ollama ``Modelfile`` beside an exported GGUF: FROM, a TEMPLATE (Go template) that writes prompts as
training did, the end-of-turn stop tokens and the defaults the model was tested with (greedy)."""

from __future__ import annotations

import json

from .turns import TurnFormat


def _lit(text: str) -> str:
    """A Go template string literal (JSON's escapes are Go's), so the template's whitespace is exact."""
    return "{{ " + json.dumps(text, ensure_ascii=False) + " }}" if text else ""


def go_template(fmt: TurnFormat) -> str:
    """An Ollama TEMPLATE over ``.System`` and ``.Messages`` that renders a conversation as ``fmt`` does.

    Every literal is a string action and every line break between actions is trimmed, so the text
    written is exactly the turns' text. The BOS token is left to the runtime (llama.cpp adds it).
    """
    user_open = _lit(fmt.user_prefix)
    if fmt.system_in_user:
        # No system turn: the system text opens the first user turn (Gemma).
        system_head = "{{- $system := .System }}"
        user = (f"{user_open}{{{{- if $system }}}}{{{{ $system }}}}{_lit(fmt.system_separator)}"
                f"{{{{- $system = \"\" }}}}{{{{- end }}}}{{{{ .Content }}}}{_lit(fmt.user_suffix)}")
    else:
        system_head = (f"{{{{- if .System }}}}{_lit(fmt.system_prefix)}{{{{ .System }}}}"
                       f"{_lit(fmt.system_suffix)}{{{{- end }}}}")
        user = f"{user_open}{{{{ .Content }}}}{_lit(fmt.user_suffix)}"
    lines = [
        system_head,
        "{{- range $i, $_ := .Messages }}",
        "{{- $last := eq (len (slice $.Messages $i)) 1 }}",
        '{{- if eq .Role "user" }}' + user,
        '{{- else if eq .Role "assistant" }}' + _lit(fmt.assistant_prefix) + "{{ .Content }}"
        + "{{- if not $last }}" + _lit(fmt.assistant_suffix) + "{{- end }}",
        "{{- end }}",
        '{{- if and $last (ne .Role "assistant") }}' + _lit(fmt.generation_prompt) + "{{- end }}",
        "{{- end }}",
    ]
    return "\n".join(lines)


def stop_tokens(fmt: TurnFormat, end_tokens: list[str]) -> list[str]:
    """The end-of-turn tokens, and the token that opens a user turn (the model must not write one)."""
    stops = [t for t in end_tokens if t]
    head = fmt.user_prefix.split("\n")[0].strip()
    if fmt.chat and head and head not in stops and head.startswith("<"):
        stops.append(head.split(">")[0] + ">" if ">" in head else head)
    return list(dict.fromkeys(stops))


def modelfile(gguf_name: str, fmt: TurnFormat, end_tokens: list[str], num_ctx: int,
              system: str | None = None) -> str:
    """The Modelfile text for ``ollama create NAME -f Modelfile`` in the export folder."""
    system = fmt.default_system if system is None else system
    out = [
        "# Ollama: ollama create <name> -f Modelfile, then ollama run <name>",
        "# Written by jupyter_tune; TEMPLATE and stops follow the chat template the model was tuned with.",
        f"FROM ./{gguf_name}",
        "",
        f'TEMPLATE """{go_template(fmt)}"""',
        "",
    ]
    if system:
        out += [f'SYSTEM """{system}"""', ""]
    out += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stop_tokens(fmt, end_tokens)]
    out += [
        "# Greedy decoding, as the export's parity check and jt.generate_text default to.",
        "PARAMETER temperature 0",
        f"PARAMETER num_ctx {int(num_ctx)}",
    ]
    if not fmt.exact:
        out.insert(2, "# WARNING: the chat template does more than wrap turns; check TEMPLATE: "
                   + "; ".join(fmt.problems).replace("\n", " "))
    return "\n".join(out) + "\n"
