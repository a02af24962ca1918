"""Analysis: everything the panels show about one text, computed in one forward pass.

Frozen and made of numpy arrays, so it can cross from a worker thread to the UI safely and be
cached by token ids. Shapes: T tokens, K top predictions kept per position, V vocabulary,
L layers, H heads, C d_model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tokenizer import Piece


@dataclass(frozen=True, eq=False)
class Candidate:
    """One possible next token under the sampling knobs."""

    id: int
    text: str
    logit: float
    prob: float  # softmax of the raw logits (temperature 1, nothing cut)
    adjusted_prob: float  # after temperature, top-k and top-p; 0 when cut
    cum_prob: float  # cumulative `prob` down the ranking, this candidate included

    @property
    def kept(self) -> bool:
        return self.adjusted_prob > 0


@dataclass(frozen=True, eq=False)
class Neighbour:
    id: int
    text: str
    cosine: float


@dataclass(frozen=True, eq=False)
class Prediction:
    """A token and the probability a stage of the model gives it (logit lens)."""

    id: int
    text: str
    prob: float


@dataclass(frozen=True, eq=False)
class Neighbours:
    """The nearest tokens to a query vector in the embedding matrix W_E, by cosine similarity."""

    query: str  # "' king'" or "' king' - ' man' + ' woman'"
    neighbours: tuple[Neighbour, ...]
    rare: bool = False  # the query token was seen too rarely in training for its vector to mean much
    min_count: int = 0  # tokens seen fewer times than this were left out of the search
    searched: int = 0  # how many tokens were searched


@dataclass(frozen=True, eq=False)
class Analysis:
    """One forward pass over a text, as the panels need it."""

    text: str  # the text as typed (before any truncation)
    model_name: str
    pieces: tuple[Piece, ...]  # the tokens the model saw
    ids: np.ndarray  # (T,) int64
    dropped: int  # tokens cut from the front because the text was longer than the context
    top_ids: np.ndarray  # (T, K) the K most likely next tokens after each position
    top_logits: np.ndarray  # (T, K)
    logsumexp: np.ndarray  # (T,) so that prob = exp(logit - logsumexp) exactly
    last_logits: np.ndarray  # (V,) the full distribution after the last token, for the knobs
    token_logprobs: np.ndarray  # (T,) log p(ids[t] | ids[:t]); NaN at t = 0
    attention: np.ndarray | None  # (L, H, T, T) row = query, column = key; 0 above the diagonal
    residual: np.ndarray | None  # (2L+1, T, C): embeddings, then after each attention and MLP

    @property
    def n_tokens(self) -> int:
        return int(self.ids.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (what the analysis cache budgets)."""
        arrays = (self.ids, self.top_ids, self.top_logits, self.logsumexp, self.last_logits, self.token_logprobs,
                  self.attention, self.residual)
        return sum(a.nbytes for a in arrays if a is not None)

    @property
    def n_layer(self) -> int:
        return 0 if self.attention is None else int(self.attention.shape[0])

    @property
    def n_head(self) -> int:
        return 0 if self.attention is None else int(self.attention.shape[1])

    def top_probs(self, position: int) -> np.ndarray:
        """Probabilities (K,) of the top predictions after `position`."""
        return np.exp(self.top_logits[position] - self.logsumexp[position])

    def attended(self, layer: int, head: int, query: int, top: int = 8) -> list[tuple[int, float]]:
        """The keys a query token attends to most: (key position, weight), strongest first."""
        row = self.attention[layer, head, query, : query + 1]
        order = np.argsort(-row, kind="stable")[:top]
        return [(int(k), float(row[k])) for k in order]
