"""The input model, driven by keys: the text changes only by editing it (typing, pasting, taking
generated text, picking a candidate, an explicit clear, which Ctrl+Z undoes); a command never
becomes text and text never becomes a command; after a command every panel shows the analysis of
the text on screen."""

from __future__ import annotations

import asyncio
import random

from app_helpers import burst, command, notes, screen_text, settle, type_text
from textual import events

from gpt_tui.app.panels.attention import AttentionPanel
from gpt_tui.app.panels.candidates import CandidatesPanel
from gpt_tui.app.panels.neighbours import NeighboursPanel
from gpt_tui.app.panels.tokens import TokensPanel

WIDE = (120, 40)


async def test_slash_from_a_focused_panel_opens_the_command_bar(make_app):
    """`/panel candidates` typed from a panel runs the command; the text is left alone (it once
    became the analysed text `panel candidates`)."""
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "The cat")
        await pilot.press("tab")  # from the editor to a panel
        assert isinstance(app.focused, TokensPanel)
        await pilot.press("slash", *"panel candidates", "enter")
        await settle(pilot, 0.1)
        assert isinstance(app.focused, CandidatesPanel)
        assert app.screen.text == "The cat" and app.screen.analysis.text == "The cat"
        for key in ("colon", "ctrl+k"):  # the other ways in, from a panel
            await pilot.press(key, *"layer 1", "enter")
            await settle(pilot, 0.1)
            assert app.screen.layer_index == 1 and app.screen.text == "The cat"
            await pilot.press("ctrl+k", *"layer 0", "enter")


async def test_keys_sent_at_once_land_where_they_belong(make_app):
    """Ctrl+U, `/select 1` and Enter arriving in one read (tmux, a fast typist) from a panel: the
    command runs, and no part of it reaches the text."""
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        await pilot.press("tab")
        burst(app, "ctrl+u", "/", *"select 1", "enter")
        await settle(pilot, 0.2)
        assert app.screen.text == "strawberry"
        assert app.screen.selected == 1
        burst(app, "ctrl+k", *"temp 1.5", "enter")  # once this became the text `temp 0.3/temp 1.5`
        await settle(pilot, 0.2)
        assert app.screen.params.temperature == 1.5 and app.screen.text == "strawberry"


async def test_in_the_text_everything_typed_is_text(make_app):
    """A `/` in the text is a character; Enter is a newline; Ctrl+K opens the command bar
    without touching the text."""
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press(*"a/b: 1", "enter", *"/help")
        await settle(pilot, 0.2)
        assert app.screen.text == "a/b: 1\n/help"
        assert app.screen.analysis.text == "a/b: 1\n/help"
        assert len(app.screen.screen_stack if hasattr(app.screen, "screen_stack") else app.screen_stack) == 2
        await pilot.press("ctrl+k", *"ids", "enter")
        await settle(pilot, 0.1)
        assert app.screen.show_ids and app.screen.text == "a/b: 1\n/help"
        assert app.screen.editor.has_focus  # back where it was


async def test_pasted_cr_and_crlf_become_newlines(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app.post_message(events.Paste("one\rtwo\r\nthree\n"))
        await settle(pilot, 0.2)
        assert app.screen.text == "one\ntwo\nthree\n"
        assert "␍" not in screen_text(app)
        assert [p.text for p in app.screen.analysis.pieces].count("\r") == 0
        # A paste in a terminal without bracketed paste arrives as keys: CR is Enter, a newline too.
        burst(app, "x", "enter", "y")
        await settle(pilot, 0.2)
        assert app.screen.text == "one\ntwo\nthree\nx\ny"


async def test_the_text_survives_every_command(make_app, tmp_path, monkeypatch):
    from gpt_tui.app.actions import ACTIONS

    monkeypatch.chdir(tmp_path)  # where /export writes
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "keep me")
        skip = {"quit", "clear", "undo", "take", "model", "help", "gen", "step", "command", "edit"}
        for a in ACTIONS:
            if a.name in skip:
                continue
            args = {"layer": "1", "head": "1", "select": "0", "temp": "0.7", "topk": "5", "topp": "0.9", "seed": "3",
                    "analogy": "king man woman", "panel": "attention"}.get(a.name, "")
            await command(pilot, f"/{a.name} {args}".strip())
            await pilot.press("escape")  # whatever it opened
            assert app.screen.text == "keep me", a.name
        await settle(pilot, 0.1)
        assert app.screen.editor.text == "keep me" and app.screen.analysis.text == "keep me"


async def test_after_a_command_every_panel_shows_the_analysis(make_app):
    """The neighbours stayed 'type some text…', /select said 'nothing analysed yet' and /analogy
    was discarded while text was on screen."""
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        await command(pilot, "/select 1")
        assert app.screen.selected == 1 and not notes(app)
        neighbours = app.screen.query_one(NeighboursPanel)
        assert neighbours.neighbours.query == repr("raw")
        assert app.screen.query_one(AttentionPanel).selected == 1
        assert "after #1 raw" in app.screen.query_one(CandidatesPanel).view.title
        await command(pilot, "/analogy king man woman")
        await settle(pilot, 0.1)
        assert "king" in neighbours.neighbours.query and "a − b + c" in screen_text(app)
        await pilot.press("tab", "left")  # moving the selection shows a token's neighbours again
        await settle(pilot, 0.1)
        assert neighbours.neighbours.query == repr("st")
        for panel in (TokensPanel, AttentionPanel, CandidatesPanel):
            assert app.screen.query_one(panel).analysis is app.screen.analysis
        assert "type some text" not in screen_text(app)


async def test_the_palette_runs_what_it_lists(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        for name, check in (("/ids", lambda s: s.show_ids), ("/numbers", lambda s: s.show_numbers)):
            await pilot.press("ctrl+p", *name[1:])
            await pilot.pause(0.3)
            await pilot.press("enter")
            await settle(pilot, 0.1)
            assert check(app.screen), name
        await pilot.press("ctrl+p", *"temp")  # needs a value: the command bar opens with it typed
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot, 0.1)
        bar = app.screen.query_one("#command-bar")
        assert bar.is_open and bar.value == "/temp " and bar.has_focus
        await pilot.press("1", "enter")
        await settle(pilot, 0.1)
        assert app.screen.params.temperature == 1.0 and app.screen.text == "strawberry"


async def test_the_key_bar_shows_the_essential_keys_at_80_columns(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        bar = screen_text(app).splitlines()[-1]
        for key in ("F1 help", "^K command", "Tab panels", "F5 gen", "F6 step", "Esc stop"):
            assert key in bar, key
        await pilot.press("tab")  # out of the text: / opens commands, digits switch panels
        bar = screen_text(app).splitlines()[-1]
        from gpt_tui.app.panels import PANELS

        assert "/ command" in bar and f"{PANELS[0].KEY}-{PANELS[-1].KEY} panel" in bar


async def test_panel_keys_at_80x24(make_app):
    """No Alt: the tab bar (Tab, then ←/→), the panels' numbers outside the text, /panel."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        await pilot.press("tab", "right")
        assert app.screen._active == "attention"
        await pilot.press("3")
        assert app.screen._active == "candidates" and app.screen.query_one(CandidatesPanel).region.area
        await pilot.press("ctrl+e", "5")  # in the text a digit is text
        await settle(pilot, 0.1)
        assert app.screen.text == "strawberry5" and app.screen._active == "candidates"


async def test_every_panel_fills_the_screen_at_80x24(make_app):
    """One panel at a time: each one chosen takes all the rows between the tabs and the text (the
    generation panel once kept its 12-row height of the wide grid, leaving blank rows below)."""
    from gpt_tui.app.panels import PANELS

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        room = app.screen.query_one("#panels").region.height
        for panel in PANELS:
            await command(pilot, f"/panel {panel.NAME}")
            shown = app.screen.query_one(panel)
            assert app.screen._active == panel.NAME and shown.region.height == room, (panel.NAME, shown.region.height)


async def test_seed_advances_per_run_unless_pinned(make_app):
    app = make_app(seed=None)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "Once")
        seeds, texts = [], []
        for _ in range(2):
            await pilot.press("f5")
            await settle(pilot, 0.2)
            seeds.append(app.screen.generation.seed)
            texts.append([t.id for t in app.screen.runs.tokens])
        assert seeds[0] != seeds[1] and texts[0] != texts[1]  # F5 twice: two texts
        assert f"seed {seeds[1]}" in screen_text(app)
        await command(pilot, f"/seed {seeds[0]}")
        await pilot.press("f5")
        await settle(pilot, 0.2)
        assert [t.id for t in app.screen.runs.tokens] == texts[0]  # pinned: the first text again
        assert "seed📌" in screen_text(app) and "(pinned)" in screen_text(app)


async def test_knob_fields_show_the_real_value_or_a_marker(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await command(pilot, "/seed 2138595849")
        await command(pilot, "/gen 1000")
        await pilot.press("escape")
        await settle(pilot, 0.1)
        shown = screen_text(app)
        assert "2138595849" in shown and "1000" in shown  # whole, not `138595849` or `000`
        assert "top-k off" in shown.replace("  ", " ")  # off, not a stale number
        await pilot.press("ctrl+t", "a", "b", "c")
        await settle(pilot, 0.1)
        assert "T✗" in screen_text(app)  # an invalid value is marked, not taken
        assert app.screen.params.temperature == 1.0


async def drain(app) -> None:
    """Until the last key and everything it set off have been handled: flush the queues of the
    app (priority bindings, forwarding), the focused widget and the screen, until no widget has a
    message waiting. Deterministic, and cheaper than waiting for the CPU to look idle."""
    for _ in range(20):
        for pump in (app, app.focused, app.screen):
            if pump is not None:
                done = asyncio.Event()
                if pump.call_later(done.set):
                    await done.wait()
        if all(node._message_queue.empty() for node in (app, *app.screen.walk_children(with_self=True))):
            return


async def random_key_sequences(pilot, app, rng: random.Random, sequences: int, longest: int = 8) -> int:
    """Key sequences over /, Enter, Esc, Ctrl+U, Tab, F-keys, letters and pastes; after every key
    the text is what the keys that reached the editor made of it, and nothing else."""
    keys = ["slash", "enter", "escape", "ctrl+u", "tab", "shift+tab", "f2", "f3", "f4", "f8", "f9", "ctrl+k", "a",
            "b", "x", "space", "1", "3", "colon", "paste"]
    editor = app.screen.editor
    checked = 0
    for _ in range(sequences):
        app.screen.set_focus(editor)
        editor.move_cursor(editor.document.end)
        await drain(app)
        done_keys = []
        for _ in range(rng.randint(1, longest)):
            key = rng.choice(keys)
            done_keys.append(key)
            before, in_editor = editor.text, app.screen.focused is editor
            picked = _picked(app) if key == "enter" else None
            if key == "paste":
                pasted = rng.choice(["p\rq", "r\r\ns", "t"])
                app.post_message(events.Paste(pasted))
            else:
                app.post_message(events.Key(key, {"a": "a", "b": "b", "x": "x", "space": " ", "1": "1", "3": "3",
                                                  "slash": "/", "colon": ":", "enter": "\r"}.get(key)))
            await drain(app)
            after = editor.text
            if picked is not None:  # Enter on a candidate appends it: an edit the user asked for
                expected = picked
            elif not in_editor:
                expected = before
            elif key == "paste":
                expected = before + pasted.replace("\r\n", "\n").replace("\r", "\n")
            elif key in ("a", "b", "x", "1", "3"):
                expected = before + key
            elif key in ("space", "slash", "colon", "enter"):
                expected = before + {"space": " ", "slash": "/", "colon": ":", "enter": "\n"}[key]
            elif key == "ctrl+u":  # deletes back to the start of the line; at its start, the newline
                expected = before[: before.rfind("\n") + 1] if not before.endswith("\n") else before[:-1]
                if before.endswith("\n") and after == before:
                    expected = before  # Textual 4.0 stops at the line's start (the editor's own reach)
            else:  # Tab, Esc, F-keys, ^K: never change the text
                expected = before
            assert after == expected, (done_keys, before, after)
            assert app.screen.text == after  # what the panels analyse is the editor's text
            bar = app.screen.query_one("#command-bar")
            assert not bar.value or bar.value.startswith("/") or bar.value[:1] in "abx13 :", bar.value
            checked += 1
        if app.screen.maximized is not None:
            app.screen.minimize()
        while len(app.screen_stack) > 2 or app.screen.query_one("#command-bar").is_open:
            app.post_message(events.Key("escape", None))  # close the command bar, help, …
            await drain(app)
        app.clear_notifications()
        if len(editor.text) > 60:
            editor.set_text("")
    return checked


def _picked(app) -> str | None:
    """The text Enter makes when the candidates panel has the focus (None: it does not)."""
    panel = app.screen.focused
    if not isinstance(panel, CandidatesPanel) or panel.view is None or not panel.view.rows:
        return None
    row = panel.view.rows[min(panel.cursor, len(panel.view.rows) - 1)]
    data = app.screen.session.tokenizer.token_bytes(row.id)
    try:
        piece = data.decode("utf-8")
    except UnicodeDecodeError:
        return app.screen.text  # part of a character: not typed, said so
    a, text = app.screen.analysis, app.screen.text
    if a is not None and app.screen.selected < a.n_tokens - 1:
        text = text[: a.pieces[app.screen.selected].end]
    return text + piece


async def test_a_thousand_random_key_sequences_keep_the_text(make_app, monkeypatch):
    """While the model loads (it never arrives here), so that a thousand sequences take seconds,
    not minutes: the input model does not depend on the model."""
    from gpt_tui.app.app import ExplorerScreen

    from textual.screen import Screen

    monkeypatch.setattr(ExplorerScreen, "load", lambda self, spec: None)
    # Nothing is painted: the text invariant is about input, and painting is most of the time.
    monkeypatch.setattr(Screen, "_compositor_refresh", lambda self: None)
    app = make_app(session=None, encodings=[])
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        checked = await random_key_sequences(pilot, app, random.Random(10), 1000, longest=5)
        assert checked > 2500


async def test_random_key_sequences_with_a_model(make_app):
    """The same with the model loaded and the panels live (Enter on a candidate appends it)."""
    app = make_app(encodings=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        checked = await random_key_sequences(pilot, app, random.Random(11), 60)
        assert checked > 200
        await settle(pilot, 0.2)
        assert app.screen.analysis is None or app.screen.analysis.text == app.screen.text


async def test_tab_and_a_panel_number_in_one_read_reach_the_panel_not_the_text(make_app):
    """Over SSH, Tab and the next key can arrive together: the focus moves before the next is handed out."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "The cat")
        burst(app, "tab", "6")
        await settle(pilot, 0.2)
        assert app.screen.text == "The cat"
        assert app.screen.query_one("#lens").display and app.focused.id == "lens"
        burst(app, "shift+tab", "shift+tab", "x")  # back to the text, and x is text again
        await settle(pilot, 0.2)
        assert app.screen.text == "The catx"


async def test_keys_in_one_read_with_a_command_keep_their_order(make_app):
    """A fast typist's (or SSH's batched) keys: the command runs with what was typed before its
    Enter, and what follows the Enter (or Esc) lands where the focus went back, in order."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "The cat")
        burst(app, "ctrl+k", *"temp 1.7", "enter", *" sat")
        await settle(pilot, 0.2)
        assert app.screen.params.temperature == 1.7 and app.screen.text == "The cat sat"
        burst(app, "ctrl+k", *"temp 9", "escape", *" on")
        await settle(pilot, 0.2)
        assert app.screen.params.temperature == 1.7 and app.screen.text == "The cat sat on"
        burst(app, "tab", "slash", *"topk 5", "enter", "6")  # from a panel: back to it, 6 shows the lens
        await settle(pilot, 0.2)
        assert app.screen.params.top_k == 5 and app.screen.text == "The cat sat on"
        assert app.focused.id == "lens"
