"""End to end in a real terminal: tmux runs gpt-tui on a tiny checkpoint, we type, and read the
screen the way a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


SOCKET = f"gpt-tui-test-{os.getpid()}"  # a private tmux server: never touches the user's sessions


def tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check)


def wait_for(session: str, needle: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session).stdout
        if needle in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} never appeared; the screen was:\n{screen}")


def launch_command(model: Path) -> list[str]:
    """The gpt-tui console script when it opens the session, else the app's run() directly."""
    cli = ROOT / "gpt_tui" / "cli.py"
    if "gpt_tui.app" in cli.read_text():
        return [sys.executable, "-m", "gpt_tui", "--model", str(model), "--no-mouse"] if (
            ROOT / "gpt_tui" / "__main__.py").exists() else [
            sys.executable, "-c", "from gpt_tui.cli import main; main()", "--model", str(model), "--no-mouse"]
    return [sys.executable, "-c", "import sys; from gpt_tui.app import run; sys.exit(run(model=sys.argv[1], "
            "mouse=False))", str(model)]


def test_strawberry_in_a_real_terminal(tiny_checkpoint):
    session = f"gpt-tui-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    command = " ".join(f"'{part}'" for part in launch_command(tiny_checkpoint))
    subprocess.run(["tmux", "-L", SOCKET, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
                   check=True, env=env, cwd=ROOT)
    try:
        wait_for(session, "params")  # the model has loaded: its size is in the status line
        tmux("send-keys", "-t", session, "-l", "strawberry")
        screen = wait_for(session, "3 tokens")
        assert "st raw berry" in screen  # the chips, as a person sees them
        assert "%" in screen.split("Next-token candidates")[1]  # probabilities in the candidates
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and tmux("has-session", "-t", session, check=False).returncode == 0:
            time.sleep(0.3)
        assert tmux("has-session", "-t", session, check=False).returncode != 0, "Ctrl+Q did not quit"
    finally:
        tmux("kill-server", check=False)
