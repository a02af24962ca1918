"""Embedding neighbours panel: the nearest tokens to the selected one in W_E, by cosine."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .style import bar, message, token_label


class NeighboursPanel(Widget, can_focus=True):
    """Cosine neighbours of a token (or of an analogy a − b + c) with scores and bars."""

    ALLOW_MAXIMIZE = True

    neighbours = reactive(None, always_update=True)  # engine Neighbours
    analogy = reactive(False)
    status = reactive("select a token to see its neighbours")

    def on_mount(self) -> None:
        self.border_title = "Embedding neighbours"

    def render(self):
        n = self.neighbours
        if n is None:
            return message(self.status)
        head = Text()
        head.append("a − b + c = " if self.analogy else "nearest to ", style="dim")
        head.append(n.query, style="bold")
        head.append(" in W_E (cosine)", style="dim")
        notes = []
        if n.rare:
            notes.append(Text("⚠ rarely seen in training: its vector means little", style="yellow"))
        if n.min_count:
            notes.append(Text(f"tokens seen < {n.min_count} times left out · {n.searched} searched", style="dim"))
        room = max(0, self.content_size.height - 1 - len(notes))
        width = self.content_size.width
        label_w = max(6, min(18, width // 3))
        bar_w = max(4, min(40, width - label_w - 4 - 8 - 3))
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", style="dim")
        table.add_column(no_wrap=True)
        table.add_column(justify="right")
        table.add_column(no_wrap=True)
        for rank, nb in enumerate(n.neighbours[:room], 1):
            table.add_row(str(rank), token_label(nb.text, label_w), f"{nb.cosine:+.3f}",
                          Text(bar(max(nb.cosine, 0.0), bar_w), style="#7fb3ff"))
        if not n.neighbours:
            return Group(head, *notes, message("no tokens left to compare with"))
        return Group(head, *notes, table)
