"""Chat as one document: system, user and assistant turns written out as the single text a model
continues (seed 000 §4: a base model only completes documents; a chat is a document framed so
that its most likely continuation is the assistant's reply).

Two framings:
- plain text, for GPT-2-style models that never saw a chat format: `<|endoftext|>` (the separator
  GPT-2 saw between documents, so a new one starts here), the system text, then `User: …` /
  `Assistant: …` lines, ending with `Assistant:` for the model to continue;
- the model's own chat template (a Jinja template shipped in tokenizer_config.json or
  chat_template.jinja), rendered in Jinja's immutable sandbox, which cannot reach Python objects
  or run code from the checkpoint.
Special tokens are located in the text so that every view can mark them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROLES = ("system", "user", "assistant")
ENDOFTEXT = "<|endoftext|>"
PLAIN_NAMES = {"user": "User", "assistant": "Assistant"}
DEFAULT_SYSTEM = "A conversation between a curious user and a helpful, knowledgeable assistant."


class ChatError(ValueError):
    """A turn or a template that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class Turn:
    role: str  # system | user | assistant
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ChatError(f"unknown role {self.role!r}: use one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Span:
    start: int  # character offsets in the document
    end: int
    text: str


@dataclass(frozen=True)
class ChatDocument:
    """The one document a model continues, and where its parts are."""

    text: str
    format: str  # "plain" or "template"
    special: tuple[Span, ...]  # special tokens in the text, to be encoded as such and shown marked
    turns: tuple[tuple[str, Span], ...]  # (role, where its content sits), in order
    stop: tuple[str, ...]  # text that ends the assistant's reply (the next turn beginning)


def parse_turn(spec: str) -> Turn:
    """'user: Hello there' -> Turn('user', 'Hello there')."""
    role, sep, content = spec.partition(":")
    role = role.strip().lower()
    if not sep or role not in ROLES:
        raise ChatError(f"a turn is ROLE: TEXT with ROLE one of {', '.join(ROLES)}; got {spec[:40]!r}")
    return Turn(role, content.strip())


def turns_from_json(data: str) -> list[Turn]:
    """The OpenAI-style message list [{"role": …, "content": …}, …] -> turns."""
    try:
        messages = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ChatError(f"the turns are not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ChatError('give the turns as a JSON list of {"role": …, "content": …}')
    turns = []
    for m in messages:
        if not isinstance(m.get("content"), str):
            raise ChatError("every message needs a text \"content\"")
        turns.append(Turn(str(m.get("role", "")).lower(), m["content"]))
    return turns


def plain_document(turns: list[Turn], add_generation_prompt: bool = True, eot: str = ENDOFTEXT) -> ChatDocument:
    """The plain-text framing for models without a chat format (GPT-2 and its kind)."""
    parts: list[str] = []
    special: list[Span] = []
    spans: list[tuple[str, Span]] = []
    length = 0

    def add(text: str, role: str | None = None, is_special: bool = False) -> None:
        nonlocal length
        if role is not None:
            spans.append((role, Span(length, length + len(text), text)))
        if is_special:
            special.append(Span(length, length + len(text), text))
        parts.append(text)
        length += len(text)

    if eot:
        add(eot, is_special=True)
    for i, turn in enumerate(turns):
        if turn.role == "system":
            add(turn.content, "system")
            add("\n\n")
            continue
        add(f"{PLAIN_NAMES[turn.role]}: ")
        add(turn.content, turn.role)
        add("\n")
    if add_generation_prompt:
        add(f"{PLAIN_NAMES['assistant']}:")
    return ChatDocument("".join(parts), "plain", tuple(special), tuple(spans), ("\nUser:", eot))


def template_document(template: str, turns: list[Turn], special_tokens: list[str] = (),
                      bos_token: str = "", eos_token: str = "", add_generation_prompt: bool = True) -> ChatDocument:
    """A model's own chat template, rendered in Jinja's sandbox."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise ChatError(f"the chat template refused the turns: {message}")

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # Jinja's own filter escapes <, > and & for HTML; chat templates want the JSON itself
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):  # Llama 3.x and gpt-oss's templates write today's date into the system turn
        return datetime.now().strftime(fmt)

    # The environment transformers renders templates in: {% break %} and {% continue %}, these globals
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.filters["tojson"] = tojson
    try:
        text = env.from_string(template).render(
            messages=[{"role": t.role, "content": t.content} for t in turns],
            add_generation_prompt=add_generation_prompt, bos_token=bos_token, eos_token=eos_token)
    except TemplateError as exc:
        raise ChatError(f"the model's chat template failed: {exc}") from None
    marks = sorted({s for s in (*special_tokens, bos_token, eos_token, ENDOFTEXT) if s}, key=len, reverse=True)
    special = _find_all(text, marks)
    spans, cursor = [], 0
    for t in turns:  # each turn's content, found in order
        at = text.find(t.content, cursor) if t.content else -1
        if at >= 0:
            spans.append((t.role, Span(at, at + len(t.content), t.content)))
            cursor = at + len(t.content)
    stop = tuple(s for s in (eos_token, ENDOFTEXT) if s)
    return ChatDocument(text, "template", tuple(special), tuple(spans), stop)


def _find_all(text: str, marks: list[str]) -> list[Span]:
    """Non-overlapping occurrences of any of marks (longest first at each place), in order."""
    found, i = [], 0
    while i < len(text) and marks:
        hits = [(text.find(m, i), -len(m), m) for m in marks]
        hits = [h for h in hits if h[0] >= 0]
        if not hits:
            break
        at, _, mark = min(hits)
        found.append(Span(at, at + len(mark), mark))
        i = at + len(mark)
    return found


@dataclass(frozen=True)
class ChatTemplate:
    template: str
    special_tokens: tuple[str, ...]
    bos_token: str
    eos_token: str
    source: str  # the file it came from


def find_chat_template(model_source: str) -> ChatTemplate | None:
    """The chat template a model directory ships (chat_template.jinja or tokenizer_config.json), if any."""
    path = Path(model_source)
    folder = path if path.is_dir() else path.parent
    config_file = folder / "tokenizer_config.json"
    config: dict = {}
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
    template, source = None, ""
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        template, source = jinja_file.read_text(encoding="utf-8"), str(jinja_file)
    elif isinstance(config.get("chat_template"), str):
        template, source = config["chat_template"], str(config_file)
    elif isinstance(config.get("chat_template"), list):  # [{"name": "default", "template": …}, …]
        named = {t.get("name"): t.get("template") for t in config["chat_template"] if isinstance(t, dict)}
        template, source = named.get("default"), str(config_file)
    if not isinstance(template, str):
        return None

    def token_text(value) -> str:
        return value.get("content", "") if isinstance(value, dict) else (value or "")

    added = config.get("added_tokens_decoder", {})
    special = [token_text(t) for t in added.values() if isinstance(t, dict) and t.get("special")]
    special += [token_text(t) for t in config.get("additional_special_tokens", []) or []]
    return ChatTemplate(template, tuple(s for s in special if s), token_text(config.get("bos_token")),
                        token_text(config.get("eos_token")), source)
