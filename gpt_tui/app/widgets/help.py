"""F1 / /help: every command with its key, and the keys of each panel."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..commands import COMMANDS

PANEL_KEYS = (
    ("Tab / Shift+Tab", "move between the prompt and the panels"),
    ("← → Home End", "select a token (in any panel); the selection drives every panel"),
    ("↑ ↓ (prompt)", "history of what you typed"),
    ("Tab (prompt)", "complete a /command"),
    ("↑ ↓ Enter (candidates)", "choose a candidate; Enter appends it to the text"),
    ("↑ ↓ (attention)", "move the query row; in the overview ←↑↓→ move and Enter picks a head"),
    ("Alt+1…5", "show a panel (tabs on narrow terminals)"),
    ("Ctrl+P", "command palette: every command by name"),
    ("//text", "analyse text that starts with a slash"),
)


class HelpScreen(ModalScreen[None]):
    """A list of commands and keys."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "close help")]

    def compose(self) -> ComposeResult:
        commands = Table(title="commands (type them in the prompt)", expand=True, title_justify="left")
        commands.add_column("command", no_wrap=True, style="bold")
        commands.add_column("key", no_wrap=True)
        commands.add_column("what it does")
        for c in COMMANDS:
            commands.add_row(f"/{c.name} {c.args}".strip(), c.key, c.help)
        keys = Table(title="keys", expand=True, title_justify="left")
        keys.add_column("key", no_wrap=True, style="bold")
        keys.add_column("what it does")
        for key, what in PANEL_KEYS:
            keys.add_row(key, what)
        with VerticalScroll(id="help-body"):
            yield Static(Text("gpt-tui — see how a GPT works. Esc closes this help.", style="bold"))
            yield Static(commands)
            yield Static(keys)

    def action_dismiss(self) -> None:
        self.dismiss(None)
