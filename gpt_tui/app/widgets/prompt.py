"""The REPL prompt line: plain text is analysed as you type; /commands on Enter.
History with ↑/↓, Tab completes command names."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

from ..commands import complete


class PromptLine(Input):
    """An Input with REPL history and command completion."""

    BINDINGS = [
        Binding("up", "history(-1)", "previous", show=False),
        Binding("down", "history(1)", "next", show=False),
        Binding("tab", "complete", "complete", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="type text to analyse (⏎ = newline), or /help", **kwargs)
        self.history: list[str] = []
        self._index = 0
        self._draft = ""

    def _on_paste(self, event) -> None:
        """Paste keeps every line: newlines become ⏎ (the prompt is one line; the text is not)."""
        event.stop()
        event.prevent_default()
        if event.text:
            text = event.text.replace("\r\n", "\n").replace("\n", "⏎")
            selection = self.selection
            if selection.is_empty:
                self.insert_text_at_cursor(text)
            else:
                self.replace(text, *selection)

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self._index = len(self.history)

    def action_history(self, delta: int) -> None:
        if not self.history:
            return
        if self._index == len(self.history):
            self._draft = self.value
        self._index = max(0, min(len(self.history), self._index + delta))
        self.value = self.history[self._index] if self._index < len(self.history) else self._draft
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if not self.value.startswith("/") or " " in self.value:
            self.screen.focus_next()
            return
        options = complete(self.value)
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
