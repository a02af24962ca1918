"""Views inside the layers, read off an analysis's residual stream: the logit lens at one position,
the lens's top token at every position and depth (the overview grid), the four stages of one token,
and the same word followed through two texts.

Everything here reads only what an `Analysis` exposes — the residual stream (embeddings, then after
each attention and each MLP), the final-normed residual the logits come from, and its `Readout`
(the model's own final norm, unembedding and embedding parts) — so any architecture whose pass
fills those gets these views as they are. Depth d = 0 is the embedding, d = l + 1 is after block l.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .analysis import Analysis


@dataclass(frozen=True, eq=False)
class LensEntry:
    """What the model would predict at one depth if the residual stream ended there."""

    depth: int  # 0 = the embedding, l + 1 = after block l (for a `mid` entry: l, the block it is inside)
    name: str  # "embed", "block 0" … / "block 0 attn" for the residual after attention, before the MLP
    top_ids: np.ndarray  # (K,) best first
    top_probs: np.ndarray  # (K,)
    entropy: float  # of the whole distribution, in nats
    final_token_rank: int  # 1 = the model's final top-1 token is already the top here
    final_token_prob: float


@dataclass(frozen=True, eq=False)
class Lens:
    """The logit lens at one position: one entry per block boundary, and optionally mid-block."""

    position: int
    token_id: int  # the token at that position (the lens predicts the one after it)
    final_token: int  # the model's own top-1 after that position
    layers: tuple[LensEntry, ...]  # embed, block 0, …, block L-1: the last is the model's output
    mid: tuple[LensEntry, ...] = ()  # after each block's attention, before its MLP


@dataclass(frozen=True, eq=False)
class LensGrid:
    """The lens's top-1 token at every depth and position (depths 0..L, the last the model's output)."""

    top_ids: np.ndarray  # (L+1, T)
    top_probs: np.ndarray  # (L+1, T)


@dataclass(frozen=True, eq=False)
class BlockStage:
    """One block's two additions to the residual stream at one position."""

    layer: int
    attn_norm: float  # |attention output|
    mlp_norm: float  # |MLP output|
    attn_direct_logit: float  # linearised direct effect on the final top token's logit (Readout.direct_logits)
    mlp_direct_logit: float
    resid_norm: float  # |residual| after the block


@dataclass(frozen=True, eq=False)
class Stages:
    """The four stages of one token: embedding -> blocks -> final residual -> unembedding -> softmax."""

    position: int
    token_id: int
    token_norm: float  # |W_E row|
    position_norm: float | None  # |W_pos row|; None for a model without a position table
    embed_norm: float  # |token + position|: the residual stream's start
    embed_direct_logit: float
    blocks: tuple[BlockStage, ...]
    final_norm: float  # |final residual| before the final norm
    bias_logit: float  # the final norm's bias through the unembedding: the rest of the logit
    final_token: int  # the model's top-1 after this position
    final_logit: float  # its logit = embed + Σ blocks' direct effects + bias_logit
    final_prob: float


@dataclass(frozen=True, eq=False)
class CompareLayer:
    depth: int
    name: str
    cosine: float  # of the word's residual vectors in the two texts (float64)
    a: LensEntry
    b: LensEntry


@dataclass(frozen=True, eq=False)
class Comparison:
    """One word followed through the layers of two texts."""

    position_a: int
    position_b: int
    token_a: int
    token_b: int
    token_cosine: float  # of the two tokens' W_E rows: 1.0 when they are the same token
    layers: tuple[CompareLayer, ...]


def boundary_rows(analysis: "Analysis") -> list[int]:
    """Residual rows at the block boundaries: the embedding and after every block."""
    return list(range(0, analysis.residual.shape[0], 2))


def depth_names(n_layer: int) -> list[str]:
    return ["embed", *(f"block {i}" for i in range(n_layer))]


def _entries(logits: np.ndarray, final_token: int, top: int) -> list[tuple]:
    """Rows of (V,) logits (n, V) -> for each: top ids, their probabilities, the entropy, the final
    token's rank and probability. The top tokens and their probabilities are computed as the
    candidates are (float32 softmax, torch.topk), so the model's own row equals `next` exactly. All
    rows at once, in float32 (the entropy as logsumexp − Σ p·logit, ~1e-5 nats from float64): per
    row, or in float64, these reductions took longer than the product that made the logits."""
    import torch

    raw = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
    probs = raw.softmax(-1)
    order = torch.topk(raw, min(top, raw.shape[-1]), dim=-1).indices
    top_probs = probs.gather(-1, order)
    # −inf logits (ids the model never embedded) have p = 0 and add nothing to the entropy
    expected_logit = torch.where(probs > 0, probs * raw, torch.zeros(())).sum(-1)
    entropy = torch.logsumexp(raw, -1) - expected_logit
    rank = (raw > raw[:, final_token:final_token + 1]).sum(-1) + 1
    return [(order[i].numpy(), top_probs[i].numpy(), float(entropy[i]), int(rank[i]), float(probs[i, final_token]))
            for i in range(raw.shape[0])]


def final_logits(analysis: "Analysis", position: int) -> np.ndarray:
    """(V,) the model's own logits after `position`: exactly those `next` reads at the last position."""
    if position == analysis.n_tokens - 1:
        return analysis.last_logits
    return analysis.readout.lens_logits(analysis.final_hidden[position:position + 1], normed=True)[0]


def lens(analysis: "Analysis", position: int, top: int = 5, mid: bool = False) -> Lens:
    """The logit lens at one position: the residual at every block boundary through the final norm and
    unembedding. The last entry is the model's own output (its logits, not a recomputation)."""
    _need_residual(analysis)
    rows = boundary_rows(analysis)
    L = len(rows) - 1
    final = final_logits(analysis, position)
    final_token = int(np.argmax(final))
    # Every depth (and the mid-block residuals) in one product: the unembedding is read once, and
    # one product of 2L rows costs less than two of L (measured: 30 vs 2 × 25 ms for gpt2).
    mid_rows = list(range(1, 2 * L, 2)) if mid else []
    logits = analysis.readout.lens_logits(analysis.residual[rows[:-1] + mid_rows, position])  # (L or 2L, V)
    entries = _entries(np.concatenate([logits[:L], final[None]]), final_token, top)
    names = depth_names(L)
    layers = [LensEntry(d, names[d], *entries[d]) for d in range(L + 1)]
    middle: list[LensEntry] = []
    if mid:
        middle = [LensEntry(l, f"block {l} attn", *e) for l, e in enumerate(_entries(logits[L:], final_token, top))]
    return Lens(position, int(analysis.ids[position]), final_token, tuple(layers), tuple(middle))


GRID_CHUNK = 32  # positions read at a time by lens_grid: how often it checks whether to stop


def lens_grid(analysis: "Analysis", should_stop: Callable[[], bool] | None = None) -> LensGrid | None:
    """The lens's top-1 token and its probability at every depth and position.

    It costs depths × positions × vocabulary × d_model, so it runs GRID_CHUNK positions of one depth
    at a time and gives up (returns None) as soon as `should_stop()` says so: call it from a worker,
    never the UI thread.
    """
    _need_residual(analysis)
    rows = boundary_rows(analysis)
    T = analysis.n_tokens
    ids = np.empty((len(rows), T), np.int64)
    probs = np.empty((len(rows), T), np.float32)
    for d, row in enumerate(rows):
        last = d == len(rows) - 1  # the model's own output: from the normed residual its logits came from
        source = analysis.final_hidden if last else analysis.residual[row]
        for a in range(0, T, GRID_CHUNK):
            if should_stop is not None and should_stop():
                return None
            ids[d, a:a + GRID_CHUNK], probs[d, a:a + GRID_CHUNK] = analysis.readout.lens_top1(
                source[a:a + GRID_CHUNK], normed=last)
    return LensGrid(ids, probs)


def stages(analysis: "Analysis", position: int) -> Stages:
    """Embedding (token + position) -> each block's attention and MLP output -> final residual ->
    unembedding -> softmax, for one position, with each part's direct effect on the final top token."""
    _need_residual(analysis)
    res = analysis.residual[:, position].astype(np.float64)  # (2L+1, C)
    L = (res.shape[0] - 1) // 2
    parts = np.diff(res, axis=0)  # (2L, C): attention 0, MLP 0, attention 1, …
    final = final_logits(analysis, position)
    token = int(np.argmax(final))
    effects, bias = analysis.readout.direct_logits(np.vstack([res[:1], parts]), res[-1], token)
    tokens, positions = analysis.readout.embedding_parts(analysis.ids[position:position + 1], np.array([position]))
    norm = np.linalg.norm
    blocks = tuple(
        BlockStage(l, float(norm(parts[2 * l])), float(norm(parts[2 * l + 1])), float(effects[1 + 2 * l]),
                   float(effects[2 + 2 * l]), float(norm(res[2 * l + 2])))
        for l in range(L))
    x = final.astype(np.float64)
    prob = float(np.exp(x[token] - x.max()) / np.exp(x - x.max()).sum())
    return Stages(position, int(analysis.ids[position]), float(norm(tokens[0])),
                  None if positions is None else float(norm(positions[0])), float(norm(res[0])),
                  float(effects[0]), blocks, float(norm(res[-1])), bias, token, float(final[token]), prob)


def compare(a: "Analysis", b: "Analysis", position_a: int, position_b: int, top: int = 5) -> Comparison:
    """The same word in two texts: the cosine of its residual vectors at every depth (float64), and
    what the lens reads at each side."""
    _need_residual(a)
    _need_residual(b)
    rows = boundary_rows(a)
    va = a.residual[rows, position_a].astype(np.float64)
    vb = b.residual[rows, position_b].astype(np.float64)
    cosines = (va * vb).sum(-1) / np.maximum(np.linalg.norm(va, axis=-1) * np.linalg.norm(vb, axis=-1), 1e-300)
    la, lb = lens(a, position_a, top), lens(b, position_b, top)
    ta, _ = a.readout.embedding_parts(a.ids[position_a:position_a + 1])
    tb, _ = b.readout.embedding_parts(b.ids[position_b:position_b + 1])
    ta, tb = ta[0].astype(np.float64), tb[0].astype(np.float64)
    token_cosine = float(ta @ tb / max(np.linalg.norm(ta) * np.linalg.norm(tb), 1e-300))
    layers = tuple(CompareLayer(d, ea.name, float(cosines[d]), ea, eb)
                   for d, (ea, eb) in enumerate(zip(la.layers, lb.layers)))
    return Comparison(position_a, position_b, int(a.ids[position_a]), int(b.ids[position_b]), token_cosine, layers)


def find_tokens(ids: np.ndarray, word_ids: list[int]) -> int | None:
    """The position of the last token of the last occurrence of word_ids in ids, or None."""
    n = len(word_ids)
    for start in range(len(ids) - n, -1, -1):
        if list(ids[start:start + n]) == word_ids:
            return start + n - 1
    return None


def _need_residual(analysis: "Analysis") -> None:
    if analysis.residual is None:
        from .session import InputError

        raise InputError("this analysis was made without residuals")
