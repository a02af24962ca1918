"""The /commands: parsing, their handlers, and the command palette's provider.

`CommandHandlers` is a plain class: it checks a command's arguments and calls the screen through
the small `Explorer` protocol below, so every handler can be tested without a UI. The names, keys
and help come from actions.ACTIONS.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .actions import ACTIONS, BY_NAME, Action, resolve


class CommandError(ValueError):
    """A /command could not run; the message says why in one line."""


def parse(line: str) -> tuple[Action, list[str]]:
    """'/layer 3' -> (the layer action, ['3']); CommandError for unknown commands."""
    words = line.strip().removeprefix("/").removeprefix(":").split()
    if not words:
        raise CommandError("an empty command; /help lists them")
    action = resolve(words[0])
    if action is None:
        near = complete("/" + words[0][:2].lower())
        hint = f" (did you mean {', '.join(near)}?)" if near and len(near) <= 4 else ""
        raise CommandError(f"unknown command /{words[0]}{hint}; /help lists them")
    return action, words[1:]


def complete(prefix: str) -> list[str]:
    """Command names that start with prefix ('/te' -> ['/temp'])."""
    stem = prefix.removeprefix("/").lower()
    return [f"/{a.name}" for a in ACTIONS if a.name.startswith(stem)]


def number(text: str, kind: type, what: str, low: float | None = None, high: float | None = None):
    """Parse a number for a command, with a clear one-line error."""
    try:
        value = kind(text)
    except ValueError:
        raise CommandError(f"{what} must be {'a whole number' if kind is int else 'a number'}, not {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CommandError(f"{what} must be a finite number, not {text!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise CommandError(f"{what} must be {bounds}, not {text}")
    return value


MAX_NEW_LIMIT = 100_000
SEED_LIMIT = 2**63 - 1


class Explorer(Protocol):
    """What the command handlers need of the screen."""

    special: bool  # <|endoftext|> in the text is the special token
    without_common: bool  # embedding neighbours are searched with the common direction projected out

    def panel_names(self) -> list[str]: ...
    def limits(self) -> tuple[int, int]: ...  # (layers, heads) of the loaded model
    def n_tokens(self) -> int | None: ...  # of the analysis on screen; None: nothing analysed
    def has_model(self) -> bool: ...
    def show_help(self) -> None: ...
    def open_command_bar(self, line: str) -> None: ...
    def generate(self, step: bool) -> None: ...
    def stop(self) -> bool: ...
    def close_maximised(self) -> bool: ...
    def take(self) -> None: ...
    def toggle_maximise(self) -> None: ...
    def show_panel(self, name: str) -> None: ...
    def toggle(self, name: str) -> None: ...  # ids, compare, overview, numbers
    def compare_texts(self, a: str, b: str, word: str | None) -> None: ...
    def say(self, spec: str | None) -> None: ...  # a chat turn 'ROLE: TEXT', 'clear', 'off' or None
    def set_special(self, on: bool) -> None: ...
    def set_without_common(self, on: bool) -> None: ...
    def set_layer(self, layer: int) -> None: ...
    def set_head(self, head: int) -> None: ...
    def select(self, index: int | None) -> None: ...
    def set_param(self, name: str, text: str) -> None: ...  # raises ValueError
    def set_max_new(self, n: int) -> None: ...
    def set_seed(self, seed: int | None) -> None: ...  # None: a new seed per run
    def focus_knobs(self) -> None: ...
    def show_analogy(self, words: tuple[str, str, str]) -> None: ...
    def load(self, spec: str) -> None: ...
    def focus_editor(self) -> None: ...
    def clear_text(self) -> None: ...
    def undo_text(self) -> None: ...
    def quit(self) -> None: ...
    def export(self) -> None: ...
    def notify_info(self, message: str) -> None: ...


class CommandHandlers:
    """One method per /command: check the arguments, then ask the screen."""

    def __init__(self, explorer: Explorer) -> None:
        self.x = explorer

    def run(self, line: str) -> None:
        """Run one command line; CommandError says what was wrong with it."""
        action, args = parse(line)
        getattr(self, f"cmd_{action.name}")(args)

    @staticmethod
    def _one(args: list[str], what: str, usage: str) -> str:
        if len(args) != 1:
            raise CommandError(f"give one {what}: {usage}")
        return args[0]

    def cmd_help(self, args) -> None:
        self.x.show_help()

    def cmd_command(self, args) -> None:
        self.x.open_command_bar("/" + " ".join(args) if args else "/")

    def cmd_gen(self, args) -> None:
        if args:
            self.x.set_max_new(number(self._one(args, "number", "/gen N"), int, "max new tokens", 1, MAX_NEW_LIMIT))
        if not self.x.has_model():
            raise CommandError("no model loaded yet")
        self.x.generate(step=False)

    def cmd_step(self, args) -> None:
        if not self.x.has_model():
            raise CommandError("no model loaded yet")
        self.x.generate(step=True)

    def cmd_stop(self, args) -> None:
        if not self.x.stop() and not self.x.close_maximised():
            self.x.notify_info("nothing is generating")

    def cmd_take(self, args) -> None:
        self.x.take()

    def cmd_max(self, args) -> None:
        self.x.toggle_maximise()

    def cmd_panel(self, args) -> None:
        names = self.x.panel_names()
        name = self._one(args, "panel name", f"/panel NAME ({', '.join(names)})").lower()
        matches = [n for n in names if n == name] or [n for n in names if n.startswith(name)]
        if len(matches) != 1:
            raise CommandError(f"unknown panel {name!r}; one of {', '.join(names)}")
        self.x.show_panel(matches[0])

    def cmd_ids(self, args) -> None:
        self.x.toggle("show_ids")

    def cmd_compare(self, args) -> None:
        if not args:
            self.x.toggle("compare")
            return
        import shlex

        try:
            texts = shlex.split(" ".join(args))
        except ValueError as exc:
            raise CommandError(f"/compare: {exc} (quote each text: /compare \"A\" \"B\" [word])") from None
        if len(texts) not in (2, 3) or not all(texts):
            raise CommandError('give two texts and an optional word: /compare "machine learning model" "fashion model"')
        if not self.x.has_model():
            raise CommandError("no model loaded yet")
        self.x.compare_texts(texts[0], texts[1], texts[2] if len(texts) == 3 else None)

    def cmd_chat(self, args) -> None:
        if not self.x.has_model():
            raise CommandError("no model loaded yet")
        try:
            self.x.say(" ".join(args) if args else None)
        except ValueError as exc:  # the engine's ChatError: a turn that is not ROLE: TEXT
            raise CommandError(str(exc)) from None

    def cmd_special(self, args) -> None:
        value = args[0].lower() if args else ""
        if value not in ("", "on", "off"):
            raise CommandError("/special, /special on or /special off")
        self.x.set_special(value != "off" if value else not self.x.special)

    def cmd_common(self, args) -> None:
        value = args[0].lower() if args else ""
        if value not in ("", "on", "off"):
            raise CommandError("/common, /common on or /common off")
        self.x.set_without_common(value != "off" if value else not self.x.without_common)

    def cmd_overview(self, args) -> None:
        self.x.toggle("overview")

    def cmd_numbers(self, args) -> None:
        self.x.toggle("show_numbers")

    def cmd_layer(self, args) -> None:
        layers = self.x.limits()[0]
        self.x.set_layer(number(self._one(args, "layer", "/layer N"), int, "the layer", 0, layers - 1))

    def cmd_head(self, args) -> None:
        heads = self.x.limits()[1]
        self.x.set_head(number(self._one(args, "head", "/head N"), int, "the head", 0, heads - 1))

    def cmd_select(self, args) -> None:
        value = self._one(args, "token number", "/select N or /select last")
        n = self.x.n_tokens()
        if n is None:
            raise CommandError("nothing analysed yet: type some text first")
        self.x.select(None if value.lower() == "last" else number(value, int, "the token", 0, n - 1))

    def _param(self, name: str, args, usage: str) -> None:
        try:
            self.x.set_param(name, self._one(args, "value", usage))
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def cmd_temp(self, args) -> None:
        self._param("temperature", args, "/temp T")

    def cmd_topk(self, args) -> None:
        self._param("top_k", args, "/topk K")

    def cmd_topp(self, args) -> None:
        self._param("top_p", args, "/topp P")

    def cmd_seed(self, args) -> None:
        value = self._one(args, "seed", "/seed S, or /seed auto for a new seed per run")
        self.x.set_seed(None if value.lower() in ("auto", "off", "random") else
                        number(value, int, "the seed", 0, SEED_LIMIT))

    def cmd_knobs(self, args) -> None:
        self.x.focus_knobs()

    def cmd_analogy(self, args) -> None:
        if len(args) != 3:
            raise CommandError("give three words: /analogy a b c  (a − b + c, e.g. /analogy king man woman)")
        if not self.x.has_model():
            raise CommandError("no model loaded yet")
        self.x.show_analogy(tuple(args))

    def cmd_model(self, args) -> None:
        if not args:
            raise CommandError("give a model: /model PATH (a directory, a .safetensors file, or gpt2)")
        self.x.load(" ".join(args))

    def cmd_edit(self, args) -> None:
        self.x.focus_editor()

    def cmd_clear(self, args) -> None:
        self.x.clear_text()

    def cmd_undo(self, args) -> None:
        self.x.undo_text()

    def cmd_quit(self, args) -> None:
        self.x.quit()

    def cmd_export(self, args) -> None:
        self.x.export()


class GptCommands(Provider):
    """Every action in Textual's command palette. Choosing one runs it on the screen the palette
    was opened from; one that needs arguments opens the command bar with its name typed."""

    def _hits(self):
        screen = self.screen  # the screen the palette was opened over (the app's top screen is the palette)
        for a in ACTIONS:
            keys = f" · key {a.key_text}" if a.keys else ""
            if a.name == "command":
                continue
            run = partial(_do, screen, a.name)
            yield a.usage, run, f"{a.help}{keys}"

    async def discover(self) -> Hits:
        for title, run, help_text in self._hits():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, run, help_text in self._hits():
            score = max(matcher.match(title), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, text=title, help=help_text)


def _do(screen, name: str) -> None:
    if hasattr(screen, "action_do"):
        screen.action_do(name)


__all__ = ["ACTIONS", "BY_NAME", "CommandError", "CommandHandlers", "Explorer", "GptCommands", "complete",
           "number", "parse"]
