"""The session's parts that are not UI, tested without one: the analysis scheduler, generation
runs and seeds, the command handlers, the action registry and the panel registry."""

from __future__ import annotations

import pytest

from gpt_tui.app.actions import ACTIONS, BY_NAME, bindings, key_name
from gpt_tui.app.commands import CommandError, CommandHandlers, complete, parse
from gpt_tui.app.generation_run import GenerationRuns, SeedPolicy
from gpt_tui.app.panels import PANELS, check
from gpt_tui.app.scheduling import AnalysisScheduler

# -- scheduling -----------------------------------------------------------------------------------------


def test_one_analysis_at_a_time_and_the_newest_text_wins():
    started = []
    s = AnalysisScheduler(lambda rid, text: started.append((rid, text)))
    s.text_changed("a")
    s.text_changed("ab")  # while "a" runs: noted, not started
    s.text_changed("abc")
    assert started == [(1, "a")]
    assert not s.is_current(1, "a")  # the text moved on
    s.finished()
    assert started == [(1, "a"), (2, "abc")]  # "ab" never ran
    assert s.is_current(2, "abc")
    s.finished()
    assert len(started) == 2 and s.started == 2


def test_an_emptied_text_makes_running_passes_stale():
    started = []
    s = AnalysisScheduler(lambda rid, text: started.append((rid, text)))
    s.text_changed("a")
    assert s.text_changed("") is True
    assert not s.is_current(1, "a")
    s.finished()
    assert started == [(1, "a")]  # nothing to run for an empty text


# -- generation runs and seeds -----------------------------------------------------------------------------


class Tok:
    def __init__(self, id):
        self.id = id


def test_seed_advances_unless_pinned():
    seeds = SeedPolicy(seed=5)
    assert seeds.for_run() == 5 and seeds.seed != 5  # the next run gets a new one
    seeds.pin(7)
    assert seeds.for_run() == 7 and seeds.for_run() == 7
    seeds.pin(None)
    assert not seeds.pinned and seeds.for_run() == 7  # unpinned: this run keeps it, the next one not


def test_step_runs_continue_the_same_continuation_with_the_seed_moved_on():
    runs, seeds = GenerationRuns(), SeedPolicy(seed=100, pinned=False)
    encode = lambda text: [ord(c) for c in text]  # noqa: E731
    first = runs.start("hi", encode, 40, seeds, step=True)
    assert first.ids == [104, 105] and first.count == 1 and first.seed == 100
    assert runs.add(first.run_id, Tok(1)) and runs.done(first.run_id)
    second = runs.start("hi", encode, 40, seeds, step=True)
    assert second.ids == [104, 105, 1] and second.seed == 101  # the same run's seed, one token on
    fresh = runs.start("hi", encode, 40, seeds, step=False)  # F5: a new continuation, a new seed
    assert fresh.ids == [104, 105] and fresh.count == 40 and fresh.seed != 100


def test_a_stopped_run_sends_nothing_more():
    runs = GenerationRuns()
    r = runs.start("x", lambda t: [1], 5, SeedPolicy(seed=1, pinned=True), step=False)
    assert runs.stop() and not runs.running
    assert not runs.add(r.run_id, Tok(2)) and runs.tokens == []
    assert not runs.done(r.run_id) and not runs.stop()


# -- command handlers ------------------------------------------------------------------------------------


class FakeExplorer:
    """Records what the handlers ask of the screen."""

    def __init__(self, analysed: int | None = 3):
        self.calls = []
        self.analysed = analysed

    def panel_names(self):
        return ["tokens", "attention", "candidates"]

    def limits(self):
        return 2, 4

    def n_tokens(self):
        return self.analysed

    def has_model(self):
        return True

    def stop(self):
        self.calls.append(("stop",))
        return False

    def close_maximised(self):
        return False

    def set_param(self, name, text):
        from gpt_tui.engine.sampling import SamplingParams

        SamplingParams().with_knob(name, text)  # the one place knobs are validated
        self.calls.append(("set_param", name, text))

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, *args))


@pytest.mark.parametrize("line, call", [
    ("/layer 1", ("set_layer", 1)),
    ("/head 3", ("set_head", 3)),
    ("/select last", ("select", None)),
    ("/select 2", ("select", 2)),
    ("/panel cand", ("show_panel", "candidates")),
    ("/topk off", ("set_param", "top_k", "off")),
    ("/t 0.5", ("set_param", "temperature", "0.5")),
    ("/seed auto", ("set_seed", None)),
    ("/seed 9", ("set_seed", 9)),
    ("/analogy king man woman", ("show_analogy", ("king", "man", "woman"))),
    ("/model gpt2", ("load", "gpt2")),
    ("/ids", ("toggle", "show_ids")),
    ("/common on", ("set_without_common", True)),
    ("/common off", ("set_without_common", False)),
    (":numbers", ("toggle", "show_numbers")),
])
def test_handlers_check_their_arguments_then_ask_the_screen(line, call):
    x = FakeExplorer()
    CommandHandlers(x).run(line)
    assert call in x.calls


@pytest.mark.parametrize("line, message", [
    ("/layer 2", "between 0 and 1"),
    ("/head x", "whole number"),
    ("/select 3", "between 0 and 2"),
    ("/panel zz", "unknown panel"),
    ("/temp -1", "temperature must be"),
    ("/topp 0", "top-p must be"),
    ("/topk 2.5", "top-k must be a whole number"),
    ("/analogy a b", "three words"),
    ("/common maybe", "/common on"),
    ("/gen 0", "max new tokens"),
    ("/nope", "unknown command /nope"),
    ("/", "empty command"),
])
def test_bad_arguments_are_one_line_errors(line, message):
    with pytest.raises(CommandError, match=message):
        CommandHandlers(FakeExplorer()).run(line)


def test_select_needs_an_analysis():
    with pytest.raises(CommandError, match="nothing analysed yet"):
        CommandHandlers(FakeExplorer(analysed=None)).run("/select 0")


# -- the action registry --------------------------------------------------------------------------------


def test_every_action_has_a_handler_and_no_key_is_taken_twice():
    for a in ACTIONS:
        assert hasattr(CommandHandlers, f"cmd_{a.name}"), a.name
    keys = [k for b in bindings() for k in b.key.split(",")] + [p.KEY for p in PANELS]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert not any(k.startswith("alt+") for k in keys)  # Alt does not survive every terminal


def test_parse_and_complete_read_the_registry():
    assert parse("/generate 5")[0] is BY_NAME["gen"]
    assert complete("/te") == ["/temp"]
    assert key_name("ctrl+k") == "^K" and key_name("f5") == "F5" and key_name("escape") == "Esc"


# -- the panel registry ---------------------------------------------------------------------------------


def test_panels_declare_what_they_read_and_the_screen_holds_it():
    from gpt_tui.app.app import ExplorerScreen

    check()
    for p in PANELS:
        assert p.NAME and p.TITLE and p.DEFAULT_CSS.strip(), p  # KEY may be "" (no free digit: /panel NAME)
        for name in p.READS:
            assert name in ExplorerScreen._reactives, (p.NAME, name)  # a var of the screen
            assert name in p._reactives, (p.NAME, name)  # and a reactive of the panel


def test_duplicate_panel_keys_are_refused():
    class Twin(PANELS[0]):
        NAME = "twin"

    with pytest.raises(ValueError, match="unique"):
        check((*PANELS, Twin))
