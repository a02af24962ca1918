"""Model hyper-parameters and the GPT-2 family's presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a GPT-2-architecture model."""

    vocab_size: int = 50257  # ids the tokenizer can produce
    n_ctx: int = 1024  # context window (rows of W_pos)
    n_embd: int = 768  # d_model
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5
    dropout: float = 0.0
    bias: bool = True  # biases in linear layers and layer norms (nanoGPT can train without)
    # Compact vocabulary: when set, W_E has one row per listed id plus a final "unknown" row,
    # and ids absent from the list get -inf logits. Trained models that only ever saw part of
    # the vocabulary use it; the real GPT-2 checkpoints do not.
    n_rows: int | None = None

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def n_inner(self) -> int:
        return 4 * self.n_embd

    @property
    def embedding_rows(self) -> int:
        return self.n_rows + 1 if self.n_rows is not None else self.vocab_size

    def __post_init__(self) -> None:
        """Every field checked here, once, whatever file it came from (a string epsilon, n_head 0…)."""
        for name in ("vocab_size", "n_ctx", "n_embd", "n_layer", "n_head", "n_rows"):
            value = getattr(self, name)
            if value is None and name == "n_rows":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number ≥ 1, not {value!r}")
        eps = self.layer_norm_epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"layer_norm_epsilon must be a number > 0, not {eps!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), not {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be true or false, not {self.bias!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GPTConfig":
        if not isinstance(data, dict):
            raise ValueError(f"the model configuration must be an object, not {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    @classmethod
    def from_hf(cls, data: dict) -> "GPTConfig":
        """Read a Hugging Face GPT-2 `config.json` dictionary."""
        if not isinstance(data, dict):
            raise ValueError(f"config.json must hold an object, not {type(data).__name__}")
        return cls(
            vocab_size=data.get("vocab_size", 50257),
            n_ctx=data.get("n_positions", data.get("n_ctx", 1024)),
            n_embd=data.get("n_embd", 768),
            n_layer=data.get("n_layer", 12),
            n_head=data.get("n_head", 12),
            layer_norm_epsilon=data.get("layer_norm_epsilon", 1e-5),
        )


# The released GPT-2 family (OpenAI's four and Hugging Face's distilled one).
PRESETS: dict[str, GPTConfig] = {
    "gpt2": GPTConfig(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
    "distilgpt2": GPTConfig(n_layer=6, n_head=12, n_embd=768),
}
