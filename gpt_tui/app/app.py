"""GptTuiApp: the interactive session. The screen holds the state (the analysis, the selected
token, layer, head, knobs); the panels get it by data binding and send messages up. Every
blocking call (loading, the forward pass, neighbours, generation) runs in a thread worker."""

from __future__ import annotations

import asyncio
import gc
import importlib
import signal
import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static, Tab, Tabs
from textual.worker import get_current_worker

from .commands import CommandError, GptCommands, number, parse
from .messages import (
    AnalysisFailed,
    AnalysisReady,
    CandidatePicked,
    EncodingsFound,
    GenerationDone,
    GenerationStep,
    HeadPicked,
    KnobChanged,
    ModelFailed,
    ModelLoaded,
    NeighboursFailed,
    NeighboursReady,
    TokenSelected,
)
from .widgets.attention import AttentionPanel
from .widgets.candidates import CandidatesPanel, CandidateView, Row
from .widgets.generation import GenerationPanel
from .widgets.help import HelpScreen
from .widgets.neighbours import NeighboursPanel
from .widgets.prompt import PromptLine
from .widgets.style import token_label
from .widgets.tokens import TokensPanel

# An emptied line clears the panels only after this pause: it is often emptied to type a /command,
# and the panels then keep the text (see _prompt_changed).
DEBOUNCE_S = 0.05
# A streaming generation is painted at most this often, several tokens at a time when they come
# faster. Painting holds the interpreter lock for milliseconds, and the decoding thread needs it
# between every two operations of a forward pass: a paint per token would slow decoding by a third.
GENERATION_PAINT_S = 1 / 12
NEWLINE = "⏎"  # how a newline looks in the one-line prompt
CANDIDATES_TOP = 20
NEIGHBOURS_TOP = 20
PANELS = ("tokens", "neighbours", "attention", "candidates", "generation")
TITLES = {"tokens": "Tokens", "neighbours": "Neighbours", "attention": "Attention",
          "candidates": "Candidates", "generation": "Generation"}


def _import_engine() -> None:
    """Import torch and the engine (the load worker's first second) with the cyclic garbage
    collector paused, then freeze what the imports made. Those hundreds of thousands of objects
    live as long as the process; left in the collector, every full collection walks them all
    (~100 ms with the GIL held, stalling the UI thread too: once just before the model's status
    is painted, and again while the user types). Once per process: later loads import nothing."""
    if "torch" in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module("gpt_tui.engine.session")  # torch, numpy, tiktoken and the engine
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def to_prompt(text: str) -> str:
    """The text as the one-line prompt shows it: newlines as ⏎, a leading / doubled."""
    shown = text.replace("\n", NEWLINE)
    return "/" + shown if shown.startswith("/") else shown


def from_prompt(value: str) -> str:
    """The prompt line back to the text: ⏎ is a newline, // a literal leading slash."""
    value = value[1:] if value.startswith("//") else value
    return value.replace(NEWLINE, "\n")


class ExplorerScreen(Screen):
    """The five panels over a REPL prompt line."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    AUTO_FOCUS = "#prompt"
    ALLOW_IN_MAXIMIZED_VIEW = "#prompt-row, Footer"

    BINDINGS = [
        Binding("f1", "command('/help')", "help", id="help"),
        Binding("f5,ctrl+g", "command('/gen')", "generate", id="generate"),
        Binding("f6,ctrl+n", "command('/step')", "step", id="step"),
        Binding("escape", "command('/stop')", "stop", id="stop"),
        Binding("f7,ctrl+y", "command('/take')", "take text", id="take"),
        Binding("f2", "command('/ids')", "ids", id="ids"),
        Binding("f3", "command('/compare')", "encodings", id="compare"),
        Binding("f4", "command('/overview')", "heads", id="overview"),
        Binding("f8", "command('/numbers')", "numbers", id="numbers"),
        Binding("f9", "command('/max')", "max", id="maximize"),
        Binding("comma,alt+up", "layer(-1)", "layer−", id="layer_prev", show=False),
        Binding("full_stop,alt+down", "layer(1)", "layer+", id="layer_next", show=False),
        Binding("left_square_bracket,alt+left", "head(-1)", "head−", id="head_prev", show=False),
        Binding("right_square_bracket,alt+right", "head(1)", "head+", id="head_next", show=False),
        Binding("left", "select(-1)", "◀ token", id="select_prev", show=False),
        Binding("right", "select(1)", "token ▶", id="select_next", show=False),
        Binding("home", "select_at(0)", "first token", id="select_first", show=False),
        Binding("end", "select_at(-1)", "last token", id="select_last", show=False),
        Binding("ctrl+t", "knobs", "knobs", id="knobs", show=False),
        Binding("ctrl+o", "prefill('/model ')", "model", id="model", show=False),
        Binding("ctrl+r", "prefill('/analogy ')", "analogy", id="analogy", show=False),
        Binding("ctrl+l", "command('/clear')", "clear", id="clear", show=False),
        Binding("slash", "prefill('/')", "command", id="command_line", show=False),
        *(Binding(f"alt+{i}", f"panel('{name}')", TITLES[name], id=f"panel_{name}", show=False)
          for i, name in enumerate(PANELS, 1)),
    ]

    # The screen's state. `var`, not `reactive`: the screen draws nothing of its own, and a reactive
    # change would repaint it whole (every panel, ~60 ms) where only the panels bound to it need it.
    analysis = var(None, always_update=True)
    selected = var(0)
    layer_index = var(0)
    head = var(0)
    show_ids = var(False)
    compare = var(True)
    show_numbers = var(False)
    overview = var(False)
    encodings = var(dict, always_update=True)
    tokenizer_name = var("gpt2")
    temperature = var(1.0)
    top_k = var(0)
    top_p = var(1.0)
    max_new = var(40)
    seed = var(0)

    def __init__(self, model: str | None, device: str, dtype: str, session: Any = None,
                 encodings: list[str] | None = None, seed: int | None = None, text: str = "") -> None:
        super().__init__()
        self.model_spec = model
        self.device = device
        self.dtype = dtype
        self.session = None
        self._initial_session = session
        self._encoding_names = encodings  # None: whatever is available offline
        self._initial_seed = seed
        self.text = text  # the text the panels show (a /command being typed never replaces it)
        self._last_text = text  # the last non-empty text: it comes back after a command on an empty line
        self.request_id = 0  # the latest analysis asked for; older results are dropped
        self.analyses_requested = 0  # counted for tests: moving layer/head must not add any
        self._debounce: Timer | None = None
        self._busy = False  # one analysis at a time; the latest text wins
        self._pending = False
        self._follow_end = True  # the selection follows the last token until the user moves it
        self._neighbours_id = 0
        self._neighbours_token: int | None = None
        self._analogy: tuple[str, str, str] | None = None
        self._run_id = 0
        self._stopped_run = -1
        self._gen_prompt_ids: list[int] = []
        self._gen_prompt_text = ""
        self._gen_tokens: list = []
        self._paint_timer = None  # pending paint of streamed tokens
        self._step_view: CandidateView | None = None
        self._active = "tokens"

    # -- layout -----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        S = ExplorerScreen
        yield Static(Text("gpt-tui · starting…"), id="status")
        yield Tabs(*(Tab(TITLES[n], id=f"tab-{n}") for n in PANELS), id="panel-tabs")
        with Vertical(id="panels"):
            with Horizontal(id="row-top", classes="row"):
                yield TokensPanel(id="tokens", classes="panel").data_bind(
                    S.analysis, S.selected, S.show_ids, S.compare, S.encodings, S.tokenizer_name)
            with Horizontal(id="row-middle", classes="row"):
                yield AttentionPanel(id="attention", classes="panel").data_bind(
                    S.analysis, S.selected, S.layer_index, S.head, S.show_numbers, S.overview)
                yield NeighboursPanel(id="neighbours", classes="panel")
            with Horizontal(id="row-bottom", classes="row"):
                yield CandidatesPanel(id="candidates", classes="panel")
                yield GenerationPanel(id="generation", classes="panel").data_bind(
                    S.temperature, S.top_k, S.top_p, S.max_new, S.seed)
        with Horizontal(id="prompt-row"):
            yield Label("›", id="prompt-mark")
            prompt = PromptLine(id="prompt", value=to_prompt(self.text), compact=True)
            prompt.cursor_blink = False if self.app.is_headless else prompt.cursor_blink
            yield prompt
        yield Footer()

    def on_mount(self) -> None:
        self._show_panel("tokens", focus=False)
        if self._initial_seed is not None:
            self.seed = self._initial_seed
        if self._initial_session is not None:
            names = self._encoding_names if self._encoding_names is not None else []
            self.post_message(ModelLoaded(self._initial_session, names))
        else:
            self.call_after_refresh(self.load, self.model_spec)

    # -- model ------------------------------------------------------------------------------------------

    def load(self, spec: str | None) -> None:
        label = spec or "the bundled model"
        self._set_status(Text(f"loading {label} on {self.device}…", style="bold yellow"))
        for panel in ("tokens", "attention", "neighbours", "candidates"):
            if self.session is None:
                self.query_one(f"#{panel}").status = f"loading {label}…"
        self._load_worker(spec)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self, spec: str | None) -> None:
        _import_engine()
        from gpt_tui.engine.fast import set_interactive_threads
        from gpt_tui.engine.loading import ModelLoadError
        from gpt_tui.engine.session import Session
        from gpt_tui.engine.tokenizer import available_encodings

        set_interactive_threads()  # leave a core to the UI, or decoding stalls while it paints
        try:
            session = Session.open(spec, device=self.device, dtype=self.dtype)
        except ModelLoadError as exc:
            self.post_message(ModelFailed(spec, str(exc)))
            return
        except MemoryError:
            self.post_message(ModelFailed(spec, "out of memory while loading the model"))
            return
        except Exception as exc:  # e.g. torch.OutOfMemoryError: a message, never a traceback
            self.post_message(ModelFailed(spec, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
            return
        names = self._encoding_names
        if names is not None:
            self.post_message(ModelLoaded(session, [n for n in names if n != session.tokenizer.name]))
            return
        # All those available offline: the model is ready before they are known (see EncodingsFound).
        self.post_message(ModelLoaded(session, None))
        try:
            names = available_encodings()
        except Exception:
            names = []
        self.post_message(EncodingsFound(session, [n for n in names if n != session.tokenizer.name]))

    def on_encodings_found(self, message: EncodingsFound) -> None:
        if message.session is not self.session:
            return  # another model was loaded since; its own load looks again
        self._encoding_names = message.encodings
        if self.text and message.encodings:
            self._request_analysis(now=True)  # a text typed while loading: compare it too

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.session = message.session
        self.tokenizer_name = self.session.tokenizer.name
        self._encoding_names = message.encodings
        knobs = self.session.default_sampling  # the model's generation_config.json, else T=1, no cuts
        self.temperature, self.top_k, self.top_p = knobs.temperature, knobs.top_k, knobs.top_p
        if self._initial_seed is None and not self._gen_tokens:
            self.seed = self.session.new_seed()
        info = self.session.info()
        status = Text()
        status.append("gpt-tui ", style="bold")
        status.append(f"· {self.session.name} ", style="bold reverse")
        status.append(f" {_human(info['parameters'])} params · {info['n_layer']} layers × {info['n_head']} heads"
                      f" · d_model {info['n_embd']} · ctx {info['n_ctx']} · {info['device']} {info['dtype']}")
        self._set_status(status)
        self.layer_index = min(self.layer_index, info["n_layer"] - 1)
        self.head = min(self.head, info["n_head"] - 1)
        self._neighbours_token = None
        self._analogy = None
        for panel in ("tokens", "attention", "neighbours", "candidates"):
            self.query_one(f"#{panel}").status = "type some text in the prompt below"
        if message.session is not self._initial_session or self.text:
            self.notify(f"model {self.session.name} ready", timeout=2)
        self._request_analysis(now=True)

    def on_model_failed(self, message: ModelFailed) -> None:
        hint = " · type /model PATH to load one"
        if self.session is None:
            self._set_status(Text(f"no model: {message.message}{hint}", style="bold red"))
            for panel in ("tokens", "attention", "neighbours", "candidates"):
                self.query_one(f"#{panel}").status = f"no model loaded: {message.message}"
        self.notify(message.message, title="could not load the model", severity="error", timeout=8)

    def _set_status(self, text: Text) -> None:
        self.query_one("#status", Static).update(text)

    # -- the prompt -------------------------------------------------------------------------------------

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        if event.value.startswith("/") and not event.value.startswith("//"):
            # A command being typed: the panels keep showing the text. If the line was only just
            # emptied to type it, the emptying is forgotten before it reached the panels.
            if self._debounce is not None and not self.text:
                self._debounce.stop()
                self._debounce = None
                self.text = self._last_text
            return
        text = from_prompt(event.value)
        if text == self.text and self._debounce is None:
            return  # e.g. the text put back after a command: nothing to re-run
        self.text = text
        if self.text:
            self._last_text = self.text
        self._step_view = None
        self._request_analysis()

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        prompt = self.query_one("#prompt", PromptLine)
        line = event.value
        prompt.remember(line)
        if line.startswith("/") and not line.startswith("//"):
            self.set_prompt(self.text or self._last_text)  # the text comes back after a command
            self.run_command(line)
        else:
            self._request_analysis(now=True)

    def set_prompt(self, text: str) -> None:
        """Put text in the prompt line (and analyse it)."""
        prompt = self.query_one("#prompt", PromptLine)
        shown = to_prompt(text)
        if prompt.value != shown:
            prompt.value = shown
        prompt.cursor_position = len(prompt.value)
        if self.text != text:
            self.text = text
            self._request_analysis()
        if text:
            self._last_text = text

    def prefill(self, line: str) -> None:
        """Start a /command in the prompt for the user to finish."""
        prompt = self.query_one("#prompt", PromptLine)
        prompt.value = line
        prompt.cursor_position = len(line)
        prompt.focus()

    # -- analysis ---------------------------------------------------------------------------------------

    def _request_analysis(self, now: bool = False) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if now or self.text:
            # At once: while a pass runs, _start_analysis only notes that the text moved on, and the
            # newest text runs when it ends, so fast typing costs one pass at a time, never a queue.
            self._start_analysis()
        else:
            self._debounce = self.set_timer(DEBOUNCE_S, self._start_analysis)

    def _start_analysis(self) -> None:
        self._debounce = None
        if self.session is None:
            return
        if not self.text:
            self.request_id += 1
            self.analysis = None
            for panel in ("tokens", "attention", "neighbours", "candidates"):
                self.query_one(f"#{panel}").status = "type some text in the prompt below"
            self.query_one("#neighbours", NeighboursPanel).neighbours = None
            self.query_one("#candidates", CandidatesPanel).view = None
            return
        if self._busy:
            self._pending = True
            return
        self.request_id += 1
        self.analyses_requested += 1
        self._busy = True
        self._pending = False
        self._analyse_worker(self.request_id, self.session, self.text, tuple(self._encoding_names or ()))

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _analyse_worker(self, request_id: int, session, text: str, encodings: tuple[str, ...]) -> None:
        from gpt_tui.engine.session import InputError
        from gpt_tui.engine.tokenizer import get_tokenizer

        try:
            analysis = session.analyse(text)
            others = {}
            for name in encodings:
                try:
                    others[name] = tuple(get_tokenizer(name).tokenize(text))
                except Exception:
                    continue
        except InputError as exc:
            self.post_message(AnalysisFailed(request_id, str(exc)))
            return
        except Exception as exc:  # out of memory and the like: a message, not a crash
            self.post_message(AnalysisFailed(request_id, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
            return
        self.post_message(AnalysisReady(request_id, analysis, others))

    def _analysis_finished(self) -> None:
        self._busy = False
        if self._pending:
            self._pending = False
            self._start_analysis()

    def on_analysis_ready(self, message: AnalysisReady) -> None:
        self._analysis_finished()
        if message.request_id != self.request_id or message.analysis.text != self.text:
            return  # stale: the text changed since
        a = message.analysis
        if a.dropped and (self.analysis is None or self.analysis.dropped != a.dropped):
            self.notify(f"the text is longer than the model's context ({self.session.n_ctx} tokens): "
                        f"the first {a.dropped} tokens were left out", severity="warning", timeout=5)
        if self._follow_end or self.selected >= a.n_tokens:
            self.set_reactive(ExplorerScreen.selected, a.n_tokens - 1)
        self.encodings = message.encodings
        self.analysis = a
        self.mutate_reactive(ExplorerScreen.selected)  # panels and watchers see the pair together

    def on_analysis_failed(self, message: AnalysisFailed) -> None:
        self._analysis_finished()
        if message.request_id == self.request_id:
            self.notify(message.message, title="cannot analyse", severity="error", timeout=5)

    # -- selection -----------------------------------------------------------------------------------------

    def on_token_selected(self, message: TokenSelected) -> None:
        self._select(message.index)

    def _select(self, index: int | None) -> None:
        a = self.analysis
        if a is None:
            return
        if index is None or index < 0 or index >= a.n_tokens - 1:
            self._follow_end = index is None or index < 0 or index >= a.n_tokens - 1
            index = a.n_tokens - 1
        else:
            self._follow_end = False
        self._step_view = None
        self.selected = index

    def watch_selected(self) -> None:
        if self.analysis is not None:
            self._update_candidates()
            self._update_neighbours()

    def action_select(self, delta: int) -> None:
        if self.analysis is not None:
            self._select(max(0, min(self.analysis.n_tokens - 1, self.selected + delta)))

    def action_select_at(self, index: int) -> None:
        self._select(None if index < 0 else index)

    # -- neighbours ------------------------------------------------------------------------------------------

    def _update_neighbours(self) -> None:
        a = self.analysis
        if a is None or self.session is None or self._analogy is not None:
            return
        token = int(a.ids[min(self.selected, a.n_tokens - 1)])
        if token == self._neighbours_token:
            return
        self._neighbours_token = token
        self._neighbours_id += 1
        self._neighbours_worker(self._neighbours_id, self.session, token, None)

    @work(thread=True, exclusive=True, group="neighbours", exit_on_error=False)
    def _neighbours_worker(self, request_id: int, session, token: int | None, words) -> None:
        try:
            if words is not None:
                result = session.analogy(*words, top=NEIGHBOURS_TOP)
            else:
                result = session.neighbours(token, top=NEIGHBOURS_TOP)
        except ValueError as exc:  # InputError is a ValueError
            self.post_message(NeighboursFailed(request_id, str(exc)))
            return
        except Exception as exc:
            self.post_message(NeighboursFailed(request_id, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(NeighboursReady(request_id, result, words is not None))

    def on_neighbours_ready(self, message: NeighboursReady) -> None:
        if message.request_id == self._neighbours_id:
            panel = self.query_one("#neighbours", NeighboursPanel)
            panel.analogy = message.analogy
            panel.neighbours = message.neighbours

    def on_neighbours_failed(self, message: NeighboursFailed) -> None:
        if message.request_id == self._neighbours_id:
            self.notify(message.message, title="neighbours", severity="error", timeout=5)

    # -- candidates ------------------------------------------------------------------------------------------

    @property
    def params(self):
        from gpt_tui.engine.sampling import SamplingParams

        return SamplingParams(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)

    def _knobs_text(self) -> str:
        return (f"T={self.temperature:g}{' (greedy)' if self.temperature == 0 else ''} · "
                f"top-k={self.top_k or 'off'} · top-p={self.top_p:g}{' (off)' if self.top_p == 1 else ''}")

    def _view_from_logits(self, logits, title: str, note: str = "", chosen: int | None = None) -> CandidateView:
        from gpt_tui.engine.session import Session

        params = self.params
        rows = tuple(Row(c.id, c.text, c.logit, c.prob, c.cum_prob, c.adjusted_prob)
                     for c in self.session.candidates(logits, params, top=CANDIDATES_TOP))
        return CandidateView(title, rows, Session.survivors(logits, params), self._knobs_text(), note, chosen)

    def _update_candidates(self) -> None:
        panel = self.query_one("#candidates", CandidatesPanel)
        if self._step_view is not None:
            panel.view = self._step_view
            return
        a = self.analysis
        if a is None or self.session is None:
            panel.view = None
            return
        pos = min(self.selected, a.n_tokens - 1)
        after = f"after #{pos} {token_label(a.pieces[pos].text, 16)}"
        if pos == a.n_tokens - 1:
            panel.view = self._view_from_logits(a.last_logits, f"next token {after} (the end of the text)")
            return
        prediction = a.position(pos)  # derived on first look: one row of the unembedding
        probs = prediction.top_probs
        cumulative = probs.cumsum()
        actual = a.pieces[pos + 1]
        rows = tuple(Row(int(i), self.session.tokenizer.token_text(int(i)), float(lg), float(p), float(c), None)
                     for i, lg, p, c in zip(prediction.top_ids, prediction.top_logits, probs, cumulative))
        rank = next((r for r, row in enumerate(rows) if row.id == actual.id), None)
        where = f"rank {rank + 1}" if rank is not None else f"not in the top {len(rows)}"
        panel.view = CandidateView(
            f"next token {after} · the text goes on with {token_label(actual.text, 12)} ({where})", rows, None, "",
            "the knobs apply at the last token; here the model's raw predictions", chosen=actual.id)

    def on_candidate_picked(self, message: CandidatePicked) -> None:
        if self.session is None:
            return
        data = self.session.tokenizer.token_bytes(message.id)
        try:
            piece = data.decode("utf-8")
        except UnicodeDecodeError:
            self.notify("that token is part of a character (bytes " + data.hex(" ") + "); it cannot be typed as text",
                        severity="warning", timeout=5)
            return
        a = self.analysis
        base = self.text
        if a is not None and self.selected < a.n_tokens - 1:
            base = self.text[: a.pieces[self.selected].end]  # continue after the selected token
        self._follow_end = True
        self.set_prompt(base + piece)

    # -- knobs ----------------------------------------------------------------------------------------------

    def set_knob(self, name: str, value: str) -> None:
        """Set one knob from text; CommandError with a clear message when it is not valid."""
        if name == "temp":
            self.temperature = number(value, float, "temperature", 0, 100)
        elif name == "topk":
            self.top_k = number(value, int, "top-k", 0)
        elif name == "topp":
            p = number(value, float, "top-p", 0, 1)
            if p <= 0:
                raise CommandError("top-p must be above 0 (1 means off)")
            self.top_p = p
        elif name == "max":
            self.max_new = number(value, int, "max new tokens", 1, 100000)
        elif name == "seed":
            self.seed = number(value, int, "seed", 0, 2**63 - 1)
        else:
            raise CommandError(f"unknown knob {name}")
        self._step_view = None
        if self.analysis is not None:
            self._update_candidates()

    def on_knob_changed(self, message: KnobChanged) -> None:
        panel = self.query_one("#generation", GenerationPanel)
        try:
            self.set_knob(message.name, message.value)
            panel.mark_invalid(message.name, False)
        except CommandError as exc:
            panel.mark_invalid(message.name, True)
            if message.name and message.value and not message.value.endswith((".", "-")):
                self.notify(str(exc), severity="error", timeout=3)

    def action_knobs(self) -> None:
        self._show_panel("generation", focus=False)
        self.query_one("#knob-temp", Input).focus()

    # -- generation ------------------------------------------------------------------------------------------

    def generate(self, n: int | None = None, step: bool = False) -> None:
        if self.session is None:
            raise CommandError("no model loaded yet")
        panel = self.query_one("#generation", GenerationPanel)
        if self._gen_running():
            raise CommandError("already generating; Esc stops it")
        fresh = not step or not self._gen_tokens or self._gen_prompt_text != self.text or panel.state == "idle"
        if fresh:
            self._gen_prompt_text = self.text
            self._gen_prompt_ids = self.session.encode(self.text).ids if self.text else []
            self._gen_tokens = []
            panel.prompt = self.text
            panel.tokens = []
        ids = self._gen_prompt_ids + [t.id for t in self._gen_tokens]
        seed = self.seed + len(self._gen_tokens) if step else self.seed
        count = 1 if step else (n or self.max_new)
        self._run_id += 1
        panel.state = "running"
        panel.detail = "step" if step else f"up to {count} tokens"
        self._gen_worker(self._run_id, self.session, ids, self.params, count, seed, step)

    def _gen_running(self) -> bool:
        return any(w.group == "generation" and w.is_running for w in self.workers)

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def _gen_worker(self, run_id: int, session, ids: list[int], params, count: int, seed: int, step: bool) -> None:
        worker = get_current_worker()
        try:
            for token in session.generate(ids, params, count, seed, should_stop=lambda: worker.is_cancelled,
                                          with_logits=step):
                if worker.is_cancelled:
                    break
                self.post_message(GenerationStep(run_id, token, step))
        except Exception as exc:
            self.post_message(GenerationDone(run_id, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
            return
        self.post_message(GenerationDone(run_id, cancelled=worker.is_cancelled))

    def on_generation_step(self, message: GenerationStep) -> None:
        if message.run_id != self._run_id or message.run_id == self._stopped_run:
            return
        self._gen_tokens.append(message.token)
        if message.step:
            self._show_generated()
        elif self._paint_timer is None:
            self._paint_timer = self.set_timer(GENERATION_PAINT_S, self._show_generated)
        if message.step and message.token.logits is not None:
            k = len(self._gen_tokens)
            self._step_view = self._view_from_logits(
                message.token.logits,
                f"step {k}: drew {token_label(message.token.text, 12)} from these",
                f"seed {self.seed}+{k - 1} · the distribution the step was drawn from", chosen=message.token.id)
            self._update_candidates()

    def _show_generated(self) -> None:
        """Paint the tokens generated so far (on a timer while streaming, see GENERATION_PAINT_S)."""
        if self._paint_timer is not None:
            self._paint_timer.stop()
            self._paint_timer = None
        panel = self.query_one("#generation", GenerationPanel)
        if len(panel.tokens) != len(self._gen_tokens):
            panel.tokens = list(self._gen_tokens)

    def on_generation_done(self, message: GenerationDone) -> None:
        if message.run_id != self._run_id or message.run_id == self._stopped_run:
            return
        self._show_generated()
        panel = self.query_one("#generation", GenerationPanel)
        if message.error:
            panel.state = "error"
            panel.detail = message.error
            self.notify(message.error, title="generation stopped", severity="error", timeout=6)
        else:
            panel.state = "cancelled" if message.cancelled else "done"
            eot = self._gen_tokens and self.session and self._gen_tokens[-1].id == self.session.tokenizer.eot_id
            panel.detail = "ended at <|endoftext|>" if eot else ""

    def stop(self) -> bool:
        """Stop a running generation at once, keeping what it wrote; True if one was running."""
        if not self._gen_running():
            return False
        self._stopped_run = self._run_id
        self.workers.cancel_group(self, "generation")
        self._show_generated()
        panel = self.query_one("#generation", GenerationPanel)
        panel.state = "cancelled"
        panel.detail = "stopped with Esc; the text is kept"
        return True

    def take(self) -> None:
        if not self._gen_tokens:
            raise CommandError("nothing generated yet; F5 or /gen first")
        self.stop()
        text = self.session.tokenizer.decode([t.id for t in self._gen_tokens if t.id != self.session.tokenizer.eot_id])
        self._follow_end = True
        self.set_prompt(self._gen_prompt_text + text)
        self._reset_generation()

    def _reset_generation(self) -> None:
        self._show_generated()  # no paint left pending for the old tokens
        self._gen_tokens = []
        self._step_view = None
        panel = self.query_one("#generation", GenerationPanel)
        panel.tokens = []
        panel.state = "idle"
        panel.detail = ""

    # -- layer / head ----------------------------------------------------------------------------------------

    def _limits(self) -> tuple[int, int]:
        if self.session is None:
            return 1, 1
        return self.session.config.n_layer, self.session.config.n_head

    def action_layer(self, delta: int) -> None:
        self.layer_index = max(0, min(self._limits()[0] - 1, self.layer_index + delta))

    def action_head(self, delta: int) -> None:
        self.head = max(0, min(self._limits()[1] - 1, self.head + delta))

    def on_head_picked(self, message: HeadPicked) -> None:
        self.layer_index, self.head = message.layer, message.head
        self.overview = False

    # -- panels -----------------------------------------------------------------------------------------------

    def _show_panel(self, name: str, focus: bool = True) -> None:
        self._active = name
        for panel in PANELS:
            widget = self.query_one(f"#{panel}")
            widget.set_class(panel == name, "-active")
        for row in self.query(".row"):
            row.set_class(bool(row.query(f"#{name}")), "-active")
        tabs = self.query_one("#panel-tabs", Tabs)
        if tabs.active != f"tab-{name}":
            tabs.active = f"tab-{name}"
        if focus:
            target = self.query_one(f"#{name}")
            if name == "generation":
                target = self.query_one("#knob-temp")
            target.focus()

    def action_panel(self, name: str) -> None:
        self._show_panel(name)

    @on(Tabs.TabActivated, "#panel-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        name = (event.tab.id or "").removeprefix("tab-")
        if name in PANELS and name != self._active:
            self._show_panel(name, focus=False)

    def on_descendant_focus(self, event) -> None:
        for ancestor in [event.widget, *event.widget.ancestors]:
            if getattr(ancestor, "id", None) in PANELS:
                if ancestor.id != self._active:
                    self._show_panel(ancestor.id, focus=False)
                break

    def action_maximize_panel(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        focused = self.focused
        target = None
        for node in ([focused, *focused.ancestors] if focused is not None else []):
            if getattr(node, "id", None) in PANELS:
                target = node
                break
        self.maximize(target or self.query_one(f"#{self._active}"), container=False)

    # -- commands ---------------------------------------------------------------------------------------------

    def action_command(self, line: str) -> None:
        if line == "/stop" and self.maximized is not None:
            self.minimize()
            return
        if line == "/stop" and not self._gen_running():
            prompt = self.query_one("#prompt", PromptLine)
            if prompt.value.startswith("/") and not prompt.value.startswith("//"):
                self.set_prompt(self.text or self._last_text)  # abandon a half-typed command
            return
        self.run_command(line)

    def action_prefill(self, line: str) -> None:
        self.prefill(line)

    def run_command(self, line: str) -> None:
        """Run one /command; problems become notifications, never exceptions."""
        try:
            command, args = parse(line)
            handler = getattr(self, f"cmd_{command.name}")
            handler(args)
        except CommandError as exc:
            self.notify(str(exc), title=line.strip()[:40], severity="error", timeout=5)

    def _one(self, args: list[str], what: str) -> str:
        if len(args) != 1:
            raise CommandError(f"give one {what}, e.g. {what}")
        return args[0]

    def cmd_help(self, args) -> None:
        self.app.push_screen(HelpScreen())

    def cmd_model(self, args) -> None:
        if not args:
            raise CommandError("give a model: /model PATH (a directory, a .safetensors file, or gpt2)")
        spec = " ".join(args)
        self.stop()
        self.load(spec)

    def cmd_layer(self, args) -> None:
        n = number(self._one(args, "N"), int, "the layer", 0, self._limits()[0] - 1)
        self.layer_index = n

    def cmd_head(self, args) -> None:
        n = number(self._one(args, "N"), int, "the head", 0, self._limits()[1] - 1)
        self.head = n

    def cmd_overview(self, args) -> None:
        self.overview = not self.overview
        if self.overview:
            self._show_panel("attention")

    def cmd_numbers(self, args) -> None:
        self.show_numbers = not self.show_numbers

    def cmd_temp(self, args) -> None:
        self.set_knob("temp", self._one(args, "T"))

    def cmd_topk(self, args) -> None:
        self.set_knob("topk", self._one(args, "K"))

    def cmd_topp(self, args) -> None:
        self.set_knob("topp", self._one(args, "P"))

    def cmd_seed(self, args) -> None:
        self.set_knob("seed", self._one(args, "S"))

    def cmd_gen(self, args) -> None:
        if args:
            self.set_knob("max", self._one(args, "N"))
        self.generate()

    def cmd_step(self, args) -> None:
        self.generate(step=True)

    def cmd_stop(self, args) -> None:
        if not self.stop():
            self.notify("nothing is generating", timeout=2)

    def cmd_take(self, args) -> None:
        self.take()

    def cmd_analogy(self, args) -> None:
        if len(args) != 3:
            raise CommandError("give three words: /analogy a b c  (a − b + c, e.g. /analogy king man woman)")
        if self.session is None:
            raise CommandError("no model loaded yet")
        self._analogy = tuple(args)
        self._neighbours_id += 1
        self._neighbours_token = None
        self._neighbours_worker(self._neighbours_id, self.session, None, tuple(args))
        self._analogy = None  # the next selection shows token neighbours again

    def cmd_compare(self, args) -> None:
        self.compare = not self.compare
        if self.compare and not self._encoding_names:
            self.notify("no other encodings are available offline", timeout=3)

    def cmd_ids(self, args) -> None:
        self.show_ids = not self.show_ids

    def cmd_select(self, args) -> None:
        value = self._one(args, "N")
        if self.analysis is None:
            raise CommandError("nothing analysed yet")
        if value == "last":
            self._select(None)
        else:
            self._select(number(value, int, "the token", 0, self.analysis.n_tokens - 1))

    def cmd_panel(self, args) -> None:
        name = self._one(args, "NAME").lower()
        matches = [p for p in PANELS if p.startswith(name)]
        if len(matches) != 1:
            raise CommandError(f"unknown panel {name!r}; one of {', '.join(PANELS)}")
        self._show_panel(matches[0])

    def cmd_max(self, args) -> None:
        self.action_maximize_panel()

    def cmd_clear(self, args) -> None:
        self.stop()
        self._reset_generation()
        self._follow_end = True
        self._last_text = ""
        self.set_prompt("")
        self.query_one("#prompt").focus()

    def cmd_quit(self, args) -> None:
        self.app.exit()


class GptTuiApp(App):
    """gpt-tui's interactive session."""

    CSS_PATH = "gpt_tui.tcss"
    TITLE = "gpt-tui"
    COMMANDS = App.COMMANDS | {GptCommands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto", session: Any = None,
                 encodings: list[str] | None = None, seed: int | None = None, text: str = "") -> None:
        """model: a spec for the engine's loader (None = bundled); or session: a ready Session (tests).

        encodings: other encodings to show beside the model's (None = all available offline).
        """
        super().__init__()
        self._screen_args = dict(model=model, device=device, dtype=dtype, session=session, encodings=encodings,
                                 seed=seed, text=text)

    def on_mount(self) -> None:
        self.push_screen(ExplorerScreen(**self._screen_args))
        if self.is_headless:
            return
        try:  # the terminal went away (SSH dropped): exit cleanly instead of writing into the void
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            pass  # no SIGHUP here (Windows) or not the main thread (tests)

    @property
    def explorer(self) -> ExplorerScreen:
        for screen in self.screen_stack:
            if isinstance(screen, ExplorerScreen):
                return screen
        raise LookupError("the explorer screen is not open")


def css_path() -> Path:
    return Path(__file__).with_name("gpt_tui.tcss")
