"""What a person sees when a command goes wrong: one line on stderr and an exit status.

The one place that turns an exception into a message. Exit statuses: 0 on success and when the
reader of the output went away (`gpt-tui … | head`), 1 on a runtime error, 2 on a usage error,
130 on Ctrl+C. Tracebacks only with --debug. Nothing here imports more than the standard library
(the entry point uses it before it knows what it will need).
"""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager

OK, RUNTIME, USAGE, INTERRUPTED = 0, 1, 2, 130

# Writing the output failed in a way that is not the reader leaving: a full disk, a closed stream.
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT, errno.EFBIG)


class UsageError(Exception):
    """A valid-looking command that asks for something that does not exist or cannot be (exit 2)."""


def first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""


def explain(exc: BaseException) -> tuple[int, str | None]:
    """(exit status, the one line to print or None for silence) for an exception."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE):
        return OK, None  # the reader went away (`| head`): nothing was lost that anyone wanted
    if isinstance(exc, UsageError):
        return USAGE, first_line(exc)
    if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
        # click's usage errors (an unknown option, a value out of range), said in one line
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None and exc.exit_code == USAGE else ""
        return exc.exit_code, first_line(exc.format_message()) + hint
    from gpt_tui.engine.errors import GptTuiError  # free: no torch

    if isinstance(exc, GptTuiError):
        return RUNTIME, first_line(exc) or type(exc).__name__
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return RUNTIME, "out of memory" + (f": {first_line(exc)}" if first_line(exc) else "")
    if isinstance(exc, OSError):
        reason = exc.strerror or first_line(exc) or type(exc).__name__
        if exc.filename is not None:
            return RUNTIME, f"{exc.filename}: {reason}"
        if exc.errno in OUTPUT_ERRNOS:
            return RUNTIME, f"cannot write the output: {reason}"
        return RUNTIME, reason
    if isinstance(exc, (ValueError, UnicodeError)) and first_line(exc):
        return RUNTIME, first_line(exc)
    detail = first_line(exc)
    return RUNTIME, f"{type(exc).__name__}{': ' + detail if detail else ''} (run with --debug for the traceback)"


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still buffered cannot
    fail again (a closed pipe, a full disk) and print "Exception ignored" on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real file behind stdout (tests capture it)
        pass


def say(message: str) -> None:
    """One line on stderr, if there is a stderr to write to."""
    try:
        sys.stderr.write(f"gpt-tui: {message}\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


def report(exc: BaseException) -> int:
    """Say what went wrong in one line and return the exit status."""
    status, message = explain(exc)
    if isinstance(exc, OSError) and (exc.errno == errno.EPIPE or exc.errno in OUTPUT_ERRNOS):
        silence_stdout()
    if message is not None:
        say(message)
    return status


def finish_output() -> None:
    """Flush stdout now, while a failure can still be reported (at exit it would be a traceback)."""
    if sys.stdout is not None:
        sys.stdout.flush()


@contextmanager
def interruptible():
    """Ctrl+C as Python's KeyboardInterrupt inside the block, for work that has something to do
    when interrupted (keep a generation's text, save a checkpoint, restore a terminal). Outside,
    the program ends at once on Ctrl+C (gpt_tui/__init__.py). Main thread only."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    early = getattr(before, "__name__", "") == "_leave_on_ctrl_c"
    if early:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if early:
            signal.signal(signal.SIGINT, before)


@contextmanager
def kill_as_ctrl_c():
    """SIGTERM (`kill PID`) as KeyboardInterrupt inside the block, for work that saves something when
    stopped (training's checkpoint): a job started in the background (`nohup gpt-tui train … &`)
    ignores Ctrl+C's signal, so `kill` is how it is stopped. Main thread only."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def guarded(run, debug: bool = False) -> int:
    """Run `run()` (which returns an exit status or raises SystemExit) and its last flush; any
    exception becomes one line and a status, KeyboardInterrupt included (130, never a traceback)."""
    try:
        try:
            status = run()
        except SystemExit as done:
            status = done.code
        finish_output()
    except BaseException as exc:  # noqa: BLE001 - the one place every error becomes a message
        if debug:
            raise
        status = report(exc)
    if status is None:
        return OK
    if not isinstance(status, int):
        say(str(status))
        return RUNTIME
    return status
