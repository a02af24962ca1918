"""Tokens panel: the text as coloured chips, side by side with other encodings; ←/→ select."""

from __future__ import annotations

import math

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from ..messages import TokenSelected
from ..widgets.lines import Lines
from ..widgets.style import CHIP_COLOURS, message, visible
from ..widgets.text_view import AutoHeight
from .base import Panel


def chip_label(piece, show_id: bool) -> str:
    label = visible(piece.text)
    if piece.is_partial:
        label = f"⟨{label}⟩"  # part of a character: its bytes, honestly
    return label


def chip(piece, index: int, selected: bool, show_id: bool) -> Text:
    """One token as a chip; a neighbour always has another colour; the selection is reversed."""
    colour = CHIP_COLOURS[index % len(CHIP_COLOURS)]
    style = f"#ffffff on {colour}"
    if selected:
        style = f"bold reverse underline {style}"
    if piece.is_partial:
        style += " italic"
    text = Text(chip_label(piece, show_id), style=style)
    if show_id:
        text.append(f":{piece.id}", style=f"{style} dim" if not selected else style)
    return text


def wrap_chips(chips: list[Text], width: int) -> tuple[list[Text], list[int]]:
    """Lay chips out in lines of `width` cells, one space apart; returns lines and each chip's line."""
    lines: list[Text] = [Text()]
    where: list[int] = []
    for c in chips:
        length = c.cell_len
        line = lines[-1]
        if line.cell_len and line.cell_len + 1 + length > width:
            lines.append(Text())
            line = lines[-1]
        elif line.cell_len:
            line.append(" ")
        line.append_text(c)
        where.append(len(lines) - 1)
    return lines, where


class TokensPanel(Panel, AutoHeight, Widget, can_focus=True):
    """How the text is cut into tokens: the model's tokenizer first, others below it."""

    NAME = "tokens"
    TITLE = "Tokens"
    KEY = "1"
    READS = ("analysis", "selected", "show_ids", "compare", "encodings", "tokenizer_name", "notice")
    PLACE = ("top", 1)
    HINT = "←→ token"
    DEFAULT_CSS = """
    TokensPanel { height: auto; min-height: 5; max-height: 10; }
    """
    BINDINGS = [
        Binding("left", "move(-1)", "◀ token", show=False, id="token_prev"),
        Binding("right", "move(1)", "token ▶", show=False, id="token_next"),
        Binding("home", "first", "first token", show=False),
        Binding("end", "last", "last token", show=False),
    ]

    # The panel is as tall as its chips, which these change; a new layout of the whole screen is
    # asked for only when the number of lines changes (most keys leave it as it was).
    analysis = reactive(None, always_update=True)
    selected = reactive(0)
    show_ids = reactive(False)
    compare = reactive(True)
    encodings = reactive(dict, always_update=True)  # other encoding name -> pieces
    tokenizer_name = reactive("gpt2")

    def watch_analysis(self) -> None:
        self.content_changed()

    watch_show_ids = watch_compare = watch_encodings = watch_analysis

    def action_move(self, delta: int) -> None:
        if self.analysis is not None:
            self.post_message(TokenSelected(max(0, min(self.analysis.n_tokens - 1, self.selected + delta))))

    def action_first(self) -> None:
        self.post_message(TokenSelected(0))

    def action_last(self) -> None:
        self.post_message(TokenSelected(None))

    def content_lines(self, width: int) -> int:
        """As tall as the chips need (the wide layout caps it), not a fixed share of the screen."""
        if self.analysis is None:
            return 1
        return len(self._lines(width, 2 + 8 + 3 * len(self.encodings or ())))

    def render(self):
        if self.analysis is None:
            return message(self.notice)
        return Lines(self._lines(max(10, self.content_size.width), max(1, self.content_size.height)))

    def _lines(self, width: int, height: int) -> list[Text]:
        a = self.analysis
        pieces = a.pieces
        sel = min(self.selected, len(pieces) - 1)
        head = Text()
        head.append(f"{a.model_name}", style="bold")
        head.append(f" · {self.tokenizer_name} · ")
        head.append(f"{a.n_tokens} tokens", style="bold")
        head.append(f" · {len(a.text)} characters")
        if a.dropped:
            head.append(f"  ⚠ text longer than the context: first {a.dropped} tokens dropped", style="bold yellow")
        piece = pieces[sel]
        info = Text()
        info.append(f"#{sel} ", style="bold")
        info.append(chip_label(piece, False), style="reverse")
        info.append(f" id {piece.id} · characters {piece.start}–{piece.end}")
        lp = a.token_logprob(sel)
        info.append(" · first token, nothing before it" if math.isnan(lp) else f" · log p = {lp:.3f}")
        if piece.is_partial:
            info.append(" · ⟨…⟩ part of a character", style="italic")
        chips = [chip(p, i, i == sel, self.show_ids) for i, p in enumerate(pieces)]
        lines, where = wrap_chips(chips, width)
        # The model's own chips first (at least two lines of them), other encodings in what is left.
        budget = max(1, height - 2 - min(len(lines), 2))
        others: list[Text] = []
        if self.compare and self.encodings:
            for name, other in self.encodings.items():
                o_lines, _ = wrap_chips([chip(p, i, False, self.show_ids) for i, p in enumerate(other)], width)
                shown = o_lines[:2]
                if budget < 1 + len(shown):
                    break
                label = Text(f"{name} · {len(other)} tokens", style="bold")
                if len(o_lines) > 2:
                    label.append(f" (first {len(shown)} of {len(o_lines)} lines)", style="dim")
                others += [label, *shown]
                budget -= 1 + len(shown)
        room = max(1, height - 2 - len(others))
        line_of_sel = where[sel]
        start = max(0, min(line_of_sel - room // 2, len(lines) - room))
        window = lines[start:start + room]
        if start > 0 and window:
            window[0] = Text("… ", style="dim") + window[0]
        return [head, *window, info, *others]
