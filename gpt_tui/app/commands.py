"""The REPL's /commands: one table used by the prompt, /help, F1 and the command palette."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class CommandError(ValueError):
    """A /command could not run; the message says why in one line."""


@dataclass(frozen=True)
class Command:
    name: str
    args: str  # how the arguments look, for help ("N", "a b c", "")
    help: str
    key: str  # the key binding that does the same (shown in help)


COMMANDS: tuple[Command, ...] = (
    Command("help", "", "list the commands and keys", "F1"),
    Command("model", "PATH", "load another model (a directory, a file, or a GPT-2 name)", "Ctrl+O"),
    Command("layer", "N", "show attention layer N (no re-run of the model)", ", ."),
    Command("head", "N", "show attention head N (no re-run of the model)", "[ ]"),
    Command("overview", "", "all layers × heads as thumbnails; Enter picks one", "F4"),
    Command("numbers", "", "attention weights as numbers", "F8"),
    Command("temp", "T", "temperature (0 = greedy)", "Ctrl+T (knobs)"),
    Command("topk", "K", "keep the K most likely tokens (0 = off)", "Ctrl+T (knobs)"),
    Command("topp", "P", "keep the most likely tokens up to mass P (1 = off)", "Ctrl+T (knobs)"),
    Command("seed", "S", "random seed for generation (same seed, same text)", "Ctrl+T (knobs)"),
    Command("gen", "[N]", "generate N tokens (N becomes the max)", "F5 / Ctrl+G"),
    Command("step", "", "generate one token; the candidates panel follows", "F6 / Ctrl+N"),
    Command("stop", "", "stop generating and keep what was written", "Esc"),
    Command("take", "", "append the generated text to the prompt", "F7 / Ctrl+Y"),
    Command("analogy", "a b c", "neighbours of a − b + c (king man woman)", "Ctrl+R"),
    Command("compare", "", "show other encodings side by side (on/off)", "F3"),
    Command("ids", "", "show token ids on the chips (on/off)", "F2"),
    Command("select", "N", "select token N (or 'last')", "← →"),
    Command("panel", "NAME", "show a panel (tokens, neighbours, attention, candidates, generation)", "Alt+1…5"),
    Command("max", "", "maximise the focused panel, or restore it", "F9"),
    Command("clear", "", "clear the prompt and the generation", "Ctrl+L"),
    Command("quit", "", "leave gpt-tui", "Ctrl+Q"),
)
BY_NAME = {c.name: c for c in COMMANDS}
ALIASES = {"exit": "quit", "q": "quit", "h": "help", "?": "help", "generate": "gen", "temperature": "temp",
           "maximize": "max", "maximise": "max", "t": "temp", "k": "topk", "p": "topp"}


def parse(line: str) -> tuple[Command, list[str]]:
    """'/layer 3' -> (the layer command, ['3']); CommandError for unknown commands."""
    words = line.strip().removeprefix("/").split()
    if not words:
        raise CommandError("an empty command; /help lists them")
    name = ALIASES.get(words[0].lower(), words[0].lower())
    command = BY_NAME.get(name)
    if command is None:
        near = complete("/" + name[:2])
        hint = f" (did you mean {', '.join(near)}?)" if near and len(near) <= 4 else ""
        raise CommandError(f"unknown command /{words[0]}{hint}; /help lists them")
    return command, words[1:]


def complete(prefix: str) -> list[str]:
    """Command names that start with prefix ('/te' -> ['/temp'])."""
    stem = prefix.removeprefix("/").lower()
    return [f"/{c.name}" for c in COMMANDS if c.name.startswith(stem)]


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


class GptCommands(Provider):
    """Every /command in Textual's command palette."""

    def _hits(self):
        screen = self.app.screen
        for c in COMMANDS:
            if c.args and not c.args.startswith("["):
                run = partial(_prefill, screen, f"/{c.name} ")
                help_text = f"{c.help} · type /{c.name} {c.args} · key {c.key}"
            else:
                run = partial(_run, screen, f"/{c.name}")
                help_text = f"{c.help} · key {c.key}"
            yield f"/{c.name} {c.args}".strip(), run, help_text

    async def discover(self) -> Hits:
        for title, run, help_text in self._hits():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, run, help_text in self._hits():
            score = max(matcher.match(title), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, text=title, help=help_text)


def _prefill(screen, text: str) -> None:
    if hasattr(screen, "prefill"):
        screen.prefill(text)


def _run(screen, line: str) -> None:
    if hasattr(screen, "run_command"):
        screen.run_command(line)
