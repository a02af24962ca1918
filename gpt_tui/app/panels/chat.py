"""Chat as one document (seed 000 §4): system, user and assistant turns written out as the single
text the model continues. `/chat user: …` adds a turn and puts the whole document in the text, so
the tokens, candidates and generation panels all continue that document; F5 writes the assistant's
reply, F7 takes it, and the next `/chat user: …` keeps what was taken as the assistant's turn.
Special tokens (<|endoftext|>) are encoded as such in chat mode and shown reversed."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..widgets.style import message, pct, token_label, visible
from .base import Panel

ROLE_STYLES = {"system": "#e6d49e", "user": "#7fb3ff", "assistant": "#9ee6a0"}


@dataclass(frozen=True)
class ChatState:
    turns: tuple  # engine chat.Turn, in order
    document: object | None  # engine chat.ChatDocument the turns make (None: no turn yet)


def chat_command(screen, spec: str | None) -> None:
    """What /chat does to the screen (kept here so the screen only forwards it)."""
    from gpt_tui.engine.chat import DEFAULT_SYSTEM, Turn, parse_turn

    state = screen.chat
    if spec is None:  # show the chat; start one with the default system text
        if state is None:
            screen.chat = ChatState((Turn("system", DEFAULT_SYSTEM),), None)
        screen.set_special(True)
        screen.show_panel("chat")
        return
    word = spec.strip().lower()
    if word in ("off", "clear"):
        screen.chat = None if word == "off" else ChatState((), None)
        if word == "off":
            screen.set_special(False)
        screen.show_panel("chat" if word == "clear" else "tokens")
        return
    turn = parse_turn(spec)
    turns = list(state.turns) if state is not None else []
    reply = _reply_taken(screen.text, state)
    if reply:
        turns.append(Turn("assistant", reply))
    turns.append(turn)
    document = screen.session.chat_document(turns)
    screen.chat = ChatState(tuple(turns), document)
    screen.set_special(True)
    screen.set_text(document.text)
    screen.show_panel("chat")


def _reply_taken(text: str, state: ChatState | None) -> str:
    """What the text holds after the last document: the assistant's reply, up to where the model
    began the next turn itself."""
    if state is None or state.document is None or not text.startswith(state.document.text):
        return ""
    reply = text[len(state.document.text):]
    cut = min((reply.find(stop) for stop in state.document.stop if stop in reply), default=-1)
    return (reply[:cut] if cut >= 0 else reply).strip()


class ChatPanel(Panel, Widget, can_focus=True):
    """The turns, and the one document the model continues."""

    NAME = "chat"
    TITLE = "Chat as one document"
    KEY = ""
    READS = ("session", "chat", "analysis", "notice")
    PLACE = None
    HINT = "/chat user: …"
    DEFAULT_CSS = """
    ChatPanel { height: 1fr; }
    """

    session = reactive(None)
    chat = reactive(None, always_update=True)
    analysis = reactive(None, always_update=True)

    def render(self):
        if self.session is None:
            return message(self.notice)
        state = self.chat
        parts = []
        if state is None:
            return message("/chat starts a chat; /chat user: Hello adds a turn", "italic")
        head = Text()
        for turn in state.turns:
            head.append(f"{turn.role:>9} ", style=f"bold {ROLE_STYLES[turn.role]}")
            head.append(turn.content + "\n")
        parts.append(head if state.turns else message("no turns yet: /chat user: Hello"))
        doc = state.document
        a = self.analysis
        if doc is None:
            parts.append(message("/chat user: … writes the turns out as one document for the model to continue"))
            return Group(*parts)
        framing = "plain-text framing (the model has no chat template)" if doc.format == "plain" else \
            "the model's own chat template"
        parts.append(Text(f"the one document the model continues — {framing}; special tokens reversed, each "
                          "turn in its role's colour:", style="dim"))
        parts.append(self._document(doc, a))
        if a is not None and a.text == doc.text:
            parts.append(Text())
            parts.append(self._next(a))
        parts.append(Text("F5 writes the assistant's reply (generation panel) · F7 takes it · /chat user: … "
                          "answers · /chat clear · /chat off", style="dim"))
        return Group(*parts)

    def _document(self, doc, a) -> Text:
        text = Text()
        roles = sorted(doc.turns, key=lambda rs: rs[1].start)
        specials = {(s.start, s.end) for s in doc.special}
        if a is not None and a.text == doc.text:  # as the model sees it: token by token
            eot = self.session.tokenizer.eot_id
            for piece in a.pieces:
                role = next((r for r, s in roles if s.start <= piece.start < s.end), None)
                if piece.id == eot and (piece.start, piece.end) in specials:
                    text.append(piece.text, style="bold reverse")
                else:
                    text.append(piece.text, style=ROLE_STYLES[role] if role else "dim")
            return text
        cursor = 0
        for s in doc.special:
            text.append(doc.text[cursor:s.start], style="dim")
            text.append(s.text, style="bold reverse")
            cursor = s.end
        text.append(doc.text[cursor:], style="dim")
        return text

    def _next(self, a) -> Text:
        last = a.position(a.n_tokens - 1)  # the engine's own top tokens: the candidates panel's numbers
        line = Text("the model's next token: ", style="dim")
        for i, p in zip(last.top_ids[:6], last.top_probs[:6]):
            line.append(token_label(visible(self.session.tokenizer.token_text(int(i))), 12), style="bold")
            line.append(f" {pct(float(p))}  ")
        return line
