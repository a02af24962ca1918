"""Builders shared by the engine tests: random GPT-2 checkpoints and the reference's outputs."""

from __future__ import annotations

import re

import torch

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


def nanogpt_checkpoint(hf, *, prefix: str = "", buffers: bool = False, pad_to: int | None = None,
                       bias: bool = True, seed: int = 0) -> dict:
    """What nanoGPT's train.py saves as ckpt.pt, built from the reference's weights.

    prefix "_orig_mod." is what torch.compile adds to the keys; buffers adds the causal-mask
    `attn.bias` of nanoGPT's non-flash attention; pad_to pads the vocabulary (nanoGPT uses
    50304) with extra random rows; bias=False drops every bias (the reference must then have
    zero biases for the logits to agree).
    """
    cfg = hf.config
    state = linear_state(hf)
    wte = state["transformer.wte.weight"]
    if pad_to is not None:
        extra = torch.randn(pad_to - wte.shape[0], wte.shape[1], generator=torch.Generator().manual_seed(seed))
        wte = torch.cat([wte, extra * 0.2])
        state["transformer.wte.weight"] = wte
    state["lm_head.weight"] = wte  # the same tensor, as nanoGPT ties them
    if not bias:
        state = {k: v for k, v in state.items() if not k.endswith(".bias")}
    if buffers:
        n = cfg.n_positions
        for layer in range(cfg.n_layer):
            state[f"transformer.h.{layer}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    model_args = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, block_size=cfg.n_positions,
                      bias=bias, vocab_size=wte.shape[0], dropout=0.0)
    return {
        "model": {prefix + k: v for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 6e-4, "betas": (0.9, 0.95), "weight_decay": 0.1,
                                                     "params": [0, 1]}]},
        "model_args": model_args,
        "iter_num": 5000,
        "best_val_loss": torch.tensor(2.875),
        "config": {"batch_size": 12, "learning_rate": 6e-4, "dataset": "shakespeare", "compile": bool(prefix),
                   "always_save_checkpoint": True, "init_from": "scratch"},
    }


def compact_pair(row_ids: list[int], seed: int = 5):
    """A compact-vocabulary GPT and its reference: an HF model whose vocabulary is the embedding rows.

    Row r of both is token id row_ids[r]; the last row (n_rows) is the "unknown" row. Our logit
    for id row_ids[r] must equal the reference's logit for row r, and every other id gets -inf.
    """
    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT

    n_rows = len(row_ids)
    hf = make_hf_model(seed=seed, vocab_size=n_rows + 1)
    cfg = hf.config
    config = GPTConfig(vocab_size=50257, n_ctx=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                       n_head=cfg.n_head, n_rows=n_rows)
    model = GPT(config)
    state = {k.removeprefix("transformer."): v for k, v in linear_state(hf).items() if k != "lm_head.weight"}
    state["row_ids"] = torch.tensor(row_ids)
    model.load_state_dict(state, strict=True)
    model.set_row_ids(torch.tensor(row_ids))
    return hf, model.eval()


class PassView:
    """An AnalysisPass result seen the way the panels see it, through Analysis: every derived part
    (predictions at each position, attention weights from queries and keys) computed on access."""

    def __init__(self, result, ids, readout) -> None:
        import numpy as np

        from gpt_tui.engine.analysis import Analysis
        from gpt_tui.engine.analysis_pass import StoredAttention

        self.reused = result.reused
        attention = None if result.queries is None else StoredAttention(result.queries, result.keys)
        self.analysis = Analysis(text="", model_name="", pieces=(), ids=np.asarray(ids, dtype=np.int64), dropped=0,
                                 last_logits=result.last_logits, final_hidden=result.final_hidden, readout=readout,
                                 attention=attention, residual=result.residual)

    def __getattr__(self, name):
        import numpy as np

        value = getattr(self.analysis, name)
        return np.asarray(value) if name == "attention" and value is not None else value


class Runner:
    """AnalysisPass with the model's own readout, returning PassViews."""

    def __init__(self, model, reuse_cache: bool = True, n_vocab: int = 50257, top_k: int = 50) -> None:
        from gpt_tui.engine.analysis_pass import AnalysisPass, ModelReadout

        self.readout = ModelReadout(model, n_vocab, top_k)
        self.inner = AnalysisPass(model, self.readout, reuse_cache=reuse_cache)

    def run(self, ids, attention: bool = True, residual: bool = True) -> PassView:
        return PassView(self.inner.run(ids, attention=attention, residual=residual), ids, self.readout)
