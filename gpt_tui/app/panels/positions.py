"""Positions: the model's learned position table W_pos as a heatmap (positions × dimensions) beside
the sinusoidal encoding of the original Transformer of the same size, and below each, how alike
every two positions are (cosine). Downsampled to the panel by picking evenly spaced rows and
columns — never averaging — and saying which."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ..widgets.style import message
from .base import ComputedPanel

if TYPE_CHECKING:
    import numpy as np

LEVELS = "▁▂▃▄▅▆▇█"  # −1 … +1: the sign and the size in the glyph's height, colour only a bonus


class PositionsReady(Message):
    def __init__(self, session, tables) -> None:
        super().__init__()
        self.session, self.tables = session, tables


def level_text(values: np.ndarray, scale: float) -> list[Text]:
    """(r, c) values in [−scale, scale] -> r lines of c glyphs (height = value), coloured by sign."""
    import numpy as np  # imported when first drawn: not on the way to the first frame

    lines = []
    idx = np.clip(((values / scale + 1) / 2 * len(LEVELS)).astype(int), 0, len(LEVELS) - 1)
    for row_idx, row in zip(idx, values):
        line = Text()
        for i, v in zip(row_idx, row):
            line.append(LEVELS[i], style="#e6a07a" if v >= 0 else "#7fb3ff")
        lines.append(line)
    return lines


class PositionsPanel(ComputedPanel, Widget, can_focus=True):
    """W_pos beside the sinusoids, and position-to-position cosines."""

    NAME = "positions"
    TITLE = "Positions: W_pos and sinusoids"
    KEY = "9"
    READS = ("session", "notice")
    PLACE = None
    HINT = ""
    DEFAULT_CSS = """
    PositionsPanel { height: 1fr; }
    """

    session = reactive(None)
    tables = reactive(None, always_update=True)  # (learned PositionTable, sinusoidal PositionTable) or kind none

    def watch_session(self) -> None:
        self.tables = None
        self.forget()

    def wanted(self) -> int | None:
        return None if self.session is None else id(self.session)

    def compute(self, key: int) -> None:
        self._tables_worker(self.session)

    @work(thread=True, exclusive=True, group="positions", exit_on_error=False)
    def _tables_worker(self, session) -> None:
        from gpt_tui.engine.positions import PositionTable, sinusoidal

        table = session.position_table()
        sine = None if table.kind == "none" else PositionTable("sinusoidal", sinusoidal(table.n_positions,
                                                                                           table.d_model))
        cosines = None if sine is None else (table.cosine_matrix(), sine.cosine_matrix())
        self.post_message(PositionsReady(session, (table, sine, cosines)))

    def on_positions_ready(self, message: PositionsReady) -> None:
        message.stop()
        if message.session is self.session:
            self.tables = message.tables

    def render(self):
        if self.session is None:
            return message(self.notice)
        if self.tables is None:
            return message("reading the position table…")
        table, sine, cosines = self.tables
        if table.kind == "none":
            return message(f"{self.session.name} has no position table: its positions enter inside attention "
                           "(rotary or relative), so there is no W_pos to show.", "italic")
        from gpt_tui.engine.positions import describe_sampling, downsample

        width, height = self.content_size.width, self.content_size.height
        half = max(8, (width - 3) // 2)
        map_rows = max(4, (height - 9) * 3 // 5)
        cos_rows = max(3, height - 9 - map_rows)
        learned, rows, cols = downsample(table.weights, map_rows, half)
        sines, _, _ = downsample(sine.weights, map_rows, half)
        # A few large entries would leave everything else at mid height: scale to the 99th percentile.
        import numpy as np

        scale_l = float(np.quantile(np.abs(table.weights), 0.99)) or 1.0
        parts = [Text.assemble(("W_pos ", "bold"), (f"{table.n_positions} positions × {table.d_model} dimensions, "
                                                    "learned", "dim"), ("   beside   ", ""),
                               ("sinusoids ", "bold"), ("sin/cos(p / 10000^(2i/d)), fixed", "dim"))]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        for left, right in zip(level_text(learned, scale_l), level_text(sines, 1.0)):
            grid.add_row(left, right)
        parts.append(grid)
        parts.append(Text(f"rows: {describe_sampling(rows, table.n_positions, 'positions')} (top = 0); columns: "
                          f"{describe_sampling(cols, table.d_model, 'dimensions')}; values picked, never averaged; "
                          f"glyph height −s {LEVELS} +s, s = W_pos's 99th percentile of |v| = {scale_l:.3f} "
                          f"(beyond it: ▁ or █), 1 for the sinusoids",
                          style="dim"))
        learned_cos, sine_cos = cosines
        side = max(3, min(cos_rows, half // 2))
        lc, pr, pc = downsample(learned_cos, side, side * 2)
        sc, _, _ = downsample(sine_cos, side, side * 2)
        near, snear = table.neighbour_cosine, sine.neighbour_cosine
        parts.append(Text.assemble(("cos(position p, position q)", "bold"),
                                   (f" — rows p: {len(pr)}, columns q: {len(pc)} of {table.n_positions} positions, "
                                    "evenly spaced; glyph height −1 … +1; "
                                    f"neighbours p, p+1: W_pos mean {near.mean():+.3f} (min {near.min():+.3f}), "
                                    f"sinusoids {snear.mean():+.3f}", "dim")))
        cos_grid = Table.grid(padding=(0, 2))
        cos_grid.add_column(no_wrap=True, width=half)
        cos_grid.add_column(no_wrap=True)
        for left, right in zip(level_text(lc, 1.0), level_text(sc, 1.0)):
            cos_grid.add_row(left, right)
        parts.append(cos_grid)
        norms = table.norms
        parts.append(Text(f"|W_pos| from {norms.min():.3f} to {norms.max():.3f} (position 0: {norms[0]:.3f}); "
                          f"every sinusoid row has length √(d/2) = {sine.norms[0]:.3f}", style="dim"))
        return Group(*parts)
