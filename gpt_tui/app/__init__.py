"""gpt-tui's interactive session (Textual). Importing this package imports neither torch nor
textual; `run` does, and the model loads in a worker after the first frame."""

from __future__ import annotations


def run(model: str | None = None, device: str = "auto", dtype: str = "auto", mouse: bool = True) -> int:
    """Open the session full-screen; returns an exit status for the command line."""
    import gc

    from .app import GptTuiApp

    # What the imports made (textual's and our modules) lives as long as the process: frozen, it is
    # left out of the collector's full passes, one of which would otherwise delay the first frame.
    gc.freeze()
    app = GptTuiApp(model=model, device=device, dtype=dtype)
    try:
        app.run(mouse=mouse)
    except (BrokenPipeError, OSError):  # the terminal went away (SSH dropped): leave quietly
        return 1
    return app.return_code or 0


__all__ = ["run"]
