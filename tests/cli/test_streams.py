"""Streams and signals, with real processes as a shell starts them: stdin closed, stdout full or
closed, a reader that goes away (`| head`), stderr closed, Ctrl+C at any moment from the start.

A reader that went away is not an error (status 0, nothing said); a full disk or a closed
stdout is one line and status 1; Ctrl+C is 130 and never a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}
GPT_TUI = [sys.executable, "-m", "gpt_tui"]
LONG_TEXT = "The quick brown fox jumps over the lazy dog. " * 400


def shell(command: str, **kwargs) -> subprocess.CompletedProcess:
    """`command` run by bash, with $GPT_TUI standing for the program."""
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                          env={**ENV, "GPT_TUI": " ".join(GPT_TUI)}, **kwargs)


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT at its default, whatever the test runner inherited (a shell's background
    job ignores it, and an ignored Ctrl+C rightly stays ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def no_traceback(done) -> None:
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


def test_closed_stdin_is_no_text(model_dir):
    generated = shell(f"$GPT_TUI generate --model {model_dir} --max-new-tokens 3 --seed 1 <&-")
    no_traceback(generated)
    assert generated.returncode == 0 and "3 tokens · seed 1" in generated.stderr  # from a new document
    asked = shell(f"$GPT_TUI next --model {model_dir} <&-")
    no_traceback(asked)
    assert asked.returncode == 2 and asked.stderr.strip() == ("gpt-tui: no text given: pass it as an argument "
                                                              "or pipe it on stdin")


@pytest.mark.parametrize("args", [
    ["tokenize", "hello world"], ["tokenize", "hello", "--json"], ["tokenize", "hello", "--ids"],
    ["tokenize", "hello", "-e", "cl100k_base"], ["next", "hello", "--json", "--model", "{model}"],
    ["generate", "hello", "--max-new-tokens", "3", "--seed", "1", "--model", "{model}"], ["score", "hello", "--model", "{model}"],
    ["info", "--model", "{model}"], ["--help"],
])
def test_a_full_disk_is_one_line(model_dir, args):
    with open("/dev/full", "w") as full:
        done = subprocess.run([*GPT_TUI, *[a.replace("{model}", str(model_dir)) for a in args]], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    no_traceback(done)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "gpt-tui: cannot write the output: No space left on device"


@pytest.mark.parametrize("args", [["tokenize", "hello"], ["next", "hello", "--model", "{model}"]])
def test_a_closed_stdout_is_one_line(model_dir, args):
    args = " ".join(a.replace("{model}", str(model_dir)) for a in args)
    done = shell(f"$GPT_TUI {args} >&-")
    no_traceback(done)
    assert done.returncode == 1 and done.stderr.strip() == "gpt-tui: cannot write the output: standard output is closed"


@pytest.mark.parametrize("args, stdin", [
    (["generate", "Once", "--max-new-tokens", "400", "--seed", "1", "--model", "{model}"], None),
    (["tokenize"], LONG_TEXT),  # the table, a screenful at a time
    (["tokenize", "--json"], LONG_TEXT),
    (["tokenize", "--ids"], LONG_TEXT * 20),
    (["score", "--model", "{model}"], LONG_TEXT[:120]),
], ids=["generate", "tokenize-table", "tokenize-json", "tokenize-ids", "score"])
def test_a_reader_that_goes_away_is_not_an_error(model_dir, args, stdin):
    """`gpt-tui … | head -c 10`: the reader closes the pipe after a few bytes; status 0, silence."""
    args = [a.replace("{model}", str(model_dir)) for a in args]
    child = subprocess.Popen([*GPT_TUI, *args], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    if stdin:
        child.stdin.write(stdin.encode())
        child.stdin.close()
        child.stdin = None  # written and closed: communicate() must not flush it
    assert len(child.stdout.read(10)) == 10
    child.stdout.close()
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    # generate's summary goes to stderr before the pipe is found closed; nothing else may
    assert all(line.endswith("top-p=1") for line in err.decode().splitlines()), err


def test_a_closed_stderr_still_gives_the_status(model_dir):
    done = shell(f"$GPT_TUI next '' --model {model_dir} 2>&-")
    assert done.returncode == 1


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.2, 0.4, 0.8, 1.6])
def test_ctrl_c_at_any_moment_from_the_start(model_dir, delay):
    """SIGINT while Python, typer, torch and the model are still loading: 130, one line at most."""
    child = subprocess.Popen([*GPT_TUI, "generate", "Once", "--max-new-tokens", "100000", "--model", str(model_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             preexec_fn=_ctrl_c_as_in_a_terminal)
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    if "Traceback" in err:
        # Only where no program's code can catch it: the interpreter's own start-up (importing runpy,
        # site), before the first line of gpt_tui runs. From gpt_tui/__init__.py on, it is ours.
        assert "/gpt_tui/" not in err and child.returncode != 0, err
        return
    assert "KeyboardInterrupt" not in err, err
    # -SIGINT: the signal came before the interpreter had set up its handler (the shell says 130)
    assert child.returncode in (130, -signal.SIGINT), (child.returncode, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 2, err  # "interrupted", or the summary of a generation cut short


def test_ctrl_c_during_generation_keeps_what_was_written(model_dir):
    child = subprocess.Popen([*GPT_TUI, "generate", "Once", "--max-new-tokens", "100000", "--seed", "3", "--model", str(model_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             preexec_fn=_ctrl_c_as_in_a_terminal)
    first = child.stdout.read(12)  # generation has started
    child.send_signal(signal.SIGINT)
    rest, err = child.communicate(timeout=120)
    out = first + rest
    assert child.returncode == 130 and "Traceback" not in err
    assert err.splitlines()[-1].endswith("· interrupted")  # the summary of what was generated
    assert out.startswith("Once") and len(out) > 12  # what was written is kept
