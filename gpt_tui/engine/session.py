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

from .analysis import Analysis, Candidate, Neighbour, Neighbours, PositionPrediction
from .analysis_pass import AnalysisPass, ModelReadout, StoredAttention
from .chat import ENDOFTEXT, ChatDocument, ChatTemplate, Turn, find_chat_template, plain_document, template_document
from .errors import GptTuiError
from .lens import Comparison, compare, find_tokens
from .loading import LoadedModel, load_model
from .positions import PositionTable
from .sampling import SamplingParams, adjusted_probs, check_logits, check_seed, sample

TOP_K_PER_POSITION = 50  # next-token predictions kept for every position of an analysis
RARE_TOKEN_COUNT = 50  # tokens seen fewer times in training have vectors that mean little
NEIGHBOURS_REMEMBERED = 256  # searches kept per session (a few kB each)


class InputError(GptTuiError, ValueError):
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
        # without the common direction? -> W_E rows scaled to length 1, built once
        self._unit_rows: dict[bool, torch.Tensor] = {}
        self._common: torch.Tensor | None = None  # the unit mean row of the rows searched (common_direction)
        # (token id, top, without_common) -> result
        self._neighbours: OrderedDict[tuple[int, int, bool], Neighbours] = OrderedDict()
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

    @property
    def prefix_ids(self) -> tuple[int, ...]:
        """What the model's tokenizer files put before every text (Llama's and Gemma's BOS); () for GPT-2."""
        return tuple(getattr(self.tokenizer, "prefix_ids", ()))

    def _tensor(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], dtype=torch.long, device=self.loaded.device)

    # -- text -> ids --------------------------------------------------------------------------------

    def encode(self, text: str, bos: bool = False, allow_special: bool = False, reserve: int = 0) -> Encoded:
        """Text -> ids that fit the context (leaving `reserve` places free), cutting the text from the
        front; a BOS the model's files put first (or --bos) stays first, as the model was trained to see it."""
        prefix = list(self.prefix_ids)
        if not text and not bos and not prefix:
            raise InputError("the text is empty; type something (or use --bos to start from <|endoftext|>)")
        ids = self.tokenizer.encode(text, allow_special=allow_special)
        if prefix:  # the model's own BOS, as its tokenizer files add it (once: a chat template may write it)
            head = prefix
            ids = ids[len(prefix):] if ids[:len(prefix)] == prefix else ids
        else:
            head = [self.tokenizer.eot_id] if bos else []
        limit = max(1, self.n_ctx - reserve)
        if len(head) >= limit:  # no room for the text at all: keep its last tokens, as before
            head = []
        dropped = max(0, len(head) + len(ids) - limit)
        return Encoded([*head, *ids[dropped:]], dropped)

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
            return _with_text(cached, text, enc.dropped, tuple(self.tokenizer.pieces(enc.ids, text)))
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
        check_logits(torch.from_numpy(np.asarray(out.last_logits)))  # NaN from broken weights or overflow
        return Analysis(
            text=text,
            model_name=self.name,
            pieces=tuple(self.tokenizer.pieces(ids, text)),
            ids=np.asarray(ids, dtype=np.int64),
            dropped=enc.dropped,
            last_logits=out.last_logits,  # (V,)
            final_hidden=out.final_hidden,  # (T, C)
            readout=self.readout,
            attention=StoredAttention(out.queries, out.keys, self._attention_specs(),  # (L, H, T, T)
                                      getattr(self.config, "n_kv_head", None)) if attention else None,
            residual=out.residual,  # (2L+1, T, C)
            _memo={pos: PositionPrediction(ids_, logits, float(lse), float(lp))
                   for pos, (ids_, logits, lse, lp) in out.tail.items()},
        )

    def _attention_specs(self) -> list:
        return [self.model.attention_spec(layer) for layer in range(self.config.n_layer)]

    def kv_head(self, head: int) -> int:
        """The key/value head a query head reads (itself, unless keys and values are shared: GQA/MQA)."""
        group = self.config.n_head // getattr(self.config, "n_kv_head", self.config.n_head)
        return head // group

    # -- next-token candidates ----------------------------------------------------------------------

    def candidates(self, logits: np.ndarray, params: SamplingParams, top: int = 10, start: int = 0) -> list[Candidate]:
        """The tokens ranked start .. start+top-1 by a (V,) logits vector, with their fate under the knobs."""
        raw = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        probs = raw.softmax(-1)
        adjusted = adjusted_probs(raw, params)
        order = torch.topk(raw, min(start + top, raw.numel())).indices
        cumulative = probs[order].cumsum(0)
        return [
            Candidate(id=int(i), text=self.tokenizer.token_text(int(i)), logit=float(raw[i]), prob=float(probs[i]),
                      adjusted_prob=float(adjusted[i]), cum_prob=float(c))
            for i, c in zip(order[start:], cumulative[start:])
        ]

    @staticmethod
    def survivors(logits: np.ndarray, params: SamplingParams) -> tuple[int, float]:
        """How many tokens the knobs keep, and the share of the raw probability mass they hold."""
        raw = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        kept = adjusted_probs(raw, params) > 0
        return int(kept.sum()), float(raw.softmax(-1)[kept].sum())

    # -- embedding neighbours -------------------------------------------------------------------------

    def _unit_embeddings(self, without_common: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(unit-length W_E rows, their token ids), built once per session; without_common: each
        row's part along the common direction projected out first."""
        weights, ids = self.model.token_embeddings()
        if without_common not in self._unit_rows:
            w = weights.detach().float()
            if without_common:
                w = self._drop_common(w)
            self._unit_rows[without_common] = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return self._unit_rows[without_common], ids

    def common_direction(self) -> torch.Tensor:
        """The unit direction of the mean W_E row over the tokens a search reads (rare ones left out).

        Every row carries some of it: in the bundled model it is most of a rare token's length
        (cosine 0.66-0.90 for ' jump', ' leap', ' skip', ' hop'; 0.07 for ' king') and tracks how frequent a token is
        (it is the top principal direction of the rows searched, cosine 0.999, and a row's part
        along that correlates 0.77 with the log of the token's count), so raw cosines among rare tokens rank
        by how rare they are. Projecting it out of each row (rather than subtracting the mean row,
        which swamps a frequent token's short row) compares what the rows say beyond that.
        """
        if self._common is None:
            weights, ids = self.model.token_embeddings()
            searched = self._searchable(ids)
            total = torch.zeros(weights.shape[1], device=weights.device)
            for rows, keep in zip(weights.detach().split(8192), searched.split(8192)):  # no float copy of W_E
                total += rows[keep].float().sum(0)
            self._common = total / total.norm().clamp_min(1e-12)
        return self._common

    def _drop_common(self, vectors: torch.Tensor) -> torch.Tensor:
        """vectors (…, D) with their part along the common direction removed."""
        u = self.common_direction()
        return vectors - (vectors @ u)[..., None] * u

    def _searchable(self, ids: torch.Tensor) -> torch.Tensor:
        """(R,) bool: rows a neighbour search reads: real token ids, not rare in training."""
        keep = ids < self.n_vocab
        counts = self.loaded.token_counts
        if counts is not None:
            keep = keep & (counts[: keep.numel()].to(keep.device) >= RARE_TOKEN_COUNT)
        return keep

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
        return self.model.embed_weight[row].detach().float()

    def nearest(self, vector: torch.Tensor, query: str, exclude: tuple[int, ...] = (), top: int = 10,
                rare: bool = False, without_common: bool = False) -> Neighbours:
        """The tokens whose W_E rows have the highest cosine with vector (without_common: with the
        common direction projected out of the rows and of vector)."""
        unit, ids = self._unit_embeddings(without_common)
        shared = float(vector @ self.common_direction() / vector.norm().clamp_min(1e-12))
        if without_common:
            vector = self._drop_common(vector)
        scores = unit @ (vector / vector.norm().clamp_min(1e-12))  # (R,)
        min_count = RARE_TOKEN_COUNT if self.loaded.token_counts is not None else 0
        scores = scores.masked_fill(~self._searchable(ids), float("-inf"))
        if exclude:
            scores = scores.masked_fill(torch.isin(ids, torch.tensor(exclude, device=ids.device)), float("-inf"))
        searched = int(torch.isfinite(scores).sum())
        best = torch.topk(scores, min(top, searched))
        neighbours = tuple(
            Neighbour(int(ids[r]), self.tokenizer.token_text(int(ids[r])), float(s))
            for s, r in zip(best.values, best.indices)
        )
        return Neighbours(query=query, neighbours=neighbours, rare=rare, min_count=min_count, searched=searched,
                          matrix=self.searched_matrix, without_common=without_common, shared=shared)

    @property
    def searched_matrix(self) -> str:
        """What the neighbours search: W_E, which on an untied model is not W_U (the output side)."""
        tied = self.model.unembed_weight is self.model.embed_weight
        return "W_E" if tied else "W_E (untied: W_U differs)"

    def is_rare(self, token_id: int) -> bool:
        count = self.token_count(token_id)
        return count is not None and count < RARE_TOKEN_COUNT

    def neighbours(self, token_id: int, top: int = 10, without_common: bool = False) -> Neighbours:
        """Nearest tokens to one token's embedding (the token itself left out); remembered, since a
        search reads all of W_E (~150 MB for gpt2) and people move back and forth over a text."""
        known = self.known_neighbours(token_id, top, without_common)
        if known is not None:
            return known
        vector = self.embedding(token_id)
        found = self.nearest(vector, repr(self.tokenizer.token_text(token_id)), exclude=(token_id,), top=top,
                             rare=self.is_rare(token_id), without_common=without_common)
        with self._lock:
            self._neighbours[(token_id, top, without_common)] = found
            while len(self._neighbours) > NEIGHBOURS_REMEMBERED:
                self._neighbours.popitem(last=False)
        return found

    def known_neighbours(self, token_id: int, top: int, without_common: bool = False) -> Neighbours | None:
        """A search already done, without searching (the UI thread may ask)."""
        key = (token_id, top, without_common)
        with self._lock:
            known = self._neighbours.get(key)
            if known is not None:
                self._neighbours.move_to_end(key)
        return known

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

    def analogy(self, a: str, b: str, c: str, top: int = 10, without_common: bool = False) -> Neighbours:
        """Neighbours of a − b + c (king − man + woman ≈ queen?), the three inputs left out."""
        ta, tb, tc = (self.word_token(w) for w in (a, b, c))
        vector = self.embedding(ta) - self.embedding(tb) + self.embedding(tc)
        name = " ".join([repr(self.tokenizer.token_text(ta)), "−", repr(self.tokenizer.token_text(tb)), "+",
                         repr(self.tokenizer.token_text(tc))])
        return self.nearest(vector, name, exclude=(ta, tb, tc), top=top,
                            rare=any(self.is_rare(t) for t in (ta, tb, tc)), without_common=without_common)

    # -- generation -------------------------------------------------------------------------------------

    def generate(self, ids: list[int], params: SamplingParams, max_new_tokens: int, seed: int,
                 stop_at_eot: bool = True, should_stop: Callable[[], bool] | None = None,
                 with_logits: bool = False) -> Iterator[GeneratedToken]:
        """Continue ids one token at a time with a KV cache; the same seed gives the same tokens."""
        generator = torch.Generator().manual_seed(check_seed(seed))
        if max_new_tokens < 1:
            return
        if not ids:
            ids = list(self.prefix_ids) or [self.tokenizer.eot_id]  # an empty prompt starts a new document
        context = list(ids[-self.n_ctx:])
        with torch.inference_mode():
            # only what this run needs, and never more than the window (it slides beyond)
            cache = self.model.new_cache(capacity=min(self.n_ctx, len(context) + max_new_tokens))
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
                stale = getattr(self.model, "cache_is_stale", None)
                if cache.length >= self.n_ctx:
                    # The window is full: slide it by re-reading the last three quarters.
                    context = context[-(3 * self.n_ctx) // 4:]
                    cache = self.model.new_cache()
                    logits = self.model(self._tensor(context), cache=cache, last_only=True)[0, -1]
                elif stale is not None and stale(cache, 1):
                    # longrope moved to its long frequencies: every key again with them (as transformers does)
                    cache = self.model.new_cache(capacity=min(self.n_ctx, len(context) + max_new_tokens))
                    logits = self.model(self._tensor(context), cache=cache, last_only=True)[0, -1]
                else:
                    logits = self.model(self._tensor([token]), cache=cache)[0, -1]

    @staticmethod
    def new_seed() -> int:
        return random.randrange(2**31)

    # -- scoring -------------------------------------------------------------------------------------

    def score(self, text: str, bos: bool = False, allow_special: bool = False) -> tuple[list[ScoredToken], Analysis]:
        """The surprisal of every token given the ones before it."""
        analysis = self.analyse(text, bos=bos, allow_special=allow_special, attention=False, residual=False)
        tokens = [
            ScoredToken(int(i), p.text, None if np.isnan(lp) else float(lp))
            for i, p, lp in zip(analysis.ids, analysis.pieces, analysis.token_logprobs)
        ]
        return tokens, analysis

    # -- inside the layers -------------------------------------------------------------------------------

    def word_position(self, analysis: Analysis, word: str) -> int:
        """Where a word typed by a person ends in an analysed text: its last occurrence, as the text
        tokenises it (with GPT-2's leading space, or as typed)."""
        forms = [word] if word.startswith(" ") else [" " + word, word]
        for form in forms:
            found = find_tokens(analysis.ids, self.tokenizer.encode(form))
            if found is not None:
                return found
        pieces = "|".join(p.text for p in analysis.pieces)
        raise InputError(f"{word!r} does not occur as whole tokens in {analysis.text!r} ({pieces})")

    def compare(self, text_a: str, text_b: str, word: str | None = None, top: int = 5,
                allow_special: bool = False) -> tuple[Comparison, Analysis, Analysis]:
        """The same word in two texts followed through the layers (the last token of each by default)."""
        a = self.analyse(text_a, allow_special=allow_special, attention=False)
        b = self.analyse(text_b, allow_special=allow_special, attention=False)
        if word is None:
            pa, pb = a.n_tokens - 1, b.n_tokens - 1
        else:
            pa, pb = self.word_position(a, word), self.word_position(b, word)
        return compare(a, b, pa, pb, top), a, b

    def position_table(self) -> PositionTable:
        """The model's position table W_pos, or kind "none" when positions are not a table."""
        table = getattr(self.model, "wpe", None)
        if table is None:
            return PositionTable("none", None)
        return PositionTable("learned", table.weight.detach().float().cpu().numpy())

    # -- chat as one document ------------------------------------------------------------------------------

    def chat_template(self) -> ChatTemplate | None:
        """The chat template the model ships, if any (only a model directory can ship one)."""
        return find_chat_template(self.loaded.source)

    def chat_document(self, turns: list[Turn], add_generation_prompt: bool = True) -> ChatDocument:
        """The turns as the one document this model continues: its own template, else plain text."""
        template = self.chat_template()
        if template is None:
            return plain_document(turns, add_generation_prompt, eot=ENDOFTEXT if self.tokenizer.eot_id is not None else "")
        # the tokenizer's own special tokens too (a tokenizer_config.json need not list them)
        own = getattr(self.tokenizer, "special_texts", ())
        return template_document(template.template, turns, [*template.special_tokens, *own], template.bos_token,
                                 template.eos_token, add_generation_prompt)

    def encode_document(self, document: ChatDocument) -> list[int]:
        """A chat document's ids: its marked special tokens as special tokens (when the tokenizer has
        them), everything typed in the turns as plain text, even if it spells a special token."""
        ids: list[int] = []
        cursor = 0
        for span in document.special:
            ids += self.tokenizer.encode(document.text[cursor:span.start])
            ids += self.tokenizer.encode(span.text, allow_special=True)
            cursor = span.end
        return ids + self.tokenizer.encode(document.text[cursor:])

    # -- the model card -----------------------------------------------------------------------------------

    def info(self) -> dict:
        """The model card: architecture, parameters per matrix counted the way the seeds count them
        (W_E = vocabulary × d_model = …), where the biases are, device, dtype, memory."""
        if not hasattr(self.model, "wte"):
            return self._decoder_info()
        cfg = self.config
        C, V, L, N = cfg.n_embd, cfg.vocab_size, cfg.n_layer, cfg.n_ctx
        rows = cfg.embedding_rows
        bias = 1 if cfg.bias else 0
        gains = "(gain + bias)" if cfg.bias else "gain"
        # name, symbol, (rows, columns) of the weight, its bias, per layer?
        matrices = [
            ("W_E (token embedding)", "vocabulary × d_model" if cfg.n_rows is None else "embedding rows × d_model",
             (rows, C), 0, False),
            ("W_pos (position embedding)", "n_ctx × d_model", (N, C), 0, False) if getattr(self.model, "wpe", None)
            is not None else ("W_pos (position embedding)", "none: positions enter inside attention", (0, 0), 0, False),
            ("W_QKV (per layer)", "d_model × 3·d_model", (C, 3 * C), bias * 3 * C, True),
            ("W_O (per layer)", "d_model × d_model", (C, C), bias * C, True),
            ("MLP W_in (per layer)", "d_model × 4·d_model", (C, 4 * C), bias * 4 * C, True),
            ("MLP W_out (per layer)", "4·d_model × d_model", (4 * C, C), bias * C, True),
            ("LayerNorms (per layer)", f"2 norms × {gains} × d_model", (2 * (1 + bias), C), 0, True),
            ("final LayerNorm", f"{gains} × d_model", (1 + bias, C), 0, False),
            ("W_U (unembedding)", "tied: W_E transposed, the same numbers", (0, 0), 0, False),
        ]
        table = []
        for name, symbol, (r, c), b, per_layer in matrices:
            count = r * c + b
            formula = (f"{symbol} = {r:,} × {c:,} = {r * c:,}" + (f" + {b:,} biases = {count:,}" if b else "")
                       if r else symbol)
            table.append({"name": name, "shape": [r, c] if r else None, "weights": r * c, "bias": b,
                          "count": count, "total": count * L if per_layer else count, "formula": formula})
        total = sum(p.numel() for p in self.model.parameters())
        element = self.loaded.dtype.itemsize if hasattr(self.loaded.dtype, "itemsize") else 4
        return {
            "model": self.name,
            "source": self.loaded.source,
            "tokenizer": self.tokenizer.name,
            "vocab_size": V,
            "embedding_rows": rows,
            "n_ctx": N,
            "n_embd": C,
            "n_layer": L,
            "n_head": cfg.n_head,
            "head_dim": cfg.head_dim,
            "positions": "learned" if getattr(self.model, "wpe", None) is not None else "none",
            "norm": "LayerNorm (pre-norm), eps {:g}".format(cfg.layer_norm_epsilon),
            "activation": "GELU (tanh approximation)",
            "parameters": total,
            "matrices": table,
            "notes": self._card_notes(),
            "device": str(self.loaded.device),
            "dtype": str(self.loaded.dtype).replace("torch.", ""),
            "weight_bytes": total * element,
            "kv_cache_bytes_per_token": 2 * L * C * element,  # a key and a value per layer
            # fast.py: whether the weights were packed for the CPU's matmul library, or why not
            "inference": getattr(getattr(self.model, "fast", None), "reason", "plain PyTorch modules"),
        }

    def _decoder_info(self) -> dict:
        """info() for the other architectures (decoder_card.py), with the same keys and a few more."""
        from . import decoder_card

        cfg = self.config
        total = sum(p.numel() for p in self.model.parameters())
        element = self.loaded.dtype.itemsize
        return {
            "model": self.name, "source": self.loaded.source, "tokenizer": self.tokenizer.name,
            "vocab_size": cfg.vocab_size, "embedding_rows": cfg.vocab_size, "n_ctx": cfg.n_ctx,
            "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "head_dim": cfg.head_dim,
            **decoder_card.describe(cfg),
            "parameters": total,
            "matrices": decoder_card.matrices(cfg),
            "notes": decoder_card.notes(cfg, self.tokenizer.n_vocab),
            "device": str(self.loaded.device),
            "dtype": str(self.loaded.dtype).replace("torch.", ""),
            "weight_bytes": total * element,
            "kv_cache_bytes_per_token": 2 * cfg.n_layer * cfg.n_kv_head * cfg.head_dim * element,
            "inference": getattr(getattr(self.model, "fast", None), "reason", "plain PyTorch modules"),
        }

    def _card_notes(self) -> list[str]:
        """What the parameter table needs said in words."""
        cfg, n_ids = self.config, self.tokenizer.n_vocab
        C = cfg.n_embd
        notes = []
        if cfg.bias:
            notes.append("Biases are counted with the matrix they follow (W_QKV's count includes its "
                         f"{3 * C:,} biases); each LayerNorm has a gain and a bias per dimension.")
        else:
            notes.append("This model has no biases: its linear layers and LayerNorms are weights only.")
        if cfg.n_rows is not None:
            saved = (n_ids - cfg.embedding_rows) * C
            notes.append(f"W_E has {cfg.embedding_rows:,} rows, not one per id of the {n_ids:,}-token vocabulary: "
                         f"the model embeds only the {cfg.n_rows:,} token ids its training text contains, plus one "
                         f"row shared by every other id, which it never predicts (logit −∞). That saves "
                         f"{saved:,} parameters that training could never have moved.")
        elif cfg.vocab_size > n_ids:
            notes.append(f"W_E has {cfg.vocab_size:,} rows for {n_ids:,} token ids: the vocabulary was padded "
                         "(nanoGPT pads to a multiple of 64 for speed); the extra rows are never used.")
        notes.append("W_U, the unembedding, is W_E transposed (tied weights), so it adds no parameters.")
        return notes


def _with_text(cached: Analysis, text: str, dropped: int, pieces: tuple) -> Analysis:
    """A cached analysis re-labelled with the text that produced the same ids (and its spans: under
    a dummy prefix "Hello" and " Hello" share ids but not character offsets)."""
    from dataclasses import replace

    return replace(cached, text=text, dropped=dropped, pieces=pieces)
