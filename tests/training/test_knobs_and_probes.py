"""The measurements behind the bundled model's defaults and card: knobs, repeated spans, copying."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt_tui.training import knobs
from gpt_tui.training.data import Batches
from gpt_tui.training.probes import COMMON_WORDS, copying_score, copying_score_of_session, repeated_passage_text


def test_repeated_4grams_counts_only_the_continuation():
    assert knobs.repeated_4grams("a b c", "d a b c d e") == (1, 6)
    assert knobs.repeated_4grams("the cat sat on", "the mat") == (0, 2)


def test_real_words_are_the_ones_the_training_text_has_twice():
    words = knobs.lexicon("The cat sat. the CAT ran; a dog ran once.")
    assert words == {"the", "cat", "ran"}
    assert knobs.real_word_share("The latchation cat ran", words) == (3, 4)


def test_choose_prefers_real_words_within_the_repetition_limit():
    rows = [{"real_words": 0.99, "repetition": 0.2}, {"real_words": 0.97, "repetition": 0.01},
            {"real_words": 0.95, "repetition": 0.0}]
    assert knobs.choose(rows) is rows[1]


def test_every_window_can_get_a_repeated_span():
    batches = Batches(np.arange(10_000), n_ctx=128, batch_size=32, seed=3, repeat_fraction=1.0)
    x, y = batches.next()
    windows = torch.cat([x, y[:, -1:]], dim=1)
    for window in windows:
        jumps = (window[1:] - window[:-1] != 1).nonzero().flatten().tolist()
        assert 1 <= len(jumps) <= 2  # into the copy, and out of it unless it ends the window
        start = jumps[0] + 1
        source = int(window[start] - window[0])  # the copy starts with the token at window[source]
        assert source < start and window[start] == window[source]
    plain = Batches(np.arange(10_000), n_ctx=128, batch_size=32, seed=3).next()[0]
    assert bool(((plain[:, 1:] - plain[:, :-1]) == 1).all())


@pytest.mark.parametrize("max_span", [Batches.MAX_SPAN, 128])
def test_a_random_span_is_drawn_from_the_corpus_and_then_repeated(max_span):
    """With random_fraction=1 every repeated span is first replaced by tokens drawn from anywhere in
    the corpus, so the window no longer runs on from its start there, and its copy repeats them."""
    rows = np.arange(10_000)
    batches = Batches(rows, n_ctx=512, batch_size=32, seed=3, repeat_fraction=1.0, random_fraction=1.0,
                      max_span=max_span)
    spans = []
    x, y = batches.next()
    windows = torch.cat([x, y[:, -1:]], dim=1)
    for window in windows:
        offsets = window - torch.arange(len(window))
        start = int(torch.mode(offsets).values)  # where the window began (at most 128 of 513 tokens are replaced)
        replaced = (offsets != start).nonzero().flatten()
        s = int(replaced[0])  # the random source starts here; its copy is the next place it recurs
        d = next(int(i) for i in replaced[1:] if window[i] == window[s])
        span = 0
        while s + span < d and d + span < len(window) and window[s + span] == window[d + span]:
            span += 1
        assert Batches.MIN_SPAN <= span <= max_span
        spans.append(span)
        assert torch.equal(window[s : s + span], window[d : d + span])
        # nothing else changed (a random token may happen to equal the one it replaced, hence ⊆)
        assert set(replaced.tolist()) <= set(range(s, s + span)) | set(range(d, d + span))
    assert max(spans) > max_span - 16  # the longest spans are drawn too


def test_an_echo_window_is_one_random_passage_said_over_and_over():
    """echo_fraction=1: no prose is left; each window is a passage of 16 to max_span tokens drawn
    from the corpus, repeated end to end, the last repeat cut where the window ends."""
    rows = np.arange(10_000)
    batches = Batches(rows, n_ctx=256, batch_size=32, seed=3, echo_fraction=1.0, max_span=64, repeat_fraction=1.0)
    x, y = batches.next()
    periods = []
    for window in torch.cat([x, y[:, -1:]], dim=1):
        period = next(p for p in range(1, len(window)) if torch.equal(window[p:], window[:-p]))
        assert Batches.MIN_SPAN <= period <= 64
        assert len(set(window[:period].tolist())) > period // 2  # drawn at random, not a run of the corpus
        assert not bool(((window[1:period] - window[:period - 1]) == 1).all())
        periods.append(period)
    assert min(periods) < 24 and max(periods) > 56  # the lengths are spread over the range
    half = Batches(rows, n_ctx=256, batch_size=64, seed=3, echo_fraction=0.5).next()[0]
    prose = ((half[:, 1:] - half[:, :-1]) == 1).all(dim=1)  # windows still running on through the corpus
    assert 16 < int(prose.sum()) < 48


def test_common_words_are_single_tokens_and_passages_are_reproducible():
    from gpt_tui.engine.tokenizer import get_tokenizer

    tokenizer = get_tokenizer("gpt2")
    assert all(len(tokenizer.encode(" " + w)) == 1 for w in COMMON_WORDS)
    assert repeated_passage_text(30, 4) == repeated_passage_text(30, 4) != repeated_passage_text(30, 5)


def test_copying_score_is_the_same_through_the_model_and_through_score(tmp_path):
    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT
    from gpt_tui.engine.loading import LoadedModel
    from gpt_tui.engine.session import Session
    from gpt_tui.engine.tokenizer import get_tokenizer

    model = GPT(GPTConfig(n_ctx=64, n_embd=32, n_layer=2, n_head=2))
    model.init_weights(seed=0)
    session = Session(LoadedModel(model.eval(), get_tokenizer("gpt2"), name="tiny", source="test"))
    direct = copying_score(model, session.tokenizer, passages=2)
    scored = copying_score_of_session(session, passages=2)
    assert abs(direct.first_perplexity / scored.first_perplexity - 1) < 1e-3
    assert abs(direct.second_perplexity / scored.second_perplexity - 1) < 1e-3
    assert 0.5 < direct.ratio < 2  # random weights cannot copy


def test_copying_score_runs_under_bf16_autocast_on_a_compact_vocabulary():
    """Training measures the probe inside the same autocast as its steps: the compact model's
    logits are bf16 there, and the full-vocabulary scatter must take them as they are."""
    import torch

    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT
    from gpt_tui.engine.tokenizer import get_tokenizer

    tokenizer = get_tokenizer("gpt2")
    ids = sorted({tokenizer.eot_id, *(tokenizer.encoding.encode_ordinary(" " + " ".join(COMMON_WORDS)))})
    model = GPT(GPTConfig(n_ctx=64, n_embd=32, n_layer=2, n_head=2, n_rows=len(ids)))
    model.init_weights(seed=0)
    model.set_row_ids(torch.tensor(ids))
    score = copying_score(model, tokenizer, passages=2, autocast=torch.autocast("cpu", dtype=torch.bfloat16))
    assert 1 < score.first_perplexity < len(ids) * 2 and 1 < score.second_perplexity < len(ids) * 2
