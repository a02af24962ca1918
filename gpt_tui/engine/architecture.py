"""One configuration for the decoder-only transformers gpt-tui opens besides GPT-2: the switches
in which Llama, Qwen 2/3, Gemma 2/3, Mistral, Phi-3, SmolLM and gpt-oss differ, and the reading of a
Hugging Face `config.json` into them (one small function per family, `FAMILIES`).

Field names shared with GPTConfig (vocab_size, n_ctx, n_embd, n_layer, n_head, head_dim) mean the
same thing, so the analysis pass, the session and the views read either config the same way.
No torch here: the CLI can describe a model without importing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NORMS = ("layernorm", "rmsnorm", "rmsnorm_1p")  # rmsnorm_1p: Gemma's x/rms · (1 + w), in float32
MLPS = ("gelu", "gelu_tanh", "swiglu", "geglu", "geglu_tanh",  # gated: act(gate·x) ⊙ (up·x)
        "swiglu_clamped")  # gpt-oss: gate ≤ limit, up within ±limit, gate·σ(α·gate) ⊙ (up + 1)
ROPE_KINDS = ("default", "linear", "llama3", "yarn", "longrope")


@dataclass(frozen=True)
class Rope:
    """Rotary position embedding of one kind of layer: the frequencies and how they are rescaled."""

    theta: float = 10000.0
    kind: str = "default"  # default | linear | llama3 | yarn
    factor: float = 1.0
    # llama3: wavelengths below original_ctx/high_freq_factor keep their frequency, those above
    # original_ctx/low_freq_factor are divided by factor, the ones between are blended.
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_ctx: int = 0
    beta_fast: float = 32.0  # yarn's ramp between extrapolated and interpolated frequencies
    beta_slow: float = 1.0
    attention_factor: float | None = None  # yarn: cos and sin scaled by it (None: derived from factor)
    truncate: bool = True
    fraction: float = 1.0  # share of each head's dimensions that rotate (Phi-3 partial rotary)
    # longrope (Phi-3 128k): each frequency divided by its own factor, the short ones while the text
    # fits original_ctx and the long ones beyond it; cos and sin scaled by attention_factor
    short_factor: tuple[float, ...] = ()
    long_factor: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ROPE_KINDS:
            raise ValueError(f"rotary scaling {self.kind!r} is not supported (only {', '.join(ROPE_KINDS)})")
        if not (self.theta > 0 and self.factor > 0 and 0 < self.fraction <= 1):
            raise ValueError("rotary theta, factor and fraction must be positive")


@dataclass(frozen=True)
class ArchConfig:
    """The shape and the switches of a pre-norm decoder-only transformer."""

    family: str  # "llama", "qwen2", "qwen3", "gemma2", "gemma3", "mistral", "phi3", "gpt_oss"
    vocab_size: int
    n_ctx: int  # the longest context the model was made for
    n_embd: int  # d_model
    n_layer: int
    n_head: int  # query heads
    n_kv_head: int  # key/value heads: n_head (multi-head), fewer (grouped-query), 1 (multi-query)
    head_dim: int
    d_mlp: int
    norm: str = "rmsnorm"
    norm_eps: float = 1e-6
    positions: str = "rotary"  # rotary | learned | none
    ropes: tuple[Rope, ...] = (Rope(),)  # one per kind of layer
    layer_rope: tuple[int, ...] = ()  # per layer: which of `ropes` (empty: all the first)
    nope: tuple[bool, ...] = ()  # per layer: True where no positions enter at all (SmolLM3's NoPE layers)
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False  # Qwen 3, Gemma 3: each head's query and key normalised before rotation
    attn_scale: float | None = None  # None: 1/sqrt(head_dim); Gemma: query_pre_attn_scalar ** -0.5
    attn_softcap: float | None = None  # Gemma 2: scores -> c·tanh(scores / c)
    windows: tuple[int | None, ...] = ()  # per layer: sliding window (keys within the last w), None: all
    mlp: str = "swiglu"
    sandwich_norm: bool = False  # Gemma 2/3: a norm after attention and after the MLP as well
    tied: bool = False  # W_U = W_E^T
    embed_scale: float | None = None  # Gemma: embeddings multiplied by sqrt(d_model)
    final_softcap: float | None = None  # Gemma 2: logits -> c·tanh(logits / c)
    sinks: bool = False  # gpt-oss: a learned logit per head joins each softmax, so the weights on keys sum below 1
    n_experts: int = 0  # mixture of experts (gpt-oss): this many MLPs of width d_mlp per layer, 0: one plain MLP
    experts_per_token: int = 0  # how many of them a router picks for each token
    swiglu_limit: float = 7.0  # swiglu_clamped's clamp
    swiglu_alpha: float = 1.702
    n_rows = None  # no compact vocabulary (GPTConfig's bundled-model feature)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_ctx", "n_embd", "n_layer", "n_head", "n_kv_head", "head_dim", "d_mlp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number ≥ 1, not {value!r}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"{self.n_head} query heads cannot share {self.n_kv_head} key/value heads evenly")
        if self.norm not in NORMS or self.mlp not in MLPS:
            raise ValueError(f"unknown norm {self.norm!r} or MLP {self.mlp!r}")
        if not (isinstance(self.norm_eps, (int, float)) and math.isfinite(self.norm_eps) and self.norm_eps > 0):
            raise ValueError(f"the norm epsilon must be a number > 0, not {self.norm_eps!r}")
        if self.n_experts and not (isinstance(self.experts_per_token, int) and 1 <= self.experts_per_token <= self.n_experts):
            raise ValueError(f"a router cannot pick {self.experts_per_token!r} of {self.n_experts} experts")
        if self.nope and len(self.nope) != self.n_layer:
            raise ValueError("one rotary switch per layer")
        if self.windows and len(self.windows) != self.n_layer:
            raise ValueError("one sliding window (or none) per layer")
        if self.layer_rope and (len(self.layer_rope) != self.n_layer
                                or not all(0 <= r < len(self.ropes) for r in self.layer_rope)):
            raise ValueError("one rotary kind per layer")

    @property
    def embedding_rows(self) -> int:
        return self.vocab_size

    @property
    def bias(self) -> bool:
        return self.qkv_bias or self.out_bias or self.mlp_bias

    @property
    def group(self) -> int:
        """Query heads per key/value head."""
        return self.n_head // self.n_kv_head

    def window(self, layer: int) -> int | None:
        return self.windows[layer] if self.windows else None

    def rotary(self, layer: int) -> bool:
        """Whether the layer turns its queries and keys (rotary models, NoPE layers aside)."""
        return self.positions == "rotary" and not (self.nope and self.nope[layer])

    def rope(self, layer: int) -> Rope:
        return self.ropes[self.layer_rope[layer] if self.layer_rope else 0]

    def scale(self) -> float:
        return self.attn_scale if self.attn_scale is not None else 1.0 / math.sqrt(self.head_dim)


# -- reading a Hugging Face config.json -------------------------------------------------------------------


def _rope(params: dict | None, theta_default: float, fraction: float = 1.0, hf: dict | None = None) -> Rope:
    """One rope_parameters / rope_scaling dictionary -> Rope (transformers 4 and 5 spellings); hf: the
    whole config.json, where Phi-3 keeps original_max_position_embeddings."""
    params = dict(params or {})
    kind = params.get("rope_type", params.get("type", "default")) or "default"
    if kind == "su":  # Phi-3's old name for longrope
        kind = "longrope"
    theta = params.get("rope_theta", theta_default)
    fraction = params.get("partial_rotary_factor", fraction)
    if kind == "default":
        return Rope(theta=float(theta), fraction=float(fraction))
    keep = {k: params[k] for k in ("low_freq_factor", "high_freq_factor", "beta_fast", "beta_slow",
                                   "attention_factor", "truncate") if params.get(k) is not None}
    hf = hf or {}
    original = int(params.get("original_max_position_embeddings") or hf.get("original_max_position_embeddings") or 0)
    factor = params.get("factor")
    if kind == "longrope":
        keep["short_factor"] = tuple(float(x) for x in params["short_factor"])
        keep["long_factor"] = tuple(float(x) for x in params["long_factor"])
        if factor is None and original:
            factor = hf.get("max_position_embeddings", original) / original
    return Rope(theta=float(theta), kind=kind, factor=float(factor if factor is not None else 1.0),
                original_ctx=original, fraction=float(fraction), **keep)


# When config.json does not say, the family's own default, as its transformers config class has it
# (a config saved by transformers leaves out a value equal to that default: SmolLM3's tied unembedding).
TIED_BY_DEFAULT = {"smollm3"}


def _common(hf: dict, family: str) -> dict:
    n_head = hf["num_attention_heads"]
    n_embd = hf["hidden_size"]
    head_dim = hf.get("head_dim") or n_embd // n_head
    return dict(family=family, vocab_size=hf["vocab_size"], n_ctx=hf.get("max_position_embeddings", 2048),
                n_embd=n_embd, n_layer=hf["num_hidden_layers"], n_head=n_head,
                n_kv_head=hf.get("num_key_value_heads") or n_head, head_dim=head_dim,
                d_mlp=hf["intermediate_size"], norm_eps=hf.get("rms_norm_eps", 1e-6),
                tied=bool(hf.get("tie_word_embeddings", family in TIED_BY_DEFAULT)))


def _single_rope(hf: dict) -> Rope:
    params = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    return _rope(params, hf.get("rope_theta", 10000.0), hf.get("partial_rotary_factor", 1.0), hf)


def _act_mlp(hf: dict) -> str:
    act = hf.get("hidden_activation") or hf.get("hidden_act", "silu")
    if act in ("silu", "swish"):
        return "swiglu"
    if act in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return "geglu_tanh"
    if act == "gelu":
        return "geglu"
    raise ValueError(f"MLP activation {act!r} is not supported")


def _windows(hf: dict, every_layer: bool) -> tuple[int | None, ...]:
    """Per-layer windows: from layer_types when the file lists them, else the one window everywhere."""
    window = hf.get("sliding_window")
    types = hf.get("layer_types")
    if isinstance(types, list) and len(types) == hf["num_hidden_layers"]:
        return tuple(window if t == "sliding_attention" and window else None for t in types)
    return tuple([window if every_layer and window else None] * hf["num_hidden_layers"])


def _llama(hf: dict, family: str = "llama") -> ArchConfig:
    mlp = _act_mlp(hf)
    if mlp != "swiglu":
        raise ValueError(f"{family} with activation {hf.get('hidden_act')!r} is not supported")
    bias = bool(hf.get("attention_bias", False))
    return ArchConfig(**_common(hf, family), ropes=(_single_rope(hf),), qkv_bias=bias, out_bias=bias,
                      mlp_bias=bool(hf.get("mlp_bias", False)), mlp="swiglu",
                      windows=_windows(hf, every_layer=family in ("mistral", "phi3")))


def _qwen2(hf: dict) -> ArchConfig:
    config = _llama({**hf, "attention_bias": False}, "qwen2")
    from dataclasses import replace

    windows = _windows(hf, every_layer=False) if hf.get("use_sliding_window") else ()
    return replace(config, qkv_bias=True, windows=windows)


def _qwen3(hf: dict) -> ArchConfig:
    from dataclasses import replace

    windows = _windows(hf, every_layer=False) if hf.get("use_sliding_window") else ()
    return replace(_llama(hf, "qwen3"), qk_norm=True, windows=windows)


def _smollm3(hf: dict) -> ArchConfig:
    from dataclasses import replace

    n = hf["num_hidden_layers"]
    uses_rope = hf.get("no_rope_layers") or [int((i + 1) % hf.get("no_rope_layer_interval", 4) != 0) for i in range(n)]
    if len(uses_rope) != n:
        raise ValueError("no_rope_layers must list every layer")
    windows = _windows(hf, every_layer=False) if hf.get("use_sliding_window") else ()
    return replace(_llama(hf, "smollm3"), nope=tuple(not bool(r) for r in uses_rope), windows=windows)


def _gemma(hf: dict, family: str) -> ArchConfig:
    mlp = _act_mlp(hf)
    common = {**_common(hf, family), "tied": bool(hf.get("tie_word_embeddings", True))}
    types = hf.get("layer_types")
    n = hf["num_hidden_layers"]
    if not (isinstance(types, list) and len(types) == n):
        if family == "gemma2":  # alternating, sliding first
            types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
        else:  # Gemma 3: five sliding layers, then a global one
            pattern = hf.get("sliding_window_pattern", hf.get("_sliding_window_pattern", 6))
            types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
    window = hf.get("sliding_window")
    windows = tuple(window if t == "sliding_attention" and window else None for t in types)
    params = hf.get("rope_parameters") or {}
    if family == "gemma3":
        full = params.get("full_attention") if "full_attention" in params else (hf.get("rope_scaling") or {})
        local = params.get("sliding_attention") or {}
        ropes = (_rope(full, hf.get("rope_theta", 1_000_000.0)), _rope(local, hf.get("rope_local_base_freq", 10000.0)))
        layer_rope = tuple(1 if t == "sliding_attention" else 0 for t in types)
    else:
        ropes, layer_rope = (_single_rope(hf),), ()
    bias = bool(hf.get("attention_bias", False))
    return ArchConfig(**common, norm="rmsnorm_1p", ropes=ropes, layer_rope=layer_rope, qkv_bias=bias, out_bias=bias,
                      qk_norm=family == "gemma3", attn_scale=float(hf.get("query_pre_attn_scalar", 256)) ** -0.5,
                      attn_softcap=hf.get("attn_logit_softcapping"), windows=windows,
                      mlp="geglu" if mlp == "geglu" else "geglu_tanh", sandwich_norm=True,
                      embed_scale=math.sqrt(hf["hidden_size"]), final_softcap=hf.get("final_logit_softcapping"))


def _gpt_oss(hf: dict) -> ArchConfig:
    n = hf["num_hidden_layers"]
    if not isinstance(hf.get("layer_types"), list):  # GptOssConfig's default: sliding first, then alternating
        hf = {**hf, "layer_types": ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]}
    bias = bool(hf.get("attention_bias", True))
    return ArchConfig(**_common(hf, "gpt_oss"), ropes=(_single_rope(hf),), qkv_bias=bias, out_bias=bias,
                      mlp_bias=True, mlp="swiglu_clamped", sinks=True, windows=_windows(hf, every_layer=False),
                      n_experts=int(hf["num_local_experts"]), experts_per_token=int(hf.get("num_experts_per_tok", 4)),
                      swiglu_limit=float(hf.get("swiglu_limit", 7.0)))


FAMILIES = {
    # model_type -> reader; the architectures (config.json "architectures") each one stands for
    "llama": _llama,  # LlamaForCausalLM: Llama 3.x, SmolLM 1/2
    "smollm3": _smollm3,  # SmolLM3: every fourth layer without positions (NoPE)
    "mistral": lambda hf: _llama(hf, "mistral"),
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "phi3": lambda hf: _llama(hf, "phi3"),
    "gemma2": lambda hf: _gemma(hf, "gemma2"),
    "gemma3_text": lambda hf: _gemma(hf, "gemma3"),
    "gpt_oss": _gpt_oss,  # attention sinks, a mixture of experts, MXFP4 experts in the official files
}
ARCHITECTURES = {"LlamaForCausalLM": "llama", "SmolLM3ForCausalLM": "smollm3", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
                 "Qwen3ForCausalLM": "qwen3", "Phi3ForCausalLM": "phi3", "Gemma2ForCausalLM": "gemma2",
                 "Gemma3ForCausalLM": "gemma3_text", "GptOssForCausalLM": "gpt_oss"}


def model_type(hf: dict) -> str | None:
    """The family a config.json describes: its model_type, else its first architecture."""
    kind = hf.get("model_type")
    if kind == "gemma3" and isinstance(hf.get("text_config"), dict):
        return "gemma3_text"
    if kind in FAMILIES:
        return kind
    for arch in hf.get("architectures") or ():
        if arch in ARCHITECTURES:
            return ARCHITECTURES[arch]
    return kind


# Gemma3TextConfig's defaults: the text_config of Gemma 3's image-text checkpoints lists only what differs.
GEMMA3_TEXT_DEFAULTS = dict(vocab_size=262_208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                            num_attention_heads=8, num_key_value_heads=4, head_dim=256,
                            hidden_activation="gelu_pytorch_tanh", max_position_embeddings=131_072,
                            rms_norm_eps=1e-6, query_pre_attn_scalar=256, sliding_window=4096,
                            rope_theta=1_000_000.0, rope_local_base_freq=10_000.0, tie_word_embeddings=True)


def from_hf(hf: dict) -> ArchConfig:
    """A Hugging Face config.json (as a dict) -> ArchConfig; ValueError for what is not supported."""
    if hf.get("model_type") == "gemma3" and isinstance(hf.get("text_config"), dict):
        # Gemma 3's image-text checkpoints: their language model alone (the vision tower is left out)
        text = {**GEMMA3_TEXT_DEFAULTS, **hf["text_config"], "model_type": "gemma3_text"}
        if "tie_word_embeddings" in hf:
            text["tie_word_embeddings"] = hf["tie_word_embeddings"]
        return _gemma(text, "gemma3")
    kind = model_type(hf)
    reader = FAMILIES.get(kind)
    if reader is None:
        supported = ", ".join(k for k, v in FAMILIES.items() if v is not None)
        raise ValueError(f"model_type {kind!r} is not supported (gpt2, {supported})")
    return reader(hf)
