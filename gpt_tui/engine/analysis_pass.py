"""The analysis pass: one traced forward pass whose results land directly in the arrays the panels
read, reusing the previous text's KV cache when only its end changed (which is what typing does).

- Attention weights and residuals are written by the model into preallocated numpy-backed
  buffers (Trace.attention_out / residual_out): nothing is stacked or copied afterwards.
- Logits are needed at every position (top-k per position, each token's log-probability), but
  the (T, V) matrix is never kept whole: it is made and reduced a chunk of positions at a time.
- After a pass, its ids, KV cache and arrays are kept. When the next text shares a prefix of P
  tokens with it, only positions P-1… are run again (position P-1 because the first changed
  token's log-probability needs that position's full logits); the rest is copied. Causal
  attention makes the result the same as a full pass, up to float rounding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from .gpt import GPT, KVCache, Trace

LOGIT_CHUNK = 256  # positions unembedded at a time: bounds the (chunk, V) logits in memory
CACHE_SLACK = 64  # positions allocated beyond the text in a new KV cache, for the next keystrokes


@dataclass
class PassResult:
    """Arrays for one token sequence; T tokens, K top predictions, V vocabulary."""

    top_ids: np.ndarray  # (T, K) int64
    top_logits: np.ndarray  # (T, K) float32
    logsumexp: np.ndarray  # (T,) float32
    last_logits: np.ndarray  # (V,) float32: the next-token distribution after the last token
    token_logprobs: np.ndarray  # (T,) float32, NaN for the first token
    attention: np.ndarray | None  # (L, H, T, T) float32
    residual: np.ndarray | None  # (2L+1, T, C) float32
    reused: int = 0  # positions taken from the previous pass


@dataclass
class _Kept:
    ids: tuple[int, ...]
    cache: KVCache
    result: PassResult
    flags: tuple[bool, bool]


def common_prefix(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class AnalysisPass:
    """Runs analysis passes for one model, keeping the last one's KV cache. Thread-safe."""

    def __init__(self, model: GPT, reuse_cache: bool = True) -> None:
        self.model = model
        self.reuse_cache = reuse_cache
        self._lock = threading.Lock()
        self._kept: _Kept | None = None

    def forget(self) -> None:
        with self._lock:
            self._kept = None

    def run(self, ids: list[int], n_vocab: int, top_k: int, attention: bool = True,
            residual: bool = True) -> PassResult:
        """Logit statistics at every position of ids, plus attention weights and residuals on request."""
        flags = (attention, residual)
        with self._lock:  # take the kept state: a concurrent pass simply starts from scratch
            kept, self._kept = self._kept, None
        reuse = 0
        if kept is not None and kept.flags == flags and self.reuse_cache:
            reuse = max(0, min(common_prefix(kept.ids, ids), len(ids)) - 1)
        with torch.inference_mode():
            # Sized to the text (it grows as the user types): a full n_ctx cache would stay resident.
            cache = kept.cache if kept is not None else self.model.new_cache(capacity=len(ids) + CACHE_SLACK)
            cache.truncate(reuse)
            old = kept.result if reuse else None
            result = self._run(ids, n_vocab, top_k, attention, residual, cache, old, reuse)
        if self.reuse_cache:
            with self._lock:
                self._kept = _Kept(tuple(ids), cache, result, flags)
        return result

    def _run(self, ids: list[int], n_vocab: int, top_k: int, attention: bool, residual: bool,
             cache: KVCache, old: PassResult | None, reuse: int) -> PassResult:
        model, cfg = self.model, self.model.config
        device = model.wte.weight.device
        T, R = len(ids), reuse
        n = T - R  # positions run now
        L, H, C = cfg.n_layer, cfg.n_head, cfg.n_embd
        on_cpu = device.type == "cpu"

        att = res = None
        trace = Trace() if (attention or residual) else None
        if attention:
            att = np.empty((L, H, T, T), dtype=np.float32)
            if R:
                att[:, :, :R, :R] = old.attention[:, :, :R, :R]
                att[:, :, :R, R:] = 0.0  # earlier tokens never see later ones
            trace.attention_out = (torch.from_numpy(att)[:, None, :, R:] if on_cpu
                                   else torch.empty((L, 1, H, n, T), device=device))
        if residual:
            res = np.empty((2 * L + 1, T, C), dtype=np.float32)
            if R:
                res[:, :R] = old.residual[:, :R]
            trace.residual_out = (torch.from_numpy(res)[:, None, R:] if on_cpu
                                  else torch.empty((2 * L + 1, 1, n, C), device=device))

        idx = torch.tensor([ids[R:]], dtype=torch.long, device=device)
        rows = idx if model.id_rows is None else model.id_rows[idx]
        h = model.hidden(rows, cache, trace)  # (1, n, C)

        k = min(top_k, n_vocab)
        top_ids = np.empty((T, k), dtype=np.int64)
        top_logits = np.empty((T, k), dtype=np.float32)
        lse = np.empty(T, dtype=np.float32)
        logprobs = np.full(T, np.nan, dtype=np.float32)
        if R:
            top_ids[:R], top_logits[:R], lse[:R] = old.top_ids[:R], old.top_logits[:R], old.logsumexp[:R]
            logprobs[: R + 1] = old.token_logprobs[: R + 1]
        following = torch.tensor(ids[R + 1:], dtype=torch.long, device=device)  # the token after each position
        last = None
        for a in range(0, n, LOGIT_CHUNK):
            b = min(n, a + LOGIT_CHUNK)
            logits = model.unembed(model.ln_f(h[:, a:b]))[0, :, :n_vocab].float()  # (b - a, V)
            chunk_lse = torch.logsumexp(logits, dim=-1)
            top = torch.topk(logits, k, dim=-1)
            top_ids[R + a:R + b] = top.indices.cpu().numpy()
            top_logits[R + a:R + b] = top.values.cpu().numpy()
            lse[R + a:R + b] = chunk_lse.cpu().numpy()
            m = min(b, n - 1) - a  # rows of this chunk that have a following token
            if m > 0:
                picked = logits[:m].gather(1, following[a:a + m].unsqueeze(1)).squeeze(1)
                logprobs[R + a + 1:R + a + 1 + m] = (picked - chunk_lse[:m]).cpu().numpy()
            if b == n:
                last = logits[-1].cpu().numpy().copy()  # a copy: not a view that pins the chunk

        if not on_cpu:
            if attention:
                att[:, :, R:] = trace.attention_out[:, 0].cpu().numpy()
            if residual:
                res[:, R:] = trace.residual_out[:, 0].float().cpu().numpy()
        return PassResult(top_ids=top_ids, top_logits=top_logits, logsumexp=lse, last_logits=last,
                          token_logprobs=logprobs, attention=att, residual=res, reused=R)

