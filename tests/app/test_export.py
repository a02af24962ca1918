"""Ctrl+S and /export save what is on screen: the screen as SVG and the analysis as JSON, in the
current directory, and say where."""

from __future__ import annotations

import json

from app_helpers import command, notes, settle, type_text

WIDE = (120, 40)


async def test_ctrl_s_saves_the_screen_and_the_analysis(make_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        await settle(pilot, 0.1)
        await pilot.press("ctrl+s")  # from the text editor: the key works there too
        await settle(pilot, 0.1)
        assert app.screen.text == "strawberry"  # the key typed nothing
        layer = app.screen.layer_index
    svg, = tmp_path.glob("gpt-tui-*.svg")
    data = json.loads(svg.with_suffix(".json").read_text())
    assert svg.read_text().lstrip().startswith("<svg") and "strawberry" in svg.read_text().replace("&#160;", " ")
    assert [t["text"] for t in data["tokens"]] == ["st", "raw", "berry"]
    assert data["schema_version"] == 1 and data["model"] == "tiny" and data["text"] == "strawberry"
    assert len(data["candidates"]) == 20 and data["attention"]["layer"] == layer
    assert len(data["attention"]["weights"]) == 3
    assert any(f"saved {svg}" in note and str(svg.with_suffix(".json")) in note for note in notes(app))


async def test_export_command_before_any_text_saves_the_screen_alone(make_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await command(pilot, "/export")
    assert len(list(tmp_path.glob("gpt-tui-*.svg"))) == 1 and not list(tmp_path.glob("gpt-tui-*.json"))


async def test_a_directory_that_cannot_be_written_is_a_message(make_app, tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.setattr(Path, "cwd", classmethod(lambda cls: tmp_path / "gone"))  # deleted under us
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await command(pilot, "/export")
    assert any(note.startswith("could not export: ") for note in notes(app)), notes(app)
