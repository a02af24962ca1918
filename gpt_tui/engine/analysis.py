"""Analysis: everything the panels show about one text, from one forward pass.

Frozen and made of numpy arrays, so it can cross from a worker thread to the UI safely and be
cached by token ids. The pass computes only what every panel needs at once (the distribution
after the last token, each layer's queries and keys, the residual stream); the rest is derived
on first use and remembered: attention weights one layer at a time, and the predictions after
any other position through the same final layer norm and unembedding the last one went
through. Shapes: T tokens, K top predictions kept per position, V vocabulary, L layers, H heads,
C d_model, D head size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from . import lens as lens_views
from .tokenizer import Piece

if TYPE_CHECKING:
    from .lens import Lens, LensGrid, Stages


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
    matrix: str = "W_E"  # the matrix searched; on untied models it says W_U is another one
    without_common: bool = False  # cosines with the common direction projected out (Session.common_direction)
    shared: float = 0.0  # the query vector's cosine with the common direction (how much of it that direction is)

    @property
    def mostly_shared(self) -> bool:
        """Half or more of the query's length (squared) lies along the common direction, so its raw
        cosines mostly rank tokens by how much of that direction they carry."""
        return self.shared ** 2 >= 0.5

    @property
    def space(self) -> str:
        """What the cosines were taken in, as the panel and the CLI say it."""
        return f"{self.matrix} ⟂ common direction" if self.without_common else self.matrix


class Readout(Protocol):
    """The model's embedding parts, final norm and unembedding, as the analysis and the views
    derived from it need them (analysis_pass.ModelReadout)."""

    def predictions(self, hidden: np.ndarray, following: np.ndarray) -> tuple[np.ndarray, ...]:
        """Final-layer-normed residuals (n, C) and the token after each (n,) (-1: none) ->
        top ids (n, K), top logits (n, K), logsumexp (n,), log p of the following token (n,)."""
        ...

    def lens_logits(self, residual: np.ndarray, normed: bool = False) -> np.ndarray:
        """Residuals (n, C) -> (n, V) logits through the final norm and unembedding."""
        ...

    def lens_top1(self, residual: np.ndarray, normed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Residuals (n, C) -> top-1 ids (n,) and probabilities (n,), chunked."""
        ...

    def direct_logits(self, parts: np.ndarray, final: np.ndarray, token: int) -> tuple[np.ndarray, float]:
        """Residual parts (k, C) -> their linearised direct effects on `token`'s logit, and the bias term."""
        ...

    def embedding_parts(self, ids: np.ndarray, positions: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """Ids (n,) at positions (n,) -> token embeddings (n, C) and position embeddings (n, C) or None."""
        ...


class QueryKeyAttention(Protocol):
    """Attention weights computed from stored queries and keys (analysis_pass.py)."""

    shape: tuple[int, int, int, int]

    def __getitem__(self, key) -> np.ndarray: ...

    def layer(self, layer: int) -> np.ndarray: ...

    def row(self, layer: int, query: int) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class PositionPrediction:
    """What the model predicts after one position of the text."""

    top_ids: np.ndarray  # (K,) the most likely next tokens, best first
    top_logits: np.ndarray  # (K,)
    logsumexp: float  # so that prob = exp(logit - logsumexp) exactly
    next_logprob: float  # log p of the token the text goes on with; NaN after the last token

    @property
    def top_probs(self) -> np.ndarray:
        return np.exp(self.top_logits - self.logsumexp)


@dataclass(frozen=True, eq=False)
class Analysis:
    """One forward pass over a text, as the panels need it."""

    text: str  # the text as typed (before any truncation)
    model_name: str
    pieces: tuple[Piece, ...]  # the tokens the model saw
    ids: np.ndarray  # (T,) int64
    dropped: int  # tokens cut from the front because the text was longer than the context
    last_logits: np.ndarray  # (V,) the full distribution after the last token, for the knobs
    final_hidden: np.ndarray  # (T, C) the residual stream after the final layer norm: the logits' input
    readout: Readout
    # (L, H, T, T) row = query, column = key, 0 above the diagonal: weights derived layer by layer
    # from queries and keys, indexable as an array ([layer, head, query, key]).
    attention: QueryKeyAttention | None
    residual: np.ndarray | None  # (2L+1, T, C): embeddings, then after each attention and MLP
    # Derived parts, filled on first use: {position: PositionPrediction}, "all": every position's arrays.
    _memo: dict = field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_tokens(self) -> int:
        return int(self.ids.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (what the analysis cache budgets)."""
        arrays = [self.ids, self.last_logits, self.final_hidden, self.residual, *self._memo.get("all", ())]
        size = sum(a.nbytes for a in arrays if a is not None)
        return size + int(getattr(self.attention, "nbytes", 0))

    @property
    def n_layer(self) -> int:
        return 0 if self.attention is None else int(self.attention.shape[0])

    @property
    def n_head(self) -> int:
        return 0 if self.attention is None else int(self.attention.shape[1])

    # -- predictions at every position ----------------------------------------------------------------

    def position(self, position: int) -> PositionPrediction:
        """The model's next-token prediction after `position` (computed on first use)."""
        position = range(self.n_tokens)[position]  # negative indices count from the end
        memo = self._memo
        found = memo.get(position)
        if found is None:
            if "all" in memo:
                ids, logits, lse, next_lp = (a[position] for a in memo["all"])
                found = PositionPrediction(ids, logits, float(lse), float(next_lp))
            else:
                following = self.ids[position + 1:position + 2]
                ids, logits, lse, next_lp = self.readout.predictions(
                    self.final_hidden[position:position + 1],
                    following if following.size else np.array([-1]))
                found = PositionPrediction(ids[0], logits[0], float(lse[0]), float(next_lp[0]))
            memo[position] = found
        return found

    def top_probs(self, position: int) -> np.ndarray:
        """Probabilities (K,) of the top predictions after `position`."""
        return self.position(position).top_probs

    def token_logprob(self, t: int) -> float:
        """log p(ids[t] | ids[:t]); NaN for the first token, which nothing comes before."""
        return float("nan") if t == 0 else self.position(t - 1).next_logprob

    def _all_positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Predictions after every position at once (batched: cheaper than one by one)."""
        with self._memo_lock:
            if "all" not in self._memo:
                following = np.append(self.ids[1:], -1)
                self._memo["all"] = self.readout.predictions(self.final_hidden, following)
        return self._memo["all"]

    @property
    def top_ids(self) -> np.ndarray:
        """(T, K) the K most likely next tokens after each position."""
        return self._all_positions()[0]

    @property
    def top_logits(self) -> np.ndarray:
        """(T, K)"""
        return self._all_positions()[1]

    @property
    def logsumexp(self) -> np.ndarray:
        """(T,)"""
        return self._all_positions()[2]

    @property
    def token_logprobs(self) -> np.ndarray:
        """(T,) log p(ids[t] | ids[:t]); NaN at t = 0."""
        return np.concatenate([[np.nan], self._all_positions()[3][:-1]]).astype(np.float32)

    # -- inside the layers (lens.py): derived from the residual stream on first use ------------------

    def lens(self, position: int, top: int = 5, mid: bool = False) -> "Lens":
        """The logit lens after `position`: top tokens, entropy and the final token's rank at every depth."""
        position = range(self.n_tokens)[position]
        return self._derived(("lens", position, top, mid), lambda: lens_views.lens(self, position, top, mid))

    def lens_grid(self, should_stop: Callable[[], bool] | None = None) -> "LensGrid | None":
        """The lens's top-1 token at every depth × position: costly, for a worker; None if stopped."""
        found = self._memo.get("lens_grid")
        if found is None:
            found = lens_views.lens_grid(self, should_stop)
            if found is not None:
                self._memo["lens_grid"] = found
        return found

    @property
    def lens_grid_ready(self) -> "LensGrid | None":
        """The grid if a worker has computed it already, else None (never computes)."""
        return self._memo.get("lens_grid")

    def stages(self, position: int) -> "Stages":
        """The four stages of the token at `position`, with each part's direct effect on the final top token."""
        position = range(self.n_tokens)[position]
        return self._derived(("stages", position), lambda: lens_views.stages(self, position))

    def _derived(self, key, compute):
        """memo[key], computed once: a second thread asking while the first computes waits for it (the
        app computes what a shown panel will want right after the pass, and the panel asks too)."""
        found = self._memo.get(key)
        if found is None:
            with self._memo_lock:
                lock = self._memo.setdefault(("lock", key), threading.Lock())
            with lock:
                found = self._memo.get(key)
                if found is None:
                    found = self._memo[key] = compute()
        return found

    # -- attention --------------------------------------------------------------------------------------

    def attention_row(self, layer: int, query: int) -> np.ndarray:
        """(H, T) how much `query` attends to each key, in every head of one layer."""
        return self.attention.row(layer, query)

    def head_label(self, layer: int, head: int) -> str:
        """"head 5/7", with the key/value head it shares under grouped-query attention ("→ kv 2/3") and
        the layer's sliding window ("· window 4,096") when it has one."""
        label = f"head {head}/{self.n_head - 1}"
        attention = self.attention
        n_kv = getattr(attention, "n_kv_head", self.n_head)
        if n_kv < self.n_head:
            label += f" → kv {attention.kv_head(head)}/{n_kv - 1}"
        window = attention.window(layer) if hasattr(attention, "window") else None
        return label + (f" · window {window:,}" if window else "")

    def attended(self, layer: int, head: int, query: int, top: int = 8) -> list[tuple[int, float]]:
        """The keys a query token attends to most: (key position, weight), strongest first; only keys
        it may see (a sliding window masks the ones further back: they are not "0% attended")."""
        window = self.attention.window(layer) if hasattr(self.attention, "window") else None
        first = max(0, query - window + 1) if window else 0
        row = self.attention_row(layer, query)[head, : query + 1]
        order = first + np.argsort(-row[first:], kind="stable")[:top]
        return [(int(k), float(row[k])) for k in order]
