"""Embedding neighbours panel: the nearest tokens to the selected one in W_E, or to an analogy
a − b + c, by cosine (of the rows as they are, or with the common direction projected out). The search
runs in the panel's own thread worker."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.reactive import reactive
from textual.widget import Widget

from ..messages import NeighboursFailed, NeighboursReady
from ..widgets.lines import Lines
from ..widgets.style import bar, grid, message, token_label
from .base import Panel

NEIGHBOURS_TOP = 20


class NeighboursPanel(Panel, Widget, can_focus=True):
    """Cosine neighbours of a token (or of an analogy a − b + c) with scores and bars."""

    NAME = "neighbours"
    TITLE = "Embedding neighbours"
    KEY = "4"
    READS = ("session", "analysis", "selected", "analogy", "without_common", "notice")
    PLACE = ("bottom", 2)
    HINT = "←→ token · c common dir."
    DEFAULT_CSS = """
    NeighboursPanel { width: 2fr; }
    """

    session = reactive(None)
    analysis = reactive(None, always_update=True)
    selected = reactive(0)
    analogy = reactive(None)  # (a, b, c) or None: the selected token's neighbours
    without_common = reactive(False)  # search W_E with the common direction projected out
    neighbours = reactive(None, always_update=True)  # engine Neighbours on screen
    error = reactive("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._wanted: tuple | None = None  # what the panel should show; results for anything else are dropped

    def watch_session(self) -> None:
        self._wanted = None
        self.soon(self._refresh_query)

    def watch_analysis(self) -> None:
        self.soon(self._refresh_query)

    def watch_selected(self) -> None:
        self.soon(self._refresh_query)

    def watch_analogy(self) -> None:
        self.soon(self._refresh_query)

    def watch_without_common(self) -> None:
        self.soon(self._refresh_query)

    def _query(self) -> tuple | None:
        if self.session is None:
            return None
        if self.analogy:
            return ("analogy", tuple(self.analogy), self.without_common)
        a = self.analysis
        if a is None:
            return None
        return ("token", int(a.ids[min(self.selected, a.n_tokens - 1)]), self.without_common)

    def _refresh_query(self) -> None:
        query = self._query()
        if query == self._wanted:
            return
        self._wanted = query
        if query is None:
            self.neighbours = None
            return
        self.error = ""
        kind, what, without_common = query
        known = self.session.known_neighbours(what, NEIGHBOURS_TOP, without_common) if kind == "token" else None
        if known is not None:  # searched already (beside the forward pass, or earlier): no worker, no flicker
            self.neighbours = known
            return
        self._search(query, self.session)

    @work(thread=True, exclusive=True, group="neighbours", exit_on_error=False)
    def _search(self, query: tuple, session) -> None:
        kind, what, without_common = query
        try:
            if kind == "analogy":
                result = session.analogy(*what, top=NEIGHBOURS_TOP, without_common=without_common)
            else:
                result = session.neighbours(what, top=NEIGHBOURS_TOP, without_common=without_common)
        except ValueError as exc:  # the engine's InputError: a word that is not one token, and the like
            self.post_message(NeighboursFailed(query, str(exc)))
            return
        except Exception as exc:
            self.post_message(NeighboursFailed(query, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(NeighboursReady(query, result, kind == "analogy"))

    def on_neighbours_ready(self, message: NeighboursReady) -> None:
        message.stop()
        if message.request_id == self._wanted:
            self.neighbours = message.neighbours

    def on_neighbours_failed(self, message: NeighboursFailed) -> None:
        message.stop()
        if message.request_id == self._wanted:
            self.error = message.message
            self.neighbours = None
            self.notify(message.message, title="neighbours", severity="error", timeout=5)

    def render(self):
        n = self.neighbours
        if n is None:
            if self.error:
                return message(self.error, "italic red")
            if self.analysis is None and not self.analogy:
                return message(self.notice)
            return message("searching…")
        head = Text()
        analogy = bool(self.analogy)
        head.append("a − b + c = " if analogy else "nearest to ", style="dim")
        head.append(n.query, style="bold")
        head.append(f" in {n.space} (cosine)", style="dim")
        notes = []
        if analogy:
            notes.append(Text("moving the selection shows a token's neighbours again", style="dim"))
        if n.rare:
            notes.append(Text("⚠ rarely seen in training: its vector means little", style="yellow"))
        if n.mostly_shared and not n.without_common:
            notes.append(Text(f"cosine {n.shared:.2f} with the direction all rows share · c compares the rest",
                              style="dim"))
        if n.min_count:
            notes.append(Text(f"tokens seen < {n.min_count} times left out · {n.searched} searched", style="dim"))
        room = max(0, self.content_size.height - 1 - len(notes))
        width = self.content_size.width
        label_w = max(6, min(18, width // 3))
        bar_w = max(4, min(40, width - label_w - 4 - 8 - 3))
        if not n.neighbours:
            return Lines([head, *notes, message("no tokens left to compare with")])
        rows = [[Text(str(rank), style="dim"), token_label(nb.text, label_w), f"{nb.cosine:+.3f}",
                 Text(bar(max(nb.cosine, 0.0), bar_w), style="#7fb3ff")]
                for rank, nb in enumerate(n.neighbours[:room], 1)]
        return Lines([head, *notes, *grid(rows, "rlrl")])
