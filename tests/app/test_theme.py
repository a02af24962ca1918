"""The theme picked in the palette is remembered (a settings file in the config directory) and the
next session starts with it; --theme chooses one for a run."""

from __future__ import annotations

import json
import subprocess
import sys

from app_helpers import settle

from gpt_tui.settings import Settings, config_dir

WIDE = (120, 40)


async def pick_theme(pilot, name: str) -> None:
    """Ctrl+P, the palette's theme command, then the theme by name, as a person does."""
    await pilot.press("ctrl+p", *"theme")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause(0.3)
    await pilot.press(*name, "enter")
    await settle(pilot, 0.1)


async def test_a_theme_picked_in_the_palette_is_saved_and_starts_the_next_session(make_app, tmp_path):
    path = tmp_path / "config" / "settings.json"
    app = make_app(settings=Settings.load(path))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pick_theme(pilot, "nord")
        assert app.theme == "nord"
    assert json.loads(path.read_text()) == {"theme": "nord"}
    again = make_app(settings=Settings.load(path))
    async with again.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert again.theme == "nord"


async def test_theme_for_one_run_leaves_the_saved_one(make_app, tmp_path):
    path = tmp_path / "settings.json"
    Settings(theme="gruvbox", path=path).save()
    app = make_app(settings=Settings.load(path), theme="dracula")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        assert app.theme == "dracula"
    assert Settings.load(path).theme == "gruvbox"


async def test_a_damaged_or_unknown_setting_means_the_default(make_app, tmp_path):
    path = tmp_path / "settings.json"
    default = make_app()
    for content in ("{not json", json.dumps({"theme": "no-such-theme"}), json.dumps(["theme"])):
        path.write_text(content)
        app = make_app(settings=Settings.load(path))
        async with app.run_test(size=WIDE) as pilot:
            await settle(pilot)
            assert app.theme == default.theme


def test_the_config_directory_follows_the_platform_and_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv("GPT_TUI_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert config_dir() == tmp_path / "xdg" / "gpt-tui"
    monkeypatch.setenv("GPT_TUI_CONFIG_DIR", str(tmp_path / "mine"))
    assert config_dir() == tmp_path / "mine"


def test_an_unknown_theme_is_a_usage_error_naming_the_choices():
    done = subprocess.run([sys.executable, "-m", "gpt_tui", "--theme", "nope"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "no theme 'nope'; choose one of" in done.stderr and "nord" in done.stderr
