"""Logit lens panel: for the selected token, what the model would predict after it if the residual
stream ended at each depth (through the model's own final LayerNorm and unembedding), so the answer
can be watched forming; below, the top-1 token at every position × depth, shaded by probability.

Both are computed in thread workers, and only while the panel is on screen: the overview costs
depths × positions × vocabulary × d_model and must never hold up a keystroke.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.worker import get_current_worker

from ..widgets.lines import Lines
from ..widgets.style import RAMP, grid, bar, message, pct, ramp_level, shade, token_label, visible
from .base import ComputedPanel

LENS_TOP = 5


class LensReady(Message):
    def __init__(self, key: tuple, lens) -> None:
        super().__init__()
        self.key, self.lens = key, lens


class LensGridReady(Message):
    def __init__(self, analysis, grid) -> None:
        super().__init__()
        self.analysis, self.grid = analysis, grid


class LensPanel(ComputedPanel, Widget, can_focus=True):
    """The logit lens of the selected position, and the positions × depths overview."""

    NAME = "lens"
    TITLE = "Logit lens"
    KEY = "6"
    READS = ("session", "analysis", "selected", "notice")
    PLACE = None
    HINT = "←→ token"
    DEFAULT_CSS = """
    LensPanel { height: 1fr; }
    """

    session = reactive(None)
    analysis = reactive(None, always_update=True)
    selected = reactive(0)
    lens = reactive(None, always_update=True)  # engine Lens of the selected position, or None
    grid = reactive(None, always_update=True)  # engine LensGrid of the analysis, or None

    _grid_asked = None  # the analysis whose overview a worker is computing
    _lens_key = None  # (analysis id, position) of the lens shown

    def prepare(self, analysis, position: int) -> None:
        if analysis.residual is not None:
            analysis.lens(position, top=LENS_TOP, mid=self._with_mid(analysis))

    def _with_mid(self, analysis) -> bool:
        """The mid-block rows only when there is room to draw them (they double the lens's cost)."""
        n_depths = (analysis.residual.shape[0] + 1) // 2  # the embedding and after every block
        return self.content_size.height >= 2 * n_depths + 10

    def on_resize(self) -> None:
        self.refresh_wanted()  # room for the mid-block rows, or no longer

    def watch_analysis(self) -> None:
        self.grid = None
        self._grid_asked = None
        self.workers.cancel_group(self, "lens-grid")  # an overview of an older text: nobody will see it
        self.refresh_wanted()

    def watch_selected(self) -> None:
        self.refresh_wanted()

    def _position(self) -> int | None:
        a = self.analysis
        if a is None or a.residual is None:
            return None
        return min(max(self.selected, 0), a.n_tokens - 1)

    def wanted(self) -> tuple | None:
        position = self._position()
        return None if position is None else (id(self.analysis), position, self._with_mid(self.analysis))

    def compute(self, key: tuple) -> None:
        a, position, mid = self.analysis, key[1], key[2]
        cached = a._memo.get(("lens", position, LENS_TOP, mid))
        if cached is not None:
            self._show_lens(key, cached)
        else:
            self._lens_worker(a, position, mid, key)

    def update_wanted(self) -> None:
        """The selected token's lens (see ComputedPanel), then the overview once per analysis."""
        super().update_wanted()
        self._ask_overview()

    def _ask_overview(self) -> None:
        # Only once the selected token's lens is drawn: the overview's worker would otherwise share
        # the cores with the lens's and delay what a keystroke shows first.
        a = self.analysis
        if self._lens_key is None or not self.is_wanted(self._lens_key):
            return
        if self._shown and self._position() is not None and self.grid is None and self._grid_asked is not a:
            ready = a.lens_grid_ready
            if ready is not None:
                self.grid = ready
            else:
                self._grid_asked = a
                self._grid_worker(a)

    @work(thread=True, exclusive=True, group="lens", exit_on_error=False)
    def _lens_worker(self, analysis, position: int, mid: bool, key: tuple) -> None:
        self.post_message(LensReady(key, analysis.lens(position, top=LENS_TOP, mid=mid)))

    @work(thread=True, exclusive=True, group="lens-grid", exit_on_error=False)
    def _grid_worker(self, analysis) -> None:
        worker = get_current_worker()
        grid = analysis.lens_grid(should_stop=lambda: worker.is_cancelled)
        if grid is not None:
            self.post_message(LensGridReady(analysis, grid))

    def on_lens_ready(self, message: LensReady) -> None:
        message.stop()
        if self.is_wanted(message.key):
            self._show_lens(message.key, message.lens)

    def _show_lens(self, key: tuple, lens) -> None:
        self._lens_key = key
        self.lens = lens
        self._ask_overview()

    def on_lens_grid_ready(self, message: LensGridReady) -> None:
        message.stop()
        if message.analysis is self.analysis:
            self.grid = message.grid

    # -- drawing ----------------------------------------------------------------------------------------

    def render(self):
        a, position = self.analysis, self._position()
        if a is None:
            return message(self.notice)
        if position is None:
            return message("this analysis has no residual stream")
        lens = self.lens
        if lens is None or self._lens_key is None or self._lens_key[:2] != (id(a), position) \
                or not self.is_wanted(self._lens_key):
            return message("reading the residual stream…")
        return self._draw(a, lens, position, self.content_size.width, self.content_size.height)

    def _draw(self, a, lens, position: int, width: int, height: int):
        text_of = self._token_text
        head = Text()
        head.append("after ", style="dim")
        head.append(visible(a.pieces[position].text), style="bold reverse")
        head.append(f" (token {position}) the model's top-1 is ", style="dim")
        head.append(visible(text_of(lens.final_token)), style="bold")
        head.append(" · each depth's residual → final LayerNorm → unembedding", style="dim")
        n_depths = len(lens.layers)
        with_mid = height >= 2 * n_depths + 10  # the mid-block rows when there is room for them
        rows = sorted([*lens.layers, *(lens.mid if with_mid else ())],
                      key=lambda e: e.depth + (0.5 if e in lens.mid else 0))
        label_w = max(6, min(14, (width - 40) // (LENS_TOP + 1)))
        header = ["d", "stage", "top-1", "p", "", "then", "H nats", f"rank·p of {visible(text_of(lens.final_token))}"]
        table = []
        bar_w = 10
        for e in rows:
            mid = e in lens.mid
            top_id, top_p = int(e.top_ids[0]), float(e.top_probs[0])
            style = "dim" if mid else ("bold" if e.final_token_rank == 1 else "")
            rest = "  ".join(token_label(text_of(int(i)), label_w) for i in e.top_ids[1:LENS_TOP])
            table.append(["" if mid else str(e.depth), e.name, Text(token_label(text_of(top_id), label_w), style=style),
                          pct(top_p), Text(bar(top_p, bar_w), style="#9ee6a0" if not mid else "#5f7f60"),
                          Text(rest, style="dim"), f"{e.entropy:.2f}",
                          f"{e.final_token_rank:>5} {pct(e.final_token_prob, 7)}"])
        used = 2 + len(rows)
        room = height - used - 2
        lines = [head, *grid(table, "rllrllrr", header)]
        if room >= 3:
            lines += self._overview(a, position, width, room)
        return Lines(lines)

    def _overview(self, a, position: int, width: int, room: int) -> list[Text]:
        found = self.grid
        title = Text("every token × depth: the lens's top-1, shade = its probability "
                     f"(ramp '{RAMP}')", style="dim")
        if found is None:
            return [title, message("computing the overview in the background…")]
        depths, T = found.top_ids.shape
        label_w = max(4, min(10, (width - 14) // depths - 1))
        rows = room - 2
        first = max(0, min(position - rows // 2, T - rows))
        names = ["emb", *(f"b{d}" for d in range(depths - 1))]
        table = [["", "", *(Text(n, style="dim") for n in names)]]
        for t in range(first, min(T, first + rows)):
            cells = []
            for d in range(depths):
                p = float(found.top_probs[d, t])
                glyph = RAMP[ramp_level(p)]
                cell = Text(glyph + token_label(self._token_text(int(found.top_ids[d, t])), label_w - 1),
                            style=f"on {shade(p)}")
                cells.append(cell)
            me = t == position
            table.append([Text(str(t), style="bold" if me else "dim"),
                          Text(token_label(a.pieces[t].text, 8), style="bold reverse" if me else ""), *cells])
        return [title, *grid(table, "rl" + "l" * depths, min_widths=[0, 0, *[label_w] * depths])]

    def _token_text(self, token_id: int) -> str:
        return self.session.tokenizer.token_text(token_id) if self.session is not None else str(token_id)
