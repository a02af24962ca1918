"""Bad input: one clear line on stderr, the right exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["next", "", "--model", "{model}"], 1, "the text is empty"),
        (["next", "hi", "--model", "/no/such/model"], 1, "/no/such/model: no such file or directory"),
        (["next", "hi", "--model", "{model}", "--device", "cuda"], 1, "no CUDA GPU"),
        (["next", "hi", "--model", "{model}", "--device", "tpu"], 2, "is not a device"),
        (["next", "hi", "--model", "{model}", "--dtype", "float8"], 2, "is not one of auto, float32"),
        (["attention", "hi", "--model", "{model}", "--layer", "7"], 2, "this model has 3 layers (0–2)"),
        (["attention", "hi", "--model", "{model}", "--head", "-1"], 2, "3 heads per layer"),
        (["next", "hi", "--model", "{model}", "--top-p", "0"], 2, "top-p must be in (0, 1]"),
        (["neighbours", "xqzvw", "--model", "{model}"], 1, "several tokens (x|q|z|v|w)"),
        (["tokenize", "x", "--encoding", "nonsense"], 1, "unknown encoding 'nonsense'"),
        (["train", "--corpus", "/nowhere"], 2, "give a budget"),
    ],
)
def test_clear_one_line_errors(cli, model_dir, args, code, message):
    result = cli(*[a.replace("{model}", str(model_dir)) for a in args])
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_corrupt_checkpoint(cli, tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    result = cli("next", "hi", "--model", bad)
    assert result.exit_code == 1 and "not a readable .safetensors file" in result.stderr


def test_unknown_option_is_a_usage_error(cli):
    result = cli("next", "--no-such-flag")
    assert result.exit_code == 2


def test_tokenize_never_imports_torch():
    """The fast path: tokenizing must not pay for importing torch (about a second)."""
    code = ("import sys\nfrom gpt_tui.cli import app\nsys.argv = ['gpt-tui', 'tokenize', 'strawberry', '--json']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert '"st"' in done.stdout
    assert done.stderr.strip().endswith("False")


def test_console_script_exit_codes(model_dir):
    """The installed entry point, end to end, as a shell would see it."""
    done = subprocess.run([sys.executable, "-m", "gpt_tui", "next", "--model", str(model_dir)], input="",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "the text is empty" in done.stderr and "Traceback" not in done.stderr
