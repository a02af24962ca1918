"""gpt-tui: see how a GPT works, from a terminal."""

import sys as _sys

__version__ = "0.1.0"


def _leave_on_ctrl_c(signum, frame):  # pragma: no cover - tested through real processes
    """Ctrl+C in the command line: keep what was written, say so, end with 130 at once."""
    import os

    try:
        _sys.stdout.flush()
    except BaseException:  # noqa: BLE001 - a closed pipe, a write this signal interrupted
        pass
    os.write(2, b"gpt-tui: interrupted\n")
    os._exit(130)


# Run as the program (the console script, or `python -m gpt_tui` while runpy imports this package),
# Ctrl+C ends the process at once with 130 and one line, from its first moments on. As a
# KeyboardInterrupt it would land wherever the program happens to be, e.g. inside an import of
# torch, whose half-done state then gives a misleading error or a traceback. The parts that have
# something to do on Ctrl+C (a generation that keeps its text, training that saves a checkpoint,
# the interactive session) turn it back into a KeyboardInterrupt while they run
# (gpt_tui.errors.interruptible). A Ctrl+C the parent told us to ignore stays ignored.
if _sys.argv and (_sys.argv[0] == "-m" or _sys.argv[0].rsplit("/", 1)[-1] == "gpt-tui"):
    import _signal

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _leave_on_ctrl_c)
