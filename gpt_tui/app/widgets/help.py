"""F1 / /help: every command with its keys (from actions.ACTIONS) and every panel with its key
and its own keys (from the panel registry)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..actions import ACTIONS

GENERAL_KEYS = (
    ("Tab / Shift+Tab", "move between the text, the tab bar (narrow terminals) and the panels"),
    ("⏎ (in the text)", "a newline; everything typed in the text is text, a / too"),
    ("^K, or / and : outside the text", "open the command bar; Esc closes it, ↑↓ history, Tab completes"),
    ("← → Home End (in a panel)", "select a token; the selection drives every panel"),
    ("^Z", "undo the last change to the text (a clear, a take, a picked candidate)"),
    ("^P", "command palette: every command by name, and it runs what you choose"),
)


class HelpScreen(ModalScreen[None]):
    """A list of commands and keys."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-body { width: 90%; height: 90%; border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, panels) -> None:
        super().__init__()
        self._panels = panels

    def compose(self) -> ComposeResult:
        commands = Table(title="commands (^K opens the command bar)", expand=True, title_justify="left")
        commands.add_column("command", no_wrap=True, style="bold")
        commands.add_column("key", no_wrap=True)
        commands.add_column("what it does")
        for a in ACTIONS:
            commands.add_row(Text(a.usage), Text(a.key_text), Text(a.help))  # Text: `[word]` is not markup
        panels = Table(title="panels (their number outside the text, /panel NAME, or the tab bar with ←→)",
                       expand=True, title_justify="left")
        panels.add_column("key", no_wrap=True, style="bold")
        panels.add_column("panel", no_wrap=True)
        panels.add_column("its own keys")
        for p in self._panels:
            panels.add_row(Text(p.KEY), Text(f"{p.TITLE} (/panel {p.NAME})"), Text(p.HINT))
        keys = Table(title="keys", expand=True, title_justify="left")
        keys.add_column("key", no_wrap=True, style="bold")
        keys.add_column("what it does")
        for key, what in GENERAL_KEYS:
            keys.add_row(Text(key), Text(what))
        with VerticalScroll(id="help-body"):
            yield Static(Text("gpt-tui — see how a GPT works. Esc closes this help.", style="bold"))
            yield Static(keys)
            yield Static(panels)
            yield Static(commands)

    def action_dismiss(self) -> None:
        self.dismiss(None)
