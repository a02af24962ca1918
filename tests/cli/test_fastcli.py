"""The entry point's fast path for `gpt-tui tokenize`: same output as the Typer command, and
everything it does not handle goes to Typer unchanged."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gpt_tui import fastcli

TEXT = "Hello world, it's 2024! 🙂"


@pytest.mark.parametrize("args,expected", [
    (["hi"], dict(text="hi")),
    (["--ids", "hi"], dict(text="hi", ids=True)),
    (["hi", "--json", "-e", "cl100k_base"], dict(text="hi", as_json=True, encoding="cl100k_base")),
    (["--encoding=gpt2", "--allow-special", "a b"], dict(text="a b", encoding="gpt2", allow_special=True)),
    (["-m", "some/dir", "x"], dict(text="x", model="some/dir")),
])
def test_parse(args, expected):
    base = dict(text=None, encoding=None, model=None, ids=False, as_json=False, allow_special=False)
    assert fastcli.parse_tokenize(args) == {**base, **expected}


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["a", "b"], ["--", "x"], ["--bogus", "x"], ["-e"],
                                  ["x", "-e"], ["-e", "--ids", "x"], ["--encoding=", "x"], ["-1"]])
def test_leaves_everything_else_to_typer(args):
    assert fastcli.parse_tokenize(args) is None


def _run(module_main: str, *args: str) -> subprocess.CompletedProcess:
    code = f"import sys; sys.argv[0] = 'gpt-tui'; from {module_main} import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "100"})


@pytest.mark.parametrize("args", [
    ["tokenize", "--ids", TEXT],
    ["tokenize", TEXT, "--json"],
    ["tokenize", TEXT],
    ["tokenize", "<|endoftext|> x", "--allow-special", "--json"],
    ["tokenize", "strawberry", "-e", "cl100k_base", "--ids"],
    ["tokenize", "x", "--encoding", "no_such_encoding"],  # an error: Typer's message and exit code
    ["tokenize", "--bogus", "x"],
])
def test_same_output_and_exit_code_as_typer(args):
    fast, typer_path = _run("gpt_tui.fastcli", *args), _run("gpt_tui.cli", *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (typer_path.returncode, typer_path.stdout, typer_path.stderr)


def test_the_fast_path_never_imports_typer_torch_or_the_cli():
    code = ("import sys; sys.argv = ['gpt-tui', 'tokenize', '--ids', 'hello']\n"
            "from gpt_tui.fastcli import main; main()\n"
            "heavy = [m for m in ('typer', 'torch', 'gpt_tui.cli', 'rich', 'pydantic') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["31373", "[]"], out.stderr


@pytest.mark.parametrize("args", [[], ["--model", "gpt2"], ["-m", "x", "--device", "cpu", "--dtype=bfloat16"],
                                  ["--no-mouse"], ["--dtype", "float32", "--model=some/dir", "--no-mouse"],
                                  ["--theme", "nord", "--no-mouse"]])
def test_the_session_starts_as_typer_starts_it(args, monkeypatch):
    """Same run() keywords from the fast path as from Typer's callback."""
    import gpt_tui.app
    from typer.testing import CliRunner

    from gpt_tui.cli import app

    calls = []
    monkeypatch.setattr(gpt_tui.app, "run", lambda **kw: calls.append(kw) or 0)
    monkeypatch.setattr(sys, "argv", ["gpt-tui", *args])
    fastcli.main()
    assert CliRunner().invoke(app, args).exit_code == 0
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize("args", [["--help"], ["--debug"], ["info"], ["--model"], ["-m=x"], ["--bogus"],
                                  ["--device", "--no-mouse"], ["--device", "tpu"], ["--dtype", "foo"]])
def test_other_invocations_go_to_typer(args):
    assert fastcli.parse_session(args) is None
