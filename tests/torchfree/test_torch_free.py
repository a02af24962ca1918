"""The paths that never need torch: `tokenize` and the command line's parsing and help.

They run here with torch made unimportable, so they pass in an environment without it (CI runs
this file on the oldest and newest Python the project claims, with no torch installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_TORCH = "import sys; sys.modules['torch'] = None; sys.argv[0] = 'gpt-tui'; from gpt_tui.fastcli import main; raise SystemExit(main())"


def gpt_tui(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """`gpt-tui ARGS` in a fresh interpreter where `import torch` fails."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1", "COLUMNS": "100",
               "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120,
                          input=stdin, env=environ)


def test_tokenize_ids_without_torch():
    result = gpt_tui("tokenize", "strawberry", "--ids")
    assert (result.returncode, result.stdout, result.stderr) == (0, "301 1831 8396\n", "")


def test_tokenize_json_and_cl100k_without_torch():
    result = gpt_tui("tokenize", "strawberry", "-e", "cl100k_base", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [t["text"] for t in data["tokens"]] == ["str", "aw", "berry"]


def test_tokenize_from_stdin_without_torch():
    result = gpt_tui("tokenize", "--ids", stdin="strawberry\n")
    assert (result.returncode, result.stdout) == (0, "301 1831 8396\n"), result.stderr


@pytest.mark.parametrize("args", [["--help"], ["tokenize", "--help"], ["next", "--help"], ["generate", "-h"]])
def test_help_without_torch(args):
    result = gpt_tui(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage: gpt-tui" in result.stdout


def test_a_usage_error_exits_2_without_torch():
    result = gpt_tui("next", "hello", "--top", "0")
    assert result.returncode == 2 and "--top" in result.stderr
    assert "Traceback" not in result.stderr
