"""TextView: a Rich Text that changes often (tokens streaming in), which asks for a new layout of the
screen only when its height changes. A Static asks for one on every update, and a layout draws every
widget again: while tokens streamed, ~30 ms each paint, twelve paints a second, taken from decoding."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class TextView(Widget):
    DEFAULT_CSS = """
    TextView { height: auto; }
    """

    def __init__(self, content: Text | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._content = content if content is not None else Text()
        self._lines: int | None = None  # lines at the width last drawn

    @property
    def content(self) -> Text:
        return self._content

    def show(self, content: Text) -> None:
        self._content = content
        width = self.content_size.width
        lines = len(content.wrap(self.app.console, width)) if width else None
        self.refresh(layout=lines is None or lines != self._lines)
        self._lines = lines

    def render(self) -> Text:
        return self._content
