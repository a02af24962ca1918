"""What the session remembers between runs (today: the theme), in a small JSON file in the
platform's config directory: $XDG_CONFIG_HOME/gpt-tui (~/.config/gpt-tui) on Linux, the
Application Support / AppData folders elsewhere. GPT_TUI_CONFIG_DIR overrides the directory.

A missing, unreadable or damaged file means the defaults, never an error: settings are a
convenience. Imports only the standard library (and platformdirs, which Textual depends on).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ENV_DIR = "GPT_TUI_CONFIG_DIR"
FILE = "settings.json"


def config_dir() -> Path:
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override).expanduser()
    try:
        from platformdirs import user_config_dir
    except ImportError:  # platformdirs comes with Textual; this is for a stripped install
        base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        return Path(base) / "gpt-tui"
    return Path(user_config_dir("gpt-tui", appauthor=False))


@dataclass
class Settings:
    theme: str | None = None  # a Textual theme's name; None: Textual's default
    path: Path | None = None  # where they are saved; None: nowhere (tests, a read-only home)

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        path = path or config_dir() / FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        theme = data.get("theme") if isinstance(data, dict) else None
        return cls(theme=theme if isinstance(theme, str) else None, path=path)

    def save(self) -> bool:
        """Write the file (atomically: a crash leaves the old one). False when it cannot be written."""
        if self.path is None:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".tmp")
            partial.write_text(json.dumps({"theme": self.theme}, indent=2) + "\n", encoding="utf-8")
            os.replace(partial, self.path)
        except OSError:
            return False
        return True


def theme_names() -> list[str]:
    """The themes --theme accepts: Textual's built-in ones."""
    from textual.theme import BUILTIN_THEMES

    return sorted(BUILTIN_THEMES)
