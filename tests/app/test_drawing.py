"""How the panels redrawn on every key draw, and what is computed before they ask: aligned lines
instead of Rich tables (widgets/style.grid, widgets/lines.Lines), the neighbours searched beside
the forward pass, and what a panel on screen will want computed right after it (Panel.prepare)."""

from __future__ import annotations

import threading
import time

from app_helpers import settle, type_text
from rich.style import Style as RichStyle
from rich.text import Text
from textual.app import App
from textual.style import Style

from gpt_tui.app.panels.lens import LensPanel
from gpt_tui.app.panels.neighbours import NEIGHBOURS_TOP, NeighboursPanel
from gpt_tui.app.widgets.lines import Lines
from gpt_tui.app.widgets.style import grid
from gpt_tui.engine import lens as lens_views

WIDE = (120, 40)


# -- grid and Lines --------------------------------------------------------------------------------------


def test_grid_aligns_columns_and_keeps_each_cells_style():
    lines = grid([["1", Text("cat", style="red"), "5.00%"], ["12", "a", "50.00%"]], "rlr",
                 header=["#", "token", "p"], row_styles=["", "reverse"])
    assert [line.plain for line in lines] == [" # token      p", " 1 cat    5.00%", "12 a     50.00%"]
    assert len({line.cell_len for line in lines}) == 1
    # the cell's colour survives the row style, which lies under it; the row style covers the whole row
    cat = lines[1]
    red = [s for s in cat.spans if str(s.style) == "red"]
    assert red and cat.plain[red[0].start:red[0].end].startswith("cat")
    last = lines[2]
    assert last.style == "" and any(s.style == "reverse" and s.start == 0 and s.end == len(last.plain)
                                     for s in last.spans)
    assert str(lines[0].spans[0].style) == "dim"  # the header


def test_grid_pads_a_short_cell_in_its_own_style_and_to_a_minimum_width():
    (line,) = grid([[Text("x", style="on #203040"), "y"]], "ll", min_widths=[4, 0])
    assert line.plain == "x    y"
    shaded = [s for s in line.spans if "on #203040" in str(s.style)]
    assert sum(s.end - s.start for s in shaded) == 4  # the cell's background fills its column


async def test_lines_draw_each_text_as_a_strip_wrapping_only_what_is_too_long():
    async with App().run_test():
        lines = Lines([Text("bold line", style="bold"), Text("a b c d e f g h", style="italic"), Text("x")])
        assert lines.get_height({}, 10) == 4  # the 15-cell line wraps once at 10 cells
        strips = lines.render_strips(10, None, Style(), None)
        assert [s.text.rstrip() for s in strips] == ["bold line", "a b c d e", "f g h", "x"]
        assert all(s.cell_length <= 10 for s in strips)
        # a Text's own style is kept even without spans (Text.render alone drops it)
        assert all(seg.style and seg.style.bold for seg in strips[0] if seg.text.strip())
        assert all(seg.style and seg.style.italic for seg in strips[1] if seg.text.strip())
        assert lines.render_strips(10, 2, Style(), None)[-1].text.startswith("a b")  # height cuts
        base = Lines([Text("y")]).render_strips(5, None, Style.from_rich_style(RichStyle(color="red")), None)
        assert base[0]._segments[0].style.color.number == 1  # the widget's style (red), under the text


# -- neighbours searched beside the forward pass ---------------------------------------------------------


async def test_neighbours_of_the_landing_token_come_with_the_analysis(make_app, monkeypatch):
    searches = []
    original = NeighboursPanel._search
    monkeypatch.setattr(NeighboursPanel, "_search", lambda self, query, session: (searches.append(query),
                                                                                  original(self, query, session)))
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        session = app.screen.session
        with session._lock:
            session._neighbours.clear()
        await type_text(pilot, "The zebra grazed")
        a = app.screen.analysis
        panel = app.screen.query_one(NeighboursPanel)
        assert panel.neighbours is session.known_neighbours(int(a.ids[-1]), NEIGHBOURS_TOP)
        assert panel.neighbours.query == repr(session.tokenizer.token_text(int(a.ids[-1])))
        assert searches == []  # found remembered: no worker of its own, no "searching…" frame
        await pilot.press("tab", "left")  # an earlier token: not searched yet, so the panel searches
        await settle(pilot)
        assert searches == [("token", int(a.ids[-2]), False)]  # (kind, token, without_common)
        assert panel.neighbours.query == repr(session.tokenizer.token_text(int(a.ids[-2])))


def test_neighbours_are_remembered_per_token_and_bounded(tiny_session, monkeypatch):
    import gpt_tui.engine.session as session_module

    monkeypatch.setattr(session_module, "NEIGHBOURS_REMEMBERED", 3)
    with tiny_session._lock:
        tiny_session._neighbours.clear()
    assert tiny_session.known_neighbours(100, 5) is None
    first = tiny_session.neighbours(100, top=5)
    assert tiny_session.known_neighbours(100, 5) is first and tiny_session.neighbours(100, top=5) is first
    assert tiny_session.known_neighbours(100, 6) is None  # another `top` is another search
    assert tiny_session.known_neighbours(100, 5, without_common=True) is None  # and so is the without_common cosine
    for token in (101, 102, 103):
        tiny_session.neighbours(token, top=5)
    assert tiny_session.known_neighbours(100, 5) is None and len(tiny_session._neighbours) == 3


# -- what a panel on screen will want, computed right after the pass ---------------------------------------


def test_a_derived_view_asked_twice_at_once_is_computed_once(tiny_session, monkeypatch):
    calls = []
    original = lens_views.lens

    def slow_lens(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(lens_views, "lens", slow_lens)
    a = tiny_session.analyse("asked twice at once")
    got = []
    threads = [threading.Thread(target=lambda: got.append(a.lens(2, top=5))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and got[0] is got[1]


async def test_the_lens_on_screen_is_prepared_in_the_analysis_worker_and_the_overview_waits_for_it(
        make_app, monkeypatch):
    prepared, overview_asked = [], []
    original_prepare, original_grid = LensPanel.prepare, LensPanel._grid_worker

    def prepare(self, analysis, position):
        prepared.append((analysis.text, position, threading.current_thread() is threading.main_thread()))
        original_prepare(self, analysis, position)

    def grid_worker(self, analysis):
        overview_asked.append(self.lens is not None and self._lens_key[:2] == (id(analysis), self._position()))
        return original_grid(self, analysis)

    monkeypatch.setattr(LensPanel, "prepare", prepare)
    monkeypatch.setattr(LensPanel, "_grid_worker", grid_worker)
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await type_text(pilot, "The cat")
        assert prepared == []  # the lens panel is not on screen: nothing is prepared for it
        await pilot.press("tab", "6", "ctrl+e")  # show the lens, back to the text
        await settle(pilot)
        await type_text(pilot, "s")
        a = app.screen.analysis
        assert a.text == "The cats"
        assert prepared == [("The cats", a.n_tokens - 1, False)]  # in the worker, for the landing token
        panel = app.screen.query_one(LensPanel)
        assert panel.lens is a._memo[("lens", a.n_tokens - 1, 5, panel._with_mid(a))]
        assert overview_asked and all(overview_asked)  # the overview only once the lens was shown
