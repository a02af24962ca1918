"""GptTuiApp: the interactive session.

The screen holds the state (STATE below: the analysis, the selection, the knobs, …) and is
composed from the panel registry (panels/__init__.py); each panel reads its share of the state by
data binding and sends messages up. The text lives in its own editor and commands in their own
bar, so neither can become the other. What is not UI lives in plain classes beside it:
scheduling.AnalysisScheduler (when to analyse), generation_run (runs and seeds),
commands.CommandHandlers (the /commands), actions.ACTIONS (every key). Every blocking call runs
in a thread worker.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Input, Static, Tab, Tabs, TextArea
from textual.worker import get_current_worker

from . import actions
from .actions import BY_NAME
from .commands import CommandError, CommandHandlers, GptCommands, number
from .generation_run import GenerationRuns, SeedPolicy
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
    TokenSelected,
)
from .panels import PANELS
from .panels.candidates import StepDraw
from .panels.neighbours import NEIGHBOURS_TOP
from .panels.generation import GenerationView
from .scheduling import AnalysisScheduler
from .widgets.command_bar import CommandBar
from .widgets.editor import TextEditor
from .widgets.help import HelpScreen
from .widgets.keybar import KeyBar
from .widgets.style import token_label

# A streaming generation is painted at most this often, several tokens at a time when they come
# faster. Painting holds the interpreter lock for milliseconds, and the decoding thread needs it
# between every two operations of a forward pass: a paint per token would slow decoding by a third.
GENERATION_PAINT_S = 1 / 12
ROWS = ("top", "main", "bottom")  # the wide layout, top to bottom (see Panel.PLACE)
TYPE_SOMETHING = "type some text in the editor below"


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


def generation_defaults(session) -> dict:
    """The model's default knobs (a generation_config.json beside its weights, when the engine
    found one): temperature, top_k, top_p, max_new_tokens; {} when it has none."""
    config = getattr(session, "generation_config", None)
    if callable(config):
        config = config()
    if config is None:
        return {}
    if not isinstance(config, dict):
        config = {k: getattr(config, k) for k in ("temperature", "top_k", "top_p", "max_new_tokens")
                  if getattr(config, k, None) is not None}
    return config


class ExplorerScreen(Screen):
    """The panels of the registry over the text editor, the command bar and the key bar."""

    # Size classes are set in on_resize (Textual's breakpoints differ between releases).
    HORIZONTAL_BREAKPOINTS: list = []
    VERTICAL_BREAKPOINTS: list = []
    WIDE, TALL, SMALLEST = 100, 32, (50, 14)
    AUTO_FOCUS = "#editor"
    ALLOW_IN_MAXIMIZED_VIEW = "#editor, #command-bar, KeyBar"

    BINDINGS = [
        *actions.bindings(),
        *(Binding(p.KEY, f"key_panel('{p.NAME}')", p.TITLE, show=False, priority=True) for p in PANELS if p.KEY),
        # Ctrl+C while generating stops it, as in a shell; otherwise it keeps Textual's meaning
        # (copy the selection; or say how to quit): see check_action.
        Binding("ctrl+c", "interrupt", "stop", show=False, priority=True),
        # Tab moves the focus at once, before the keys behind it are handed out: over SSH, Tab and
        # a panel's number can arrive in one read, and the number must reach the panel, not the
        # text (Textual's own Tab runs only after the focused widget has declined the key).
        Binding("tab", "move_focus(1)", "next", show=False, priority=True),
        Binding("shift+tab", "move_focus(-1)", "previous", show=False, priority=True),
        Binding("left", "select(-1)", "◀ token", show=False),
        Binding("right", "select(1)", "token ▶", show=False),
        Binding("home", "select_at(0)", "first token", show=False),
        Binding("end", "select_at(-1)", "last token", show=False),
    ]

    # STATE: what the panels may read (Panel.READS). `var`, not `reactive`: the screen draws nothing
    # of its own, and a reactive change would repaint it whole where only the bound panels need it.
    session = var(None)
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
    params = var(None)  # engine SamplingParams (None until the engine is imported)
    max_new = var(40)
    seed = var(0)  # of the next run
    seed_pinned = var(False)
    step = var(None)  # StepDraw: what the last step was drawn from
    analogy = var(None)  # (a, b, c) shown in the neighbours panel, until the selection moves
    without_common = var(False)  # the neighbours panel searches W_E with the common direction projected out
    contrast = var(None)  # (text A, text B, word or None) of the context panel; None: the seeds' pair
    special = var(False)  # <|endoftext|> typed in the text is the special token (chat mode turns it on)
    chat = var(None)  # panels/chat.ChatState: the turns and the document they make; None: not chatting
    generation = var(GenerationView(), always_update=True)
    notice = var("starting…")  # what panels with nothing to show say

    def __init__(self, model: str | None, device: str, dtype: str, session: Any = None,
                 encodings: list[str] | None = None, seed: int | None = None, text: str = "") -> None:
        super().__init__()
        self.model_spec = model
        self.device = device
        self.dtype = dtype
        self._initial_session = session
        self._initial_text = text
        self._encoding_names = encodings  # None: whatever is available offline
        self.seeds = SeedPolicy()
        if seed is not None:
            self.seeds.pin(seed)
        self.runs = GenerationRuns()
        self.scheduler = AnalysisScheduler(self._start_analysis)
        self.handlers = CommandHandlers(self)
        self._follow_end = True  # the selection follows the last token until the user moves it
        self._paint_timer = None  # pending paint of streamed tokens
        self._active = PANELS[0].NAME
        self._return_focus = None  # where the focus goes back when the command bar closes
        self._loading: str | None = None  # the model being loaded
        self._load_error: str | None = None  # why the last load failed

    # -- layout -----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text("gpt-tui · starting…"), id="status")
        yield Tabs(*(Tab(f"{p.KEY} {p.NAME}", id=f"tab-{p.NAME}") for p in PANELS), id="panel-tabs")
        yield Static(id="too-small")
        with Vertical(id="panels"):
            for row in ROWS:
                with Horizontal(id=f"row-{row}", classes="row"):
                    yield from (self._panel(p) for p in PANELS if p.PLACE and p.PLACE[0] == row)
            with Horizontal(id="row-solo", classes="row"):  # panels shown only when chosen
                yield from (self._panel(p) for p in PANELS if not p.PLACE)
        yield TextEditor(self._initial_text, id="editor")
        yield CommandBar(id="command-bar")
        yield KeyBar()

    def _panel(self, cls):
        widget = cls(id=cls.NAME, classes="panel")
        return widget.data_bind(**{name: getattr(ExplorerScreen, name) for name in cls.READS})

    @property
    def editor(self) -> TextEditor:
        return self.query_one("#editor", TextEditor)

    @property
    def text(self) -> str:
        """The text every panel analyses (changed only by editing it: typing, pasting, a take,
        a picked candidate, an explicit clear; never by a command)."""
        return self.scheduler.text

    def _size_classes(self, width: int, height: int) -> None:
        """-narrow / -short: one panel at a time; -tiny: too small for any panel."""
        self.set_class(width < self.WIDE, "-narrow")
        self.set_class(height < self.TALL, "-short")
        self.set_class(width < self.SMALLEST[0] or height < self.SMALLEST[1], "-tiny")

    def on_mount(self) -> None:
        self._size_classes(*self.app.size)
        self._show_panel(self._active, focus=False)
        self._sync_seed()
        self.query_one(KeyBar).panel_keys = f"{PANELS[0].KEY}-{PANELS[-1].KEY}"
        size = self.app.size
        self.query_one("#too-small", Static).update(Text(
            f"This terminal is {size.width}×{size.height}: too small for the panels (at least 50×14).\n"
            "Make it larger; the text below still works.", style="bold yellow"))
        if self._initial_session is not None:
            names = self._encoding_names if self._encoding_names is not None else []
            self.post_message(ModelLoaded(self._initial_session, names))
        else:
            self.call_after_refresh(self.load, self.model_spec)
        if self._initial_text:
            self._text_changed(self.editor.text)

    def on_resize(self, event) -> None:
        self._size_classes(event.size.width, event.size.height)
        self.query_one("#too-small", Static).update(Text(
            f"This terminal is {event.size.width}×{event.size.height}: too small for the panels "
            "(at least 50×14).\nMake it larger; the text below still works.", style="bold yellow"))

    # -- model ------------------------------------------------------------------------------------------

    def load(self, spec: str | None) -> None:
        self.stop()
        self._loading = spec or "the bundled model"
        self._load_error = None
        self._show_status()
        if self.session is None:
            self.notice = f"loading {self._loading}…"
        self._load_worker(spec)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self, spec: str | None) -> None:
        _import_engine()
        from gpt_tui.engine.fast import set_interactive_threads
        from gpt_tui.engine.loading import ModelLoadError
        from gpt_tui.engine.session import Session
        from gpt_tui.engine.tokenizer import available_encodings

        set_interactive_threads()  # leave a core to the UI, or decoding stalls while it paints
        from gpt_tui.engine.hub import reporting

        try:
            with reporting(self._download_progress(spec)):  # a download's bytes, rate and ETA in the header
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

    def _download_progress(self, spec: str | None):
        """A reporter for the load worker's thread: the header and the empty panels say how the
        download stands, redrawn at most a few times a second."""
        import time

        last = [0.0]

        def show(line: str) -> None:
            if self._loading is None:
                return  # loaded or failed meanwhile
            self._loading = f"{spec} ({line})"
            self._show_status()
            if self.session is None:
                self.notice = f"{line}…"

        def report(progress) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.25 or progress.done >= progress.total:
                last[0] = now
                self.app.call_from_thread(show, progress.line())

        return report

    def on_encodings_found(self, message: EncodingsFound) -> None:
        if message.session is not self.session:
            return  # another model was loaded since; its own load looks again
        self._encoding_names = message.encodings
        if self.text and message.encodings:
            self.scheduler.request()  # a text typed while loading: compare it too

    def on_model_loaded(self, message: ModelLoaded) -> None:
        from gpt_tui.engine.sampling import SamplingParams

        first = self.session is None
        self.stop()
        self.runs.reset()
        self.step = None
        self.analogy = None
        self.generation = GenerationView()
        self._loading = None
        self._load_error = None
        self.session = message.session
        self.tokenizer_name = self.session.tokenizer.name
        self._encoding_names = message.encodings
        if self.params is None:  # the model's generation_config.json, else T=1 and no cuts
            self.params = getattr(self.session, "default_sampling", None) or SamplingParams()
        info = self.session.info()
        self.layer_index = min(self.layer_index, info["n_layer"] - 1)
        self.head = min(self.head, info["n_head"] - 1)
        self.notice = TYPE_SOMETHING
        self._show_status()
        if message.session is not self._initial_session or self.text:
            self.notify(f"model {self.session.name} ready", timeout=2)
        self.scheduler.request()

    def on_model_failed(self, message: ModelFailed) -> None:
        self._load_error = f"could not load {message.spec or 'the bundled model'}: {message.message}"
        self._loading = None
        self._show_status()
        if self.session is None:
            self.notice = f"no model loaded: {message.message} · ^K /model PATH loads one"
        self.notify(message.message, title="could not load the model", severity="error", timeout=8)

    def _show_status(self) -> None:
        """The header: what is loaded, what is loading, what failed: always true."""
        status = Text()
        status.append("gpt-tui ", style="bold")
        if self.session is not None:
            info = self.session.info()
            status.append(f"· {self.session.name} ", style="bold reverse")
            status.append(f" {_human(info['parameters'])} params · {info['n_layer']} layers × {info['n_head']} heads"
                          f" · d_model {info['n_embd']} · ctx {info['n_ctx']} · {info['device']} {info['dtype']}")
        elif not self._loading and not self._load_error:
            status.append("· no model loaded")
        if self._loading:
            status.append(f"  loading {self._loading} on {self.device}…", style="bold yellow")
        if self._load_error:
            kept = " (the model above stays loaded)" if self.session is not None else " · ^K /model PATH"
            status.append(f"  ✗ {self._load_error}{kept}", style="bold red")
        self.query_one("#status", Static).update(status)

    # -- the text ---------------------------------------------------------------------------------------

    @on(TextArea.Changed, "#editor")
    def _editor_changed(self, event: TextArea.Changed) -> None:
        self._text_changed(event.text_area.text)

    def _text_changed(self, text: str) -> None:
        if text == self.text:
            return
        self.step = None
        if self.scheduler.text_changed(text):  # emptied: nothing to analyse
            self.analysis = None
            self.notice = TYPE_SOMETHING if self.session is not None else self.notice

    def set_text(self, text: str) -> None:
        """Replace the text as one edit of the editor (Ctrl+Z brings the old one back)."""
        self._follow_end = True
        self.editor.set_text(text)

    # -- analysis ---------------------------------------------------------------------------------------

    def _start_analysis(self, request_id: int, text: str) -> None:
        if self.session is None:
            self.scheduler.finished()
            return
        lands_on = None if self._follow_end else self.selected  # where the selection will be
        prepares = [p.prepare for p in self.query(".panel") if getattr(p, "on_screen", False)]
        self._analyse_worker(request_id, self.session, text, tuple(self._encoding_names or ()), self.special,
                             lands_on, prepares)

    @property
    def analyses_requested(self) -> int:
        return self.scheduler.started

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _analyse_worker(self, request_id: int, session, text: str, encodings: tuple[str, ...],
                        special: bool = False, lands_on: int | None = None, prepares=()) -> None:
        from gpt_tui.engine.session import InputError
        from gpt_tui.engine.tokenizer import get_tokenizer

        beside = _search_neighbours_beside(session, text, special, lands_on, self.without_common)
        try:
            analysis = session.analyse(text, allow_special=special)
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
        finally:
            if beside is not None:
                beside.join()
        self.post_message(AnalysisReady(request_id, analysis, others))
        position = analysis.n_tokens - 1 if lands_on is None or lands_on >= analysis.n_tokens else lands_on
        for prepare in prepares:  # what the panels on screen will ask for next, while the UI draws
            if get_current_worker().is_cancelled:
                break
            try:
                prepare(analysis, position)
            except Exception:  # the panel's own ask reports what failed
                pass

    def on_analysis_ready(self, message: AnalysisReady) -> None:
        self.scheduler.finished()
        a = message.analysis
        if not self.scheduler.is_current(message.request_id, a.text) or a.model_name != self.session.name:
            return  # stale: the text changed since
        if a.dropped and (self.analysis is None or self.analysis.dropped != a.dropped):
            self.notify(f"the text is longer than the model's context ({self.session.n_ctx} tokens): "
                        f"the first {a.dropped} tokens were left out", severity="warning", timeout=5)
        if self._follow_end or self.selected >= a.n_tokens:
            self.set_reactive(ExplorerScreen.selected, a.n_tokens - 1)
        self.encodings = message.encodings
        self.analysis = a
        self.mutate_reactive(ExplorerScreen.selected)  # panels see the pair together

    def on_analysis_failed(self, message: AnalysisFailed) -> None:
        self.scheduler.finished()
        if message.request_id == self.scheduler.request_id:
            self.notify(message.message, title="cannot analyse", severity="error", timeout=5)

    # -- selection -----------------------------------------------------------------------------------------

    def on_token_selected(self, message: TokenSelected) -> None:
        self.select(message.index)

    def select(self, index: int | None) -> None:
        a = self.analysis
        if a is None:
            return
        last = a.n_tokens - 1
        self._follow_end = index is None or index < 0 or index >= last
        self.step = None
        self.analogy = None  # the neighbours of the selected token again
        self.selected = last if self._follow_end else index

    def action_select(self, delta: int) -> None:
        if self.analysis is not None:
            self.select(max(0, min(self.analysis.n_tokens - 1, self.selected + delta)))

    def action_select_at(self, index: int) -> None:
        self.select(None if index < 0 else index)

    def n_tokens(self) -> int | None:
        return None if self.analysis is None else self.analysis.n_tokens

    # -- candidates ------------------------------------------------------------------------------------------

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
        self.set_text(base + piece)

    # -- knobs ----------------------------------------------------------------------------------------------

    def _engine_params(self):
        from gpt_tui.engine.sampling import SamplingParams  # imports torch: not before it is needed

        return self.params if self.params is not None else SamplingParams()

    def set_param(self, name: str, text: str) -> None:
        """One sampling knob from text, validated by SamplingParams (ValueError says why not)."""
        self.params = self._engine_params().with_knob(name, text)
        self.step = None

    def set_max_new(self, n: int) -> None:
        self.max_new = n

    def set_seed(self, seed: int | None) -> None:
        self.seeds.pin(seed)
        self._sync_seed()

    def _sync_seed(self) -> None:
        self.seed = self.seeds.seed
        self.seed_pinned = self.seeds.pinned

    def on_knob_changed(self, message: KnobChanged) -> None:
        from .panels.generation import GenerationPanel

        panel = self.query_one(GenerationPanel)
        try:
            if message.name == "max":
                self.set_max_new(number(message.value, int, "max new tokens", 1, 100_000))
            elif message.name == "seed":
                value = message.value.strip().lower()
                self.set_seed(None if value == "auto" else number(value, int, "the seed", 0, 2**63 - 1))
            else:
                self.set_param(message.name, message.value)
            panel.mark_invalid(message.name, False)
        except ValueError as exc:  # CommandError too
            panel.mark_invalid(message.name, True)
            if message.value and not message.value.endswith((".", "-")):
                self.notify(str(exc), severity="error", timeout=3)

    def focus_knobs(self) -> None:
        self._show_panel("generation", focus=False)
        self.set_focus(self.query_one("#knob-temperature"))

    # -- generation ------------------------------------------------------------------------------------------

    def generate(self, step: bool = False) -> None:
        if self.session is None:
            raise CommandError("no model loaded yet")
        if self.runs.running:
            raise CommandError("already generating; Esc stops it")
        if not self.text and step and not self.runs.tokens:
            pass  # an empty text starts a new document (<|endoftext|>)
        request = self.runs.start(self.text, lambda t: self.session.encode(t, allow_special=self.special).ids,
                                  self.max_new, self.seeds, step)
        self._sync_seed()
        self.generation = GenerationView(self.runs.prompt_text, tuple(self.runs.tokens), "running",
                                         "step" if step else f"up to {request.count} tokens", self.runs.seed)
        self._gen_worker(request, self.session, self._engine_params())

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def _gen_worker(self, request, session, params) -> None:
        worker = get_current_worker()
        try:
            for token in session.generate(request.ids, params, request.count, request.seed,
                                          should_stop=lambda: worker.is_cancelled, with_logits=request.step):
                if worker.is_cancelled:
                    break
                self.post_message(GenerationStep(request.run_id, token, request.step))
        except Exception as exc:
            self.post_message(GenerationDone(request.run_id, error=f"{type(exc).__name__}: "
                                                                   f"{str(exc).splitlines()[0][:200]}"))
            return
        self.post_message(GenerationDone(request.run_id, cancelled=worker.is_cancelled))

    def on_generation_step(self, message: GenerationStep) -> None:
        if not self.runs.add(message.run_id, message.token):
            return
        if message.step:
            self._show_generated()
            if message.token.logits is not None:
                k = len(self.runs.tokens)
                self.step = StepDraw(k, message.token.logits, message.token.id, message.token.text,
                                     self.runs.seed + k - 1, self._engine_params())
        elif self._paint_timer is None:
            self._paint_timer = self.set_timer(GENERATION_PAINT_S, self._show_generated)

    def _show_generated(self) -> None:
        """Paint the tokens generated so far (on a timer while streaming, see GENERATION_PAINT_S)."""
        if self._paint_timer is not None:
            self._paint_timer.stop()
            self._paint_timer = None
        if len(self.generation.tokens) != len(self.runs.tokens):
            self.generation = replace(self.generation, tokens=tuple(self.runs.tokens))

    def on_generation_done(self, message: GenerationDone) -> None:
        if not self.runs.done(message.run_id):
            return
        self._show_generated()
        if message.error:
            self.generation = replace(self.generation, state="error", detail=message.error)
            self.notify(message.error, title="generation stopped", severity="error", timeout=6)
            return
        eot = self.runs.tokens and self.session and self.runs.tokens[-1].id == self.session.tokenizer.eot_id
        self.generation = replace(self.generation, state="cancelled" if message.cancelled else "done",
                                  detail="ended at <|endoftext|>" if eot else "")

    def stop(self, key: str = "Esc") -> bool:
        """Stop a running generation at once, keeping what it wrote; True if one was running."""
        if not self.runs.stop():
            return False
        self.workers.cancel_group(self, "generation")
        self._show_generated()
        self.generation = replace(self.generation, state="cancelled", detail=f"stopped with {key}; the text is kept")
        return True

    def take(self) -> None:
        if not self.runs.tokens:
            raise CommandError("nothing generated yet; F5 or /gen first")
        self.stop()
        eot = self.session.tokenizer.eot_id
        text = self.session.tokenizer.decode([t.id for t in self.runs.tokens if t.id != eot])
        self.set_text(self.runs.prompt_text + text)
        self._reset_generation()

    def _reset_generation(self) -> None:
        self._show_generated()  # no paint left pending for the old tokens
        self.runs.reset()
        self.step = None
        self.generation = GenerationView()

    # -- layer / head ----------------------------------------------------------------------------------------

    def limits(self) -> tuple[int, int]:
        if self.session is None:
            return 1, 1
        return self.session.config.n_layer, self.session.config.n_head

    def set_layer(self, layer: int) -> None:
        self.layer_index = layer

    def set_head(self, head: int) -> None:
        self.head = head

    def action_key_step(self, what: str, delta: int) -> None:
        layers, heads = self.limits()
        if what == "layer":
            self.layer_index = max(0, min(layers - 1, self.layer_index + delta))
        else:
            self.head = max(0, min(heads - 1, self.head + delta))

    def on_head_picked(self, message: HeadPicked) -> None:
        self.layer_index, self.head = message.layer, message.head
        self.overview = False

    # -- panels -----------------------------------------------------------------------------------------------

    def panel_names(self) -> list[str]:
        return [p.NAME for p in PANELS]

    def show_panel(self, name: str) -> None:
        self._show_panel(name)

    def _show_panel(self, name: str, focus: bool = True) -> None:
        self._active = name
        cls = next(p for p in PANELS if p.NAME == name)
        self.set_class(cls.PLACE is None, "-solo")  # a panel without a place in the grid: shown alone
        for p in PANELS:
            self.query_one(f"#{p.NAME}").set_class(p.NAME == name, "-active")
        for row in self.query(".row"):
            row.set_class(bool(row.query(f"#{name}")), "-active")
        tabs = self.query_one("#panel-tabs", Tabs)
        if tabs.active != f"tab-{name}":
            tabs.active = f"tab-{name}"
        if focus:
            target = self.query_one(f"#{name}")
            if name == "generation":
                target = self.query_one("#knob-temperature")
            self.set_focus(target)

    @on(Tabs.TabActivated, "#panel-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id != event.tabs.active:
            return  # stale: the active tab moved on since (we set it too, in _show_panel)
        name = (event.tab.id or "").removeprefix("tab-")
        if name in self.panel_names() and name != self._active:
            self._show_panel(name, focus=False)

    def on_descendant_focus(self, event) -> None:
        widget = event.widget
        if self.focused is not widget:
            # Stale: the focus moved on before this event arrived (Enter in the command bar gives it
            # back, then /panel moves it again); following it would show the panel left behind.
            return
        names = self.panel_names()
        for ancestor in [widget, *widget.ancestors]:
            if getattr(ancestor, "id", None) in names:
                if ancestor.id != self._active:
                    self._show_panel(ancestor.id, focus=False)
                break
        self._update_keybar(widget)

    def _update_keybar(self, widget) -> None:
        bar = self.query_one(KeyBar)
        bar.in_text = isinstance(widget, (Input, TextArea))
        if isinstance(widget, TextEditor):
            bar.context = "⏎ newline"
        elif isinstance(widget, CommandBar):
            bar.context = "⏎ run · Esc close · Tab complete"
        elif isinstance(widget, Tabs):
            bar.context = "←→ panel"
        else:
            panel = next((a for a in [widget, *widget.ancestors] if getattr(a, "HINT", "")), None)
            bar.context = panel.HINT if panel is not None else ""

    def action_key_panel(self, name: str) -> None:
        self._show_panel(name)

    def toggle_maximise(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        names = self.panel_names()
        target = next((n for n in ([self.focused, *self.focused.ancestors] if self.focused else [])
                       if getattr(n, "id", None) in names), None)
        self.maximize(target or self.query_one(f"#{self._active}"), container=False)

    def close_maximised(self) -> bool:
        if self.maximized is not None:
            self.minimize()
            return True
        if self.has_class("-solo"):
            self._show_panel(PANELS[0].NAME, focus=False)
            return True
        return False

    def compare_texts(self, a: str, b: str, word: str | None) -> None:
        self.contrast = (a, b, word)
        self._show_panel("context")

    def say(self, spec: str | None) -> None:
        """/chat: a turn (ROLE: TEXT), 'clear', 'off', or nothing (show the chat)."""
        from .panels.chat import chat_command

        chat_command(self, spec)

    def set_special(self, on: bool) -> None:
        if on != self.special:
            self.special = on
            self.runs.reset()  # the same text now has other ids
            self.scheduler.request()

    def set_without_common(self, on: bool) -> None:
        self.without_common = on
        self._show_panel("neighbours")

    def toggle(self, name: str) -> None:
        setattr(self, name, not getattr(self, name))
        if name == "overview" and self.overview:
            self._show_panel("attention")
        if name == "compare" and self.compare and not self._encoding_names:
            self.notify("no other encodings are available offline", timeout=3)

    # -- the command bar and the actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """A key that types a character is text while a text field has the focus."""
        if action in ("key", "key_panel", "key_step"):
            return not isinstance(self.focused, (Input, TextArea))
        if action == "interrupt":
            return self.runs.running
        if action == "move_focus":  # in the command bar, Tab completes
            return not isinstance(self.focused, CommandBar)
        return True

    def action_move_focus(self, delta: int) -> None:
        if delta > 0:
            self.focus_next()
        else:
            self.focus_previous()

    def action_interrupt(self) -> None:
        self.stop(key="Ctrl+C")

    def action_do(self, name: str) -> None:
        action = BY_NAME[name]
        if name == "command":
            self.open_command_bar("/")
        elif action.needs_args:
            self.open_command_bar(f"/{name} ")
        else:
            self.run_command(f"/{name}")

    def action_key(self, name: str) -> None:
        self.action_do(name)

    def open_command_bar(self, line: str) -> None:
        bar = self.query_one(CommandBar)
        if not bar.is_open:
            self._return_focus = self.focused
        bar.open(line)
        self.set_focus(bar)  # at once: the keys typed next must land in the bar

    def _close_command_bar(self) -> None:
        target = self._return_focus
        self._return_focus = None
        if target is None or not target.is_attached or not target.focusable:
            target = self.editor
        self.set_focus(target)

    @on(CommandBar.Entered)
    def _command_entered(self, event: CommandBar.Entered) -> None:
        self._close_command_bar()
        if event.line:
            self.run_command(event.line)

    @on(CommandBar.Closed)
    def _command_closed(self, event: CommandBar.Closed) -> None:
        self._close_command_bar()

    @on(CommandBar.Stray)
    def _stray_key(self, event: CommandBar.Stray) -> None:
        """A key typed right after the Enter or Esc that closed the bar: handed out again as if it
        came now, so that it acts where the focus went back (a panel's number, text in the editor)."""
        if isinstance(self.focused, CommandBar):  # never back into the closed bar (it would loop)
            self._close_command_bar()
        self.app.post_message(events.Key(event.key, event.character))

    def run_command(self, line: str) -> None:
        """Run one /command; problems become notifications, never exceptions."""
        try:
            self.handlers.run(line)
        except CommandError as exc:
            self.notify(str(exc), title=line.strip()[:40], severity="error", timeout=5)

    # -- what the command handlers ask (commands.Explorer) ------------------------------------------------

    def has_model(self) -> bool:
        return self.session is not None

    def show_help(self) -> None:
        self.app.push_screen(HelpScreen(PANELS))

    def show_analogy(self, words: tuple[str, str, str]) -> None:
        self.analogy = tuple(words)  # the neighbours panel searches a − b + c until the selection moves
        if self.has_class("-narrow") or self.has_class("-short"):
            self._show_panel("neighbours", focus=False)

    def focus_editor(self) -> None:
        self.set_focus(self.editor)

    def clear_text(self) -> None:
        had = bool(self.text)
        self.stop()
        self._reset_generation()
        self.set_text("")
        self.set_focus(self.editor)
        if had:
            self.notify("text cleared · ^Z brings it back", timeout=3)

    def undo_text(self) -> None:
        before = self.editor.text
        self.editor.undo()
        if self.editor.text == before:
            self.notify("nothing to undo", timeout=2)

    def quit(self) -> None:
        self.app.exit()

    def export(self) -> None:
        """The screen as SVG and the analysis as JSON, in the current directory (app/export.py)."""
        from gpt_tui.app.export import analysis_json, export

        data = None
        if self.analysis is not None and self.session is not None:
            data = analysis_json(self.session, self.analysis, self._engine_params(), self.layer_index, self.head,
                                 self.selected)
        try:
            saved = export(self.app, data)
        except OSError as exc:
            self.notify(f"could not export: {exc.strerror or exc}", severity="error", timeout=6)
            return
        self.notify("saved " + " and ".join(str(p) for p in saved), title="export", timeout=6)

    def notify_info(self, message: str) -> None:
        self.notify(message, timeout=2)


class GptTuiApp(App):
    """gpt-tui's interactive session."""

    CSS_PATH = "gpt_tui.tcss"
    TITLE = "gpt-tui"
    COMMANDS = App.COMMANDS | {GptCommands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto", session: Any = None,
                 encodings: list[str] | None = None, seed: int | None = None, text: str = "",
                 settings: Any = None, theme: str | None = None) -> None:
        """model: a spec for the engine's loader (None = bundled); or session: a ready Session (tests).

        encodings: other encodings to show beside the model's (None = all available offline).
        text: the text to start with (e.g. read from a pipe).
        settings: gpt_tui.settings.Settings to start from and to save a theme chosen in the palette
        into (None: Textual's default theme, nothing saved). theme: this run's theme (--theme),
        which wins over the saved one without replacing it.
        """
        super().__init__()
        self._screen_args = dict(model=model, device=device, dtype=dtype, session=session, encodings=encodings,
                                 seed=seed, text=text)
        self._settings = settings
        self._start_theme = theme or (settings.theme if settings is not None else None)

    def _apply_saved_theme(self) -> None:
        if self._start_theme in self.available_themes:
            self.theme = self._start_theme
        if self._settings is not None:
            self.theme_changed_signal.subscribe(self, self._remember_theme)

    def _remember_theme(self, theme) -> None:
        """A theme chosen in the palette is the one the next session starts with."""
        if theme.name == self._start_theme:
            return  # the one this session started with (--theme is for one run)
        self._start_theme = None
        if theme.name != self._settings.theme:
            self._settings.theme = theme.name
            self._settings.save()

    def on_mount(self) -> None:
        self._apply_saved_theme()
        self.push_screen(ExplorerScreen(**self._screen_args))
        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        # The terminal went away (SSH dropped) or we were asked to stop: exit through Textual, which
        # restores the terminal (main screen, no mouse reporting, cursor back), with the status a
        # shell gives a process ended by that signal (128 + its number).
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.exit, None, 128 + sig)
            except (NotImplementedError, RuntimeError, ValueError, AttributeError):
                pass  # not on this platform (Windows) or not the main thread (tests)

    @property
    def explorer(self) -> ExplorerScreen:
        for screen in self.screen_stack:
            if isinstance(screen, ExplorerScreen):
                return screen
        raise LookupError("the explorer screen is not open")


def _search_neighbours_beside(session, text: str, special: bool, index: int | None,
                              without_common: bool = False) -> threading.Thread | None:
    """Search the neighbours of the token the selection will land on in a thread beside the forward
    pass (on another core: both mostly wait on memory), so that the neighbours panel finds them
    remembered when the analysis arrives: one paint per key instead of a second one ~40 ms later."""
    try:
        ids = session.encode(text, allow_special=special).ids
    except Exception:  # the analysis reports what is wrong with the text
        return None
    token_id = ids[-1] if index is None or index >= len(ids) else ids[index]

    def search() -> None:
        try:
            session.neighbours(token_id, top=NEIGHBOURS_TOP, without_common=without_common)
        except Exception:  # the panel's own search says what failed
            pass

    thread = threading.Thread(target=search, name="neighbours-beside", daemon=True)
    thread.start()
    return thread


def css_path() -> Path:
    return Path(__file__).with_name("gpt_tui.tcss")
