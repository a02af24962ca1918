"""Pilot tests of the interactive session: what a person does, and what the panels then show."""

from __future__ import annotations

import subprocess
import sys
import time

from textual import events

from app_helpers import burst, command, notes, screen_text, settle, type_text

from gpt_tui.app.app import ExplorerScreen
from gpt_tui.app.panels.attention import AttentionPanel
from gpt_tui.app.panels.candidates import CandidatesPanel
from gpt_tui.app.panels.generation import GenerationPanel
from gpt_tui.app.panels.neighbours import NeighboursPanel
from gpt_tui.app.panels.tokens import TokensPanel

WIDE = (120, 40)


def test_importing_the_app_package_imports_neither_torch_nor_textual():
    code = "import sys, gpt_tui.app; print('torch' in sys.modules, 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


async def test_typing_updates_every_panel(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        screen: ExplorerScreen = app.screen
        a = screen.analysis
        assert [p.text for p in a.pieces] == ["st", "raw", "berry"]
        assert screen.selected == 2  # the last token by default
        shown = screen_text(app)
        assert "st raw berry" in shown  # gpt2 chips
        assert "str aw berry" in shown  # cl100k_base side by side
        assert "3 tokens · 10 characters" in shown
        view = app.screen.query_one(CandidatesPanel).view
        assert view is not None and view.survivors is not None
        top = app.screen.query_one(CandidatesPanel).view.rows[0]
        assert top.id == int(a.position(-1).top_ids[0])  # the engine's ranking, unchanged
        assert top.prob > 0.2  # the peaked fixture: a real probability, not 0.00%
        assert abs(top.prob - float(a.position(-1).top_probs[0])) < 1e-4  # float32 softmaxes
        assert f"{top.prob * 100:.2f}%" in shown
        assert app.screen.query_one(NeighboursPanel).neighbours.query == repr("berry")
        assert app.screen.query_one(AttentionPanel).analysis is a


async def test_selection_drives_every_panel(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        screen: ExplorerScreen = app.screen
        screen.query_one(TokensPanel).focus()
        await pilot.press("left")
        await settle(pilot)
        assert screen.selected == 1
        assert screen.query_one(TokensPanel).selected == 1
        assert screen.query_one(AttentionPanel).selected == 1
        assert screen.query_one(NeighboursPanel).neighbours.query == repr("raw")
        view = screen.query_one(CandidatesPanel).view
        assert "after #1 raw" in view.title and "berry" in view.title
        assert view.survivors is None  # the knobs apply at the last position only
        a = screen.analysis
        # Only what is on screen was derived: predictions after the selected positions, one layer's weights.
        assert set(a._memo) <= {0, 1, 2} and list(a.attention._layers) == [screen.layer_index]
        assert [r.id for r in view.rows] == [int(i) for i in a.top_ids[1]]
        await pilot.press("home")
        await settle(pilot)
        assert screen.selected == 0
        await pilot.press("end")
        await settle(pilot)
        assert screen.selected == 2


async def test_layer_and_head_change_without_running_the_model(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "The cat sat on the mat")
        screen: ExplorerScreen = app.screen
        analysis, requested = screen.analysis, screen.analyses_requested
        screen.query_one(AttentionPanel).focus()
        await pilot.press("full_stop", "right_square_bracket")
        await settle(pilot)
        panel = screen.query_one(AttentionPanel)
        assert (panel.layer_index, panel.head) == (1, 1)
        await command(pilot, "/layer 0")
        await command(pilot, "/head 0")
        assert (panel.layer_index, panel.head) == (0, 0)
        assert screen.analysis is analysis
        assert screen.analyses_requested == requested  # no new forward pass
        assert "layer 0 · head 0" in screen_text(app)


async def test_attention_overview_picks_a_head(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "one two three")
        requested = app.screen.analyses_requested
        await pilot.press("f4")
        await settle(pilot)
        assert "all layers × heads" in screen_text(app)
        await pilot.press("down", "right", "enter")
        await settle(pilot)
        panel = app.screen.query_one(AttentionPanel)
        assert (panel.layer_index, panel.head, panel.overview) == (1, 1, False)
        assert app.screen.analyses_requested == requested


async def test_attention_grid_marks_the_causal_mask(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        shown = screen_text(app)
        assert "masked (future key)" in shown
        row0 = next(line for line in shown.splitlines() if "   0 st" in line)
        assert "·" in row0  # the future keys of the first query
        await pilot.press("f8")  # numbers on demand
        await settle(pilot)
        assert "weight in %" in screen_text(app)


async def test_enter_on_a_candidate_appends_it(make_app, tiny_session):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "Hello")
        panel = app.screen.query_one(CandidatesPanel)
        app.screen.set_focus(panel)
        # A candidate that is a word after a space: appended, it is a token of its own.
        index = next(i for i, r in enumerate(panel.view.rows) if i > 0 and r.text[:1] == " " and r.text[1:].isalpha())
        await pilot.press(*["down"] * index)
        chosen = panel.view.rows[index]
        await pilot.press("enter")
        await settle(pilot, 0.2)
        expected = "Hello" + tiny_session.tokenizer.decode([chosen.id])
        assert app.screen.text == expected
        assert app.screen.query_one("#editor").text == expected
        assert app.screen.analysis.text == expected
        assert int(app.screen.analysis.ids[-1]) == chosen.id


async def test_knobs_apply_live_to_the_candidates(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "Hello")
        await command(pilot, "/topk 3")
        view = app.screen.query_one(CandidatesPanel).view
        assert view.survivors[0] == 3
        kept = [r for r in view.rows if r.adjusted]
        assert len(kept) == 3 and abs(sum(r.adjusted for r in kept) - 1) < 1e-5
        assert "cut" in screen_text(app)
        await command(pilot, "/temp 0.5")
        assert app.screen.query_one("#knob-temperature").value == "0.5"
        assert app.screen.query_one(GenerationPanel).params.temperature == 0.5
        assert "T=0.5" in app.screen.query_one(CandidatesPanel).view.knobs


async def test_knob_edited_in_the_panel(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t")  # focus the knobs
        assert app.focused.id == "knob-temperature"
        await pilot.press("0", ".", "7", "enter")
        await settle(pilot)
        assert app.screen.params.temperature == 0.7
        assert app.screen.text == ""  # digits typed in a knob are neither text nor panel keys


async def test_generation_streams_and_is_reproducible(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "Once upon a time")
        await command(pilot, "/seed 7")
        await command(pilot, "/gen 12")
        first = [t.id for t in app.screen.runs.tokens]
        assert len(first) == 12 or app.screen.runs.tokens[-1].id == 50256
        assert app.screen.generation.state == "done"
        await command(pilot, "/gen 12")
        assert [t.id for t in app.screen.runs.tokens] == first  # same seed, same text
        shown = screen_text(app)
        assert "done · 12 tokens · seed 7" in shown


async def test_escape_stops_generation_and_keeps_the_text(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "Go")
        await command(pilot, "/temp 1")
        await pilot.press("ctrl+k", *"gen 100000", "enter")
        await pilot.pause(0.3)
        await pilot.press("escape")
        kept = len(app.screen.runs.tokens)
        assert app.screen.generation.state == "cancelled"
        await settle(pilot, 0.2)
        assert len(app.screen.runs.tokens) == kept  # nothing arrives after Esc
        assert len(app.screen.generation.tokens) == kept and 0 < kept < 100000
        assert app.screen.text == "Go"  # the text is untouched by all of it
        await pilot.press("f7")  # take the text into the editor
        await settle(pilot, 0.2)
        assert app.screen.text.startswith("Go") and len(app.screen.text) > 2


async def test_ctrl_c_stops_generation_from_the_text_and_otherwise_does_not_quit(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "Go")
        await command(pilot, "/temp 1")
        await pilot.press("ctrl+k", *"gen 100000", "enter")  # (command() would wait for the run's end)
        await pilot.pause(0.3)
        assert app.screen.focused is app.screen.editor  # the run goes on while one types
        await pilot.press("ctrl+c")
        kept = len(app.screen.runs.tokens)
        assert app.screen.generation.state == "cancelled" and 0 < kept < 100000
        await settle(pilot, 0.2)
        assert len(app.screen.runs.tokens) == kept and app.screen.text == "Go"
        assert "stopped with Ctrl+C" in app.screen.generation.detail  # (wrapped on screen at this width)
        await pilot.press("ctrl+c")  # nothing running: Textual's own meaning, never an exit
        await settle(pilot)
        assert app.is_running and app.screen.text == "Go"


async def test_step_mode_one_token_per_key_and_candidates_follow(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "The")
        for _ in range(3):
            await pilot.press("f6")
            await settle(pilot)
        tokens = app.screen.runs.tokens
        assert len(tokens) == 3
        view = app.screen.query_one(CandidatesPanel).view
        assert view.chosen == tokens[-1].id and view.title.startswith("step 3")


async def test_bad_commands_become_notifications_and_keep_the_text(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "keep me")
        for line in ("/layer x", "/layer 99", "/nope", "/temp -1", "/topp 0", "/topk 2.5", "/analogy a b",
                     "/seed", "/take"):
            await command(pilot, line)
        messages = notes(app)
        assert any("whole number" in m for m in messages)
        assert any("unknown command /nope" in m for m in messages)
        assert any("temperature must be" in m for m in messages)
        assert any("top-p must be" in m for m in messages)
        assert any("three words" in m for m in messages)
        assert app.screen.text == "keep me"
        assert app.screen.query_one("#editor").text == "keep me"
        assert app.screen.analysis.text == "keep me"


async def test_empty_text_and_an_undoable_clear(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "ab")
        await pilot.press("backspace", "backspace")
        await settle(pilot, 0.2)
        assert app.screen.analysis is None
        assert "type some text" in screen_text(app)
        await type_text(pilot, "keep this")
        await pilot.press("ctrl+l")
        await settle(pilot, 0.2)
        assert app.screen.text == "" and app.screen.analysis is None
        assert any("^Z brings it back" in m for m in notes(app))
        await pilot.press("ctrl+z")
        await settle(pilot, 0.2)
        assert app.screen.text == "keep this" and app.screen.analysis.text == "keep this"
        await pilot.press("ctrl+l", "tab")  # cleared, then from a panel: ^Z still brings it back
        await settle(pilot, 0.1)
        assert app.screen.text == "" and not app.screen.editor.has_focus
        await pilot.press("ctrl+z")
        await settle(pilot, 0.2)
        assert app.screen.text == "keep this"


async def test_bad_model_path(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        session = app.screen.session
        await command(pilot, f"/model {tmp_path / 'missing'}")
        await settle(pilot, 0.2)
        assert any("no such file" in m for m in notes(app))
        assert app.screen.session is session  # the old model stays
        header = screen_text(app).splitlines()[0]
        assert "✗ could not load" in header and "loading" not in header  # the header tells the truth
        assert "tiny" in header


async def test_model_loads_in_a_worker(make_app, tiny_checkpoint):
    app = make_app(session=None, model=str(tiny_checkpoint), encodings=[])
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, 0.1)
        assert app.screen.session is not None
        assert "tiny-model" in screen_text(app) or "tiny" in screen_text(app)
        await type_text(pilot, "strawberry")
        assert [p.text for p in app.screen.analysis.pieces] == ["st", "raw", "berry"]


async def test_the_model_is_ready_before_the_other_encodings_are_found(make_app, tiny_checkpoint):
    """As `gpt-tui` starts (encodings=None: all those available offline), the model's status does
    not wait for the other encodings to be built; they follow, and a text already there is then
    compared with them too."""
    seen = []
    app = make_app(session=None, model=str(tiny_checkpoint), encodings=None, text="strawberry")
    async with app.run_test(size=WIDE, message_hook=lambda m: seen.append(type(m).__name__)) as pilot:
        await settle(pilot, 0.1)
        assert seen.index("ModelLoaded") < seen.index("EncodingsFound")
        screen: ExplorerScreen = app.screen
        assert "cl100k_base" in screen._encoding_names and "gpt2" not in screen._encoding_names
        assert screen.analysis.text == "strawberry" and "cl100k_base" in screen.encodings


async def test_no_bundled_model_says_so(make_app, monkeypatch):
    import gpt_tui.engine.loading as loading

    monkeypatch.setattr(loading, "bundled_model_dir", lambda: None)
    app = make_app(session=None, model=None, encodings=[])
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, 0.1)
        assert app.screen.session is None
        shown = screen_text(app)
        assert "no bundled model" in shown and "/model PATH" in shown
        await pilot.press(*"hello")
        await settle(pilot, 0.2)  # typing without a model must not crash


async def test_typing_fast_keeps_up(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        text = ("abc def " * 125)[:1000]
        app.screen.set_focus(app.screen.editor)
        started = time.perf_counter()
        burst(app, *text)  # 1,000 key events at once, faster than anyone types
        await settle(pilot, 0.3)
        assert time.perf_counter() - started < 30
        assert app.screen.text == text
        assert app.screen.analysis.text == text  # the latest text won
        assert app.screen.analysis.dropped > 0  # longer than the tiny context: said so
        assert any("context" in m for m in notes(app))
        assert app.screen.analyses_requested < 50  # debounced, not one per key


async def test_command_bar_history_and_completion(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "hi")
        await command(pilot, "/head 1")
        await pilot.press("ctrl+k", "l", "a", "y", "tab")
        bar = app.screen.query_one("#command-bar")
        assert bar.value == "/layer "
        await pilot.press("up")
        assert bar.value == "/head 1"
        await pilot.press("down")
        assert bar.value == "/layer "
        await pilot.press("escape")
        assert not bar.is_open and app.screen.editor.has_focus
        assert app.screen.text == "hi"


async def test_help_lists_every_action_and_panel(make_app):
    from gpt_tui.app.actions import ACTIONS
    from gpt_tui.app.panels import PANELS

    app = make_app()
    async with app.run_test(size=(150, 120)) as pilot:  # tall enough to show the whole help
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "/analogy a b c" in shown
        for a in ACTIONS:
            assert a.usage in shown and a.key_text in shown
        for p in PANELS:
            assert f"/panel {p.NAME}" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ExplorerScreen)


async def test_narrow_terminal_folds_panels_into_tabs(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        screen = app.screen
        assert screen.has_class("-narrow")
        visible = [p for p in ("tokens", "neighbours", "attention", "candidates", "generation")
                   if screen.query_one(f"#{p}").display and screen.query_one(f"#{p}").region.area]
        assert visible == ["tokens"]
        await pilot.press("tab", "2")  # to the tab bar, then the attention panel's number
        await settle(pilot)
        assert screen.query_one("#attention").region.area > 0
        assert screen.query_one("#tokens").region.area == 0
        assert "layer 0 · head 0" in screen_text(app)


async def test_any_panel_can_be_maximised(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        app.screen.set_focus(app.screen.query_one(NeighboursPanel))
        await pilot.press("f9")
        await pilot.pause()
        assert app.screen.maximized is app.screen.query_one(NeighboursPanel)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.maximized is None


async def test_analogy_shows_neighbours(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "x")
        await command(pilot, "/analogy king man woman")
        panel = app.screen.query_one(NeighboursPanel)
        assert panel.analogy == ("king", "man", "woman") and "king" in panel.neighbours.query
        assert "a − b + c" in screen_text(app)
        assert app.screen.text == "x"


async def test_c_outside_the_text_drops_the_common_direction_and_c_in_the_text_is_a_letter(make_app):
    """The key `c` from a panel switches the neighbours to the cosine without the common direction
    and back; typed in the text it is just a letter."""
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "the king")
        panel = app.screen.query_one(NeighboursPanel)
        session = app.screen.session
        king = int(app.screen.analysis.ids[-1])
        assert not panel.neighbours.without_common and "in W_E (cosine)" in screen_text(app)
        await pilot.press("tab", "c")
        await settle(pilot, 0.2)
        assert panel.neighbours.without_common and "W_E ⟂ common direction (cosine)" in screen_text(app)
        expected = session.neighbours(king, top=len(panel.neighbours.neighbours), without_common=True)
        assert [n.id for n in panel.neighbours.neighbours] == [n.id for n in expected.neighbours]
        await pilot.press("c")
        await settle(pilot, 0.2)
        assert not panel.neighbours.without_common and "in W_E (cosine)" in screen_text(app)
        await type_text(pilot, "c")
        assert app.screen.text == "the kingc" and not app.screen.without_common


async def test_a_row_mostly_along_the_common_direction_says_so(make_app, tiny_session):
    """When the selected token's row is mostly the direction every row shares, the panel says so
    (with the cosine) and points to `c`; without that direction the note has nothing to say."""
    import copy

    import torch

    from gpt_tui.engine.loading import LoadedModel
    from gpt_tui.engine.session import Session
    from gpt_tui.engine.tokenizer import get_tokenizer

    tokenizer = get_tokenizer("gpt2")
    model = copy.deepcopy(tiny_session.model)
    king = tokenizer.encode(" king")[0]
    with torch.no_grad():
        w = model.wte.weight
        w[king] += w.mean(0) / w.mean(0).norm()  # rows are ~0.11 long: now mostly the shared direction
    session = Session(LoadedModel(model, tokenizer, name="tiny", source="test"))
    app = make_app(session=session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "the king")
        await settle(pilot, 0.2)
        panel = app.screen.query_one(NeighboursPanel)
        shared = panel.neighbours.shared
        assert shared > 0.95
        assert f"cosine {shared:.2f} with the direction all rows share" in screen_text(app)
        await pilot.press("tab", "c")
        await settle(pilot, 0.2)
        assert panel.neighbours.without_common and "with the direction all rows share" not in screen_text(app)


async def test_split_utf8_pieces_are_marked(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+e")
        app.post_message(events.Paste("猫🙂"))
        await settle(pilot, 0.2)
        pieces = app.screen.analysis.pieces
        assert any(p.is_partial for p in pieces)
        assert "⟨\\x" in screen_text(app)


def test_generation_panel_joins_split_characters():
    """“ arrives as two byte-tokens; the panel shows the character, not two escapes."""
    from gpt_tui.app.panels.generation import continuation
    from gpt_tui.engine.session import GeneratedToken

    tokens = [GeneratedToken(447, "\\xe2\\x80", 0.5, None, b"\xe2\x80"), GeneratedToken(250, "\\x9c", 0.9, None, b"\x9c"),
              GeneratedToken(40, "I", 0.2, None, b"I")]
    assert continuation("Say ", tokens).plain == "Say “I"
