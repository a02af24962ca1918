"""What any command-line tool is expected to have: --version, shell completion, --debug anywhere,
usage errors with status 2, `-` for stdin, one meaning per short option, choices and examples in
--help, versioned JSON with a `model` key, and token boundaries on a terminal without colour."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from gpt_tui import __version__

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}
GPT_TUI = [sys.executable, "-m", "gpt_tui"]


def run(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*GPT_TUI, *args], capture_output=True, text=True, timeout=120,
                          env={**ENV, **(env or {})}, **kwargs)


def commands():
    """Every command of the Typer app, as click sees it: {name: click.Command}."""
    import typer.main

    from gpt_tui.cli import app

    return typer.main.get_command(app).commands


# -- --version ------------------------------------------------------------------------------------------


def test_version_without_importing_the_heavy_parts():
    code = ("import sys; sys.argv = ['gpt-tui', '--version']\n"
            "from gpt_tui.fastcli import main; status = main()\n"
            "print([m for m in ('torch', 'typer', 'textual') if m in sys.modules], status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV)
    assert out.stdout.splitlines() == [f"gpt-tui {__version__}", "[] 0"], out.stderr


def test_version_through_typer_too(cli):
    result = cli("--version")
    assert (result.exit_code, result.stdout) == (0, f"gpt-tui {__version__}\n")


# -- shell completion --------------------------------------------------------------------------------------


def test_the_completion_variable_completes_and_never_opens_the_session():
    done = run(env={"_GPT_TUI_COMPLETE": "complete_bash", "COMP_WORDS": "gpt-tui tok", "COMP_CWORD": "1"},
               stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout.split()) == (0, ["tokenize"]), done.stderr


def test_completion_lists_the_dtypes():
    done = run(env={"_GPT_TUI_COMPLETE": "complete_bash", "COMP_WORDS": "gpt-tui next --dtype ", "COMP_CWORD": "3"})
    assert done.stdout.split() == ["auto", "float32", "bfloat16", "float16"], done.stderr


def test_show_completion_prints_a_script_for_the_shell(cli, monkeypatch):
    import shellingham

    # The shell is found among the process's ancestors; a test run from a process that no shell
    # started (a background job whose shell exited, an IDE) has none, so it is given here.
    monkeypatch.setattr(shellingham, "detect_shell", lambda *a, **k: ("bash", "/bin/bash"))
    result = cli("--show-completion")
    assert result.exit_code == 0 and "_GPT_TUI_COMPLETE=complete_bash" in result.stdout


# -- --debug anywhere ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--debug", "tokenize", "hi", "--ids"], ["tokenize", "--debug", "hi", "--ids"],
                                  ["tokenize", "hi", "--ids", "--debug"]])
def test_debug_is_accepted_anywhere(args):
    done = run(*args)
    assert (done.returncode, done.stdout) == (0, "5303\n"), done.stderr


def test_debug_after_the_command_shows_the_traceback():
    done = run("tokenize", "x", "-e", "no_such_encoding", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_debug_after_a_double_dash_is_text():
    done = run("tokenize", "--ids", "--", "--debug")
    assert done.returncode == 0 and len(done.stdout.split()) == 2, done.stderr


# -- usage errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,option", [
    (["--device", "tpu"], "--device"),  # the session's own options, before anything opens
    (["--dtype", "foo"], "--dtype"),
    (["next", "x", "--device", "tpu"], "--device"),
    (["next", "x", "--device", "cuda:x"], "--device"),
    (["info", "--dtype", "foo"], "--dtype"),
    (["chat", "--seed", "-1", "user: hi"], "--seed"),
    (["generate", "x", "--seed", "-1"], "--seed"),
    (["generate", "x", "-n", "3"], "-n"),  # -n is --top; generate has --max-new-tokens only
    (["next", "x", "--top", "0"], "--top"),
    (["train", "--dtype", "float16"], "--dtype"),
    (["train", "--minutes", "1", "--precision", "fp8"], "--precision"),  # the old name still checks
])
def test_usage_errors_exit_2_in_one_line(cli, args, option):
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and option in lines[0], result.stderr


def test_a_bad_device_exits_2_from_the_entry_point():
    done = run("--device", "tpu", stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "'tpu' is not a device" in done.stderr


# -- stdin ------------------------------------------------------------------------------------------------


def test_dash_reads_stdin(cli):
    result = cli("tokenize", "-", "--ids", input="strawberry\n")
    assert (result.exit_code, result.stdout) == (0, "301 1831 8396\n"), result.stderr


def test_dash_as_chat_turns_reads_json_from_stdin(cli, model_dir):
    result = cli("chat", "-", "--model", model_dir, "--max-new-tokens", "0", "--json",
                 input='[{"role": "user", "content": "Hi"}]')
    assert result.exit_code == 0, result.stderr
    assert "Hi" in json.loads(result.stdout)["document"]


# -- options and help ------------------------------------------------------------------------------------------


def test_each_short_option_means_one_thing_in_every_command():
    meaning: dict[str, set[str]] = {}
    for command in commands().values():
        for param in command.params:
            long = next((o for o in param.opts if o.startswith("--")), param.name)
            for short in (o for o in [*param.opts, *param.secondary_opts] if not o.startswith("--")):
                meaning.setdefault(short, set()).add(long)
    assert {s: longs for s, longs in meaning.items() if len(longs) > 1} == {}
    assert meaning["-n"] == {"--top"}


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_has_examples_and_the_device_choices(monkeypatch, cli, name):
    monkeypatch.setenv("COLUMNS", "200")  # room for the choices on one line
    result = cli(name, "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout and f"$ gpt-tui {name}" in result.stdout
    if any(p.name == "device" for p in commands()[name].params):
        assert "[auto|cpu|cuda|cuda:N|mps]" in result.stdout
        assert "[auto|float32|bfloat16|float16]" in result.stdout or name == "train"


def test_train_takes_the_same_dtype_words(monkeypatch, cli, tmp_path):
    import gpt_tui.training.run as run_module

    seen = {}
    monkeypatch.setattr(run_module, "run_training", lambda cfg: seen.setdefault("precision", cfg.precision))
    assert cli("train", "--minutes", "1", "--dtype", "bfloat16", "--out", tmp_path).exit_code == 0
    assert seen["precision"] == "bf16"


# -- JSON -------------------------------------------------------------------------------------------------------


def test_json_is_versioned_and_names_the_model(cli, model_dir):
    for args in (["tokenize", "hi"], ["tokenize", "hi", "-e", "cl100k_base"], ["next", "hi", "--model", model_dir],
                 ["info", "--model", model_dir]):
        out = json.loads(cli(*args, "--json").stdout)
        assert out["schema_version"] == 1 and "model" in out, args
    assert json.loads(cli("tokenize", "hi", "-e", "cl100k_base", "--json").stdout)["model"] is None


def test_info_shapes_are_arrays(cli, model_dir):
    out = json.loads(cli("info", "--model", model_dir, "--json").stdout)
    shapes = {m["name"]: m["shape"] for m in out["matrices"]}
    assert shapes["W_E (token embedding)"] == [50257, 48]
    assert shapes["W_U (unembedding)"] is None  # tied: no matrix of its own


# -- a terminal without colour ---------------------------------------------------------------------------------


def on_a_terminal(*args: str, env: dict) -> str:
    """What the command writes to a pseudo-terminal."""
    leader, follower = pty.openpty()
    child = subprocess.Popen([*GPT_TUI, *args], stdin=follower, stdout=follower, stderr=follower,
                             env={**ENV, **env}, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "TERM": "xterm-256color"}, {"TERM": "dumb"}])
def test_token_boundaries_show_without_colour(env):
    shown = on_a_terminal("tokenize", "strawberry", env=env)
    assert shown.splitlines()[0].strip() == "st|raw|berry", shown


def test_options_before_the_command_apply_to_it(cli, model_dir):
    before = json.loads(cli("--model", model_dir, "info", "--json").stdout)
    after = json.loads(cli("info", "--model", model_dir, "--json").stdout)
    assert before["source"] == after["source"] == str(model_dir)
    result = cli("--device", "cuda:7", "next", "x", "--model", model_dir)
    assert result.exit_code == 1 and "cuda" in result.stderr.lower()
