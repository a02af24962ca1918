"""The key bar at the bottom: the keys that matter most, made from actions.ACTIONS, with the
focused place's own keys first, fitted to the width (80 columns show every essential one)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..actions import ACTIONS, key_name


def items(context: str, in_text: bool, panel_keys: str) -> list[tuple[str, str]]:
    """(key, label) pairs in the order they are shown; the first ones always fit at 80 columns."""
    out: list[tuple[str, str]] = []
    if context:
        out.append(("", context))
    for a in sorted((a for a in ACTIONS if a.bar), key=lambda a: a.bar):
        if a.name == "command":
            out.append(("^K" if in_text else "/", a.label))
            if not in_text and panel_keys:
                out.append((panel_keys, "panel"))
            elif "Tab" not in context:
                out.append(("Tab", "panels"))
            continue
        out.append((key_name(a.keys[0]), a.label))
    out.append(("^P", "palette"))
    return out


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { height: 1; background: $panel; color: $text-muted; }
    """

    context = reactive("")  # the focused place's keys, e.g. "⏎ newline"
    in_text = reactive(True)
    panel_keys = reactive("")  # "1-5"

    def render(self) -> Text:
        width = self.content_size.width or 80
        line = Text(" ", no_wrap=True, overflow="crop")
        for key, label in items(self.context, self.in_text, self.panel_keys):
            part = Text()
            if key:
                part.append(key, style="bold #ffd75f")
                part.append(f" {label}  ")
            else:
                part.append(f"{label}  ", style="italic")
            if line.cell_len + part.cell_len > width:
                continue  # the later, less essential ones make room
            line.append_text(part)
        return line
