"""Sampling: temperature, then top-k, then top-p, then a draw from a seeded generator.

Pure functions of a logits vector, so the candidates panel can show exactly the distribution
that generation samples from.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class SamplingParams:
    """The knobs. temperature 0 = greedy, top_k 0 = off, top_p 1 = off.

    Validated here and only here: the CLI options, the session's knob fields and its /commands
    all build one of these (`with_knob` for a value typed as text) and show its message.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not _real(self.temperature) or not math.isfinite(self.temperature):
            raise ValueError(f"temperature must be a finite number, not {self.temperature!r}")
        if self.temperature < 0:
            raise ValueError("temperature must be ≥ 0 (0 means greedy)")
        if not isinstance(self.top_k, numbers.Integral) or isinstance(self.top_k, bool):
            raise ValueError(f"top-k must be a whole number, not {self.top_k!r}")
        if self.top_k < 0:
            raise ValueError("top-k must be ≥ 0 (0 means off)")
        if not _real(self.top_p) or not 0 < self.top_p <= 1:  # NaN fails the comparison too
            raise ValueError("top-p must be in (0, 1] (1 means off)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_knob(self, name: str, text: str) -> "SamplingParams":
        """A copy with one knob ('temperature', 'top_k' or 'top_p') set from text as typed.

        'off' turns top-k or top-p off. ValueError with a one-line message when it is not valid.
        """
        text = text.strip()
        if name not in KNOB_NAMES:
            raise ValueError(f"unknown knob {name!r}; one of {', '.join(KNOB_NAMES)}")
        if text.lower() == "off" and name in ("top_k", "top_p"):
            value: float | int = 0 if name == "top_k" else 1.0
        elif name == "top_k":
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"top-k must be a whole number, not {text!r} (0 or off: no cut)") from None
        else:
            try:
                value = float(text)
            except ValueError:
                what = "temperature" if name == "temperature" else "top-p"
                raise ValueError(f"{what} must be a number, not {text!r}") from None
        return replace(self, **{name: value})

    def describe(self) -> str:
        """The knobs as one line: 'T=0.8 · top-k=40 · top-p=off'."""
        t = f"T={self.temperature:g}{' (greedy)' if self.greedy else ''}"
        return f"{t} · top-k={self.top_k or 'off'} · top-p={'off' if self.top_p == 1 else f'{self.top_p:g}'}"


KNOB_NAMES = ("temperature", "top_k", "top_p")


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def adjusted_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The distribution that sampling draws from, as probabilities over the vocabulary (V,).

    Tokens cut by top-k or top-p get probability 0; the survivors are renormalised.
    Greedy (temperature 0) puts all the mass on the arg-max (the lowest id on a tie).
    """
    logits = logits.float()
    if params.greedy:
        probs = torch.zeros_like(logits)
        probs[logits.argmax()] = 1.0
        return probs
    scaled = logits / params.temperature
    if params.top_k and params.top_k < scaled.numel():
        # Keep the k highest. Taking top-k first also makes the top-p sort below cheap.
        kth = torch.topk(scaled, params.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = scaled.softmax(-1)
    if params.top_p < 1.0:
        probs = _nucleus(probs, params.top_p)
    return probs


NUCLEUS_WINDOW = 256  # tokens sorted first when looking for the top-p nucleus


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches top_p, renormalised.

    The token whose probability crosses top_p is kept.
    """
    live = int((probs > 0).sum())
    # Sorting all 50k tokens costs milliseconds a token; the nucleus is usually a few hundred, so
    # sort a window of the most likely tokens and widen it only while it holds less than top_p.
    window = min(live, NUCLEUS_WINDOW)
    while True:
        sorted_probs, order = torch.topk(probs, window)  # only the surviving tokens need sorting
        cumulative = sorted_probs.cumsum(0)
        if window == live or float(cumulative[-1]) >= top_p:  # the next token would be cut
            break
        window = min(live, window * 8)
    mass_before = cumulative - sorted_probs
    keep = mass_before < top_p  # a token is kept while the mass before it is short of p
    kept = torch.zeros_like(probs)
    kept[order[keep]] = sorted_probs[keep]
    return kept / kept.sum()


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> tuple[int, float]:
    """Draw one token id from logits (V,); return it with its probability under adjusted_probs."""
    probs = adjusted_probs(logits, params)
    if params.greedy:
        token = int(probs.argmax())
    else:
        token = int(torch.multinomial(probs, 1, generator=generator))
    return token, float(probs[token])
