"""Fixtures for the engine tests: tiny random GPT-2 checkpoints and the reference implementation.

Everything is built here and written to temporary directories; nothing is downloaded. The
reference is Hugging Face's `GPT2LMHeadModel` (eager attention, so it can return its weights).
"""

from __future__ import annotations

import json
import os
import re

# No test may reach the network: hub code must answer from the (empty) cache or fail.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

from gpt_tui.engine.loading import load_model
from gpt_tui.engine.session import Session
from gpt_tui.engine.tokenizer import get_tokenizer

CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

# The tiny model every parity test uses: real vocabulary, 16-dim heads, 64 positions.
TINY = dict(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=50257)

PROMPT = "The quick brown fox jumps over the lazy dog. Attention is all you need, they said."


def randomise_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Large random weights, so attention is far from uniform and any layout mistake shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            elif re.search(r"ln_\w+\.weight$", name):
                p.copy_(1 + torch.randn(p.shape, generator=gen) * 0.2)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def make_hf_model(seed: int = 0, **overrides):
    """A random `GPT2LMHeadModel` in eval mode with eager attention."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(**{**TINY, **overrides}, attn_implementation="eager")
    torch.manual_seed(seed)
    return randomise_(GPT2LMHeadModel(config), seed).eval()


def hf_logits(hf, ids: list[int] | torch.Tensor) -> torch.Tensor:
    """The reference's logits (T, V) for one sequence."""
    x = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    with torch.no_grad():
        return hf(x).logits[0]


def our_logits(loaded, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return loaded.model(torch.tensor([ids]))[0].float()


def linear_state(hf) -> dict[str, torch.Tensor]:
    """The reference's weights in nn.Linear layout (nanoGPT's and ours): Conv1D weights transposed."""
    return {k: v.t().contiguous() if k.endswith(CONV1D_SUFFIXES) else v.clone()
            for k, v in hf.state_dict().items()}


def write_hf_bin_dir(hf, path):
    """An HF directory as transformers < 5 wrote it with safe_serialization=False.

    transformers 5 always writes safetensors, so the pickle is written the way the old versions
    did: torch.save of the state dict (lm_head.weight included, tied), with the causal-mask
    buffers `attn.bias` / `attn.masked_bias` that GPT-2 code of that era kept in every layer.
    """
    path.mkdir(parents=True, exist_ok=True)
    hf.config.to_json_file(str(path / "config.json"))
    state = dict(hf.state_dict())
    n = hf.config.n_positions
    for layer in range(hf.config.n_layer):
        state[f"transformer.h.{layer}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n)
        state[f"transformer.h.{layer}.attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(state, path / "pytorch_model.bin")
    return path


# -- session-wide checkpoints ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hf_model():
    """The reference model all parity tests compare against (fp32, eager attention)."""
    return make_hf_model(seed=0)


@pytest.fixture(scope="session")
def hf_dir(hf_model, tmp_path_factory):
    """hf_model saved by `save_pretrained`: config.json + model.safetensors."""
    path = tmp_path_factory.mktemp("hf-safetensors")
    hf_model.save_pretrained(str(path))
    assert (path / "model.safetensors").exists()
    return path


@pytest.fixture(scope="session")
def hf_bin_dir(hf_model, tmp_path_factory):
    """hf_model as config.json + pytorch_model.bin (a pickle)."""
    return write_hf_bin_dir(hf_model, tmp_path_factory.mktemp("hf-bin"))


@pytest.fixture(scope="session")
def loaded(hf_dir):
    """hf_dir through our loader, in float32 on the CPU."""
    return load_model(str(hf_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def session(loaded):
    return Session(loaded)


@pytest.fixture(scope="session")
def gpt2_tok():
    return get_tokenizer("gpt2")


@pytest.fixture(scope="session")
def prompt_ids(gpt2_tok) -> list[int]:
    ids = gpt2_tok.encode(PROMPT)
    assert 10 < len(ids) < TINY["n_positions"]
    return ids


@pytest.fixture(scope="session")
def hf_config_json(hf_dir) -> dict:
    return json.loads((hf_dir / "config.json").read_text())
