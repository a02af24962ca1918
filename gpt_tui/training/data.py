"""Training data: a corpus tokenized once, a compact vocabulary, batches of windows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gpt_tui.engine.tokenizer import ENDOFTEXT, Tokenizer


def tokenize_file(path: Path, tokenizer: Tokenizer, cache_dir: Path | None = None) -> np.ndarray:
    """A text file whose documents are separated by <|endoftext|> -> token ids (int32).

    The ids are cached beside the text, keyed by its hash, so a resumed run starts at once.
    """
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    cache = (cache_dir or path.parent) / f"{path.stem}.{tokenizer.name}.{digest}.npy"
    if cache.exists():
        return np.load(cache)
    docs = raw.decode("utf-8").split(ENDOFTEXT)
    eot = tokenizer.eot_id
    ids: list[int] = []
    for doc_ids in tokenizer.encoding.encode_ordinary_batch(docs):
        ids.extend(doc_ids)
        ids.append(eot)
    arr = np.asarray(ids, dtype=np.int32)
    np.save(cache, arr)
    return arr


@dataclass
class Vocabulary:
    """The token ids a corpus uses, in id order, with how often each occurs in training."""

    ids: np.ndarray  # (R,) token id of each embedding row
    counts: np.ndarray  # (R,) occurrences in the training split

    @classmethod
    def from_tokens(cls, train: np.ndarray, *others: np.ndarray, always: tuple[int, ...] = ()) -> "Vocabulary":
        present = np.unique(np.concatenate([train, *others, np.asarray(always, dtype=np.int32)]))
        counts = np.bincount(train, minlength=int(present.max()) + 1)[present]
        return cls(ids=present.astype(np.int64), counts=counts.astype(np.int64))

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Token ids -> embedding rows (every id must be in the vocabulary)."""
        return np.searchsorted(self.ids, ids).astype(np.int64)


class Batches:
    """Random windows of n_ctx + 1 tokens, drawn with a generator whose state can be saved.

    With ``repeat_fraction`` > 0 that fraction of the windows gets a repeated span: a stretch of
    16 to ``max_span`` tokens (at most half the window) is copied to a later place in it, overwriting
    what was there, so the model meets text that repeats far more often than prose alone offers,
    which is what copying from the context (induction) is learned from.

    With ``echo_fraction`` > 0 that share of the windows holds no prose at all: one passage of
    random corpus tokens, 16 to ``max_span`` long, said over and over until the window is full.
    A single repeated span leaves a model on a long plateau (the copy pays only once both of
    induction's heads exist); when most of a window is copies, the first signs of copying pay at
    once, and a small model starts to copy within a few hundred steps.

    With ``random_fraction`` > 0 that fraction of the repeated spans first has its source
    replaced by tokens drawn at random from the corpus: prose half-predicts its own repeat from
    its words alone, a random span's second copy can be predicted only by looking back at the
    first, so these spans put the whole of their gradient on copying.
    """

    MIN_SPAN, MAX_SPAN = 16, 64

    def __init__(self, rows: np.ndarray, n_ctx: int, batch_size: int, seed: int,
                 repeat_fraction: float = 0.0, random_fraction: float = 0.0, max_span: int = MAX_SPAN,
                 echo_fraction: float = 0.0) -> None:
        self.rows = torch.from_numpy(rows)
        self.n_ctx = n_ctx
        self.batch_size = batch_size
        self.repeat_fraction = repeat_fraction
        self.random_fraction = random_fraction
        self.max_span = max_span
        self.echo_fraction = echo_fraction
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(self.rows) - self.n_ctx - 1, (self.batch_size,), generator=self.generator)
        windows = torch.stack([self.rows[s : s + self.n_ctx + 1] for s in starts.tolist()])
        echoes = torch.zeros(len(windows), dtype=torch.bool)
        if self.echo_fraction > 0:
            echoes = torch.rand(len(windows), generator=self.generator) < self.echo_fraction
            windows[echoes] = self._echoes(int(echoes.sum()), windows.shape[1])
        if self.repeat_fraction > 0:
            self._repeat_spans(windows, skip=echoes)
        return windows[:, :-1], windows[:, 1:]

    def _echoes(self, count: int, size: int) -> torch.Tensor:
        """count windows of size tokens, each one random passage repeated end to end."""
        out = torch.empty(count, size, dtype=self.rows.dtype)
        longest = max(self.MIN_SPAN, min(self.max_span, size // 2))
        for window in out:
            span = int(torch.randint(self.MIN_SPAN, longest + 1, (1,), generator=self.generator))
            passage = self.rows[torch.randint(0, len(self.rows), (span,), generator=self.generator)]
            window.copy_(passage.repeat(-(-size // span))[:size])
        return out

    def _repeat_spans(self, windows: torch.Tensor, skip: torch.Tensor) -> None:
        size = windows.shape[1]
        max_span = min(self.max_span, size // 2)
        if max_span < self.MIN_SPAN:
            return
        draws = torch.rand(len(windows), 4, generator=self.generator).tolist()
        for window, echo, (pick, u_span, u_place, u_random) in zip(windows, skip.tolist(), draws):
            if echo or pick >= self.repeat_fraction:
                continue
            span = self.MIN_SPAN + int(u_span * (max_span - self.MIN_SPAN + 1))
            # source at [s, s+span), copy at [d, d+span) with s + span <= d <= size - span
            room = size - 2 * span  # free choice of s and of the gap, shared
            s = int(u_place * (room + 1))
            gap = int(torch.randint(0, room - s + 1, (1,), generator=self.generator))
            d = s + span + gap
            if u_random < self.random_fraction:  # tokens from anywhere in the corpus, unigram-distributed
                picks = torch.randint(0, len(self.rows), (span,), generator=self.generator)
                window[s : s + span] = self.rows[picks]
            window[d : d + span] = window[s : s + span].clone()


def eval_windows(rows: np.ndarray, n_ctx: int, batch_size: int, max_batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed, non-overlapping validation windows (the same ones at every evaluation)."""
    data = torch.from_numpy(rows)
    n = min((len(data) - 1) // n_ctx, batch_size * max_batches)
    # Spread the windows over the whole split so every source is measured.
    starts = np.linspace(0, len(data) - n_ctx - 1, n).astype(np.int64)
    windows = torch.stack([data[s : s + n_ctx + 1] for s in starts])
    return [(w[:, :-1], w[:, 1:]) for w in windows.split(batch_size)]
