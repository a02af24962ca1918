"""Generation panel: the knobs (editable here or with /commands) and the streamed continuation,
each token shaded by the probability it had when it was drawn."""

from __future__ import annotations

import codecs

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from ..messages import KnobChanged
from .style import pct, prob_style

KNOBS = (  # (name, label, width)
    ("temp", "T", 4),
    ("topk", "top-k", 5),
    ("topp", "top-p", 4),
    ("max", "max", 4),
    ("seed", "seed", 10),
)


def knob_text(name: str, value) -> str:
    if name in ("temp", "topp"):
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


class GenerationPanel(Vertical):
    """Knobs, then the continuation streamed token by token."""

    ALLOW_MAXIMIZE = True

    temperature = reactive(1.0)
    top_k = reactive(0)
    top_p = reactive(1.0)
    max_new = reactive(40)
    seed = reactive(0)
    prompt = reactive("")  # the text the run continues
    tokens = reactive(list, always_update=True)  # GeneratedToken, in order
    state = reactive("idle")  # idle | running | done | cancelled | error
    detail = reactive("")

    def compose(self) -> ComposeResult:
        with Horizontal(id="knobs"):
            for name, label, width in KNOBS:
                yield Label(label, classes="knob-label")
                field = Input(id=f"knob-{name}", compact=True, select_on_focus=True, classes="knob")
                field.styles.width = width
                field.cursor_blink = False
                yield field
        with VerticalScroll(id="gen-scroll", can_focus=False):
            yield Static(id="gen-output")
        yield Static(id="gen-status")

    def on_mount(self) -> None:
        self.border_title = "Generation"
        self._sync_knobs()
        self._redraw()

    # -- knobs: attributes down ---------------------------------------------------------------------------

    def _sync_knobs(self) -> None:
        values = {"temp": self.temperature, "topk": self.top_k, "topp": self.top_p, "max": self.max_new,
                  "seed": self.seed}
        for name, value in values.items():
            try:
                field = self.query_one(f"#knob-{name}", Input)
            except Exception:
                return
            text = knob_text(name, value)
            if not _same(name, field.value, value):
                with field.prevent(Input.Changed):
                    field.value = text
            field.remove_class("-invalid")

    def watch_temperature(self) -> None:
        self._sync_knobs()

    def watch_top_k(self) -> None:
        self._sync_knobs()

    def watch_top_p(self) -> None:
        self._sync_knobs()

    def watch_max_new(self) -> None:
        self._sync_knobs()

    def watch_seed(self) -> None:
        self._sync_knobs()

    # -- knobs: messages up ------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        name = (event.input.id or "").removeprefix("knob-")
        self.post_message(KnobChanged(name, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = (event.input.id or "").removeprefix("knob-")
        self.post_message(KnobChanged(name, event.value))

    def mark_invalid(self, name: str, invalid: bool) -> None:
        self.query_one(f"#knob-{name}", Input).set_class(invalid, "-invalid")

    # -- output --------------------------------------------------------------------------------------------

    def watch_tokens(self) -> None:
        self._redraw()

    def watch_state(self) -> None:
        self._redraw()

    def watch_prompt(self) -> None:
        self._redraw()

    def watch_detail(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        out = self.query_one("#gen-output", Static)
        if not self.tokens and self.state == "idle":
            out.update(Text("F5 or /gen N generates · F6 or /step draws one token · Esc stops", style="dim italic"))
        else:
            out.update(continuation(self.prompt, self.tokens))
            self.query_one("#gen-scroll", VerticalScroll).scroll_end(animate=False)
        status = Text()
        n = len(self.tokens)
        status.append(f"{self.state}", style="bold reverse" if self.state == "running" else "bold")
        status.append(f" · {n} token{'s' if n != 1 else ''} · seed {self.seed}")
        if self.tokens:
            status.append(f" · last p {pct(self.tokens[-1].prob)}")
        if self.detail:
            status.append(f" · {self.detail}")
        status.append("  key: ", style="dim")
        for label, p in (("≥50%", 0.5), ("≥10%", 0.1), ("≥1%", 0.01), ("<1%", 0.0)):
            status.append(label, style=prob_style(p))
            status.append(" ")
        self.query_one("#gen-status", Static).update(status)


def _same(name: str, text: str, value) -> bool:
    try:
        return (float(text) if name in ("temp", "topp") else int(text)) == value
    except ValueError:
        return False
