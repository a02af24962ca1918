"""SVG snapshots of the panels inside the layers (tiny random model, fixed seed, workers awaited).

Update after reviewing the report: pytest tests/app/test_inside_snapshots.py --snapshot-update
"""

from __future__ import annotations

from app_helpers import command, settle


def shown(text: str, *steps: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        if text:
            await pilot.press(*text)
            await settle(pilot, 0.2)
        for step in steps:
            if step.startswith("/"):
                await command(pilot, step)
            else:
                await pilot.press(*step.split())
            await settle(pilot, 0.2)
    return run_before


def test_lens_120x40(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=shown("The cat sat on the mat", "tab 6"))


def test_stages_120x40(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=shown("The cat sat on the mat", "tab 7 left"))


def test_context_120x40(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40),
                        run_before=shown("", '/compare "machine learning model" "fashion model"'))


def test_positions_120x40(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=shown("", "tab 9"))


def test_card_80x24(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=shown("", "tab 0"))


def test_chat_120x40(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=shown("", "/chat user: Hi there"))
