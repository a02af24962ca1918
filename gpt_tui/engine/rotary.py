"""Rotary position embedding (RoPE): each pair of a head's dimensions is turned by an angle that
grows with the position, so a query·key product depends on how far apart the two tokens are.

The pairs are (i, i + d/2), the "rotate half" layout Hugging Face checkpoints are stored in. The
frequencies follow the scaling variants models use to stretch their context: linear, Llama 3's
wavelength bands, and YaRN's ramp. Angles are computed in float32 and cast, as the reference does.
"""

from __future__ import annotations

import math

import torch

from .architecture import Rope


def inverse_frequencies(rope: Rope, head_dim: int, long: bool = False) -> tuple[torch.Tensor, float]:
    """(dim/2,) float32 angle per position of each rotating pair, and the factor cos/sin are scaled by
    (long: longrope's factors for texts past its original context)."""
    dim = int(head_dim * rope.fraction)
    base = rope.theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)
    inv = 1.0 / base
    if rope.kind == "longrope":
        factors = torch.tensor(rope.long_factor if long else rope.short_factor, dtype=torch.float32)
        if factors.numel() != inv.numel():
            raise ValueError(f"longrope needs {inv.numel()} factors, the configuration gives {factors.numel()}")
        scale = rope.attention_factor
        if scale is None:
            scale = 1.0 if rope.factor <= 1 else math.sqrt(1 + math.log(rope.factor) / math.log(rope.original_ctx))
        return 1.0 / (factors * base), float(scale)
    if rope.kind == "default":
        return inv, 1.0
    if rope.kind == "linear":
        return inv / rope.factor, 1.0
    if rope.kind == "llama3":
        return _llama3(inv, rope), 1.0
    return _yarn(base, dim, rope)


def _llama3(inv: torch.Tensor, rope: Rope) -> torch.Tensor:
    """Short wavelengths kept, long ones divided by `factor`, a smooth blend in between."""
    low_wavelen = rope.original_ctx / rope.low_freq_factor
    high_wavelen = rope.original_ctx / rope.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / rope.factor, inv)
    smooth = (rope.original_ctx / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    blended = (1 - smooth) * scaled / rope.factor + smooth * scaled
    between = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(between, blended, scaled)


def _yarn(base: torch.Tensor, dim: int, rope: Rope) -> tuple[torch.Tensor, float]:
    """YaRN: fast-turning pairs extrapolate, slow ones interpolate, a linear ramp between them."""
    factor = rope.factor
    attention = rope.attention_factor
    if attention is None:
        attention = 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0

    def pair_for(rotations: float) -> float:  # which pair turns `rotations` times over the original context
        return dim * math.log(rope.original_ctx / (rotations * 2 * math.pi)) / (2 * math.log(rope.theta))

    low, high = pair_for(rope.beta_fast), pair_for(rope.beta_slow)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolated = 1 - ramp  # weight of the original frequency
    inv = (1.0 / (factor * base)) * (1 - extrapolated) + (1.0 / base) * extrapolated
    return inv, float(attention)


class RotaryTable:
    """cos and sin of every position's angles for one kind of layer, grown on demand."""

    def __init__(self, rope: Rope, head_dim: int) -> None:
        self.inv, self.scale = inverse_frequencies(rope, head_dim)
        self.dim = self.inv.numel() * 2  # dimensions that rotate (the rest pass through)
        # longrope: other frequencies once a pass reaches past the original context (as transformers
        # decides, from the furthest position of the pass)
        self.long = inverse_frequencies(rope, head_dim, long=True) if rope.kind == "longrope" else None
        self.original_ctx = rope.original_ctx

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (T,) -> cos, sin (T, dim) in dtype."""
        inv, scale = self.inv, self.scale
        if self.long is not None and int(positions.max()) + 1 > self.original_ctx:
            inv, scale = self.long
        angles = positions.float()[:, None] * inv.to(positions.device)[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        return (angles.cos() * scale).to(dtype), (angles.sin() * scale).to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, D) turned by the angles (T, dim); dimensions past dim are left as they are."""
    dim = cos.size(-1)
    turning, passing = (x, None) if dim == x.size(-1) else (x[..., :dim], x[..., dim:])
    half = dim // 2
    swapped = torch.cat((-turning[..., half:], turning[..., :half]), dim=-1)
    turned = turning * cos + swapped * sin
    return turned if passing is None else torch.cat((turned, passing), dim=-1)
