"""Pilot tests of the panels inside the layers: logit lens, stages, context, positions, model card
and chat — driven by keys and /commands, checked against the engine's own numbers."""

from __future__ import annotations

from app_helpers import command, notes, screen_text, settle, type_text

from gpt_tui.app.panels.card import CardPanel
from gpt_tui.app.panels.chat import ChatPanel
from gpt_tui.app.panels.context import ContextPanel
from gpt_tui.app.panels.lens import LensPanel
from gpt_tui.app.panels.positions import PositionsPanel
from gpt_tui.app.panels.stages import StagesPanel

WIDE = (120, 40)


async def show(pilot, key: str) -> None:
    """To the tab bar, then the panel's number: what a person does from the text."""
    await pilot.press("tab", key)
    await settle(pilot, 0.1)


async def test_lens_panel_reads_the_selected_token_at_every_depth(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "The cat sat on the mat")
        screen = app.screen
        a = screen.analysis
        assert a.lens_grid_ready is None  # the overview is not computed while the panel is hidden
        await show(pilot, "6")
        panel = screen.query_one(LensPanel)
        assert panel.region.area > 0
        lens = panel.lens
        expected = a.lens(a.n_tokens - 1, top=5)
        assert lens.position == a.n_tokens - 1
        assert [e.top_ids.tolist() for e in lens.layers] == [e.top_ids.tolist() for e in expected.layers]
        shown = screen_text(app)
        tok = screen.session.tokenizer
        assert "after ␣mat" in shown and "block 1" in shown and "block 0 attn" in shown
        last = lens.layers[-1]
        assert f"{last.top_probs[0] * 100:.2f}%" in shown  # the model's own top-1 probability
        assert tok.token_text(int(last.top_ids[0])).replace(" ", "␣") in shown
        # The overview, computed in a worker: the top-1 of every depth at every position.
        assert panel.grid is not None and panel.grid.top_ids.shape == (3, a.n_tokens)
        assert panel.grid.top_ids[-1].tolist() == a.top_ids[:, 0].tolist()
        assert "every token × depth" in screen_text(app)
        runs = screen.analyses_requested
        await pilot.press("left")  # the panel has the focus: move the selection
        await settle(pilot)
        assert panel.lens.position == a.n_tokens - 2 and "after ␣the" in screen_text(app)
        assert screen.analyses_requested == runs  # moving the selection never re-runs the model


async def test_stages_panel_adds_up_to_the_logit(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "strawberry")
        await show(pilot, "7")
        st = app.screen.query_one(StagesPanel).stages
        a = app.screen.analysis
        assert st is not None and st.position == a.n_tokens - 1
        shown = screen_text(app)
        assert f"logit of {app.screen.session.tokenizer.token_text(st.final_token).replace(' ', '␣')} = " \
               f"{st.final_logit:.3f}" in shown
        assert f"{st.blocks[1].mlp_direct_logit:+.3f}" in shown and "linearised direct effect" in shown
        assert f"position |W_pos| {st.position_norm:.3f}" in shown


async def test_compare_command_follows_one_word_in_two_texts(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "hello")
        await command(pilot, '/compare "machine learning model" "fashion model"')
        await settle(pilot, 0.1)
        panel = app.screen.query_one(ContextPanel)
        assert panel.region.area > 0
        comparison, a, b = panel.result
        assert (comparison.position_a, comparison.position_b) == (2, 1)
        shown = screen_text(app)
        for layer in comparison.layers:
            assert f"{layer.cosine:+.3f}" in shown
        assert "cosine 1.000 (the same token)" in shown
        await command(pilot, '/compare "the cat sat" "a dog ran" model')
        await settle(pilot, 0.1)
        assert any("does not occur" in n for n in notes(app))
        await command(pilot, '/compare "unbalanced')
        assert any("quote each text" in n for n in notes(app))
        assert app.screen.text == "hello"  # the text is never touched by a command


async def test_positions_panel_shows_w_pos_beside_the_sinusoids(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await show(pilot, "9")
        panel = app.screen.query_one(PositionsPanel)
        table, sine, _ = panel.tables
        assert (table.kind, table.n_positions, table.d_model) == ("learned", 128, 32)
        shown = screen_text(app)
        assert "W_pos 128 positions × 32 dimensions" in shown and "sinusoids" in shown
        assert "values picked" in shown and "14 of 128 positions, evenly spaced" in shown
        assert f"length √(d/2) = {4.0:.3f}" in shown


async def test_model_card_counts_like_the_seeds(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await show(pilot, "0")
        assert app.screen.query_one(CardPanel).info is not None
        shown = screen_text(app)
        assert "vocabulary × d_model = 50,257 × 32 = 1,608,224" in shown
        assert "Biases are counted" in shown and "KiB per token" in shown


async def test_chat_is_one_document_the_model_continues(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await command(pilot, "/chat user: Hi there")
        await settle(pilot, 0.2)
        screen = app.screen
        panel = screen.query_one(ChatPanel)
        assert panel.region.area > 0
        doc = screen.chat.document
        assert screen.text == doc.text and doc.text.startswith("<|endoftext|>") and doc.text.endswith("Assistant:")
        eot = screen.session.tokenizer.eot_id
        assert screen.analysis.ids[0] == eot  # the framing's special token, encoded as one
        assert "the model's next token" in screen_text(app)
        await pilot.press("f5")  # the assistant's reply, continuing the document
        await settle(pilot, 0.5)
        await pilot.press("f7")
        await settle(pilot)
        reply = screen.text[len(doc.text):]
        assert reply
        await command(pilot, "/chat user: Why?")
        await settle(pilot, 0.2)
        roles = [t.role for t in screen.chat.turns]
        assert roles == ["user", "assistant", "user"]
        assert screen.text.endswith("User: Why?\nAssistant:")
        await command(pilot, "/chat robot: beep")
        assert any("ROLE: TEXT" in n for n in notes(app))


async def test_special_token_only_when_asked(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "<|endoftext|>Hello")
        assert 50256 not in app.screen.analysis.ids.tolist()
        await command(pilot, "/special on")
        await settle(pilot, 0.1)
        assert app.screen.analysis.ids.tolist()[0] == 50256
        await command(pilot, "/special off")
        await settle(pilot, 0.1)
        assert 50256 not in app.screen.analysis.ids.tolist()
