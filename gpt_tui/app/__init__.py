"""gpt-tui's interactive session (Textual). Importing this package imports neither torch nor
textual; `run` does, and the model loads in a worker after the first frame."""

from __future__ import annotations

import os
import sys

MAX_PIPED_TEXT = 1_000_000  # characters read from a pipe into the text

USAGE = """\
gpt-tui opens a full-screen session, which needs a terminal; {why}.
In scripts and pipes, use its commands instead, e.g.:
  gpt-tui tokenize "some text"      how a text is cut into tokens
  gpt-tui next "The cat sat on"     the next-token candidates
  gpt-tui generate "Once upon"      a continuation
  gpt-tui --help                    every command
(`echo text | gpt-tui` in a terminal opens the session with that text.)
"""


def terminal_problem(stdin_tty: bool, stdout_tty: bool, term: str | None) -> str | None:
    """Why the session cannot open full-screen here, or None when it can."""
    if not stdout_tty:
        return USAGE.format(why="its output is not a terminal" if stdin_tty else
                            "neither its input nor its output is a terminal")
    if (term or "").lower() in ("dumb", "unknown"):
        return USAGE.format(why=f"this terminal (TERM={term}) cannot draw one; set TERM to a real terminal "
                                "type, e.g. TERM=xterm-256color")
    return None


def _read_piped_text() -> tuple[str, str | None]:
    """Read the text piped into stdin, then make the terminal stdin again for the keys.
    Returns (text, problem): problem is a message when there is no terminal to read keys from."""
    data = sys.stdin.buffer.read(MAX_PIPED_TEXT * 4) if sys.stdin is not None else b""
    text = data.decode("utf-8", errors="replace")[:MAX_PIPED_TEXT]
    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return text, USAGE.format(why="its input is a pipe and there is no terminal to read keys from")
    os.dup2(tty, 0)  # Textual reads keys from file descriptor 0
    os.close(tty)
    return text, None


def run(model: str | None = None, device: str = "auto", dtype: str = "auto", mouse: bool = True,
        theme: str | None = None) -> int:
    """Open the session full-screen; returns an exit status for the command line (2: no terminal)."""
    stdin_tty = sys.stdin is not None and sys.stdin.isatty()
    if os.environ.get("TEXTUAL_DRIVER", "").endswith(":WebDriver"):  # a browser tab of `gpt-tui serve`
        stdin_tty = True  # stdin and stdout are the web driver's pipes: no terminal needed, no text piped
        problem = None
    else:
        problem = terminal_problem(stdin_tty, sys.stdout is not None and sys.stdout.isatty(),
                                   os.environ.get("TERM"))
    text = ""
    if problem is None and not stdin_tty:
        text, problem = _read_piped_text()
    if problem is not None:
        sys.stderr.write(problem)
        return 2

    import gc

    from .app import GptTuiApp

    # What the imports made (textual's and our modules) lives as long as the process: frozen, it is
    # left out of the collector's full passes, one of which would otherwise delay the first frame.
    gc.freeze()
    from gpt_tui.settings import Settings

    app = GptTuiApp(model=model, device=device, dtype=dtype, text=text, settings=Settings.load(), theme=theme)
    try:
        app.run(mouse=mouse)
    except (BrokenPipeError, OSError):  # the terminal went away (SSH dropped): leave quietly
        return 1
    return app.return_code or 0


__all__ = ["run", "terminal_problem"]
