"""gpt-tui: see how a GPT works, from a terminal."""

import sys as _sys

__version__ = "0.1.0"


def _leave_on_ctrl_c(signum, frame):  # pragma: no cover - runs in the program's first moments
    import os

    os.write(2, b"gpt-tui: interrupted\n")
    os._exit(130)


# Run as the program (the console script, or `python -m gpt_tui` while runpy imports this package),
# Ctrl+C before the entry point's error handling is in place ends the process at once with 130 and
# one line, instead of a KeyboardInterrupt traceback from the middle of an import. The entry point
# (gpt_tui/errors.guarded) puts Python's own handler back as soon as it can report an interrupt.
if _sys.argv and (_sys.argv[0] == "-m" or _sys.argv[0].rsplit("/", 1)[-1] == "gpt-tui"):
    import _signal

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _leave_on_ctrl_c)
