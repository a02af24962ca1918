"""Positions: the model's position table W_pos beside the sinusoidal encoding of the original
Transformer ("Attention Is All You Need", §3.5) of the same size.

GPT-2 learns one vector per position and adds it to the token's; the original Transformer added a
fixed pattern of sines and cosines instead. Both are (positions × d_model) matrices, so the same
statistics describe both: each position's norm, how alike neighbouring positions are, and how alike
any two positions are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PositionTable:
    """A (P, C) position encoding and what the views show of it."""

    kind: str  # "learned" (a trained table, GPT-2), "sinusoidal" (fixed), or "none" (no table: rotary, …)
    weights: np.ndarray | None  # (P, C) float32

    @property
    def n_positions(self) -> int:
        return 0 if self.weights is None else int(self.weights.shape[0])

    @property
    def d_model(self) -> int:
        return 0 if self.weights is None else int(self.weights.shape[1])

    @property
    def norms(self) -> np.ndarray:
        """(P,) the length of each position's vector."""
        return np.linalg.norm(self._f64, axis=1)

    @property
    def neighbour_cosine(self) -> np.ndarray:
        """(P-1,) cosine of position p with position p+1."""
        unit = self._unit
        return (unit[:-1] * unit[1:]).sum(axis=1)

    def cosine_matrix(self) -> np.ndarray:
        """(P, P) cosine of every position with every other."""
        unit = self._unit
        return unit @ unit.T

    @property
    def _f64(self) -> np.ndarray:
        if self.weights is None:
            raise ValueError("this model has no position table")
        return self.weights.astype(np.float64)

    @property
    def _unit(self) -> np.ndarray:
        w = self._f64
        return w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-300)


def sinusoidal(n_positions: int, d_model: int) -> np.ndarray:
    """(P, C) the original Transformer's encoding: PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(…)."""
    positions = np.arange(n_positions, dtype=np.float64)[:, None]
    rates = 1.0 / 10000 ** (np.arange(0, d_model, 2, dtype=np.float64) / d_model)  # (⌈C/2⌉,)
    angles = positions * rates
    table = np.empty((n_positions, d_model))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return table.astype(np.float32)


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n), first and last included (all of them when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def downsample(matrix: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick at most rows × cols entries of a matrix, evenly spaced, never averaged (so every value shown
    is one the matrix holds). Returns (the picked matrix, the row indices, the column indices)."""
    r = evenly_spaced(matrix.shape[0], rows)
    c = evenly_spaced(matrix.shape[1], cols)
    return matrix[np.ix_(r, c)], r, c


def describe_sampling(indices: np.ndarray, n: int, what: str) -> str:
    """'all 64 positions' / 'positions 0, 4, 8 … 252 of 256 (every 4th)', in words."""
    if len(indices) == n:
        return f"all {n} {what}"
    step = n / max(1, len(indices))
    return f"{len(indices)} of {n} {what}, evenly spaced (about every {step:.3g})"
