"""The decoder-only transformer of Llama, Qwen 2/3, Gemma 2/3, Mistral, Phi-3, SmolLM and gpt-oss,
written once and switched by an ArchConfig (architecture.py), with the canonical names the rest of
the engine reads (TransformerLens's vocabulary):

    embed (W_E) -> blocks[l]: ln1 -> attn (q, k, v, o, [sinks]) -> [ln1_post] -> +residual
                              ln2 -> mlp (gate, up, down; or router + experts) -> [ln2_post] -> +residual
             -> ln_final -> unembed (W_U: lm_head, or W_E^T when tied) -> [soft-cap]

It takes the same KV cache and Trace as GPT-2 (gpt.py), so the analysis pass, generation and every
view run on it unchanged. With grouped-query attention the trace holds each query head's keys (its
key/value head's, repeated), so stored attention is indexed by query head like GPT-2's.

Shapes: B batch, T new tokens, S keys, C d_model, H query heads, K key/value heads, D head_dim.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .architecture import ArchConfig
from .gpt import KVCache, Trace, attention_weights
from .rotary import RotaryTable, rotate


@dataclass(frozen=True)
class AttentionSpec:
    """How one layer turns queries and keys into weights (beyond the causal mask)."""

    scale: float
    softcap: float | None = None
    window: int | None = None
    sinks: torch.Tensor | None = field(default=None, compare=False)  # (H,) float32 on the CPU (gpt-oss)


class RMSNorm(nn.Module):
    """x / rms(x) · w (Llama, Qwen, Mistral, Phi-3) or · (1 + w) (Gemma), computed in float32.

    The two differ in where they round back to the input's dtype, as their reference code does:
    Llama before multiplying by w, Gemma after."""

    def __init__(self, dim: int, eps: float, plus_one: bool = False) -> None:
        super().__init__()
        self.eps, self.plus_one = eps, plus_one
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.plus_one:
            return (normed * (1.0 + self.weight.float())).to(x.dtype)
        return self.weight * normed.to(x.dtype)

    def gain(self) -> torch.Tensor:
        """The effective per-dimension scale (1 + w for Gemma)."""
        return self.weight + 1.0 if self.plus_one else self.weight


def make_norm(config: ArchConfig, dim: int | None = None) -> nn.Module:
    dim = dim or config.n_embd
    if config.norm == "layernorm":
        return nn.LayerNorm(dim, eps=config.norm_eps)
    return RMSNorm(dim, config.norm_eps, plus_one=config.norm == "rmsnorm_1p")


def softcap(x: torch.Tensor, cap: float | None) -> torch.Tensor:
    """cap · tanh(x / cap): Gemma 2 squashes scores and logits into (-cap, cap)."""
    return x if cap is None else torch.tanh(x / cap) * cap


class Attention(nn.Module):
    def __init__(self, config: ArchConfig, layer: int) -> None:
        super().__init__()
        H, K, D, C = config.n_head, config.n_kv_head, config.head_dim, config.n_embd
        self.n_head, self.n_kv_head, self.head_dim = H, K, D
        self.q = nn.Linear(C, H * D, bias=config.qkv_bias)
        self.k = nn.Linear(C, K * D, bias=config.qkv_bias)
        self.v = nn.Linear(C, K * D, bias=config.qkv_bias)
        self.o = nn.Linear(H * D, C, bias=config.out_bias)
        self.q_norm = make_norm(config, D) if config.qk_norm else None
        self.k_norm = make_norm(config, D) if config.qk_norm else None
        self.sinks = nn.Parameter(torch.zeros(H)) if config.sinks else None
        self.spec = AttentionSpec(config.scale(), config.attn_softcap, config.window(layer))

    def forward(self, x: torch.Tensor, layer: int, rotary: tuple | None, cache: KVCache | None,
                trace: Trace | None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, K, T, D)
        v = self.v(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:  # per head, before the rotation
            q, k = self.q_norm(q), self.k_norm(k)
        if rotary is not None:
            cos, sin = rotary
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        past = cache.length if cache is not None else 0
        group = self.n_head // self.n_kv_head
        if trace is not None and trace.query_out is not None:
            trace.query_out[layer].copy_(q)
            trace.key_out[layer].copy_(k.repeat_interleave(group, dim=1) if group > 1 else k)
        if cache is not None:
            k, v = cache.store(layer, k, v)  # (B, K, S, D)
        spec = self.spec
        if (trace is not None and trace.keeps_weights) or spec.softcap is not None or self.sinks is not None:
            if group > 1:  # each key/value head serves `group` query heads side by side
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
            weights = attention_weights(q, k, past, scale=spec.scale, softcap=spec.softcap, window=spec.window,
                                        sinks=self.sinks)
            if trace is not None and trace.keeps_weights:
                if trace.attention_out is not None:
                    weights = trace.attention_out[len(trace.attention)].copy_(weights)
                trace.attention.append(weights)
            y = (weights @ v.float()).to(v.dtype)
        else:
            y = grouped_attention(q, k, v, past, spec)
        return self.o(y.transpose(1, 2).reshape(B, T, -1))


def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: int, spec: AttentionSpec) -> torch.Tensor:
    """softmax(q kᵀ · scale) v without copying keys and values per query head: the G query heads of
    each key/value head are stacked as G·T rows of one (B, K, G·T, D) query, under the (T, S) mask
    tiled G times. q (B, H, T, D), k and v (B, K, S, D) -> (B, H, T, D)."""
    B, H, T, D = q.shape
    K, S = k.size(1), k.size(2)
    G = H // K
    rows = q.reshape(B, K, G * T, D)  # head h = kv·G + g: its T rows at g·T … g·T+T-1
    if T == 1 and q.dtype != torch.float32 and q.device.type == "cpu":
        # Decoding in half precision on the CPU: the fused kernel is slow for one query (gpt.py's
        # _attend_one_query); float32 weights and their product with v are faster and exact.
        scores = (rows.float() * spec.scale) @ k.float().transpose(-2, -1)  # (B, K, G, S)
        if spec.window is not None and S > spec.window:
            scores[..., : S - spec.window] = float("-inf")
        y = (torch.softmax(scores, dim=-1) @ v.float()).to(v.dtype)
    else:
        mask = allowed(T, S, past, spec.window, q.device)
        y = F.scaled_dot_product_attention(rows, k, v, attn_mask=None if mask is None else mask.repeat(G, 1),
                                           scale=spec.scale)
    return y.reshape(B, H, T, D)


def allowed(T: int, S: int, past: int, window: int | None, device) -> torch.Tensor | None:
    """(T, S) True where query i (at position past+i) may see key j: j ≤ past+i, and within the window."""
    if window is None and S <= past + 1:
        return None  # one query at the end sees every key
    rows = torch.arange(T, device=device).unsqueeze(1) + past
    cols = torch.arange(S, device=device).unsqueeze(0)
    mask = cols <= rows
    if window is not None:
        mask &= cols > rows - window
    return mask


class MLP(nn.Module):
    """Gated (SwiGLU, GeGLU: down(act(gate x) ⊙ up x)) or plain (down(act(up x)))."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        C, M, bias = config.n_embd, config.d_mlp, config.mlp_bias
        self.kind = config.mlp
        self.gated = config.mlp in ("swiglu", "geglu", "geglu_tanh")
        self.gate = nn.Linear(C, M, bias=bias) if self.gated else None
        self.up = nn.Linear(C, M, bias=bias)
        self.down = nn.Linear(M, C, bias=bias)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "swiglu":
            return F.silu(x)
        return F.gelu(x, approximate="tanh" if self.kind in ("gelu_tanh", "geglu_tanh") else "none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.down(self.act(self.gate(x)) * self.up(x))
        return self.down(self.act(self.up(x)))


class Experts(nn.Module):
    """A mixture of experts (gpt-oss): a router scores E experts for each token, the top k run, and
    their outputs are summed with the softmax of those k scores as weights. Each expert is a
    clamped SwiGLU whose gate and up columns are interleaved, as the checkpoints store them:

        h = x·W_gate_up[e] + b;  gate, up = h[..., 0::2], h[..., 1::2]
        gate ≤ limit, -limit ≤ up ≤ limit;  out = (gate·σ(α·gate) ⊙ (up + 1))·W_down[e] + b
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        E, C, M = config.n_experts, config.n_embd, config.d_mlp
        self.top_k, self.limit, self.alpha = config.experts_per_token, config.swiglu_limit, config.swiglu_alpha
        self.router = nn.Linear(C, E, bias=True)
        self.gate_up = nn.Parameter(torch.empty(E, C, 2 * M))
        self.gate_up_bias = nn.Parameter(torch.empty(E, 2 * M))
        self.down = nn.Parameter(torch.empty(E, M, C))
        self.down_bias = nn.Parameter(torch.empty(E, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.size(-1))
        top, chosen = self.router(flat).topk(self.top_k, dim=-1)  # (N, k) each
        weights = top.softmax(dim=-1)
        out = torch.zeros_like(flat)
        for expert in chosen.unique().tolist():  # only the experts some token picked
            rows, slot = (chosen == expert).nonzero(as_tuple=True)
            h = flat[rows] @ self.gate_up[expert] + self.gate_up_bias[expert]
            gate, up = h[..., 0::2].clamp(max=self.limit), h[..., 1::2].clamp(-self.limit, self.limit)
            y = (gate * torch.sigmoid(gate * self.alpha) * (up + 1)) @ self.down[expert] + self.down_bias[expert]
            out.index_add_(0, rows, y * weights[rows, slot, None])
        return out.reshape(x.shape)


class Block(nn.Module):
    def __init__(self, config: ArchConfig, layer: int) -> None:
        super().__init__()
        self.ln1 = make_norm(config)
        self.attn = Attention(config, layer)
        self.ln1_post = make_norm(config) if config.sandwich_norm else None
        self.ln2 = make_norm(config)
        self.mlp = Experts(config) if config.n_experts else MLP(config)
        self.ln2_post = make_norm(config) if config.sandwich_norm else None

    def forward(self, x, layer: int, rotary, cache: KVCache | None, trace: Trace | None) -> torch.Tensor:
        a = self.attn(self.ln1(x), layer, rotary, cache, trace)
        x = x + (self.ln1_post(a) if self.ln1_post is not None else a)
        if trace is not None:
            trace.keep_residual(x)
        m = self.mlp(self.ln2(x))
        x = x + (self.ln2_post(m) if self.ln2_post is not None else m)
        if trace is not None:
            trace.keep_residual(x)
        return x


class Decoder(nn.Module):
    """A pre-norm decoder-only transformer configured by an ArchConfig (see the module docstring)."""

    id_rows = None  # no compact vocabulary: token id = embedding row
    row_ids = None
    packed_unembed = None  # set by fast.optimise_for_inference

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in range(config.n_layer))
        self.ln_final = make_norm(config)
        self.lm_head = None if config.tied else nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._tables: dict[int, RotaryTable] = {}

    # -- the protocol the engine reads (gpt.GPT has the same) -------------------------------------------

    @property
    def embed_weight(self) -> torch.Tensor:
        """W_E (V, C)."""
        return self.embed.weight

    @property
    def unembed_weight(self) -> torch.Tensor:
        """W_U as rows (V, C): a token's logit is its row · the final-normed residual."""
        return self.embed.weight if self.lm_head is None else self.lm_head.weight

    @property
    def final_norm_module(self) -> nn.Module:
        return self.ln_final

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_final(x)

    def token_embed(self, rows: torch.Tensor) -> torch.Tensor:
        """Ids (…) -> their embeddings as they enter the residual stream (scaled for Gemma)."""
        x = self.embed(rows)
        if self.config.embed_scale is not None:  # rounded to the weights' dtype first, as Gemma does
            x = x * torch.tensor(self.config.embed_scale, dtype=x.dtype)
        return x

    def position_embed(self, positions: torch.Tensor) -> torch.Tensor | None:
        return None  # positions act inside attention (rotary), not as a table

    def attention_spec(self, layer: int) -> AttentionSpec:
        attn = self.blocks[layer].attn
        if attn.sinks is None:
            return attn.spec
        return replace(attn.spec, sinks=attn.sinks.detach().float().cpu())

    def token_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.embed.weight
        return w, torch.arange(self.config.vocab_size, device=w.device)

    # -- forward ------------------------------------------------------------------------------------------

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, trace: Trace | None = None,
                last_only: bool = False) -> torch.Tensor:
        h = self.hidden(idx, cache, trace)
        if last_only:
            h = h[:, -1:]
        return self.unembed(self.ln_final(h))

    def hidden(self, rows: torch.Tensor, cache: KVCache | None = None, trace: Trace | None = None) -> torch.Tensor:
        """Ids (B, T) -> residual stream after the last block (B, T, C), before the final norm."""
        B, T = rows.shape
        past = cache.length if cache is not None else 0
        x = self.token_embed(rows)
        if trace is not None:
            trace.keep_residual(x)
        positions = torch.arange(past, past + T, device=rows.device)
        tables: dict[int, tuple] = {}
        for layer, block in enumerate(self.blocks):
            rotary = None
            if self.config.rotary(layer):
                kind = self.config.layer_rope[layer] if self.config.layer_rope else 0
                if kind not in tables:
                    tables[kind] = self._table(kind).cos_sin(positions, x.dtype)
                rotary = tables[kind]
            x = block(x, layer, rotary, cache, trace)
        if cache is not None:
            cache.length += T
            cache.regime = self.rope_regime(past + T)
        return x

    def rope_regime(self, length: int) -> bool | None:
        """Which frequencies a pass reaching `length` tokens turns its keys with: longrope switches to
        its long factors past the original context (None: the frequencies never change). Cached keys
        of another regime must be computed again, as transformers does for Phi-3."""
        if not any(rope.kind == "longrope" for rope in self.config.ropes):
            return None
        return length > min(rope.original_ctx for rope in self.config.ropes if rope.kind == "longrope")

    def cache_is_stale(self, cache: KVCache, new_tokens: int) -> bool:
        """True when the cached keys were turned otherwise than a pass adding new_tokens would turn them."""
        return cache.length > 0 and self.rope_regime(cache.length + new_tokens) != cache.regime

    def _table(self, kind: int) -> RotaryTable:
        if kind not in self._tables:
            self._tables[kind] = RotaryTable(self.config.ropes[kind], self.config.head_dim)
        return self._tables[kind]

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """Final-normed residual (B, T, C) -> logits (B, T, V), soft-capped where the model does."""
        if self.packed_unembed is not None:
            logits = self.packed_unembed(h)
        elif self.lm_head is None:
            logits = h @ self.embed.weight.T
        else:
            logits = self.lm_head(h)
        return softcap(logits, self.config.final_softcap)

    def new_cache(self, batch: int = 1, capacity: int | None = None) -> KVCache:
        w = self.embed.weight
        return KVCache(self.config, batch, w.device, w.dtype, capacity)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
