"""Fixtures for the app tests: tiny random GPT-2s (fast on a CPU) and an app factory."""

from __future__ import annotations

import pytest


def tiny_model(seed: int = 0, sharpness: float = 25.0):
    """A tiny random GPT-2. Random weights predict an almost flat distribution (every candidate
    0.00%); scaling the final layer norm makes it peaked, so probabilities on screen are real
    numbers that a wrong one would change (the top candidate after "strawberry" gets ~55%)."""
    import torch

    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT

    model = GPT(GPTConfig(n_ctx=128, n_embd=32, n_layer=2, n_head=2))
    model.init_weights(seed=seed)
    with torch.no_grad():
        model.ln_f.weight.mul_(sharpness)
    return model.eval()


@pytest.fixture(autouse=True)
def steady_cursors(monkeypatch):
    """A blinking cursor is drawn or not depending on which half second a capture falls in (an SVG
    snapshot differed by that alone on a loaded machine): keep every cursor shown while focused."""
    from textual.widgets import Input, TextArea

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)


@pytest.fixture(scope="session")
def tiny_session():
    """A ready Session over a tiny random model (injected into the app: no loading wait)."""
    from gpt_tui.engine.loading import LoadedModel
    from gpt_tui.engine.session import Session
    from gpt_tui.engine.tokenizer import get_tokenizer

    return Session(LoadedModel(tiny_model(), get_tokenizer("gpt2"), name="tiny", source="test"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny checkpoint directory in this project's format, for loading through the engine."""
    from gpt_tui.engine.loading import save_model

    out = tmp_path_factory.mktemp("tiny-model")
    save_model(tiny_model(), out, meta={"tokenizer": "gpt2", "name": "tiny"})
    return out


@pytest.fixture
def make_app(tiny_session):
    """App factory: a tiny injected session, cl100k_base beside gpt2, a fixed seed."""
    from app_helpers import record_notes

    from gpt_tui.app.app import GptTuiApp

    def factory(**kwargs):
        kwargs.setdefault("session", tiny_session)
        kwargs.setdefault("encodings", ["cl100k_base"])
        kwargs.setdefault("seed", 1)
        app = GptTuiApp(**kwargs)
        record_notes(app)
        return app

    return factory
