"""The model card of a decoder.Decoder: its switches in words and its parameters per matrix, counted
for the real architecture (separate W_Q, W_K, W_V with fewer key/value heads, gated MLPs, RMSNorm
gains, an untied W_U), in the same shape as Session.info gives for GPT-2."""

from __future__ import annotations

from .architecture import ArchConfig

NORM_NAMES = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm", "rmsnorm_1p": "RMSNorm with gain 1 + w (Gemma)"}
MLP_NAMES = {"swiglu": "SwiGLU (SiLU-gated)", "geglu": "GeGLU (GELU-gated)", "geglu_tanh": "GeGLU (tanh-GELU-gated)",
             "gelu": "GELU", "gelu_tanh": "GELU (tanh approximation)",
             "swiglu_clamped": "clamped SwiGLU (gpt-oss: gate·σ(α·gate) ⊙ (up + 1), both clamped)"}


def _row(name: str, symbol: str, rows: int, cols: int, bias: int, per_layer: bool, n_layer: int) -> dict:
    count = rows * cols + bias
    formula = (f"{symbol} = {rows:,} × {cols:,} = {rows * cols:,}" + (f" + {bias:,} biases = {count:,}" if bias else "")
               if rows else symbol)
    return {"name": name, "shape": f"{rows} × {cols}" if rows else "—", "weights": rows * cols, "bias": bias,
            "count": count, "total": count * n_layer if per_layer else count, "formula": formula}


def _experts_row(name: str, symbol: str, experts: int, rows: int, cols: int, bias: int, n_layer: int) -> dict:
    """A per-layer stack of one matrix per expert (E × rows × cols), biases per expert."""
    weights = experts * rows * cols
    count = weights + experts * bias
    formula = (f"{symbol} = {experts:,} × {rows:,} × {cols:,} = {weights:,}"
               + (f" + {experts * bias:,} biases = {count:,}" if bias else ""))
    return {"name": name, "shape": f"{experts} × {rows} × {cols}", "weights": weights, "bias": experts * bias,
            "count": count, "total": count * n_layer, "formula": formula}


def _mlp_rows(cfg: ArchConfig) -> list[dict]:
    C, L, M, E = cfg.n_embd, cfg.n_layer, cfg.d_mlp, cfg.n_experts
    mlp_bias = 1 if cfg.mlp_bias else 0
    if E:
        return [_row("router (per layer)", "d_model × experts", C, E, E, True, L),
                _experts_row("experts W_gate·W_up (per layer)", "experts × d_model × 2·d_expert", E, C, 2 * M,
                             2 * M * mlp_bias, L),
                _experts_row("experts W_down (per layer)", "experts × d_expert × d_model", E, M, C, C * mlp_bias, L)]
    if cfg.mlp in ("swiglu", "geglu", "geglu_tanh"):
        rows = [_row("MLP W_gate (per layer)", "d_model × d_mlp", C, M, mlp_bias * M, True, L),
                _row("MLP W_up (per layer)", "d_model × d_mlp", C, M, mlp_bias * M, True, L)]
    else:
        rows = [_row("MLP W_in (per layer)", "d_model × d_mlp", C, M, mlp_bias * M, True, L)]
    return rows + [_row("MLP W_down (per layer)", "d_mlp × d_model", M, C, mlp_bias * C, True, L)]


def matrices(cfg: ArchConfig) -> list[dict]:
    C, V, L = cfg.n_embd, cfg.vocab_size, cfg.n_layer
    q_width, kv_width = cfg.n_head * cfg.head_dim, cfg.n_kv_head * cfg.head_dim
    qkv_bias = 1 if cfg.qkv_bias else 0
    heads = f"{cfg.n_kv_head} key/value heads × {cfg.head_dim}"
    rows = [
        _row("W_E (token embedding)", "vocabulary × d_model", V, C, 0, False, L),
        _row("W_pos (position embedding)", "none: rotary positions turn queries and keys inside attention",
             0, 0, 0, False, L),
        _row("W_Q (per layer)", f"d_model × {cfg.n_head} query heads·{cfg.head_dim}", C, q_width, qkv_bias * q_width,
             True, L),
        _row("W_K (per layer)", f"d_model × {heads}", C, kv_width, qkv_bias * kv_width, True, L),
        _row("W_V (per layer)", f"d_model × {heads}", C, kv_width, qkv_bias * kv_width, True, L),
        _row("W_O (per layer)", "query heads·head_dim × d_model", q_width, C, C if cfg.out_bias else 0, True, L),
    ]
    if cfg.qk_norm:
        rows.append(_row("QK-norm gains (per layer)", "query and key norms × head_dim", 2, cfg.head_dim, 0, True, L))
    if cfg.sinks:
        rows.append(_row("attention sinks (per layer)", "one logit per query head", 1, cfg.n_head, 0, True, L))
    rows += _mlp_rows(cfg)
    norms = 4 if cfg.sandwich_norm else 2
    per_norm = 2 if cfg.norm == "layernorm" else 1
    rows.append(_row("norms (per layer)", f"{norms} norms × {'(gain + bias)' if per_norm == 2 else 'gain'} × d_model",
                     norms * per_norm, C, 0, True, L))
    rows.append(_row("final norm", f"{'(gain + bias)' if per_norm == 2 else 'gain'} × d_model", per_norm, C, 0, False, L))
    if cfg.tied:
        rows.append(_row("W_U (unembedding)", "tied: W_E transposed, the same numbers", 0, 0, 0, False, L))
    else:
        rows.append(_row("W_U (unembedding)", "d_model × vocabulary, a matrix of its own (untied)", C, V, 0, False, L))
    return rows


def notes(cfg: ArchConfig, n_ids: int) -> list[str]:
    out = []
    if cfg.n_kv_head < cfg.n_head:
        kind = "multi-query" if cfg.n_kv_head == 1 else "grouped-query"
        out.append(f"{kind.capitalize()} attention: {cfg.n_head} query heads share {cfg.n_kv_head} key/value "
                   f"head{'s' if cfg.n_kv_head > 1 else ''} ({cfg.group} query heads each), so W_K and W_V are "
                   f"{cfg.group}× narrower than W_Q and the KV cache {cfg.group}× smaller.")
    windows = sorted({w for w in cfg.windows if w})
    if windows:
        sliding = sum(1 for w in cfg.windows if w)
        out.append(f"{sliding} of {cfg.n_layer} layers attend within a sliding window of {windows[0]:,} tokens; "
                   "the others see the whole context.")
    if cfg.attn_softcap or cfg.final_softcap:
        out.append("Soft-capping: " + ", ".join(
            f"{what} squashed into ±{cap:g} by cap·tanh(x/cap)" for what, cap in
            (("attention scores", cfg.attn_softcap), ("logits", cfg.final_softcap)) if cap))
    if cfg.sinks:
        out.append("Attention sinks: each head has one learned logit that joins every softmax without a key of its "
                   "own, so a query's weights on the tokens sum to less than 1; the rest goes nowhere (the "
                   "attention panel shows it as the sink's share).")
    if cfg.n_experts:
        E, k, C, M = cfg.n_experts, cfg.experts_per_token, cfg.n_embd, cfg.d_mlp
        expert = C * 2 * M + 2 * M + M * C + C
        out.append(f"Mixture of experts: each layer has {E} MLPs (experts) of width {M:,}; for each token a router "
                   f"picks {k} and sums their outputs weighted by the softmax of its {k} scores, so "
                   f"{k * expert * cfg.n_layer:,} of the {E * expert * cfg.n_layer:,} expert parameters "
                   "work on any one token.")
    if cfg.embed_scale:
        out.append(f"Embeddings are multiplied by √d_model = {cfg.embed_scale:.2f} as they enter the residual stream.")
    if cfg.vocab_size > n_ids:
        out.append(f"W_E has {cfg.vocab_size:,} rows for {n_ids:,} token ids: the vocabulary was padded; "
                   "the extra rows are never used.")
    out.append("W_U is W_E transposed (tied weights), so it adds no parameters." if cfg.tied else
               "W_U is its own matrix (untied): embedding neighbours search W_E, the input side.")
    return out


def describe(cfg: ArchConfig) -> dict:
    """The architecture in words (the card's fields besides the parameter table)."""
    rope = cfg.rope(0)
    scaling = "" if rope.kind == "default" else f", {rope.kind} scaling ×{rope.factor:g}"
    partial = "" if rope.fraction == 1 else f", on {rope.fraction:.0%} of each head"
    nope = [str(layer) for layer in range(cfg.n_layer) if not cfg.rotary(layer)]
    if nope:
        partial += f"; none in layer{'s' if len(nope) > 1 else ''} {', '.join(nope)}"
    return {
        "architecture": cfg.family,
        "n_kv_head": cfg.n_kv_head,
        "positions": f"rotary (θ = {rope.theta:g}{scaling}{partial})",
        "norm": f"{NORM_NAMES[cfg.norm]} (pre-norm{', and after each sub-block' if cfg.sandwich_norm else ''}), "
                f"eps {cfg.norm_eps:g}",
        "activation": MLP_NAMES[cfg.mlp],
    }
