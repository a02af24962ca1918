"""Attention panel: one layer and head as a grid (rows = query, columns = key), the selected
query's top keys, and an overview of every layer × head to pick from. Changing layer or head
reads the analysis already computed; it never re-runs the model."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from ..messages import HeadPicked, TokenSelected
from ..widgets.lines import Lines
from ..widgets.style import MASKED, RAMP, RAMP_LIMITS, message, pct, ramp_level, shade, token_label
from .base import Panel


def legend(numbers: bool, window: int | None = None, sinks: bool = False) -> Text:
    t = Text(style="dim")
    if numbers:
        t.append("cells: weight in %  ")
    lo = 0
    for glyph, hi in zip(RAMP, [*RAMP_LIMITS, 1.0]):
        t.append(f"'{glyph}'" if glyph == " " else glyph, style="bold")
        t.append(f"<{hi * 100:.0f}% " if hi < 1 else f"≥{lo * 100:.0f}% ")
        lo = hi
    t.append(f" {MASKED}", style="bold")
    t.append(" masked (future key" + (f", or outside the layer's window of {window:,})" if window else ")"))
    if sinks:
        t.append("  sink: the share this head's sink logit takes, on no token (a row's keys sum to the rest)")
    return t


def sink_share(grid, query: int) -> float:
    """What a query's weights on the tokens leave to the head's sink: 1 − their sum (gpt-oss)."""
    return max(0.0, 1.0 - float(grid[query, : query + 1].sum()))


def cell(weight: float, masked: bool, width: int, numbers: bool) -> Text:
    if masked:
        return Text(MASKED.center(width), style="dim")
    if numbers:
        return Text(f"{weight * 100:.0f}".rjust(width - 1) + " ", style=shade(weight))
    return Text(RAMP[ramp_level(weight)] * width, style=shade(weight))


class AttentionPanel(Panel, Widget, can_focus=True):
    """The attention pattern of one head, windowed around the selected query token."""

    NAME = "attention"
    TITLE = "Attention"
    KEY = "2"
    READS = ("analysis", "selected", "layer_index", "head", "show_numbers", "overview", "notice")
    PLACE = ("main", 3)
    HINT = "↑↓ query  ,. layer  [] head"
    DEFAULT_CSS = """
    AttentionPanel { width: 3fr; }
    """
    BINDINGS = [
        Binding("up", "vertical(-1)", "up", show=False),
        Binding("down", "vertical(1)", "down", show=False),
        Binding("left", "horizontal(-1)", "left", show=False),
        Binding("right", "horizontal(1)", "right", show=False),
        Binding("enter", "pick", "pick head", show=False),
    ]

    analysis = reactive(None, always_update=True)
    selected = reactive(0)
    layer_index = reactive(0)
    head = reactive(0)
    show_numbers = reactive(False)
    overview = reactive(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cursor = (0, 0)  # (layer, head) in the overview

    def _subtitle(self) -> None:
        a = self.analysis
        subtitle = "" if a is None or a.attention is None else (
            f"layer {self.layer_index}/{a.n_layer - 1} · {a.head_label(self.layer_index, self.head)}")
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def watch_analysis(self) -> None:
        self._subtitle()

    def watch_layer_index(self) -> None:
        self._subtitle()

    def watch_head(self) -> None:
        self._subtitle()

    def watch_overview(self, on: bool) -> None:
        if on:
            self._cursor = (self.layer_index, self.head)

    # -- keys -------------------------------------------------------------------------------------------

    def action_vertical(self, delta: int) -> None:
        if self.overview and self.analysis is not None:
            layer, head = self._cursor
            self._cursor = (max(0, min(self.analysis.n_layer - 1, layer + delta)), head)
            self.refresh()
        elif self.analysis is not None:
            self.post_message(TokenSelected(max(0, min(self.analysis.n_tokens - 1, self.selected + delta))))

    def action_horizontal(self, delta: int) -> None:
        if self.overview and self.analysis is not None:
            layer, head = self._cursor
            self._cursor = (layer, max(0, min(self.analysis.n_head - 1, head + delta)))
            self.refresh()
        elif self.analysis is not None:
            self.post_message(TokenSelected(max(0, min(self.analysis.n_tokens - 1, self.selected + delta))))

    def action_pick(self) -> None:
        if self.overview:
            self.post_message(HeadPicked(*self._cursor))

    # -- drawing ----------------------------------------------------------------------------------------

    def render(self):
        a = self.analysis
        if a is None or a.attention is None:
            return message(self.notice)
        if self.overview:
            return self._render_overview(a)
        return self._render_grid(a)

    def _attended(self, a, q: int) -> Text:
        t = Text()
        t.append(f"#{q} {token_label(a.pieces[q].text, 12)}", style="bold")
        t.append(" attends most to: ")
        for k, w in a.attended(self.layer_index, self.head, q, top=5):
            t.append(token_label(a.pieces[k].text, 10), style="reverse")
            t.append(f"#{k} {pct(w)} {RAMP[ramp_level(w)]}  ")
        if _has_sinks(a, self.layer_index):
            w = sink_share(a.attention[self.layer_index, self.head], q)
            t.append(f"· the sink (no token) {pct(w)} {RAMP[ramp_level(w)]}", style="italic")
        return t

    def _render_grid(self, a):
        width, height = self.content_size.width, self.content_size.height
        T = a.n_tokens
        q = min(self.selected, T - 1)
        numbers = self.show_numbers
        label_w = 12  # "▶123 token  "
        cw = 4 if numbers else 3  # a cell; key labels alternate over two lines, 2·cw−1 wide each
        sinks = _has_sinks(a, self.layer_index)  # one more column: the sink's share of each row
        cols = max(1, (width - label_w) // cw - (1 if sinks else 0))
        grid = a.attention[self.layer_index, self.head]  # (T, T), the layer derived on first look
        # A sliding-window layer masks keys more than `window` back as well as future ones.
        window = a.attention.window(self.layer_index) if hasattr(a.attention, "window") else None
        head = Text(f"layer {self.layer_index} · head {self.head} · rows = query, columns = key", style="bold")
        attended = self._attended(a, q)  # the strongest keys, wherever they are: always listed
        tail: list[Text] = []
        n_keys = min(T, cols)
        if n_keys < T:
            tail += _whole_row(a, grid, q, width)
        else:
            tail.append(legend(numbers, window, sinks))
        attended_lines = 1 + attended.cell_len // max(1, width)
        rows = max(1, height - 3 - len(tail) - attended_lines)  # title, two key-label lines
        if rows < T or n_keys < T:
            rows = max(1, rows - 1)  # the line that says which window is shown
        n_rows = min(T, rows)
        # Keys: a window that ends a little after the query (later keys are masked anyway).
        k0 = max(0, min(q - n_keys + 1 + min(2, n_keys // 6), T - n_keys))
        keys = range(k0, k0 + n_keys)
        r0 = max(0, min(q - (2 * n_rows) // 3, T - n_rows))
        key_lines = [Text(" " * label_w), Text(" " * label_w)]
        span = 2 * cw - 1
        for n, k in enumerate(keys):
            line = key_lines[n % 2]
            pad = label_w + n * cw - line.cell_len
            if pad > 0:
                line.append(" " * pad)
            line.append(token_label(a.pieces[k].text, span).ljust(span)[:span],
                        style="bold reverse" if k == q else "dim")
        if sinks:
            line = key_lines[n_keys % 2]
            line.append(" " * max(0, label_w + n_keys * cw - line.cell_len) + "sink", style="italic")
        lines = [head, *key_lines]
        for i in range(r0, r0 + n_rows):
            line = Text()
            mark = "▶" if i == q else " "
            line.append(f"{mark}{i:>3} {token_label(a.pieces[i].text, 7):<7} ",
                        style="bold reverse" if i == q else "")
            for k in keys:
                line.append_text(cell(float(grid[i, k]), k > i or (window is not None and k <= i - window), cw, numbers))
            if sinks:
                share = cell(sink_share(grid, i), False, cw, numbers)
                share.stylize("italic")
                line.append_text(share)
            lines.append(line)
        if n_keys < T or n_rows < T:
            lines.append(Text(f"keys {k0}–{k0 + n_keys - 1}, queries {r0}–{r0 + n_rows - 1} of {T}", style="dim"))
        return Lines([*lines, *tail, attended])

    def _render_overview(self, a):
        width = self.content_size.width
        q = min(self.selected, a.n_tokens - 1)
        k = max(2, min(6, (width - 5) // max(1, a.n_head) - 1, q + 1))
        keys = range(q - k + 1, q + 1)
        lines = [Text(f"all layers × heads: what #{q} {token_label(a.pieces[q].text, 10)} attends to "
                      f"among its last {k} tokens · ←↑↓→ move · Enter picks", style="bold")]
        header = Text("    ")
        for h in range(a.n_head):
            header.append(f"h{h}".ljust(k + 1)[: k + 1], style="dim")
        lines.append(header)
        for layer in range(a.n_layer):
            line = Text(f"L{layer:<3}", style="dim")
            row = a.attention_row(layer, q)  # (H, T): one query, no need for the whole layer
            for h in range(a.n_head):
                thumb = Text()
                for key in keys:
                    w = float(row[h, key]) if key >= 0 else 0.0
                    thumb.append(RAMP[ramp_level(w)] if key >= 0 else MASKED, style=shade(w))
                if (layer, h) == self._cursor:
                    thumb.stylize("reverse")
                elif (layer, h) == (self.layer_index, self.head):
                    thumb.stylize("underline")
                line.append_text(thumb)
                line.append(" ")
            lines.append(line)
        lines.append(Text("reversed: cursor · underlined: the head shown in the grid", style="dim"))
        return Lines(lines)


def _has_sinks(a, layer: int) -> bool:
    has_sinks = getattr(a.attention, "has_sinks", None)
    return bool(has_sinks and has_sinks(layer))


def _whole_row(a, grid, q: int, width: int) -> list[Text]:
    """The selected query's weights over the whole text in one line, downsampled by max (a cell
    shows the strongest key of its span), so a strong key outside the window is still seen."""
    T = a.n_tokens
    cells = max(1, min(T, width - 14))
    per = -(-T // cells)  # keys per cell, rounded up
    row = grid[q]
    strip = Text("whole text ", style="dim")
    for c in range(0, T, per):
        span = row[c:min(T, c + per)]
        keys_after = c > q
        w = 0.0 if keys_after else float(span[: max(0, q - c + 1)].max())
        strip.append(MASKED if keys_after else RAMP[ramp_level(w)], style="dim" if keys_after else shade(w))
    note = Text(f"  ↑ #{q} over all {T} keys, downsampled: a cell is the max of {per}" if per > 1 else
                f"  ↑ #{q} over all {T} keys", style="dim")
    return [strip, note]
