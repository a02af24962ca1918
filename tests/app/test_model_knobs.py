"""The session's knobs start from the model's generation_config.json (issue 15)."""

from __future__ import annotations

from app_helpers import command, settle, type_text
from conftest import tiny_model

from gpt_tui.app.panels.candidates import CandidatesPanel


async def test_knobs_start_from_the_models_generation_config(make_app):
    from gpt_tui.engine.generation_config import GenerationDefaults
    from gpt_tui.engine.loading import LoadedModel
    from gpt_tui.engine.sampling import SamplingParams
    from gpt_tui.engine.session import Session
    from gpt_tui.engine.tokenizer import get_tokenizer

    defaults = GenerationDefaults(SamplingParams(0.7, 40, 0.95), "tiny/generation_config.json")
    session = Session(LoadedModel(tiny_model(), get_tokenizer("gpt2"), name="tiny", source="test",
                                  generation=defaults))
    app = make_app(session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_text(pilot, "Hello")
        assert app.screen.query_one("#knob-temperature").value == "0.7"
        knobs = app.screen.query_one(CandidatesPanel).view.knobs
        assert "T=0.7" in knobs and "top-k=40" in knobs and "top-p=0.95" in knobs
        # the raw distribution stays one command away
        await command(pilot, "temp 1")
        await settle(pilot)
        assert "T=1" in app.screen.query_one(CandidatesPanel).view.knobs
