"""Widgets as tall as their content that change often, asking for a new layout of the screen only
when their height changes: a layout draws every widget again (~30 ms here), and a Static, or a
reactive declared with layout=True, asks for one on every change — on every key for the Tokens
panel, on every paint of streamed tokens for the generation panel."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class AutoHeight:
    """Mixed into a `height: auto` widget that says how many lines its content takes at a width
    (`content_lines`) and calls `content_changed` when the content changes."""

    _laid_out: int | None = None  # the content height the last layout used

    def content_lines(self, width: int) -> int:
        raise NotImplementedError

    def get_content_height(self, container, viewport, width: int) -> int:
        self._laid_out = self.content_lines(width)
        return self._laid_out

    def content_changed(self) -> None:
        width = self.content_size.width
        self.refresh(layout=self._laid_out is None or not width or self.content_lines(width) != self._laid_out)


class TextView(AutoHeight, Widget):
    """A Rich Text that changes often (tokens streaming in)."""

    DEFAULT_CSS = """
    TextView { height: auto; }
    """

    def __init__(self, content: Text | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._content = content if content is not None else Text()

    @property
    def content(self) -> Text:
        return self._content

    def show(self, content: Text) -> None:
        self._content = content
        self.content_changed()

    def content_lines(self, width: int) -> int:
        return len(self._content.wrap(self.app.console, width))

    def render(self) -> Text:
        return self._content
