"""Session: the questions the panels ask, answered against the HF reference and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpt_tui.engine.config import GPTConfig
from gpt_tui.engine.gpt import GPT
from gpt_tui.engine.loading import LoadedModel, load_model
from gpt_tui.engine.sampling import SamplingParams, adjusted_probs
from gpt_tui.engine.session import RARE_TOKEN_COUNT, InputError, Session

from .helpers import PROMPT, hf_logits

ATOL = 1e-4


@pytest.fixture(scope="module")
def compact_session(compact):
    return Session(load_model(str(compact.path), device="cpu", dtype="float32"))


@pytest.fixture(scope="module")
def last_logits(session, hf_model, prompt_ids):
    """The reference's next-token logits after the prompt, and ours."""
    return hf_logits(hf_model, prompt_ids)[-1], session.analyse(PROMPT).last_logits


def _unit_rows(weights: np.ndarray) -> np.ndarray:
    return weights / np.linalg.norm(weights, axis=1, keepdims=True)


# -- encoding ------------------------------------------------------------------------------------------


def test_empty_text_is_an_input_error(session):
    for call in (session.encode, session.analyse, session.score):
        with pytest.raises(InputError, match="the text is empty"):
            call("")


def test_empty_text_with_bos_is_the_end_of_text_token(session):
    assert session.encode("", bos=True).ids == [50256]
    assert session.encode("Hi", bos=True).ids == [50256, *session.tokenizer.encode("Hi")]


def test_long_text_keeps_the_last_n_ctx_tokens(session, gpt2_tok):
    text = " ".join(f"word{i}" for i in range(100))
    ids = gpt2_tok.encode(text)
    assert len(ids) > 2 * session.n_ctx
    enc = session.encode(text)
    assert enc.ids == ids[-session.n_ctx:] and enc.dropped == len(ids) - session.n_ctx
    reserved = session.encode(text, reserve=10)
    assert reserved.ids == ids[-(session.n_ctx - 10):] and reserved.dropped == len(ids) - session.n_ctx + 10
    analysis = session.analyse(text, attention=False, residual=False)
    assert analysis.dropped == enc.dropped and analysis.ids.tolist() == enc.ids
    assert analysis.text == text and analysis.attention is None and analysis.residual is None
    assert "".join(p.text for p in analysis.pieces) == gpt2_tok.decode(enc.ids)


def test_analyse_is_cached_by_token_ids(session):
    first = session.analyse("Hello there, cache")
    assert session.analyse("Hello there, cache") is first
    # Another text with the same ids: the cached pass, relabelled with the text that asked for it.
    with_bos = session.analyse("Hello there, cache", bos=True)
    typed = session.analyse("<|endoftext|>Hello there, cache", allow_special=True)
    assert typed.ids.tolist() == with_bos.ids.tolist() and typed is not with_bos
    assert typed.text == "<|endoftext|>Hello there, cache" and with_bos.text == "Hello there, cache"
    assert typed.last_logits is with_bos.last_logits  # computed once
    other = session.analyse("Hello there, cache", attention=False)
    assert other is not first and other.attention is None
    np.testing.assert_allclose(other.last_logits, first.last_logits, atol=1e-5, rtol=0)


# -- candidates and survivors ---------------------------------------------------------------------------


def test_candidates_against_the_reference(session, last_logits):
    ref, ours = last_logits
    params = SamplingParams(temperature=0.7, top_k=5)
    cands = session.candidates(ours, params, top=10)
    ref_probs = ref.softmax(-1)
    assert [c.id for c in cands] == torch.topk(ref, 10).indices.tolist()
    for c in cands:
        assert c.prob == pytest.approx(float(ref_probs[c.id]), abs=1e-5)
        assert c.logit == pytest.approx(float(ref[c.id]), abs=ATOL)
        assert c.text == session.tokenizer.token_text(c.id)
    cum = [c.cum_prob for c in cands]
    assert cum == sorted(cum)
    np.testing.assert_allclose(cum, np.cumsum([c.prob for c in cands]), atol=1e-5)
    # Top-5 keeps the first five; their adjusted probabilities are softmax(logits / T) over them.
    assert [c.kept for c in cands] == [True] * 5 + [False] * 5
    assert sum(c.adjusted_prob for c in cands) == pytest.approx(1.0, abs=1e-5)
    top5 = (ref[[c.id for c in cands[:5]]] / 0.7).softmax(-1)
    np.testing.assert_allclose([c.adjusted_prob for c in cands[:5]], top5.numpy(), atol=1e-5)


def test_survivors_count_and_mass(session, last_logits):
    ref, ours = last_logits
    probs = ref.softmax(-1)
    count, mass = session.survivors(ours, SamplingParams(top_k=7))
    assert count == 7 and mass == pytest.approx(float(torch.topk(probs, 7).values.sum()), abs=1e-5)
    count, mass = session.survivors(ours, SamplingParams(top_p=0.6))
    ranked = torch.sort(probs, descending=True).values
    needed = int((ranked.cumsum(0) < 0.6).sum()) + 1
    assert count == needed and mass == pytest.approx(float(ranked[:needed].sum()), abs=1e-5)
    assert session.survivors(ours, SamplingParams(temperature=0)) == (1, pytest.approx(float(probs.max()), abs=1e-5))
    assert session.survivors(ours, SamplingParams())[0] == 50257


# -- embeddings ------------------------------------------------------------------------------------------


def test_neighbours_are_cosine_nearest_in_w_e(session, hf_model, gpt2_tok):
    king = gpt2_tok.encode(" king")[0]
    result = session.neighbours(king, top=8)
    unit = _unit_rows(hf_model.transformer.wte.weight.detach().numpy().astype(np.float64))
    cosine = unit @ unit[king]
    cosine[king] = -np.inf
    expected = np.argsort(-cosine)[:8]
    assert [n.id for n in result.neighbours] == expected.tolist()
    np.testing.assert_allclose([n.cosine for n in result.neighbours], cosine[expected], atol=1e-5)
    assert result.query == repr(" king") and not result.rare and result.min_count == 0
    assert result.searched == 50257 - 1


def test_analogy_is_a_minus_b_plus_c(session, hf_model, gpt2_tok):
    a, b, c = (gpt2_tok.encode(w)[0] for w in (" king", " man", " woman"))
    result = session.analogy(" king", " man", " woman", top=6)
    w = hf_model.transformer.wte.weight.detach().numpy().astype(np.float64)
    vector = w[a] - w[b] + w[c]
    cosine = _unit_rows(w) @ (vector / np.linalg.norm(vector))
    cosine[[a, b, c]] = -np.inf
    expected = np.argsort(-cosine)[:6]
    assert [n.id for n in result.neighbours] == expected.tolist()
    np.testing.assert_allclose([n.cosine for n in result.neighbours], cosine[expected], atol=1e-5)
    assert "' king'" in result.query and "' woman'" in result.query


def _without(w: np.ndarray, direction: np.ndarray) -> np.ndarray:
    u = direction / np.linalg.norm(direction)
    return w - np.outer(w @ u, u)


def test_neighbours_without_the_common_direction(session, hf_model, gpt2_tok):
    """--without-common: the cosine of rows with their part along W_E's mean row projected out,
    the query's row too."""
    king = gpt2_tok.encode(" king")[0]
    result = session.neighbours(king, top=8, without_common=True)
    w = hf_model.transformer.wte.weight.detach().numpy().astype(np.float64)
    unit = _unit_rows(_without(w, w.mean(axis=0)))
    cosine = unit @ unit[king]
    cosine[king] = -np.inf
    expected = np.argsort(-cosine)[:8]
    assert [n.id for n in result.neighbours] == expected.tolist()
    np.testing.assert_allclose([n.cosine for n in result.neighbours], cosine[expected], atol=1e-5)
    assert result.without_common and not session.neighbours(king, top=8).without_common  # remembered apart


def test_analogy_without_the_common_direction_and_rare_rows_left_out_of_it(compact_session, compact, gpt2_tok):
    """On a model with token counts the common direction is the mean of the rows a search reads
    (rare ones left out); a − b + c without it is a − b + c with its part along it projected out."""
    s = compact_session
    rows = {token: row for row, token in enumerate(compact.row_ids)}
    common = compact.counts.numpy() >= RARE_TOKEN_COUNT
    w = compact.hf.transformer.wte.weight.detach().numpy().astype(np.float64)[: len(compact.row_ids)]
    mean = w[common].mean(axis=0)
    np.testing.assert_allclose(s.common_direction().numpy(), mean / np.linalg.norm(mean), atol=1e-5)
    a, b, c = (gpt2_tok.encode(x)[0] for x in (" king", " man", " woman"))
    vector = _without((w[rows[a]] - w[rows[b]] + w[rows[c]])[None], mean)[0]
    cosine = _unit_rows(_without(w, mean)) @ (vector / np.linalg.norm(vector))
    cosine[~common] = -np.inf
    cosine[[rows[a], rows[b], rows[c]]] = -np.inf
    expected = [compact.row_ids[r] for r in np.argsort(-cosine)[:5]]
    result = s.analogy(" king", " man", " woman", top=5, without_common=True)
    assert [n.id for n in result.neighbours] == expected and result.without_common


def test_word_token_takes_the_word_as_typed(session, gpt2_tok):
    """Without token counts the form as typed wins when it is a single token."""
    assert session.word_token("king") == gpt2_tok.encode("king")[0]
    assert session.word_token(" king") == gpt2_tok.encode(" king")[0]
    assert session.word_token("queen") == gpt2_tok.encode(" queen")[0]  # bare "queen" is two tokens


def test_word_token_errors(session):
    with pytest.raises(InputError, match="give a token"):
        session.word_token("")
    with pytest.raises(InputError, match="several tokens"):
        session.word_token("antidisestablishmentarianism")
    with pytest.raises(InputError, match="outside the vocabulary"):
        session.neighbours(50257)


def test_compact_neighbours_skip_rare_tokens(compact_session, compact, gpt2_tok):
    """Tokens seen fewer than RARE_TOKEN_COUNT times are left out; a rare query is flagged."""
    s = compact_session
    queen = gpt2_tok.encode(" queen")[0]
    rows = {token: row for row, token in enumerate(compact.row_ids)}
    common = compact.counts >= RARE_TOKEN_COUNT
    result = s.neighbours(queen, top=10)
    assert not result.rare and result.min_count == RARE_TOKEN_COUNT
    assert result.searched == int(common.sum()) - 1
    # The reference: cosine over W_E rows of common tokens, in numpy.
    w = compact.hf.transformer.wte.weight.detach().numpy().astype(np.float64)[: len(compact.row_ids)]
    unit = _unit_rows(w)
    cosine = unit @ unit[rows[queen]]
    cosine[~common.numpy()] = -np.inf
    cosine[rows[queen]] = -np.inf
    expected = [compact.row_ids[r] for r in np.argsort(-cosine)[:10]]
    assert [n.id for n in result.neighbours] == expected
    assert all(s.token_count(n.id) >= RARE_TOKEN_COUNT for n in result.neighbours)
    prince = gpt2_tok.encode(" prince")[0]
    assert s.token_count(prince) == 3 and s.is_rare(prince)
    assert s.neighbours(prince).rare
    absent = next(i for i in range(50257) if i not in rows)
    assert s.token_count(absent) == 0


def test_word_token_prefers_the_common_form(compact_session, gpt2_tok):
    """'king' is a token but a rare one here, so the spaced ' king' is chosen."""
    assert compact_session.is_rare(gpt2_tok.encode("king")[0])
    assert compact_session.word_token("king") == gpt2_tok.encode(" king")[0]
    assert compact_session.word_token(" man") == gpt2_tok.encode(" man")[0]
    result = compact_session.analogy("king", "man", "woman")
    assert not result.rare and all(n.id not in gpt2_tok.encode(" king man woman") for n in result.neighbours)
    assert compact_session.analogy("prince", "man", "woman").rare


def test_compact_candidates_never_offer_absent_tokens(compact_session, compact):
    analysis = compact_session.analyse(PROMPT)
    listed = set(compact.row_ids)
    assert set(analysis.top_ids.flatten().tolist()) <= listed
    cands = compact_session.candidates(analysis.last_logits, SamplingParams(), top=20)
    assert all(c.id in listed and c.prob > 0 for c in cands)
    count, mass = compact_session.survivors(analysis.last_logits, SamplingParams())
    assert count == len(listed) and mass == pytest.approx(1.0, abs=1e-5)


# -- scoring (the logit lens is in test_lens.py) ------------------------------------------------------------


def test_score_agrees_with_the_reference_loss(session, hf_model):
    tokens, analysis = session.score(PROMPT)
    assert tokens[0].logprob is None and all(t.logprob is not None for t in tokens[1:])
    assert [t.id for t in tokens] == analysis.ids.tolist()
    ids = torch.from_numpy(analysis.ids)[None]
    with torch.no_grad():
        loss = float(hf_model(ids, labels=ids).loss)
    mean_logprob = float(np.mean([t.logprob for t in tokens[1:]]))
    assert mean_logprob == pytest.approx(-loss, abs=ATOL)
    assert math.exp(-mean_logprob) == pytest.approx(math.exp(loss), rel=1e-3)


# -- the model card ----------------------------------------------------------------------------------------


def _check_info(session: Session, expected_total: int) -> dict:
    info = session.info()
    assert info["parameters"] == expected_total == sum(p.numel() for p in session.model.parameters())
    assert sum(m["total"] for m in info["matrices"]) == expected_total
    assert info["weight_bytes"] == expected_total * session.loaded.dtype.itemsize
    for m in info["matrices"]:  # the seeds' way: "rows × columns = weights (+ biases = count)"
        assert m["weights"] + m["bias"] == m["count"]
        if m["weights"]:
            rows, cols = m["shape"]
            assert rows * cols == m["weights"] and m["formula"].endswith(f"= {m['count']:,}")
    assert any("tied" in note for note in info["notes"])
    return info


def test_info_counts_parameters_like_hf(session, hf_model):
    info = _check_info(session, hf_model.num_parameters())
    assert (info["n_layer"], info["n_head"], info["n_embd"], info["head_dim"]) == (2, 4, 64, 16)
    assert (info["vocab_size"], info["embedding_rows"], info["n_ctx"]) == (50257, 50257, 64)
    assert info["tokenizer"] == "gpt2" and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["matrices"][0]["formula"] == "vocabulary × d_model = 50,257 × 64 = 3,216,448"
    assert info["matrices"][2]["formula"].endswith("+ 192 biases = 12,480")  # W_QKV: 64 × 192 + 192
    assert "Biases are counted" in info["notes"][0] and not any("rows, not one per id" in n for n in info["notes"])


def test_info_of_a_compact_model(compact_session, compact):
    info = _check_info(compact_session, compact.hf.num_parameters())
    assert info["embedding_rows"] == len(compact.row_ids) + 1
    why = next(n for n in info["notes"] if "rows, not one per id" in n)  # why W_E is smaller than the vocabulary
    assert f"{len(compact.row_ids) + 1:,} rows" in why and "50,257" in why and "never predicts" in why


def test_info_of_a_model_without_biases(gpt2_tok):
    model = GPT(GPTConfig(n_ctx=16, n_embd=32, n_layer=2, n_head=2, bias=False)).eval()
    manual = 50257 * 32 + 16 * 32 + 2 * (32 * 96 + 32 * 32 + 32 * 128 + 128 * 32 + 2 * 32) + 32
    info = _check_info(Session(LoadedModel(model, gpt2_tok, name="nobias", source="test")), manual)
    assert "no biases" in info["notes"][0]


# -- generation ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eot_session(gpt2_tok):
    """A model that always predicts <|endoftext|>: ln_f outputs its bias, which W_E[eot] aligns with."""
    model = GPT(GPTConfig(n_ctx=16, n_embd=16, n_layer=1, n_head=2))
    model.init_weights(seed=0)
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.wte.weight[gpt2_tok.eot_id] = 1.0
    return Session(LoadedModel(model.eval(), gpt2_tok, name="eot", source="test"))


def test_generation_stops_at_end_of_text(eot_session):
    greedy = SamplingParams(temperature=0)
    tokens = list(eot_session.generate([464], greedy, max_new_tokens=5, seed=0))
    assert [t.id for t in tokens] == [50256] and tokens[0].prob == 1.0
    assert [t.id for t in eot_session.generate([464], greedy, 5, seed=0, stop_at_eot=False)] == [50256] * 5


def test_generation_knobs(session, prompt_ids):
    params = SamplingParams(temperature=0.9, top_k=20)
    assert list(session.generate(prompt_ids, params, max_new_tokens=0, seed=1)) == []
    calls = []
    stopped = list(session.generate(prompt_ids, params, 10, seed=1, stop_at_eot=False,
                                    should_stop=lambda: calls.append(1) or len(calls) > 3))
    assert len(stopped) == 3
    empty = [t.id for t in session.generate([], params, 4, seed=1, stop_at_eot=False)]
    assert empty == [t.id for t in session.generate([50256], params, 4, seed=1, stop_at_eot=False)]


def test_generated_probabilities_come_from_the_knobs(session, prompt_ids):
    params = SamplingParams(temperature=1.3, top_k=30, top_p=0.8)
    for token in session.generate(prompt_ids, params, 8, seed=9, stop_at_eot=False, with_logits=True):
        probs = adjusted_probs(torch.from_numpy(token.logits), params)
        assert probs[token.id] > 0
        assert token.prob == pytest.approx(float(probs[token.id]))
        assert token.text == session.tokenizer.token_text(token.id)


def test_analysis_cache_is_bounded_by_bytes(loaded):
    """Big analyses are evicted oldest first once the byte budget is spent; the newest stays."""
    session = Session(loaded, cache_size=16, cache_bytes=1)
    first = session.analyse("one text")
    second = session.analyse("another text")
    assert session.analyse("another text") is second  # still cached
    assert session.analyse("one text") is not first  # evicted, recomputed
    roomy = Session(loaded, cache_size=16)
    kept = roomy.analyse("one text")
    roomy.analyse("another text")
    assert roomy.analyse("one text") is kept and kept.nbytes > 0
