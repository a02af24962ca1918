"""Generation panel: the knobs (editable here or with /commands) and the streamed continuation,
each token shaded by the probability it had when it was drawn."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Label

from ..messages import KnobChanged
from ..widgets.text_view import TextView
from ..widgets.style import pct, prob_style
from .base import Panel

KNOBS = (  # (name, label, at least this wide)
    ("temperature", "T", 4),
    ("top_k", "top-k", 4),
    ("top_p", "top-p", 4),
    ("max", "max", 4),
    ("seed", "seed", 6),
)


@dataclass(frozen=True)
class GenerationView:
    """The continuation on screen."""

    prompt: str = ""  # the text it continues
    tokens: tuple = ()  # engine GeneratedToken, in order
    state: str = "idle"  # idle | running | done | cancelled | error
    detail: str = ""
    seed: int | None = None  # the seed it was drawn with


def knob_text(name: str, value) -> str:
    if name == "top_k" and value == 0:
        return "off"
    if name == "top_p" and value == 1:
        return "off"
    if name in ("temperature", "top_p"):
        return f"{value:g}"
    return str(value)


def continuation(prompt: str, tokens) -> Text:
    """The prompt (dim) and the generated tokens, each styled by its probability.

    A character split over several tokens (“, an emoji) appears whole, in the style of the token
    that completes it.
    """
    text = Text(prompt[-400:], style="dim")
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for tok in tokens:
        text.append(utf8.decode(tok.bytes) if tok.bytes else tok.text, style=prob_style(tok.prob))
    return text


class GenerationPanel(Panel, Vertical):
    """Knobs, then the continuation streamed token by token."""

    NAME = "generation"
    TITLE = "Generation"
    KEY = "5"
    READS = ("params", "max_new", "seed", "seed_pinned", "generation")
    PLACE = ("bottom", 3)
    HINT = "Tab next knob  ⏎ apply"
    DEFAULT_CSS = """
    GenerationPanel { width: 3fr; }
    GenerationPanel #knobs { height: 1; }
    GenerationPanel .knob-label { padding: 0 1 0 1; color: $text-muted; }
    GenerationPanel .knob-label.-invalid { color: $error; text-style: bold; }
    GenerationPanel Input.knob { margin: 0 0; padding: 0; }
    GenerationPanel Input.knob.-invalid { color: $error; text-style: bold underline; }
    GenerationPanel #gen-scroll { height: 1fr; }
    GenerationPanel #gen-status { height: auto; max-height: 2; }
    """

    params = reactive(None)  # SamplingParams
    max_new = reactive(40)
    seed = reactive(0)  # of the next run
    seed_pinned = reactive(False)
    generation = reactive(GenerationView(), always_update=True)

    def compose(self) -> ComposeResult:
        with Horizontal(id="knobs"):
            for name, label, width in KNOBS:
                yield Label(label, classes="knob-label", id=f"knob-label-{name}")
                field = Input(id=f"knob-{name}", compact=True, select_on_focus=True, classes="knob")
                field.styles.width = width + 1
                field.cursor_blink = False
                yield field
        with VerticalScroll(id="gen-scroll", can_focus=False):
            yield TextView(id="gen-output")
        yield TextView(id="gen-status")

    def on_mount(self) -> None:
        self._sync_knobs()
        self._redraw()

    # -- knobs: attributes down ---------------------------------------------------------------------------

    def _values(self) -> dict:
        p = self.params
        values = {"max": self.max_new, "seed": self.seed}
        if p is not None:
            values.update(temperature=p.temperature, top_k=p.top_k, top_p=p.top_p)
        return values

    def _sync_knobs(self) -> None:
        if not self.is_mounted:
            return
        for name, value in self._values().items():
            field = self.query_one(f"#knob-{name}", Input)
            if field.has_focus and _same(name, field.value, value):
                continue  # the user is typing it: leave their text alone
            text = knob_text(name, value)
            if field.value != text:
                with field.prevent(Input.Changed):
                    field.value = text
            self._fit(field)
            self.mark_invalid(name, False)
        label = self.query_one("#knob-label-seed", Label)
        label.update("seed📌" if self.seed_pinned else "seed")
        label.tooltip = "pinned: every run uses it (/seed auto unpins)" if self.seed_pinned else \
            "a new seed per run; /seed S pins one"

    def _fit(self, field: Input) -> None:
        """Wide enough for the whole value: a knob is never shown clipped."""
        least = next(w for n, _, w in KNOBS if f"knob-{n}" == field.id)
        width = max(least, len(field.value)) + 1
        if field.styles.width is None or field.styles.width.value != width:
            field.styles.width = width

    def watch_params(self) -> None:
        self._sync_knobs()

    def watch_max_new(self) -> None:
        self._sync_knobs()

    def watch_seed(self) -> None:
        self._sync_knobs()

    def watch_seed_pinned(self) -> None:
        self._sync_knobs()
        self._redraw()

    # -- knobs: messages up ------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._fit(event.input)
        name = (event.input.id or "").removeprefix("knob-")
        self.post_message(KnobChanged(name, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = (event.input.id or "").removeprefix("knob-")
        self.post_message(KnobChanged(name, event.value))

    def mark_invalid(self, name: str, invalid: bool) -> None:
        """An invalid value stays as typed, marked (✗ and red), and the knob keeps its last valid value."""
        self.query_one(f"#knob-{name}", Input).set_class(invalid, "-invalid")
        label = self.query_one(f"#knob-label-{name}", Label)
        label.set_class(invalid, "-invalid")
        text = next(lbl for n, lbl, _ in KNOBS if n == name)
        if name == "seed" and self.seed_pinned:
            text = "seed📌"
        label.update(f"{text}✗" if invalid else text)

    # -- output --------------------------------------------------------------------------------------------

    def watch_generation(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        g = self.generation
        out = self.query_one("#gen-output", TextView)
        if not g.tokens and g.state == "idle":
            out.show(Text("F5 generates · F6 draws one token · Esc stops · F7 takes the text", style="dim italic"))
        else:
            out.show(continuation(g.prompt, g.tokens))
            self.query_one("#gen-scroll", VerticalScroll).scroll_end(animate=False)
        status = Text()
        n = len(g.tokens)
        status.append(f"{g.state}", style="bold reverse" if g.state == "running" else "bold")
        status.append(f" · {n} token{'s' if n != 1 else ''}")
        if g.seed is not None:
            status.append(f" · seed {g.seed}")
        if g.tokens:
            status.append(f" · last p {pct(g.tokens[-1].prob)}")
        if g.detail:
            status.append(f" · {g.detail}")
        status.append(" · next run: " + (f"seed {self.seed} (pinned)" if self.seed_pinned else "a new seed"),
                      style="dim")
        status.append("  key: ", style="dim")
        for label, p in (("≥50%", 0.5), ("≥10%", 0.1), ("≥1%", 0.01), ("<1%", 0.0)):
            status.append(label, style=prob_style(p))
            status.append(" ")
        self.query_one("#gen-status", TextView).show(status)


def _same(name: str, text: str, value) -> bool:
    if text.strip().lower() == "off":
        return knob_text(name, value) == "off"
    try:
        return (float(text) if name in ("temperature", "top_p") else int(text)) == value
    except ValueError:
        return False
