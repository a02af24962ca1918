"""Context changes meaning (seed 000 §3.2.2): one word in two texts — "model" in "machine learning
model" and in "fashion model" — followed through the layers: the cosine of its two residual vectors
at every depth, and what the logit lens reads on each side. `/compare "A" "B" [word]` sets the texts."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ..widgets.style import bar, message, pct, token_label, visible
from .base import ComputedPanel

SEED_PAIR = ("machine learning model", "fashion model", None)  # the seeds' example
TOPS = 3


class ContextReady(Message):
    def __init__(self, key: tuple, result, error: str = "") -> None:
        super().__init__()
        self.key, self.result, self.error = key, result, error


class ContextPanel(ComputedPanel, Widget, can_focus=True):
    """The same word in two texts, depth by depth."""

    NAME = "context"
    TITLE = "Context changes meaning"
    KEY = "8"
    READS = ("session", "contrast", "notice")
    PLACE = None
    HINT = '/compare "A" "B" [word]'
    DEFAULT_CSS = """
    ContextPanel { height: 1fr; }
    """

    session = reactive(None)
    contrast = reactive(None)  # (text A, text B, word or None); None: the seeds' pair
    result = reactive(None, always_update=True)  # (Comparison, analysis A, analysis B)
    error = reactive("")

    def watch_session(self) -> None:
        self.forget()

    def watch_contrast(self) -> None:
        self.refresh_wanted()

    def wanted(self) -> tuple | None:
        return None if self.session is None else (id(self.session), *(self.contrast or SEED_PAIR))

    def compute(self, key: tuple) -> None:
        self.error = ""
        self._compare_worker(self.session, key)

    @work(thread=True, exclusive=True, group="context", exit_on_error=False)
    def _compare_worker(self, session, key: tuple) -> None:
        _, a, b, word = key
        try:
            result = session.compare(a, b, word=word, top=TOPS)
        except ValueError as exc:  # the engine's InputError: a word missing from a text, an empty text
            self.post_message(ContextReady(key, None, str(exc)))
            return
        self.post_message(ContextReady(key, result))

    def on_context_ready(self, message: ContextReady) -> None:
        message.stop()
        if not self.is_wanted(message.key):
            return
        self.error = message.error
        self.result = message.result
        if message.error:
            self.notify(message.error, title="compare", severity="error", timeout=5)

    def render(self):
        if self.session is None:
            return message(self.notice)
        if self.error:
            return message(self.error, "italic red")
        if self.result is None:
            return message("following the word through both texts…")
        comparison, a, b = self.result
        text = self.session.tokenizer.token_text
        width = self.content_size.width
        lines = []
        for name, an, pos, tok in (("A", a, comparison.position_a, comparison.token_a),
                                   ("B", b, comparison.position_b, comparison.token_b)):
            line = Text()
            line.append(f"{name} ", style="bold")
            for t, piece in enumerate(an.pieces):
                line.append(visible(piece.text), style="bold reverse" if t == pos else "")
                line.append(" ")
            line.append(f"· {visible(text(tok))} at token {pos}", style="dim")
            lines.append(line)
        same = "the same token" if comparison.token_a == comparison.token_b else "different tokens"
        lines.append(Text(f"token embeddings alone: cosine {comparison.token_cosine:.3f} ({same}); below, the "
                          "residual vectors (token + position at the embedding, then after each block)", style="dim"))
        label_w = max(5, min(12, (width - 40) // (2 * TOPS)))
        bar_w = max(6, min(20, width - 30 - 2 * TOPS * (label_w + 6)))
        table = Table.grid(padding=(0, 1))
        for justify in ("right", "left", "right", "left", "left", "left"):
            table.add_column(justify=justify, no_wrap=True)
        table.add_row(*(Text(h, style="dim") for h in ("d", "stage", "cosine", "", "A's lens reads", "B's lens reads")))
        for layer in comparison.layers:
            tops = [Text("  ".join(f"{token_label(text(int(i)), label_w)} {pct(float(p))}"
                                   for i, p in zip(e.top_ids, e.top_probs))) for e in (layer.a, layer.b)]
            table.add_row(str(layer.depth), layer.name, f"{layer.cosine:+.3f}",
                          Text(bar(max(layer.cosine, 0.0), bar_w), style="#7fb3ff"), *tops)
        return Group(*lines, Text(), table)
