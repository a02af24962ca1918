# Two commands from a fresh clone: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the local CPU wheel here; pyproject.toml keeps a range for CUDA users.
CONSTRAINTS := constraints.txt

.PHONY: setup run test screenshots bench clean

$(BIN)/gpt-tui: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@

setup: $(BIN)/gpt-tui

run: setup
	$(BIN)/gpt-tui

test: setup
	$(BIN)/python -m pytest -q

screenshots: setup
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
