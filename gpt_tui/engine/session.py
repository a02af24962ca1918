"""Session: one loaded model with its tokenizer, and every question the panels ask of it.

Thread-safe for the way the app uses it: analyses and generations may run in different worker
threads at once (inference never mutates the model; each generation owns its KV cache).
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .analysis import Analysis, Candidate, Neighbour, Neighbours, PositionPrediction, Prediction
from .analysis_pass import AnalysisPass, ModelReadout, StoredAttention
from .loading import LoadedModel, load_model
from .sampling import SamplingParams, adjusted_probs, sample

TOP_K_PER_POSITION = 50  # next-token predictions kept for every position of an analysis
RARE_TOKEN_COUNT = 50  # tokens seen fewer times in training have vectors that mean little


class InputError(ValueError):
    """The user's input cannot be used as it is; the message says why in one line."""


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    dropped: int  # tokens cut from the front to fit the context window


@dataclass(frozen=True)
class GeneratedToken:
    id: int
    text: str  # for display alone: a piece of a split character shows as \xNN escapes
    prob: float  # its probability under the distribution it was sampled from
    logits: np.ndarray | None = None  # (V,) the raw distribution it was drawn from, on request
    bytes: bytes = b""  # its exact bytes, to join split characters back together


@dataclass(frozen=True)
class ScoredToken:
    id: int
    text: str
    logprob: float | None  # None for the first token: nothing came before it


class Session:
    """A model ready to be explored."""

    def __init__(self, loaded: LoadedModel, cache_size: int = 16, cache_bytes: int = 512 * 2**20) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self._analyses: OrderedDict[tuple, Analysis] = OrderedDict()
        self._cache_size = cache_size
        # Long texts make big analyses (gpt2 at 1024 tokens: ~600 MB of attention), so the cache
        # is bounded by bytes as well as by count; the newest analysis always stays.
        self._cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._unit_rows: torch.Tensor | None = None  # W_E rows scaled to length 1, built once
        self.readout = ModelReadout(self.model, self.n_vocab, TOP_K_PER_POSITION)
        self._pass = AnalysisPass(self.model, self.readout)

    @classmethod
    def open(cls, model: str | None = None, device: str = "auto", dtype: str = "auto") -> "Session":
        return cls(load_model(model, device=device, dtype=dtype))

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def config(self):
        return self.model.config

    @property
    def default_sampling(self) -> SamplingParams:
        """The model's default knobs (its generation_config.json), else the raw distribution."""
        return self.loaded.generation.params

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    @property
    def n_vocab(self) -> int:
        """Ids that mean something: nanoGPT pads its vocabulary past the tokenizer's."""
        return min(self.config.vocab_size, self.tokenizer.n_vocab)

    def _tensor(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], dtype=torch.long, device=self.loaded.device)

    # -- text -> ids --------------------------------------------------------------------------------

    def encode(self, text: str, bos: bool = False, allow_special: bool = False, reserve: int = 0) -> Encoded:
        """Text -> ids that fit the context (leaving `reserve` places free), cutting from the front."""
        if not text and not bos:
            raise InputError("the text is empty; type something (or use --bos to start from <|endoftext|>)")
        ids = self.tokenizer.encode(text, allow_special=allow_special)
        if bos:
            ids = [self.tokenizer.eot_id, *ids]
        limit = max(1, self.n_ctx - reserve)
        dropped = max(0, len(ids) - limit)
        return Encoded(ids[dropped:], dropped)

    # -- the forward pass the panels read -------------------------------------------------------------

    def analyse(self, text: str, bos: bool = False, allow_special: bool = False,
                attention: bool = True, residual: bool = True) -> Analysis:
        """One forward pass over text; cached by token ids, so re-asking costs nothing."""
        enc = self.encode(text, bos=bos, allow_special=allow_special)
        key = (tuple(enc.ids), attention, residual)
        with self._lock:
            cached = self._analyses.get(key)
            if cached is not None:
                self._analyses.move_to_end(key)
        if cached is not None:
            if cached.text == text:
                return cached
            return _with_text(cached, text, enc.dropped)
        result = self._run_analysis(text, enc, attention, residual)
        with self._lock:
            self._analyses[key] = result
            while len(self._analyses) > 1 and (
                len(self._analyses) > self._cache_size
                or sum(a.nbytes for a in self._analyses.values()) > self._cache_bytes
            ):
                self._analyses.popitem(last=False)
        return result

    def _run_analysis(self, text: str, enc: Encoded, attention: bool, residual: bool) -> Analysis:
        ids = enc.ids
        # One pass written straight into the arrays below, reusing the last text's KV cache for the
        # prefix it shares with this one; the rest is derived when looked at (analysis_pass.py).
        out = self._pass.run(ids, attention=attention, residual=residual)
        return Analysis(
            text=text,
            model_name=self.name,
            pieces=tuple(self.tokenizer.pieces(ids)),
            ids=np.asarray(ids, dtype=np.int64),
            dropped=enc.dropped,
            last_logits=out.last_logits,  # (V,)
            final_hidden=out.final_hidden,  # (T, C)
            readout=self.readout,
            attention=StoredAttention(out.queries, out.keys) if attention else None,  # (L, H, T, T)
            residual=out.residual,  # (2L+1, T, C)
            _memo={pos: PositionPrediction(ids_, logits, float(lse), float(lp))
                   for pos, (ids_, logits, lse, lp) in out.tail.items()},
        )

    # -- next-token candidates ----------------------------------------------------------------------

    def candidates(self, logits: np.ndarray, params: SamplingParams, top: int = 10) -> list[Candidate]:
        """The top tokens of a (V,) logits vector, with their fate under the knobs."""
        raw = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        probs = raw.softmax(-1)
        adjusted = adjusted_probs(raw, params)
        order = torch.topk(raw, min(top, raw.numel())).indices
        cumulative = probs[order].cumsum(0)
        return [
            Candidate(id=int(i), text=self.tokenizer.token_text(int(i)), logit=float(raw[i]), prob=float(probs[i]),
                      adjusted_prob=float(adjusted[i]), cum_prob=float(c))
            for i, c in zip(order, cumulative)
        ]

    @staticmethod
    def survivors(logits: np.ndarray, params: SamplingParams) -> tuple[int, float]:
        """How many tokens the knobs keep, and the share of the raw probability mass they hold."""
        raw = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        kept = adjusted_probs(raw, params) > 0
        return int(kept.sum()), float(raw.softmax(-1)[kept].sum())

    # -- embedding neighbours -------------------------------------------------------------------------

    def _unit_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(unit-length W_E rows, their token ids), built once per session."""
        weights, ids = self.model.token_embeddings()
        if self._unit_rows is None:
            w = weights.detach().float()
            self._unit_rows = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return self._unit_rows, ids

    def token_count(self, token_id: int) -> int | None:
        """How often the token occurred in the training data, when the checkpoint recorded it."""
        counts = self.loaded.token_counts
        if counts is None:
            return None
        if self.model.id_rows is None:
            return int(counts[token_id]) if token_id < len(counts) else 0
        row = int(self.model.id_rows[token_id])
        return int(counts[row]) if row < len(counts) else 0

    def embedding(self, token_id: int) -> torch.Tensor:
        if not 0 <= token_id < self.n_vocab:
            raise InputError(f"token id {token_id} is outside the vocabulary (0–{self.n_vocab - 1})")
        row = token_id if self.model.id_rows is None else int(self.model.id_rows[token_id])
        return self.model.wte.weight[row].detach().float()

    def nearest(self, vector: torch.Tensor, query: str, exclude: tuple[int, ...] = (), top: int = 10,
                rare: bool = False) -> Neighbours:
        """The tokens whose W_E rows have the highest cosine with vector."""
        unit, ids = self._unit_embeddings()
        scores = unit @ (vector / vector.norm().clamp_min(1e-12))  # (R,)
        counts = self.loaded.token_counts
        min_count = 0
        if counts is not None:
            min_count = RARE_TOKEN_COUNT
            scores = scores.masked_fill(counts[: scores.numel()].to(scores.device) < min_count, float("-inf"))
        valid = ids < self.n_vocab
        scores = scores.masked_fill(~valid, float("-inf"))
        if exclude:
            scores = scores.masked_fill(torch.isin(ids, torch.tensor(exclude, device=ids.device)), float("-inf"))
        searched = int(torch.isfinite(scores).sum())
        best = torch.topk(scores, min(top, searched))
        neighbours = tuple(
            Neighbour(int(ids[r]), self.tokenizer.token_text(int(ids[r])), float(s))
            for s, r in zip(best.values, best.indices)
        )
        return Neighbours(query=query, neighbours=neighbours, rare=rare, min_count=min_count, searched=searched)

    def is_rare(self, token_id: int) -> bool:
        count = self.token_count(token_id)
        return count is not None and count < RARE_TOKEN_COUNT

    def neighbours(self, token_id: int, top: int = 10) -> Neighbours:
        """Nearest tokens to one token's embedding (the token itself left out)."""
        vector = self.embedding(token_id)
        return self.nearest(vector, repr(self.tokenizer.token_text(token_id)), exclude=(token_id,), top=top,
                            rare=self.is_rare(token_id))

    def word_token(self, word: str) -> int:
        """A word typed by a person -> one token id: as typed, or with GPT-2's leading space.

        Mid-sentence words carry their space in GPT-2 (' king'), and that form is usually the one
        the model knows best, so it is preferred when the bare form is not a token or is rare.
        """
        if not word:
            raise InputError("give a token, e.g. ' king' or king")
        forms = [word] if word.startswith(" ") else [word, " " + word]
        single = [(f, ids[0]) for f in forms if len(ids := self.tokenizer.encode(f)) == 1]
        if not single:
            pieces = "|".join(self.tokenizer.token_text(i) for i in self.tokenizer.encode(word))
            raise InputError(f"{word!r} is several tokens ({pieces}); give a single token")
        for _, token_id in single:
            if not self.is_rare(token_id):
                return token_id
        return single[-1][1]

    def analogy(self, a: str, b: str, c: str, top: int = 10) -> Neighbours:
        """Neighbours of a − b + c (king − man + woman ≈ queen?), the three inputs left out."""
        ta, tb, tc = (self.word_token(w) for w in (a, b, c))
        vector = self.embedding(ta) - self.embedding(tb) + self.embedding(tc)
        name = " ".join([repr(self.tokenizer.token_text(ta)), "−", repr(self.tokenizer.token_text(tb)), "+",
                         repr(self.tokenizer.token_text(tc))])
        return self.nearest(vector, name, exclude=(ta, tb, tc), top=top,
                            rare=any(self.is_rare(t) for t in (ta, tb, tc)))

    # -- generation -------------------------------------------------------------------------------------

    def generate(self, ids: list[int], params: SamplingParams, max_new_tokens: int, seed: int,
                 stop_at_eot: bool = True, should_stop: Callable[[], bool] | None = None,
                 with_logits: bool = False) -> Iterator[GeneratedToken]:
        """Continue ids one token at a time with a KV cache; the same seed gives the same tokens."""
        if max_new_tokens < 1:
            return
        if not ids:
            ids = [self.tokenizer.eot_id]  # an empty prompt starts a new document
        generator = torch.Generator().manual_seed(seed)
        context = list(ids[-self.n_ctx:])
        with torch.inference_mode():
            cache = self.model.new_cache(capacity=len(context) + max_new_tokens)  # only what this run needs
            logits = self.model(self._tensor(context), cache=cache, last_only=True)[0, -1]
            for _ in range(max_new_tokens):
                if should_stop is not None and should_stop():
                    return
                row = logits[: self.n_vocab].float().cpu()
                token, prob = sample(row, params, generator)
                yield GeneratedToken(token, self.tokenizer.token_text(token), prob,
                                     row.numpy() if with_logits else None, self.tokenizer.token_bytes(token))
                if stop_at_eot and token == self.tokenizer.eot_id:
                    return
                context.append(token)
                if cache.length >= self.n_ctx:
                    # The window is full: slide it by re-reading the last three quarters.
                    context = context[-(3 * self.n_ctx) // 4:]
                    cache = self.model.new_cache()
                    logits = self.model(self._tensor(context), cache=cache, last_only=True)[0, -1]
                else:
                    logits = self.model(self._tensor([token]), cache=cache)[0, -1]

    @staticmethod
    def new_seed() -> int:
        return random.randrange(2**31)

    # -- scoring -------------------------------------------------------------------------------------

    def score(self, text: str, bos: bool = False) -> tuple[list[ScoredToken], Analysis]:
        """The surprisal of every token given the ones before it."""
        analysis = self.analyse(text, bos=bos, attention=False, residual=False)
        tokens = [
            ScoredToken(int(i), p.text, None if np.isnan(lp) else float(lp))
            for i, p, lp in zip(analysis.ids, analysis.pieces, analysis.token_logprobs)
        ]
        return tokens, analysis

    # -- logit lens --------------------------------------------------------------------------------------

    def logit_lens(self, analysis: Analysis, position: int, top: int = 1) -> list[tuple[str, list[Prediction]]]:
        """The top predictions at one position read off the residual stream after each layer.

        Each stage goes through the final layer norm and the unembedding, as the last one does.
        """
        if analysis.residual is None:
            raise InputError("this analysis was made without residuals")
        stages = [0, *range(2, analysis.residual.shape[0], 2)]  # embeddings, after each block
        vectors = torch.from_numpy(analysis.residual[stages, position]).to(self.loaded.device, self.loaded.dtype)
        with torch.inference_mode():
            logits = self.model.unembed(self.model.ln_f(vectors))[:, : self.n_vocab].float()
            probs = logits.softmax(-1)
            best = torch.topk(probs, top, dim=-1)
        names = ["embed", *(f"layer {i}" for i in range(len(stages) - 1))]
        return [
            (name, [Prediction(int(i), self.tokenizer.token_text(int(i)), float(p)) for p, i in zip(vals, idx)])
            for name, vals, idx in zip(names, best.values.cpu(), best.indices.cpu())
        ]

    # -- the model card -----------------------------------------------------------------------------------

    def info(self) -> dict:
        """Architecture, parameters per matrix (as the seeds count them), device, dtype, memory."""
        cfg = self.config
        C, V, L = cfg.n_embd, cfg.vocab_size, cfg.n_layer
        rows = cfg.embedding_rows
        bias = 1 if cfg.bias else 0
        matrices = [
            ("W_E (token embedding)", f"{rows} × {C}", rows * C),
            ("W_pos (position embedding)", f"{cfg.n_ctx} × {C}", cfg.n_ctx * C),
            ("W_QKV (per layer)", f"{C} × {3 * C}", C * 3 * C + bias * 3 * C),
            ("W_O (per layer)", f"{C} × {C}", C * C + bias * C),
            ("MLP W_in (per layer)", f"{C} × {4 * C}", C * 4 * C + bias * 4 * C),
            ("MLP W_out (per layer)", f"{4 * C} × {C}", 4 * C * C + bias * C),
            ("LayerNorms (per layer)", f"2 × 2 × {C}", (2 + 2 * bias) * C),
            ("final LayerNorm", f"2 × {C}", (1 + bias) * C),
            ("W_U (unembedding)", "tied to W_E", 0),
        ]
        total = sum(p.numel() for p in self.model.parameters())
        element = self.loaded.dtype.itemsize if hasattr(self.loaded.dtype, "itemsize") else 4
        return {
            "model": self.name,
            "source": self.loaded.source,
            "tokenizer": self.tokenizer.name,
            "vocab_size": V,
            "embedding_rows": rows,
            "n_ctx": cfg.n_ctx,
            "n_embd": C,
            "n_layer": L,
            "n_head": cfg.n_head,
            "head_dim": cfg.head_dim,
            "parameters": total,
            "matrices": [{"name": n, "shape": s, "count": c,
                          "total": c * L if "per layer" in n else c} for n, s, c in matrices],
            "device": str(self.loaded.device),
            "dtype": str(self.loaded.dtype).replace("torch.", ""),
            "weight_bytes": total * element,
            # fast.py: whether the weights were packed for the CPU's matmul library, or why not
            "inference": getattr(getattr(self.model, "fast", None), "reason", "plain PyTorch modules"),
        }


def _with_text(cached: Analysis, text: str, dropped: int) -> Analysis:
    """A cached analysis re-labelled with the text that produced the same ids."""
    from dataclasses import replace

    return replace(cached, text=text, dropped=dropped)
