"""Helpers for the app tests."""

from __future__ import annotations


async def settle(pilot, delay: float = 0.0) -> None:
    """Let debounce timers fire, workers finish and their messages land."""
    if delay:
        await pilot.pause(delay)
    from textual.worker import WorkerCancelled

    for _ in range(3):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # superseded by a newer one of its exclusive group: by design
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def type_text(pilot, text: str) -> None:
    """Type into the focused prompt, a key event per character, and wait for the analysis.

    The events go straight to the prompt: Pilot.press waits ~60 ms per key, which is slow.
    """
    from textual import events

    prompt = pilot.app.screen.query_one("#prompt")
    prompt.focus()
    await pilot.pause()
    for ch in text:
        prompt.post_message(events.Key("space" if ch == " " else ch, ch))
    await settle(pilot, 0.2)


def screen_text(app) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
