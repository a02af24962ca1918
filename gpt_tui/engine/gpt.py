"""The GPT-2 architecture in PyTorch, written to be looked into.

One forward pass gives the logits at every position and, when traced, the attention weights of
every layer and head plus the residual stream around every sub-block. Without tracing, attention
runs through PyTorch's fused scaled-dot-product kernel, which never materialises the weights.

Shapes in comments: B batch, T new tokens, S = tokens in the cache + T, C = n_embd,
H = n_head, D = head_dim, V = vocab_size, R = embedding rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated to `capacity`
    positions (n_ctx unless told) and grown, up to n_ctx, if more arrive."""

    def __init__(self, config: GPTConfig, batch: int, device, dtype, capacity: int | None = None) -> None:
        self.n_ctx = config.n_ctx
        capacity = config.n_ctx if capacity is None else max(1, min(capacity, config.n_ctx))
        heads = getattr(config, "n_kv_head", config.n_head)  # grouped-query models store fewer
        shape = (batch, heads, capacity, config.head_dim)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0  # tokens stored (committed after the whole forward pass)
        # The rotary frequencies the stored keys were turned with (decoder.Decoder.rope_regime); None for GPT-2
        self.regime = None

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this pass's (B, H, T, D) keys/values after the stored ones; return all of them."""
        end = self.length + k.size(2)
        if end > self.keys[layer].size(2):
            self._grow(layer, end)
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on (the text was edited there)."""
        self.length = min(self.length, length)

    def _grow(self, layer: int, needed: int) -> None:
        """Reallocate one layer's storage for at least `needed` positions (doubling, up to n_ctx)."""
        for tensors in (self.keys, self.values):
            old = tensors[layer]
            size = min(self.n_ctx, max(needed, 2 * old.size(2)))
            tensors[layer] = old.new_empty((old.size(0), old.size(1), size, old.size(3)))
            tensors[layer][:, :, : self.length] = old[:, :, : self.length]


@dataclass
class Trace:
    """What a traced forward pass saw inside the model.

    Attention is kept one of two ways: as weights (`attention`, computed the long way) or, when
    `query_out`/`key_out` are given, as each layer's queries and keys, from which
    `attention_weights` gives the same weights later, for only the layers someone looks at
    (the pass itself then runs the fused kernel, which never materialises them).
    """

    attention: list[torch.Tensor] = field(default_factory=list)  # per layer: (B, H, T, S)
    # The residual stream: index 0 = token + position embedding, 2l+1 = after layer l's attention,
    # 2l+2 = after layer l's MLP. Each (B, T, C), before the final layer norm.
    residual: list[torch.Tensor] = field(default_factory=list)
    # Optional preallocated storage: weights are then written into attention_out[l] (L, B, H, T, S,
    # float32) and residuals into residual_out[i] (2L+1, B, T, C), and the lists hold views of them,
    # so nothing needs stacking afterwards (the arrays can be numpy-backed).
    attention_out: torch.Tensor | None = None
    residual_out: torch.Tensor | None = None
    # Queries and keys of this pass's T tokens, (L, B, H, T, D) float32 each, instead of weights.
    query_out: torch.Tensor | None = None
    key_out: torch.Tensor | None = None

    # False: attention runs through the fused kernel and keeps nothing (a pass that wants the residual
    # stream alone, e.g. the logit lens, gets the same attention numbers as an untraced pass).
    attention_wanted: bool = True

    @property
    def keeps_weights(self) -> bool:
        return self.attention_wanted and self.query_out is None

    def keep_residual(self, x: torch.Tensor) -> None:
        if self.residual_out is not None:
            x = self.residual_out[len(self.residual)].copy_(x)
        self.residual.append(x)


class SelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, layer: int, cache: KVCache | None, trace: Trace | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, H, T, D)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        past = cache.length if cache is not None else 0
        if trace is not None and trace.query_out is not None:
            trace.query_out[layer].copy_(q)
            trace.key_out[layer].copy_(k)
        if cache is not None:
            k, v = cache.store(layer, k, v)  # (B, H, S, D)
        S = k.size(2)
        if trace is not None and trace.keeps_weights:
            y = self._attend_with_weights(q, k, v, past, trace)
        elif T == 1 and not self.training and q.dtype != torch.float32 and q.device.type == "cpu":
            y = _attend_one_query(q, k, v)  # decoding in half precision on the CPU
        elif past == 0:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, dropout_p=p)
        else:
            # New query i sits at position past+i and may see keys 0..past+i.
            mask = None if T == 1 else _causal_mask(T, S, past, q.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, C)  # re-assemble the heads side by side
        return self.c_proj(y)

    @staticmethod
    def _attend_with_weights(q, k, v, past: int, trace: Trace) -> torch.Tensor:
        """Attention the long way, so the weights can be kept."""
        out = trace.attention_out[len(trace.attention)] if trace.attention_out is not None else None
        weights = attention_weights(q, k, past, out=out)
        trace.attention.append(weights)
        return (weights @ v.float()).to(v.dtype)


def attention_weights(q: torch.Tensor, k: torch.Tensor, past: int = 0, out: torch.Tensor | None = None, *,
                      scale: float | None = None, softcap: float | None = None,
                      window: int | None = None, sinks: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) under the causal mask, in float32, for every head at once.

    q (..., T, D) are the queries of positions past..past+T-1; k (..., S, D) the keys of positions
    0..S-1. Returns (..., T, S); a query's weights on later keys are exactly 0.
    Other architectures (decoder.py) may scale by `scale` instead of 1/sqrt(D), squash the scores
    into (-softcap, softcap), let a query see only the last `window` keys, and (gpt-oss) add one
    learned logit per head, `sinks` (H,), to each softmax: its share goes to no key, so a row's
    weights sum to less than 1.
    """
    T, S = q.size(-2), k.size(-2)
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = (q.float() * scale) @ k.float().transpose(-2, -1)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if S > past + 1:  # some key comes after a query (never for one query at the end: decoding)
        scores.masked_fill_(~_causal_mask(T, S, past, q.device), float("-inf"))
    if window is not None and S > window:  # keys that slid out of the window
        rows = torch.arange(T, device=q.device).unsqueeze(1) + past
        scores.masked_fill_(torch.arange(S, device=q.device).unsqueeze(0) <= rows - window, float("-inf"))
    if sinks is not None:  # one more column per row, the head's sink, dropped after the softmax
        sink = sinks.to(scores.device, torch.float32).view(-1, 1, 1).expand(*scores.shape[:-1], 1)
        weights = torch.softmax(torch.cat([scores, sink], dim=-1), dim=-1)[..., :-1]
        return weights if out is None else out.copy_(weights)
    return torch.softmax(scores, dim=-1, out=out)


def _attend_one_query(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √D) v for one query (B, H, 1, D) over all S keys, computed in float32.

    For one bfloat16 query, torch's fused CPU kernel is slow: 108 µs per layer at 144 keys and
    743 µs at 1024, against 50 and 177 µs for the weights and their product with v in float32
    (which also keeps the softmax in full precision).
    """
    return (attention_weights(q, k, past=k.size(-2) - 1) @ v.float()).to(v.dtype)


def _causal_mask(T: int, S: int, past: int, device) -> torch.Tensor:
    """(T, S) boolean mask: True where query i (at position past+i) may look at key j."""
    rows = torch.arange(T, device=device).unsqueeze(1) + past
    return torch.arange(S, device=device).unsqueeze(0) <= rows


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.n_inner, bias=config.bias)
        self.c_proj = nn.Linear(config.n_inner, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2 used the tanh approximation of GELU; the exact erf form differs by ~1e-3.
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = SelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, layer: int, cache: KVCache | None, trace: Trace | None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln_1(x), layer, cache, trace))
        if trace is not None:
            trace.keep_residual(x)
        x = x + self.dropout(self.mlp(self.ln_2(x)))
        if trace is not None:
            trace.keep_residual(x)
        return x


class GPT(nn.Module):
    """GPT-2: token + position embeddings, pre-norm blocks, final norm, tied unembedding."""

    packed_unembed = None  # set by fast.optimise_for_inference: W_E as a packed matrix, (..., C) -> (..., R)

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.embedding_rows, config.n_embd)  # W_E
        self.wpe = nn.Embedding(config.n_ctx, config.n_embd)  # W_pos
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        if config.n_rows is not None:
            # row_ids[r] = token id of embedding row r; id_rows[id] = its row, or the unknown row.
            self.register_buffer("row_ids", torch.arange(config.n_rows), persistent=True)
            self.register_buffer("id_rows", torch.arange(config.vocab_size), persistent=False)
        else:
            self.row_ids = None
            self.id_rows = None

    # -- vocabulary --------------------------------------------------------------------------------

    def set_row_ids(self, row_ids: torch.Tensor) -> None:
        """Install the compact vocabulary: embedding row r holds token id row_ids[r]."""
        cfg = self.config
        assert cfg.n_rows is not None and row_ids.numel() == cfg.n_rows
        self.row_ids.copy_(row_ids)
        self.refresh_id_rows()

    def refresh_id_rows(self) -> None:
        """Rebuild the id -> row lookup from row_ids (after loading a state dict)."""
        if self.row_ids is None:
            return
        lookup = torch.full((self.config.vocab_size,), self.config.n_rows, dtype=torch.long)
        lookup[self.row_ids.long().cpu()] = torch.arange(self.config.n_rows)
        self.id_rows = lookup.to(self.wte.weight.device)

    def token_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_E rows that are real tokens, their token ids)."""
        if self.row_ids is None:
            ids = torch.arange(self.config.vocab_size, device=self.wte.weight.device)
            return self.wte.weight, ids
        return self.wte.weight[: self.config.n_rows], self.row_ids

    # -- the model protocol (decoder.Decoder has the same) -------------------------------------------

    @property
    def embed_weight(self) -> torch.Tensor:
        """W_E (R, C): one row per embedding row (token id, or compact row)."""
        return self.wte.weight

    @property
    def unembed_weight(self) -> torch.Tensor:
        """W_U as rows, (R, C): tied, so W_E itself."""
        return self.wte.weight

    @property
    def final_norm_module(self) -> nn.Module:
        return self.ln_f

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_f(x)

    def token_embed(self, rows: torch.Tensor) -> torch.Tensor:
        return self.wte(rows)

    def position_embed(self, positions: torch.Tensor) -> torch.Tensor | None:
        table = getattr(self, "wpe", None)  # None: a model without a position table
        return None if table is None else table(positions)

    def attention_spec(self, layer: int) -> None:
        return None  # plain causal softmax(q kᵀ / √D)

    # -- forward -----------------------------------------------------------------------------------

    def forward(
        self,
        idx: torch.Tensor,
        cache: KVCache | None = None,
        trace: Trace | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, V) over the whole vocabulary (or (B, 1, V)).

        With a cache, idx continues the cached tokens and the cache grows by T.
        With a trace, attention weights and residuals are appended to it.
        """
        rows = idx if self.id_rows is None else self.id_rows[idx]
        h = self.hidden(rows, cache, trace)
        if last_only:
            h = h[:, -1:]
        return self.unembed(self.ln_f(h))

    def hidden(self, rows: torch.Tensor, cache: KVCache | None = None, trace: Trace | None = None) -> torch.Tensor:
        """Embedding rows (B, T) -> residual stream after the last block (B, T, C), before ln_f."""
        B, T = rows.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.n_ctx:
            raise ValueError(f"{past + T} tokens do not fit the context window of {self.config.n_ctx}")
        pos = torch.arange(past, past + T, device=rows.device)
        x = self.drop(self.wte(rows) + self.wpe(pos))
        if trace is not None:
            trace.keep_residual(x)
        for layer, block in enumerate(self.h):
            x = block(x, layer, cache, trace)
        if cache is not None:
            cache.length += T
        return x

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """Normalised residual (B, T, C) -> logits (B, T, V), with W_U = W_E^T (tied)."""
        if self.row_ids is None:
            return h @ self.wte.weight.T if self.packed_unembed is None else self.packed_unembed(h)
        if self.packed_unembed is not None:  # W_E packed for the CPU's matmul library (fast.py)
            rows_logits = self.packed_unembed(h)
        else:
            rows_logits = h @ self.wte.weight[: self.config.n_rows].T  # (B, T, R)
        # rows_logits' dtype, not h's: under bf16 autocast the product is bf16 while h is fp32
        full = rows_logits.new_full((*h.shape[:-1], self.config.vocab_size), float("-inf"))
        return full.index_copy_(-1, self.row_ids, rows_logits)

    def training_loss(self, rows: torch.Tensor, target_rows: torch.Tensor,
                      gated: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy over embedding rows (fast path for training a compact model).

        gated (R,) bool: rows whose softmax push-down keeps only its part along the mean hidden
        state; they keep their full pull where they are the target (and as inputs). The loss and
        every other gradient are unchanged. Why: with a tied unembedding, a rare token's row is
        pushed a little at every position of every step, and Adam turns that steady push into a full
        step each time while the row's few real occurrences are averaged away: after enough steps
        the rare rows collapse into one clump whose cosine neighbours mean nothing ("representation
        degeneration"; gating after Yu et al. 2022, "Rare Tokens Degenerate All Tokens"). The push
        along the mean hidden state is kept because that part is how rare the token is: without it a
        gated row can only rise, and the model over-predicts rare tokens.
        """
        h = self.ln_f(self.hidden(rows))
        weight = self.wte.weight
        if gated is None:
            return F.cross_entropy((h @ weight.T).float().flatten(0, 1), target_rows.flatten())
        mean = h.detach().flatten(0, 1).mean(0)
        mean = mean / mean.norm().clamp_min(1e-6)
        moved = weight - weight.detach()  # zero in value: it only routes gradient
        along = weight.detach() + (moved @ mean)[:, None] * mean  # gradient projected on the mean
        unembed = torch.where(gated[:, None], along, weight)
        logits = h @ unembed.T  # (B, T, R): every row, the unknown one included
        loss = F.cross_entropy(logits.float().flatten(0, 1), target_rows.flatten())
        # the rest of the pull toward the hidden state that predicted a gated target (its part along
        # the mean came through the logits above); zero in value, so the loss and h's gradient stay
        target = moved[target_rows]
        sideways = target - (target @ mean)[..., None] * mean
        pull = (h * sideways).sum(-1) * gated[target_rows]
        return loss - pull.float().mean()

    def new_cache(self, batch: int = 1, capacity: int | None = None) -> KVCache:
        """An empty KV cache; capacity: positions to allocate at first (n_ctx if None; it grows)."""
        w = self.wte.weight
        return KVCache(self.config, batch, w.device, w.dtype, capacity)

    def init_weights(self, seed: int | None = None) -> None:
        """GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        std_proj = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, std_proj, generator=gen)
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02, generator=gen)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            else:  # layer-norm gains
                nn.init.ones_(p)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
