"""The command bar: a line for one /command, opened by ^K (anywhere) or / and : (outside the text),
closed by Enter (which runs it) or Esc. It never touches the text. ↑/↓ history, Tab completes."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

from ..commands import complete


class CommandBar(Input):
    DEFAULT_CSS = """
    CommandBar { display: none; height: 1; border: none; padding: 0 1; background: $boost; }
    CommandBar.-open { display: block; }
    """
    BINDINGS = [
        Binding("up", "history(-1)", "previous", show=False),
        Binding("down", "history(1)", "next", show=False),
        Binding("tab", "complete", "complete", show=False),
    ]

    @dataclass
    class Entered(Message):
        line: str

    @dataclass
    class Closed(Message):
        pass

    @dataclass
    class Stray(Message):
        """A key that reached the bar after it closed (typed in the same burst as its Enter)."""

        key: str
        character: str | None

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="/command (Tab completes, Esc closes, /help lists them)", compact=True,
                         select_on_focus=False, **kwargs)
        self.history: list[str] = []
        self._index = 0
        self._draft = ""

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, line: str = "/") -> None:
        self.add_class("-open")
        self.value = line
        self.cursor_position = len(line)
        self._index = len(self.history)

    def close(self) -> None:
        self.remove_class("-open")
        self.value = ""

    async def _on_key(self, event: events.Key) -> None:
        # Enter and Esc are handled here, in the order the keys came: as bindings they would run
        # only after the keys queued behind them (a fast typist's, or SSH's batched, next keys)
        # had been typed into this bar. Keys that arrive once it has closed go to the screen,
        # which hands them, in order, to where the focus went back.
        if not self.is_open:
            event.stop()
            event.prevent_default()
            self.post_message(self.Stray(event.key, event.character))
        elif event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Entered(self.take()))
        elif event.key == "escape":
            event.stop()
            event.prevent_default()
            self.action_close()

    def _on_blur(self, event) -> None:
        """The focus went elsewhere (Shift+Tab, a click): the half-typed command is dropped."""
        super()._on_blur(event)
        if self.is_open:
            self.close()

    def action_close(self) -> None:
        self.close()
        self.post_message(self.Closed())

    def take(self) -> str:
        """The line entered, kept in the history; the bar closes."""
        line = self.value.strip()
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self.close()
        return line

    async def action_submit(self) -> None:
        self.post_message(self.Entered(self.take()))

    def action_history(self, delta: int) -> None:
        if not self.history:
            return
        if self._index == len(self.history):
            self._draft = self.value
        self._index = max(0, min(len(self.history), self._index + delta))
        self.value = self.history[self._index] if self._index < len(self.history) else self._draft
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if " " in self.value.strip():
            return
        options = complete(self.value if self.value.startswith("/") else "/" + self.value)
        if len(options) == 1:
            self.value = options[0] + " "
        elif options:
            prefix = _common_prefix(options)
            if len(prefix) > len(self.value):
                self.value = prefix
            else:
                self.notify("  ".join(options), title="commands", timeout=4)
        self.cursor_position = len(self.value)


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
