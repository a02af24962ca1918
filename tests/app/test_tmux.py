"""End to end in a real terminal: tmux runs gpt-tui on a tiny checkpoint, we type, and read the
screen the way a person would. Keys go through tmux as a terminal sends them (`send-keys`), so
what only a real terminal shows is tested here: key sequences, pastes, signals, pipes."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


# A private tmux server per test, never the user's: a new one on the socket of a server still shutting
# down after the previous test fails with "server exited unexpectedly".
SOCKET = ""


def tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check)


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session).stdout


def wait_for(session: str, needle: str, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = screen(session)
        if needle in shown:
            return shown
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} never appeared; the screen was:\n{shown}")


def gpt_tui(model: Path, *extra: str) -> str:
    """The command line of the session, as a shell would run it."""
    return " ".join(shlex.quote(p) for p in [sys.executable, "-m", "gpt_tui", "--model", str(model), "--no-mouse",
                                             *extra])


@pytest.fixture
def terminal():
    """Open sessions in a private tmux server: terminal(command, size) -> session name."""
    global SOCKET
    SOCKET = f"gpt-tui-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}

    def open_session(command: str, size=(120, 40)) -> str:
        name = f"gpt-tui-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "-L", SOCKET, "new-session", "-d", "-s", name, "-x", str(size[0]), "-y",
                        str(size[1]), command], check=True, env=env, cwd=ROOT)
        tmux("set-option", "-t", name, "remain-on-exit", "on")
        return name

    yield open_session
    tmux("kill-server", check=False)


def keys(session: str, *names: str, literal: str | None = None) -> None:
    """The named keys, then the literal text (`keys(s, "C-k", literal="nope")` opens, then types)."""
    if names:
        tmux("send-keys", "-t", session, *names)
    if literal is not None:
        tmux("send-keys", "-t", session, "-l", literal)


def test_strawberry_in_a_real_terminal(tiny_checkpoint, terminal):
    session = terminal(gpt_tui(tiny_checkpoint))
    wait_for(session, "params")  # the model has loaded: its size is in the status line
    keys(session, literal="strawberry")
    shown = wait_for(session, "3 tokens")
    assert "st raw berry" in shown  # the chips, as a person sees them
    assert "%" in shown.split("Next-token candidates")[1]  # probabilities in the candidates
    keys(session, "C-q")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and tmux("display", "-p", "-t", session, "#{pane_dead}").stdout.strip() != "1":
        time.sleep(0.3)
    assert tmux("display", "-p", "-t", session, "#{pane_dead}").stdout.strip() == "1", "Ctrl+Q did not quit"


def test_slash_command_from_a_focused_panel(tiny_checkpoint, terminal):
    """Tab to a panel, then `/layer 1` and Enter sent at once: the command runs, the text stays."""
    session = terminal(gpt_tui(tiny_checkpoint))
    wait_for(session, "params")
    keys(session, literal="The cat sat")
    wait_for(session, "3 tokens")
    keys(session, "Tab")
    time.sleep(0.5)
    keys(session, "/", literal="layer 1")
    keys(session, "Enter")
    shown = wait_for(session, "layer 1 · head 0")
    assert "3 tokens · 11 characters" in shown  # the text is still "The cat sat"
    assert "layer 1" not in shown.splitlines()[-2]  # the editor line: no command in the text
    keys(session, "C-k", literal="nope")
    keys(session, "Enter")
    wait_for(session, "unknown command /nope")


def test_palette_runs_what_it_lists(tiny_checkpoint, terminal):
    session = terminal(gpt_tui(tiny_checkpoint))
    wait_for(session, "params")
    keys(session, literal="strawberry")
    wait_for(session, "3 tokens")
    keys(session, "C-p")
    time.sleep(0.8)
    keys(session, literal="numbers")
    time.sleep(0.8)
    keys(session, "Enter")
    wait_for(session, "weight in %")  # the attention grid now shows numbers


def test_panel_switching_at_80x24(tiny_checkpoint, terminal):
    """No Alt keys: Tab to the tab bar and →, or a panel's number from outside the text."""
    session = terminal(gpt_tui(tiny_checkpoint), size=(80, 24))
    wait_for(session, "params")
    keys(session, literal="strawberry")
    shown = wait_for(session, "3 tokens")
    assert "F1 help" in shown and "^K command" in shown and "F5 gen" in shown  # the key bar at 80 columns
    keys(session, "Tab")
    time.sleep(0.5)
    keys(session, "Right")
    wait_for(session, "layer 0 · head 0")  # the attention panel
    keys(session, "3")
    shown = wait_for(session, "Next-token candidates")
    assert "layer 0 · head 0" not in shown
    assert "strawberry3" not in shown  # the digit switched panels; it was not typed


def test_a_paste_with_cr_line_ends(tiny_checkpoint, terminal):
    session = terminal(gpt_tui(tiny_checkpoint))
    wait_for(session, "params")
    tmux("set-buffer", "-b", "crpaste", "one\rtwo\r\nthree")
    # -p: as a bracketed paste; -r: the bytes as they are (tmux would turn each LF into a CR)
    tmux("paste-buffer", "-p", "-r", "-b", "crpaste", "-t", session)
    shown = wait_for(session, "characters")
    assert "␍" not in shown
    assert "one ⏎ two ⏎ three" in shown.replace("␣", "")  # newlines, as chips


def test_sigterm_restores_the_terminal(tiny_checkpoint, terminal):
    """`kill` (SIGTERM) from another shell: the user's shell gets back its main screen, no mouse
    reporting, a visible cursor, and the status of a process ended by SIGTERM (143). The shell stays
    open so what it shows is read from a live pane (tmux resets a dead pane's modes itself)."""
    session = terminal(f"{gpt_tui(tiny_checkpoint)}; echo \"exit status $?\"; sleep 60")
    wait_for(session, "params")
    assert tmux("display", "-p", "-t", session, "#{alternate_on}").stdout.strip() == "1"
    shell = tmux("display", "-p", "-t", session, "#{pane_pid}").stdout.strip()
    child = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()
    os.kill(int(child[0]), 15)
    wait_for(session, "exit status 143", timeout=20)
    state = tmux("display", "-p", "-t", session, "#{alternate_on} #{mouse_any_flag} #{mouse_button_flag} "
                 "#{cursor_flag}").stdout.split()
    assert state == ["0", "0", "0", "1"], state  # main screen; no mouse reporting; cursor shown


def test_piped_stdin_becomes_the_text(tiny_checkpoint, terminal):
    session = terminal(f"printf 'piped text' | {gpt_tui(tiny_checkpoint)}")
    wait_for(session, "params")
    shown = wait_for(session, "3 tokens")  # p|iped| text
    assert "piped text" in shown  # in the editor and analysed
    keys(session, literal="!")  # and the keys come from the terminal
    wait_for(session, "piped text!")


def test_without_a_terminal_it_says_how_to_use_the_cli(tiny_checkpoint):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gpt_tui", "--model", str(tiny_checkpoint)]
    out = subprocess.run(command, input="hi\n", capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "gpt-tui tokenize" in out.stderr and out.stdout == ""
    dumb = subprocess.run(["script", "-qec", " ".join(map(shlex.quote, command)), "/dev/null"],
                          capture_output=True, text=True, env={**env, "TERM": "dumb"}, timeout=60,
                          stdin=subprocess.DEVNULL) if shutil.which("script") else None
    if dumb is not None:
        assert "TERM=dumb" in dumb.stdout + dumb.stderr
