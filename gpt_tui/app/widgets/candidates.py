"""Next-token candidates panel: the top tokens with bars, logits, probabilities and the knobs'
verdict (cut tokens struck through, survivors renormalised); Enter appends one to the prompt."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from ..messages import CandidatePicked
from .style import bar, message, pct, token_label


@dataclass(frozen=True)
class Row:
    """One candidate as the engine computed it; adjusted is None where the knobs do not apply."""

    id: int
    text: str
    logit: float
    prob: float
    cum_prob: float
    adjusted: float | None


@dataclass(frozen=True)
class CandidateView:
    title: str  # what these are candidates for
    rows: tuple[Row, ...]
    survivors: tuple[int, float] | None  # (tokens kept, raw mass kept) under the knobs
    knobs: str  # the knobs, as text
    note: str = ""
    chosen: int | None = None  # the token actually drawn (step mode)


class CandidatesPanel(Widget, can_focus=True):
    """What the model would say next, and what the sampling knobs keep of it."""

    ALLOW_MAXIMIZE = True
    BINDINGS = [
        Binding("up", "cursor(-1)", "▲", show=False),
        Binding("down", "cursor(1)", "▼", show=False),
        Binding("enter", "pick", "append token", id="append_candidate"),
    ]

    view = reactive(None, always_update=True)
    cursor = reactive(0)
    status = reactive("candidates appear once the text is analysed")

    def on_mount(self) -> None:
        self.border_title = "Next-token candidates"

    def watch_view(self, view) -> None:
        if view is not None:
            self.cursor = min(self.cursor, max(0, len(view.rows) - 1))

    def action_cursor(self, delta: int) -> None:
        if self.view is not None and self.view.rows:
            self.cursor = max(0, min(len(self.view.rows) - 1, self.cursor + delta))

    def action_pick(self) -> None:
        if self.view is not None and self.view.rows:
            self.post_message(CandidatePicked(self.view.rows[self.cursor].id))

    def render(self):
        v = self.view
        if v is None:
            return message(self.status)
        width, height = self.content_size.width, self.content_size.height
        lines: list = [Text(v.title, style="bold")]
        if v.survivors is not None:
            count, mass = v.survivors
            s = Text(f"{v.knobs} → ")
            s.append(f"{count} token{'s' if count != 1 else ''} survive", style="bold")
            s.append(f", holding {pct(mass)} of the raw probability")
            lines.append(s)
        if v.note:
            lines.append(Text(v.note, style="dim italic"))
        room = max(1, height - len(lines) - 1)
        label_w = 12
        bar_w = max(4, min(30, width - label_w - 3 - 8 - 8 - 8 - 12 - 7))
        table = Table.grid(padding=(0, 1))
        for name, justify in (("#", "right"), ("token", "left"), ("p", "left"), ("prob", "right"),
                              ("logit", "right"), ("cum", "right"), ("kept", "right")):
            table.add_column(header=name, justify=justify, no_wrap=True)
        table.show_header = True
        table.header_style = "dim"
        table.columns[6].header = "after knobs" if v.survivors is not None else ""
        start = max(0, self.cursor - room + 1)
        for rank in range(start, min(len(v.rows), start + room)):
            r = v.rows[rank]
            cut = r.adjusted is not None and r.adjusted <= 0
            style = "dim strike" if cut else ""
            if rank == self.cursor and self.has_focus:
                style += " reverse"
            elif rank == self.cursor:
                style += " underline"
            if v.chosen == r.id:
                style += " bold"
            kept = "–" if r.adjusted is None else ("cut" if cut else pct(r.adjusted))
            marker = "▶" if v.chosen == r.id else ""
            table.add_row(f"{marker}{rank + 1}", token_label(r.text, label_w),
                          Text(bar(r.prob, bar_w), style="#7fd4a0" if not cut else "dim"),
                          pct(r.prob), f"{r.logit:.2f}", pct(r.cum_prob), kept, style=style.strip())
        lines.append(table)
        return Group(*lines)
