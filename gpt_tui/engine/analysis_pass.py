"""The analysis pass: one forward pass whose results land directly in the arrays the panels read,
reusing the previous text's KV cache when only its end changed (which is what typing does).

- It computes what every panel needs at once and no more: the distribution after the last token,
  each layer's queries and keys (attention itself runs through the fused kernel), the residual
  stream, and the final-layer-normed residual at every position. Attention weights for a layer,
  and the predictions after any other position, are derived from those when first looked at
  (`StoredAttention`, `ModelReadout`): the same numbers a pass that kept them all would give.
- Everything is written by the model into preallocated numpy-backed buffers (Trace.query_out,
  key_out, residual_out): nothing is stacked or copied afterwards.
- After a pass, its ids, KV cache and arrays are kept. When the next text shares a prefix of P
  tokens with it, only positions P-1… are run again; the rest is copied. Causal attention makes
  the result the same as a full pass, up to float rounding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from .gpt import GPT, KVCache, Trace, attention_weights

LOGIT_CHUNK = 256  # positions unembedded at a time: bounds the (chunk, V) logits in memory
CACHE_SLACK = 64  # positions allocated beyond the text in a new KV cache, for the next keystrokes


class ModelReadout:
    """Final-layer-normed residuals -> next-token statistics, through the model's unembedding."""

    def __init__(self, model: GPT, n_vocab: int, top_k: int) -> None:
        self.model, self.n_vocab = model, n_vocab
        self.top_k = min(top_k, n_vocab)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(n, C) -> (n, V) float32 logits over the tokenizer's vocabulary."""
        return self.model.unembed(hidden.to(self.model.embed_weight.dtype))[..., : self.n_vocab].float()

    def predictions(self, hidden: np.ndarray, following: np.ndarray) -> tuple[np.ndarray, ...]:
        """Final-layer-normed residuals (n, C) and the token after each (n,) (-1: none) -> top ids
        (n, K), top logits (n, K), logsumexp (n,), log p of the following token (n,; NaN for -1)."""
        n, k = hidden.shape[0], self.top_k
        out = (np.empty((n, k), np.int64), np.empty((n, k), np.float32), np.empty(n, np.float32),
               np.empty(n, np.float32))
        device = self.model.embed_weight.device
        with torch.inference_mode():
            for a in range(0, n, LOGIT_CHUNK):
                b = min(n, a + LOGIT_CHUNK)
                logits = self.logits(torch.from_numpy(hidden[a:b]).to(device))
                for array, part in zip(out, self.reduce(logits, following[a:b])):
                    array[a:b] = part
        return out

    # -- what the views inside the layers read (lens.py, stages.py) -----------------------------------

    def lens_logits(self, residual: np.ndarray, normed: bool = False) -> np.ndarray:
        """Residual-stream vectors (n, C) -> (n, V) float32 logits, through the model's own final norm
        (unless `normed`: they went through it already) and unembedding — what the model would
        predict if the stream ended there (the logit lens)."""
        with torch.inference_mode():
            return self._lens(residual, normed).cpu().numpy()

    def lens_top1(self, residual: np.ndarray, normed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(n, C) residuals -> the top token (n,) and its probability (n,), as lens_logits would give,
        LOGIT_CHUNK rows at a time (the (n, V) logits are never all in memory)."""
        n = residual.shape[0]
        ids, probs = np.empty(n, np.int64), np.empty(n, np.float32)
        with torch.inference_mode():
            for a in range(0, n, LOGIT_CHUNK):
                logits = self._lens(residual[a:a + LOGIT_CHUNK], normed)
                best = logits.max(dim=-1)
                ids[a:a + LOGIT_CHUNK] = best.indices.cpu().numpy()
                probs[a:a + LOGIT_CHUNK] = (best.values - torch.logsumexp(logits, -1)).exp().cpu().numpy()
        return ids, probs

    def _lens(self, residual: np.ndarray, normed: bool) -> torch.Tensor:
        w = self.model.embed_weight
        x = torch.from_numpy(np.ascontiguousarray(residual, dtype=np.float32)).to(w.device, w.dtype)
        return self.logits(x if normed else self.model.final_norm(x))

    def direct_logits(self, parts: np.ndarray, final: np.ndarray, token: int) -> tuple[np.ndarray, float]:
        """The linearised direct effect of residual parts (k, C) on one token's logit.

        The final LayerNorm is linear once its scale is fixed: ln_f(x) = (x - mean x) / s * g + b with
        s the standard deviation of the final residual `final` (C,). Each part is centred, divided by
        that s, scaled by g and dotted with the token's unembedding row; the bias b gives the rest.
        Parts that sum to `final` therefore give direct effects that sum, with the bias term, to the
        logit itself. An RMSNorm (Llama, Gemma…) is the same without the centring and the bias, with
        s = the root mean square. A final soft-cap (Gemma 2) is left out: the effects add up to the
        logit before it. Returns (effects (k,), the bias term).
        """
        ln = self.model.final_norm_module
        row = self.unembedding_row(token)  # (C,) float64
        x = np.asarray(final, dtype=np.float64)
        parts = np.asarray(parts, dtype=np.float64)
        if isinstance(ln, torch.nn.LayerNorm):
            scale = np.sqrt(x.var() + ln.eps)
            gain = ln.weight.detach().double().cpu().numpy() if ln.weight is not None else 1.0
            parts = parts - parts.mean(axis=-1, keepdims=True)
        else:  # RMSNorm
            scale = np.sqrt((x * x).mean() + ln.eps)
            gain = ln.gain().detach().double().cpu().numpy()
        effects = (parts / scale * gain) @ row
        bias = float(ln.bias.detach().double().cpu().numpy() @ row) if getattr(ln, "bias", None) is not None else 0.0
        return effects, bias

    def unembedding_row(self, token: int) -> np.ndarray:
        """(C,) float64: the vector whose dot product with the normalised residual is `token`'s logit."""
        model = self.model
        row = token if model.id_rows is None else int(model.id_rows[token])
        return model.unembed_weight[row].detach().double().cpu().numpy()

    def embedding_parts(self, ids: np.ndarray, positions: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        """Token ids (n,) at positions (n,; 0, 1, … if omitted) -> their token embeddings (n, C) and
        position embeddings (n, C), float32; the second is None for a model without a position table."""
        model = self.model
        device = model.embed_weight.device
        with torch.inference_mode():
            idx = torch.as_tensor(np.asarray(ids), dtype=torch.long, device=device)
            rows = idx if model.id_rows is None else model.id_rows[idx]
            tokens = model.token_embed(rows).float().cpu().numpy()
            where = torch.arange(len(idx)) if positions is None else torch.as_tensor(np.asarray(positions))
            table = model.position_embed(where.to(device=device, dtype=torch.long))
            return tokens, None if table is None else table.float().cpu().numpy()

    def reduce(self, logits: torch.Tensor, following: np.ndarray) -> tuple[np.ndarray, ...]:
        """(n, V) logits -> the four arrays of `predictions` for those n positions."""
        lse = torch.logsumexp(logits, dim=-1)
        top = torch.topk(logits, self.top_k, dim=-1)
        nxt = torch.from_numpy(np.asarray(following, dtype=np.int64)).to(logits.device)
        picked = logits.gather(1, nxt.clamp(min=0).unsqueeze(1)).squeeze(1) - lse
        next_lp = torch.where(nxt >= 0, picked, torch.nan)
        return tuple(t.cpu().numpy() for t in (top.indices, top.values, lse, next_lp))


class StoredAttention:
    """Attention weights (L, H, T, T) derived from each layer's queries and keys on demand.

    A layer costs one (H, T, D) x (H, D, T) product and a softmax the first time it is looked
    at and is then remembered; `row` gives one query's weights without computing the layer.
    """

    def __init__(self, queries: np.ndarray, keys: np.ndarray, specs: list | None = None,
                 n_kv_head: int | None = None) -> None:
        self.queries, self.keys = queries, keys  # (L, H, T, D) float32 each; keys repeated per query head
        self.n_kv_head = n_kv_head or queries.shape[1]  # fewer than H under grouped-query attention
        # Per layer, how scores become weights beyond GPT-2's plain causal softmax (decoder.AttentionSpec:
        # scale, soft-cap, sliding window, sinks); None for GPT-2.
        self.specs = specs or [None] * queries.shape[0]
        L, H, T, _ = queries.shape
        self.shape = (L, H, T, T)
        self.dtype = np.dtype(np.float32)
        self.ndim = 4
        self._layers: dict[int, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        return self.queries.nbytes + self.keys.nbytes + sum(w.nbytes for w in self._layers.values())

    def layer(self, layer: int) -> np.ndarray:
        """(H, T, T) the weights of every head of one layer."""
        layer = range(self.shape[0])[layer]
        weights = self._layers.get(layer)
        if weights is None:
            with torch.inference_mode():
                q, k = torch.from_numpy(self.queries[layer]), torch.from_numpy(self.keys[layer])
                weights = attention_weights(q, k, **self._options(layer)).numpy()
            self._layers[layer] = weights
        return weights

    def row(self, layer: int, query: int) -> np.ndarray:
        """(H, T) one query's weights in every head of one layer (0 on later keys)."""
        layer = range(self.shape[0])[layer]
        if layer in self._layers:
            return self._layers[layer][:, query]
        query = range(self.shape[2])[query]
        with torch.inference_mode():
            q = torch.from_numpy(self.queries[layer, :, query:query + 1])  # (H, 1, D)
            k = torch.from_numpy(self.keys[layer])
            return attention_weights(q, k, past=query, **self._options(layer))[:, 0].numpy()

    def _options(self, layer: int) -> dict:
        spec = self.specs[layer]
        return {} if spec is None else {"scale": spec.scale, "softcap": spec.softcap, "window": spec.window,
                                        "sinks": spec.sinks}

    def kv_head(self, head: int) -> int:
        """The key/value head query head `head` shares (itself without grouped-query attention)."""
        return head // (self.shape[1] // self.n_kv_head)

    def has_sinks(self, layer: int) -> bool:
        """Whether the layer's heads have attention sinks (gpt-oss): their rows sum below 1."""
        spec = self.specs[range(self.shape[0])[layer]]
        return spec is not None and spec.sinks is not None

    def window(self, layer: int) -> int | None:
        """The layer's sliding window (keys within the last w positions), None when it sees them all."""
        spec = self.specs[range(self.shape[0])[layer]]
        return None if spec is None else spec.window

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if isinstance(key[0], (int, np.integer)):
            return self.layer(int(key[0]))[key[1:]]
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        full = np.stack([self.layer(i) for i in range(self.shape[0])])
        return full if dtype is None else full.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]


@dataclass
class PassResult:
    """Arrays for one token sequence; T tokens, V vocabulary."""

    last_logits: np.ndarray  # (V,) float32: the next-token distribution after the last token
    final_hidden: np.ndarray  # (T, C) float32: the residual after the final layer norm
    queries: np.ndarray | None  # (L, H, T, D) float32
    keys: np.ndarray | None  # (L, H, T, D) float32
    residual: np.ndarray | None  # (2L+1, T, C) float32
    # Predictions after the last two positions, {position: (top ids, top logits, logsumexp, log p of
    # the next token)}: what the panels show first (the next token, and how likely the last one was).
    tail: dict[int, tuple]
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

    def __init__(self, model: GPT, readout: ModelReadout, reuse_cache: bool = True) -> None:
        self.model, self.readout = model, readout
        self.reuse_cache = reuse_cache
        self._lock = threading.Lock()
        self._kept: _Kept | None = None

    def forget(self) -> None:
        with self._lock:
            self._kept = None

    def run(self, ids: list[int], attention: bool = True, residual: bool = True) -> PassResult:
        """The last position's logits and the final residuals of ids, plus each layer's queries and
        keys and the residual stream on request."""
        flags = (attention, residual)
        with self._lock:  # take the kept state: a concurrent pass simply starts from scratch
            kept, self._kept = self._kept, None
        reuse = 0
        if kept is not None and kept.flags == flags and self.reuse_cache:
            reuse = min(common_prefix(kept.ids, ids), len(ids) - 1)  # the last position always runs
        with torch.inference_mode():
            # Sized to the text (it grows as the user types): a full n_ctx cache would stay resident.
            cache = kept.cache if kept is not None else self.model.new_cache(capacity=len(ids) + CACHE_SLACK)
            cache.truncate(reuse)
            stale = getattr(self.model, "cache_is_stale", None)
            if reuse and stale is not None and stale(cache, len(ids) - reuse):  # longrope changed frequencies
                reuse = 0
                cache.truncate(0)
            old = kept.result if reuse else None
            result = self._run(ids, attention, residual, cache, old, reuse)
        if self.reuse_cache:
            with self._lock:
                self._kept = _Kept(tuple(ids), cache, result, flags)
        return result

    def _run(self, ids: list[int], attention: bool, residual: bool, cache: KVCache, old: PassResult | None,
             reuse: int) -> PassResult:
        model, cfg = self.model, self.model.config
        device = model.embed_weight.device
        T, R = len(ids), reuse
        n = T - R  # positions run now
        L, H, C = cfg.n_layer, cfg.n_head, cfg.n_embd
        on_cpu = device.type == "cpu"

        def buffer(shape: tuple[int, ...], kept: np.ndarray | None, axis: int) -> tuple[np.ndarray, torch.Tensor]:
            """A float32 array of `shape` whose first R positions (along `axis`) come from the last pass,
            and where the model writes the rest: a view of it on the CPU, a device tensor elsewhere."""
            array = np.empty(shape, dtype=np.float32)
            head, tail = [slice(None)] * len(shape), [slice(None)] * len(shape)
            head[axis], tail[axis] = slice(0, R), slice(R, None)
            if R:
                array[tuple(head)] = kept[tuple(head)]
            target = torch.from_numpy(array)[tuple(tail)] if on_cpu else torch.empty(
                (*shape[:axis], n, *shape[axis + 1:]), device=device)
            return array, target

        trace = Trace(attention_wanted=attention) if (attention or residual) else None
        queries = keys = res = None
        if attention:  # (L, H, T, D): the model writes (L, B=1, H, n, D)
            queries, q_out = buffer((L, H, T, cfg.head_dim), old and old.queries, axis=2)
            keys, k_out = buffer((L, H, T, cfg.head_dim), old and old.keys, axis=2)
            trace.query_out, trace.key_out = q_out.unsqueeze(1), k_out.unsqueeze(1)
        if residual:
            res, r_out = buffer((2 * L + 1, T, C), old and old.residual, axis=1)
            trace.residual_out = r_out.unsqueeze(1)
        final, f_out = buffer((T, C), old and old.final_hidden, axis=0)

        idx = torch.tensor([ids[R:]], dtype=torch.long, device=device)
        rows = idx if model.id_rows is None else model.id_rows[idx]
        h = model.final_norm(model.hidden(rows, cache, trace))[0]  # (n, C)
        f_out.copy_(h)
        if not on_cpu:
            final[R:] = f_out.float().cpu().numpy()
            if attention:
                queries[:, :, R:] = q_out.cpu().numpy()
                keys[:, :, R:] = k_out.cpu().numpy()
            if residual:
                res[:, R:] = r_out.float().cpu().numpy()

        # The last two positions in one product: the unembedding is read from memory once either way.
        first = max(0, T - 2)
        logits = self.readout.logits(torch.from_numpy(final[first:]).to(device))
        stats = self.readout.reduce(logits, np.array([*ids[first + 1:], -1]))
        tail = {first + i: tuple(a[i] for a in stats) for i in range(T - first)}
        last = logits[-1].cpu().numpy().copy()  # a copy: not a view that pins the pair
        return PassResult(last_logits=last, final_hidden=final, queries=queries, keys=keys, residual=res, tail=tail,
                          reused=R)
