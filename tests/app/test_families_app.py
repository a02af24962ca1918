"""The session on a Gemma-shaped checkpoint (grouped-query attention, sliding windows, its own
SentencePiece-style tokenizer): the Tokens panel leads with the model's own tokenizer, and the
Attention panel labels each query head with the key/value head it shares."""

from __future__ import annotations

import pytest

from app_helpers import screen_text, settle, type_text

from gpt_tui.app.panels.attention import AttentionPanel

WIDE = (120, 40)


@pytest.fixture(scope="module")
def gemma_session(tmp_path_factory):
    from tests.engine.families import build

    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    path = tmp_path_factory.mktemp("gemma-shaped")
    build("gemma2", path, seed=2)
    return Session(load_model(str(path), device="cpu", dtype="float32"))


async def test_own_tokenizer_first_and_gqa_heads_labelled(make_app, gemma_session):
    app = make_app(session=gemma_session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "the fox")
        a = app.screen.analysis
        assert a.pieces[0].special and a.pieces[0].id == gemma_session.tokenizer.bos_id  # <bos>, as the files say
        shown = screen_text(app)
        assert gemma_session.tokenizer.name in shown
        panel = app.screen.query_one(AttentionPanel)
        assert panel.border_subtitle == "layer 0/2 · head 0/3 → kv 0/1 · window 4"
        assert a.head_label(1, 3) == "head 3/3 → kv 1/1"  # a global layer: no window


async def test_keys_outside_a_sliding_window_are_drawn_masked(make_app, gemma_session):
    app = make_app(session=gemma_session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "the quick brown fox jumps")  # short enough for the grid to show every key
        a = app.screen.analysis
        T, window = a.n_tokens, a.attention.window(0)
        assert window == 4 and T > window + 2
        weights = a.attention[0, 0]
        assert float(abs(weights[T - 1, : T - window]).max()) == 0.0  # what the engine computes
        panel = app.screen.query_one(AttentionPanel)
        lines = [line.plain for line in panel.render().lines]
        row = next(line for line in lines if line.startswith("▶"))[13:]  # the selected (last) query
        cells = [row[i:i + 3] for i in range(0, 3 * T, 3)]
        assert cells[: T - window] == [" · "] * (T - window)  # too far back: masked, not "a small weight"
        assert " · " not in cells[T - window:]
        assert "outside the layer's window of 4" in screen_text(app)
        await pilot.press("tab", "2", "full_stop")  # the next layer: global attention
        await settle(pilot)
        assert "masked (future key)" in screen_text(app) and "window of" not in screen_text(app)


@pytest.fixture(scope="module")
def oss_session(tmp_path_factory):
    from tests.engine.families import build

    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    path = tmp_path_factory.mktemp("gpt-oss-shaped")
    build("gpt_oss", path, seed=1)
    return Session(load_model(str(path), device="cpu", dtype="float32"))


async def test_attention_sinks_get_a_column_of_their_own(make_app, oss_session):
    """gpt-oss: a row's weights on the tokens sum below 1; the grid's last column shows the rest,
    the share the head's sink takes, and the line under the grid names it."""
    app = make_app(session=oss_session)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await type_text(pilot, "the quick brown fox")
        a = app.screen.analysis
        T = a.n_tokens
        shares = 1 - a.attention[0][:, T - 1].sum(-1)  # the last query's, in each head of layer 0
        head = int(shares.argmax())
        share = float(shares[head])
        assert share > 0.05
        await pilot.press("f8", "tab", "2", *["right_square_bracket"] * head)  # numbers; that head
        await settle(pilot)
        panel = app.screen.query_one(AttentionPanel)
        lines = [line.plain for line in panel.render().lines]
        assert "sink" in lines[1] + lines[2]  # the column's label, among the keys'
        row = next(line for line in lines if line.startswith("▶"))[13:]
        cells = [row[i:i + 4] for i in range(0, 4 * (T + 1), 4)]
        assert cells[-1].strip() == f"{share * 100:.0f}"
        assert f"the sink (no token) {share * 100:.2f}%" in lines[-1]  # under the grid, with its top keys
        assert "sink: the share" in screen_text(app)
