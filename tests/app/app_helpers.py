"""Helpers for the app tests."""

from __future__ import annotations

from textual import events

# Key names for the characters a test types (Textual's names for the non-letters).
KEY_NAMES = {" ": "space", "/": "slash", ".": "full_stop", ",": "comma", ":": "colon", "-": "minus",
             "\n": "enter", "[": "left_square_bracket", "]": "right_square_bracket", "'": "apostrophe",
             "!": "exclamation_mark", "?": "question_mark"}


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


def key_event(key: str) -> events.Key:
    """The event a terminal sends for a key name or a character."""
    if len(key) == 1:
        return events.Key(KEY_NAMES.get(key, key), key)
    return events.Key(key, {"space": " ", "enter": "\r", "tab": "\t"}.get(key))


def burst(app, *keys: str) -> None:
    """Keys as they come from a terminal in one read (tmux send-keys, a fast typist): posted to the
    app together, each handled where the focus is when its turn comes, exactly as the driver does."""
    for key in keys:
        app.post_message(key_event(key))


async def type_text(pilot, text: str) -> None:
    """Type text into the editor (a burst of key events, as a terminal sends them) and wait for the
    analysis. Pilot.press waits for the screen to settle after every key, which is slow."""
    editor = pilot.app.screen.query_one("#editor")
    pilot.app.screen.set_focus(editor)
    await pilot.pause()
    burst(pilot.app, *text)
    await settle(pilot, 0.2)


async def command(pilot, line: str) -> None:
    """Open the command bar with Ctrl+K, type the command, Enter: what a person does."""
    await pilot.press("ctrl+k")
    burst(pilot.app, *line.removeprefix("/"))
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot, 0.05)


def screen_text(app) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def record_notes(app) -> None:
    """Keep every notification (a loaded machine is slow enough for a five-second one to expire
    within a test); `notes` reads them."""
    app._all_notes = []
    notify = app.notify

    def recording(message, *args, **kwargs):
        app._all_notes.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = recording


def notes(app) -> list[str]:
    """Every notification shown so far, expired ones included."""
    return list(getattr(app, "_all_notes", [str(n.message) for n in app._notifications]))
