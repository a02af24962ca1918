"""SVG snapshots of the session (pytest-textual-snapshot). Tiny random model, fixed seed,
cursor blink off (headless), workers awaited before the capture.

Update after reviewing the report: pytest tests/app/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from app_helpers import settle


def typed(text: str, *keys: str, delay: float = 0.2):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press(*text)
        await settle(pilot, delay)
        if keys:
            await pilot.press(*keys)
            await settle(pilot, delay)
    return run_before


def test_overview_120x40(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=typed("strawberry"))


def test_selection_and_generation_120x40(snap_compare, make_app):
    run = typed("The cat sat", "tab", "left", "f5")
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=run)


def test_tokens_tab_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=typed("strawberry 猫"))


def test_attention_tab_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=typed("The cat sat on the mat", "tab", "2"))


def test_candidates_tab_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=typed("Hello", "tab", "3"))


def test_long_text_attention_120x40(snap_compare, make_app):
    text = "The cat sat on the mat. " * 8  # 56 tokens: the grid is a window, the whole row downsampled
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=typed(text, "tab", "tab", "up", "up"))


def test_too_small_40x12(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(40, 12), run_before=typed("Hello"))


def test_command_bar_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=typed("Hello", "tab", "slash", *"temp 0"))


def test_no_color_attention_80x24(snap_compare, make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")  # meaning survives without colour: glyphs and numbers
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=typed("The cat sat on the mat", "tab", "2"))
