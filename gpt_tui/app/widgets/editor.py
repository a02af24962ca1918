"""The text editor: the text every panel analyses. Everything typed here is text (a `/` too);
commands have their own bar (command_bar.py). Enter makes a newline; a paste keeps its lines,
with CR and CRLF line ends made LF; Ctrl+Z undoes any change, a clear or a take included."""

from __future__ import annotations

import inspect

from textual import events
from textual.widgets import TextArea

PLACEHOLDER = "type text to analyse · ⏎ newline · ^K command · Tab to the panels"
# TextArea has a placeholder from Textual 4 on; before, the key bar says the same.
_PLACEHOLDER = {"placeholder": PLACEHOLDER} if "placeholder" in inspect.signature(TextArea.__init__).parameters else {}


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR (as some terminals and pastes send them) become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class TextEditor(TextArea):
    """A soft-wrapping TextArea that grows with its text (up to a few lines)."""

    DEFAULT_CSS = """
    TextEditor { height: auto; min-height: 1; max-height: 6; border: none; padding: 0 1; }
    TextEditor:focus { border: none; }
    """

    def __init__(self, text: str = "", **kwargs) -> None:
        super().__init__(normalise_newlines(text), soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         compact=True, **_PLACEHOLDER, **kwargs)

    def on_mount(self) -> None:
        self.move_cursor(self.document.end)  # a text given at start (a pipe) is continued, not prefixed

    async def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        if self.read_only or not event.text:
            return
        if result := self._replace_via_keyboard(normalise_newlines(event.text), *self.selection):
            self.move_cursor(result.end_location)
            self.focus()

    def set_text(self, text: str) -> None:
        """Replace the whole text as one edit (so Ctrl+Z brings the old one back); cursor at the end."""
        text = normalise_newlines(text)
        if text == self.text:
            return
        self.replace(text, (0, 0), self.document.end)
        self.move_cursor(self.document.end)
