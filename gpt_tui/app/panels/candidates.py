"""Next-token candidates panel: the top tokens with the raw probability and, beside it, what the
sampling knobs make of it (cut tokens struck through, survivors renormalised), the first cut rows
always in view and the cut tail summarised; Enter appends the chosen token to the text."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from ..messages import CandidatePicked
from ..widgets.lines import Lines
from ..widgets.style import bar, grid, message, pct, token_label
from .base import Panel

CUT_ROWS = 2  # the first tokens the knobs cut: always in view when there are any


@dataclass(frozen=True)
class Row:
    """One candidate as the engine computed it; adjusted is None where the knobs do not apply."""

    rank: int  # 0 = the most likely
    id: int
    text: str
    logit: float
    prob: float
    cum_prob: float
    adjusted: float | None

    @property
    def cut(self) -> bool:
        return self.adjusted is not None and self.adjusted <= 0


@dataclass(frozen=True)
class StepDraw:
    """One token drawn in step mode, with the raw distribution it was drawn from."""

    k: int  # the k-th token of the continuation
    logits: object  # (V,) numpy
    chosen: int
    text: str
    seed: int
    params: object  # SamplingParams it was drawn with


@dataclass(frozen=True)
class CandidateView:
    title: str  # what these are candidates for
    rows: tuple[Row, ...]  # in display order: survivors first, then the first cut ones
    survivors: tuple[int, float] | None  # (tokens kept, raw mass kept) under the knobs; None: raw only
    vocab: int  # tokens in all
    knobs: str  # the knobs, as text
    note: str = ""
    chosen: int | None = None  # the token actually drawn (step mode), or the one the text goes on with


class CandidatesPanel(Panel, Widget, can_focus=True):
    """What the model would say next, and what the sampling knobs keep of it."""

    NAME = "candidates"
    TITLE = "Next-token candidates"
    KEY = "3"
    READS = ("session", "analysis", "selected", "params", "step", "notice")
    PLACE = ("main", 2)
    HINT = "↑↓ ⏎ append"
    DEFAULT_CSS = """
    CandidatesPanel { width: 2fr; }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "▲", show=False),
        Binding("down", "cursor(1)", "▼", show=False),
        Binding("enter", "pick", "append token", id="append_candidate"),
    ]

    session = reactive(None)
    analysis = reactive(None, always_update=True)
    selected = reactive(0)
    params = reactive(None)
    step = reactive(None)  # StepDraw while step mode shows what a token was drawn from
    cursor = reactive(0)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._memo: tuple | None = None

    @property
    def view(self) -> CandidateView | None:
        """What the panel shows for the current state (computed once per state and height)."""
        room = max(1, self.content_size.height - 4)
        key = (self.session, self.analysis, self.selected, self.params, self.step, room)
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, self._build(room))
        return self._memo[1]

    def _build(self, room: int) -> CandidateView | None:
        session, a, params = self.session, self.analysis, self.params
        if session is None or params is None:
            return None
        if self.step is not None:
            s = self.step
            return self._with_knobs(s.logits, s.params, room, f"step {s.k}: drew {token_label(s.text, 12)} from these",
                                    f"seed {s.seed} · the distribution this step was drawn from", s.chosen)
        if a is None:
            return None
        pos = min(self.selected, a.n_tokens - 1)
        after = f"after #{pos} {token_label(a.pieces[pos].text, 16)}"
        if pos == a.n_tokens - 1:
            return self._with_knobs(a.last_logits, params, room, f"next token {after} (the end of the text)")
        prediction = a.position(pos)  # derived on first look: one row of the unembedding
        probs = prediction.top_probs
        cumulative = probs.cumsum()
        actual = a.pieces[pos + 1]
        rows = tuple(Row(r, int(i), session.tokenizer.token_text(int(i)), float(lg), float(p), float(c), None)
                     for r, (i, lg, p, c) in enumerate(zip(prediction.top_ids, prediction.top_logits, probs, cumulative)))
        rank = next((r for r, row in enumerate(rows) if row.id == actual.id), None)
        where = f"rank {rank + 1}" if rank is not None else f"not in the top {len(rows)}"
        return CandidateView(f"next token {after} · the text goes on with {token_label(actual.text, 12)} ({where})",
                             rows, None, session.n_vocab, "",
                             "the knobs apply at the end of the text; here the model's raw predictions",
                             chosen=actual.id)

    def _with_knobs(self, logits, params, room: int, title: str, note: str = "", chosen: int | None = None):
        session = self.session
        kept, mass = session.survivors(logits, params)
        shown_kept = min(kept, max(1, room - (CUT_ROWS + 1 if kept < session.n_vocab else 1)))
        rows = [_row(r, c) for r, c in enumerate(session.candidates(logits, params, top=shown_kept))]
        if kept < session.n_vocab:  # the first cut ones, wherever they rank
            rows += [_row(kept + r, c) for r, c in enumerate(session.candidates(logits, params, top=CUT_ROWS, start=kept))]
        return CandidateView(title, tuple(rows), (kept, mass), session.n_vocab, params.describe(), note, chosen)

    def watch_analysis(self) -> None:
        self.cursor = 0

    def action_cursor(self, delta: int) -> None:
        view = self.view
        if view is not None and view.rows:
            self.cursor = max(0, min(len(view.rows) - 1, self.cursor + delta))

    def action_pick(self) -> None:
        view = self.view
        if view is not None and view.rows:
            self.post_message(CandidatePicked(view.rows[min(self.cursor, len(view.rows) - 1)].id))

    def render(self):
        v = self.view
        if v is None:
            return message(self.notice)
        width = self.content_size.width
        lines: list = [Text(v.title, style="bold")]
        if v.survivors is not None:
            count, mass = v.survivors
            s = Text(f"{v.knobs} → ")
            s.append(f"{count:,} of {v.vocab:,} token{'s' if count != 1 else ''} survive", style="bold")
            s.append(f", holding {pct(mass)} of the raw probability")
            lines.append(s)
        if v.note:
            lines.append(Text(v.note, style="dim italic"))
        knobs = v.survivors is not None
        wide = width >= 64
        label_w = 12 if width >= 50 else 8
        fixed = 4 + label_w + 7 + (7 if knobs else 0) + (7 + 7 if wide else 0) + 6
        bar_w = max(3, min(24, (width - fixed) // (2 if knobs else 1)))
        justify = "rllr" + ("lr" if knobs else "") + ("rr" if wide else "")
        header = ["#", "token", "raw p", ""] + (["after knobs", ""] if knobs else []) + (["logit", "cum"] if wide else [])
        cursor = min(self.cursor, max(0, len(v.rows) - 1))
        rows, styles = [], []
        for index, r in enumerate(v.rows):
            style = "dim strike" if r.cut else ""
            if index == cursor:
                style += " reverse" if self.has_focus else " underline"
            if v.chosen == r.id:
                style += " bold"
            marker = "▶" if v.chosen == r.id else ""
            cells = [f"{marker}{r.rank + 1}", token_label(r.text, label_w),
                     Text(bar(r.prob, bar_w), style="dim" if r.cut else "#7fd4a0"), pct(r.prob)]
            if knobs:
                cells += [Text(bar(r.adjusted or 0.0, bar_w), style="#e6c07a"), "cut" if r.cut else pct(r.adjusted)]
            if wide:
                cells += [f"{r.logit:.2f}", pct(r.cum_prob)]
            rows.append(cells)
            styles.append(style.strip())
        lines += grid(rows, justify, header, styles)
        if v.survivors is not None:
            count, mass = v.survivors
            shown = sum(1 for r in v.rows if not r.cut)
            more = Text(style="dim")
            if count > shown:
                shown_mass = sum(r.prob for r in v.rows if not r.cut)
                more.append(f"… {count - shown:,} more survive, holding {pct(max(0.0, mass - shown_mass))}")
            cut = v.vocab - count
            if cut:
                more.append(("  " if more.plain else "") + f"✂ {cut:,} cut, holding {pct(max(0.0, 1 - mass))} of the raw p")
            if more.plain:
                lines.append(more)
        return Lines(lines)


def _row(rank: int, c) -> Row:
    return Row(rank, c.id, c.text, c.logit, c.prob, c.cum_prob, c.adjusted_prob)
