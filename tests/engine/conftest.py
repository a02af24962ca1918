"""Fixtures for the engine tests: tiny random GPT-2 checkpoints and the reference implementation.

Everything is built here and written to temporary directories; nothing is downloaded. The
reference is Hugging Face's `GPT2LMHeadModel` (eager attention, so it can return its weights).
"""

from __future__ import annotations

import os

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

from .helpers import PROMPT, TINY, make_hf_model, write_hf_bin_dir


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """The models here are tiny: one thread beats two fighting over a busy machine by ~10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


# -- a compact-vocabulary model in our own format ------------------------------------------------------

COMPACT_WORDS = (" king", " man", " woman", " queen", " prince", " boy", " girl", "king", " the", ".")
RARE_WORDS = (" prince", "king")  # recorded as seen fewer than RARE_TOKEN_COUNT times


@pytest.fixture(scope="session")
def compact(gpt2_tok, prompt_ids, tmp_path_factory):
    """A compact model saved by save_model, with its reference and its token counts.

    Rows are in a shuffled id order, so any confusion of rows with ids shows.
    """
    from types import SimpleNamespace

    from gpt_tui.engine.loading import save_model
    from gpt_tui.engine.session import RARE_TOKEN_COUNT

    from .helpers import compact_pair

    gen = torch.Generator().manual_seed(7)
    words = [gpt2_tok.encode(w)[0] for w in COMPACT_WORDS]
    assert all(len(gpt2_tok.encode(w)) == 1 for w in COMPACT_WORDS)
    pool = torch.randperm(50000, generator=gen)[:1500].tolist()
    row_ids = list(dict.fromkeys([*prompt_ids, *words, *pool]))
    row_ids = [row_ids[i] for i in torch.randperm(len(row_ids), generator=gen).tolist()]
    hf, model = compact_pair(row_ids)
    counts = torch.randint(0, 1000, (len(row_ids),), generator=gen)
    rare = {gpt2_tok.encode(w)[0] for w in RARE_WORDS}
    for row, token in enumerate(row_ids):
        if token in rare:
            counts[row] = 3
        elif token in words or token in prompt_ids:
            counts[row] = max(int(counts[row]), RARE_TOKEN_COUNT)
    path = save_model(model, tmp_path_factory.mktemp("compact") / "model",
                      meta={"name": "compact", "tokenizer": "gpt2"}, token_counts=counts)
    return SimpleNamespace(hf=hf, model=model, path=path, row_ids=row_ids, counts=counts, rare=rare)
