"""Lines: what a panel draws, as Rich Texts of one line each, turned into Textual strips directly.

The panels redrawn on every key (tokens, candidates, attention, neighbours) drew Rich Groups and
Tables, which Textual renders through a Rich console that measures, wraps and splits every line:
about two thirds of a panel's drawing time, and most of the time from an analysis to the screen.
Here a line becomes a strip as it is; only a line longer than the panel is wrapped.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.segment import Segment
from rich.text import Text
from textual._context import active_app
from textual.strip import Strip
from textual.visual import Visual


class Lines(Visual):
    """A panel's drawing: one Text per line (a Text holding newlines, or too long, is wrapped)."""

    def __init__(self, lines: Iterable[Text]) -> None:
        self.lines = list(lines)
        self._wrapped: tuple[int, list[Text]] | None = None

    def _at(self, width: int) -> list[Text]:
        if self._wrapped is None or self._wrapped[0] != width:
            console = active_app.get().console
            out: list[Text] = []
            for line in self.lines:
                if line.cell_len <= width and "\n" not in line.plain:
                    out.append(line)
                else:
                    out.extend(line.wrap(console, max(1, width)))
            self._wrapped = (width, out)
        return self._wrapped[1]

    def render_strips(self, *args, **kwargs) -> list[Strip]:
        # Textual >= 5 calls (width, height, style, options); 4.x called (rules, width, height, style, …).
        width, height, style = args[:3] if isinstance(args[0], int) else args[1:4]
        console = active_app.get().console
        base = style.rich_style
        lines = self._at(width)
        strips = []
        for line in lines if height is None else lines[:height]:
            segments = list(Segment.apply_style(_segments(line, console), base))
            strips.append(Strip(segments).crop(0, width))
        return strips

    def get_optimal_width(self, rules, container_width: int) -> int:
        return max((line.cell_len for line in self.lines), default=0)

    def get_height(self, rules, width: int) -> int:
        return len(self._at(width))


def _segments(line: Text, console) -> list[Segment]:
    if line.spans:
        return list(line.render(console, end=""))
    # Text.render drops the Text's own style when it has no spans (Rich applies it when joining lines)
    return [Segment(line.plain, console.get_style(line.style) if line.style else None)]
