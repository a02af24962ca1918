#!/usr/bin/env bash
# The wheel as a new user meets it: built, installed into a fresh venv (the local CPU torch through
# constraints.txt), run from an empty directory with an empty Hugging Face cache and no network
# allowed to the hub.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/build-env"
"$work/build-env/bin/pip" install -q build
"$work/build-env/bin/python" -m build -q --outdir "$work/dist" . >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q -c constraints.txt "$work"/dist/*.whl
mkdir "$work/empty" && cd "$work/empty"
export HF_HOME="$work/hf-home" HF_HUB_OFFLINE=1 NO_COLOR=1
gpt="$work/venv/bin/gpt-tui"
set -x
"$gpt" --version
"$gpt" tokenize strawberry --ids | grep -qx "301 1831 8396"
"$gpt" next "The cat sat on the" -n 3 --json | "$work/venv/bin/python" -c 'import json, sys; d = json.load(sys.stdin); assert d["model"] == "bundled" and len(d["candidates"]) == 3'
test -z "$(ls -A "$work/empty")"  # nothing written into the working directory
