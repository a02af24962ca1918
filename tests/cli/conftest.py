"""A GPT-2 checkpoint the CLI has never seen (random weights, saved by transformers), and a runner."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from typer.testing import CliRunner


@pytest.fixture(scope="session")
def reference():
    """(HF GPT2LMHeadModel, its save_pretrained directory): the reference the CLI must equal."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(7)
    config = GPT2Config(n_embd=48, n_layer=3, n_head=3, n_positions=32, vocab_size=50257,
                        attn_implementation="eager")
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # weights far from HF's tiny init, so attention is not uniform
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.15)
    return model


@pytest.fixture(scope="session")
def model_dir(reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("unseen-gpt2")
    reference.save_pretrained(str(path))
    return path


@pytest.fixture
def cli():
    """Run `gpt-tui ARGS` in-process; returns click's Result (stdout, stderr, exit_code)."""
    from gpt_tui.cli import app

    runner = CliRunner()

    def invoke(*args, input: str | bytes | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke
