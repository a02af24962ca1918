"""Sampling: temperature, then top-k, then top-p, then a draw from a seeded generator.

Pure functions of a logits vector, so the candidates panel can show exactly the distribution
that generation samples from.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass

import torch

from .errors import NonFiniteError

SEED_MAX = 2**64 - 1  # torch.Generator takes any 64-bit seed


def check_seed(seed: int) -> int:
    """The seed when a generator can take it; else a ValueError saying the range."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"the seed must be a whole number from 0 to {SEED_MAX} (2**64 − 1), not {seed!r}")
    return seed


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


KNOB_NAMES = ("temperature", "top_k", "top_p")


@dataclass(frozen=True)
class SamplingParams:
    """The knobs. temperature 0 = greedy (and inf = uniform), top_k 0 = off, top_p 1 = off.

    Every knob is checked here, once, for the command line and the session alike.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not _is_number(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a number ≥ 0 (0 means greedy), not {self.temperature!r}")
        object.__setattr__(self, "temperature", self.temperature + 0.0)  # −0 is 0: greedy, shown as 0
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top-k must be a whole number ≥ 0 (0 means off), not {self.top_k!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1] (1 means off), not {self.top_p!r}")

    def with_knob(self, name: str, text: str) -> "SamplingParams":
        """A copy with one knob ('temperature', 'top_k' or 'top_p') set from text as typed; 'off'
        turns top-k or top-p off. ValueError with a one-line message when it is not valid."""
        text = text.strip()
        if name not in KNOB_NAMES:
            raise ValueError(f"unknown knob {name!r}; one of {', '.join(KNOB_NAMES)}")
        if text.lower() == "off" and name in ("top_k", "top_p"):
            value = 0 if name == "top_k" else 1.0
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
        return dataclasses.replace(self, **{name: value})

    def describe(self) -> str:
        """The knobs as one line: 'T=0.8 · top-k=40 · top-p=off'."""
        t = f"T={self.temperature:g}{' (greedy)' if self.temperature == 0 else ''}"
        return f"{t} · top-k={self.top_k or 'off'} · top-p={'off' if self.top_p == 1 else f'{self.top_p:g}'}"

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def check_logits(logits: torch.Tensor) -> None:
    """Refuse logits no distribution can come from: NaN, +inf, or no finite value at all.

    -inf alone is fine: a compact model gives it to the tokens it never saw (probability 0).
    """
    if bool(torch.isnan(logits).any()) or bool(torch.isposinf(logits).any()) or not bool(torch.isfinite(logits).any()):
        raise NonFiniteError()


def adjusted_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The distribution that sampling draws from, as probabilities over the vocabulary (V,).

    Tokens cut by top-k or top-p get probability 0; the survivors are renormalised; at least one
    token always survives. Greedy (temperature 0) puts all the mass on the arg-max (the lowest id
    on a tie). Raises NonFiniteError for logits that hold NaN or +inf.
    """
    logits = logits.float()
    check_logits(logits)
    if params.greedy:
        probs = torch.zeros_like(logits)
        probs[logits.argmax()] = 1.0
        return probs
    # Scaled in float64 from the best logit down: the best token's scaled logit is exactly 0, so a
    # vanishing temperature gives it all the mass (ties share it) instead of inf − inf = NaN, and an
    # infinite one gives every live token the same share. Absent tokens (-inf) stay absent.
    live = logits > float("-inf")
    if math.isinf(params.temperature):
        scaled = torch.zeros_like(logits, dtype=torch.float64)
    else:
        scaled = (logits.double() - logits.max().double()) / params.temperature
    scaled = scaled.masked_fill(~live, float("-inf"))
    if params.top_k and params.top_k < scaled.numel():
        # Keep the k highest. Taking top-k first also makes the top-p sort below cheap.
        kth = torch.topk(scaled, params.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = scaled.softmax(-1).float()
    if params.top_p < 1.0:
        probs = _nucleus(probs, params.top_p)
    return probs


NUCLEUS_WINDOW = 256  # tokens sorted first when looking for the top-p nucleus


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches top_p, renormalised.

    The token whose probability crosses top_p is kept, so the most likely token always is, however
    small p is (compared in float64: p = 1e-300 is 0 in float32).
    """
    live = int((probs > 0).sum())
    # Sorting all 50k tokens costs milliseconds a token; the nucleus is usually a few hundred, so
    # sort a window of the most likely tokens and widen it only while it holds less than top_p.
    window = min(live, NUCLEUS_WINDOW)
    while True:
        sorted_probs, order = torch.topk(probs, window)  # only the surviving tokens need sorting
        cumulative = sorted_probs.double().cumsum(0)
        if window == live or float(cumulative[-1]) >= top_p:  # the next token would be cut
            break
        window = min(live, window * 8)
    mass_before = cumulative - sorted_probs.double()
    keep = mass_before < top_p  # a token is kept while the mass before it is short of p
    keep[0] = True
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
