"""The model card of a decoder.Decoder: its switches in words and its parameters per matrix, counted
for the real architecture (separate W_Q, W_K, W_V with fewer key/value heads, gated MLPs, RMSNorm
gains, an untied W_U), in the same shape as Session.info gives for GPT-2."""

from __future__ import annotations

from .architecture import ArchConfig

NORM_NAMES = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm", "rmsnorm_1p": "RMSNorm with gain 1 + w (Gemma)"}
MLP_NAMES = {"swiglu": "SwiGLU (SiLU-gated)", "geglu": "GeGLU (GELU-gated)", "geglu_tanh": "GeGLU (tanh-GELU-gated)",
             "gelu": "GELU", "gelu_tanh": "GELU (tanh approximation)"}


def _row(name: str, symbol: str, rows: int, cols: int, bias: int, per_layer: bool, n_layer: int) -> dict:
    count = rows * cols + bias
    formula = (f"{symbol} = {rows:,} × {cols:,} = {rows * cols:,}" + (f" + {bias:,} biases = {count:,}" if bias else "")
               if rows else symbol)
    return {"name": name, "shape": f"{rows} × {cols}" if rows else "—", "weights": rows * cols, "bias": bias,
            "count": count, "total": count * n_layer if per_layer else count, "formula": formula}


def matrices(cfg: ArchConfig) -> list[dict]:
    C, V, L, M = cfg.n_embd, cfg.vocab_size, cfg.n_layer, cfg.d_mlp
    q_width, kv_width = cfg.n_head * cfg.head_dim, cfg.n_kv_head * cfg.head_dim
    qkv_bias = 1 if cfg.qkv_bias else 0
    mlp_bias = 1 if cfg.mlp_bias else 0
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
    if cfg.mlp in ("swiglu", "geglu", "geglu_tanh"):
        rows += [_row("MLP W_gate (per layer)", "d_model × d_mlp", C, M, mlp_bias * M, True, L),
                 _row("MLP W_up (per layer)", "d_model × d_mlp", C, M, mlp_bias * M, True, L)]
    else:
        rows.append(_row("MLP W_in (per layer)", "d_model × d_mlp", C, M, mlp_bias * M, True, L))
    rows.append(_row("MLP W_down (per layer)", "d_mlp × d_model", M, C, mlp_bias * C, True, L))
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
