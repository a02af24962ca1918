"""Sampling: temperature, then top-k, then top-p, then a seeded draw.

Small cases are worked out by hand; larger ones are compared with Hugging Face's logits warpers,
and the draws themselves with a chi-squared goodness-of-fit test.
"""

from __future__ import annotations

import math

import pytest
import torch

from gpt_tui.engine.sampling import SamplingParams, adjusted_probs, sample

PROBS = [0.5, 0.3, 0.15, 0.05]


def _logits(probs) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log().float()


def _kept(logits, **knobs) -> list[int]:
    return torch.nonzero(adjusted_probs(logits, SamplingParams(**knobs))).flatten().tolist()


def _entropy(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * p.log()).sum())


# -- top-p ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_p,kept", [(0.3, 1), (0.5, 1), (0.51, 2), (0.8, 2), (0.81, 3), (0.95, 3), (0.96, 4),
                                        (1.0, 4)])
def test_top_p_keeps_the_smallest_prefix_that_reaches_p(top_p, kept):
    """[0.5, 0.3, 0.15, 0.05]: p=0.8 is reached by two tokens, p=0.81 needs the third."""
    assert _kept(_logits(PROBS), top_p=top_p) == list(range(kept))


def test_top_p_renormalises_the_survivors():
    probs = adjusted_probs(_logits(PROBS), SamplingParams(top_p=0.81))
    torch.testing.assert_close(probs, torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95)


def test_top_p_follows_probability_not_position():
    shuffled = [0.05, 0.3, 0.5, 0.15]
    assert _kept(_logits(shuffled), top_p=0.8) == [1, 2]


# -- top-k ----------------------------------------------------------------------------------------------


def test_top_k_survivors_are_exactly_the_k_best():
    logits = torch.randn(500, generator=torch.Generator().manual_seed(0)) * 3
    for k in (1, 5, 37, 499):
        probs = adjusted_probs(logits, SamplingParams(top_k=k))
        assert set(torch.nonzero(probs).flatten().tolist()) == set(torch.topk(logits, k).indices.tolist())
        torch.testing.assert_close(probs.sum(), torch.tensor(1.0))


def test_top_k_larger_than_the_vocabulary_keeps_everything():
    assert _kept(_logits(PROBS), top_k=10) == [0, 1, 2, 3]


def test_top_k_then_top_p():
    """k first: [0.4, 0.3 | 0.2, 0.1] renormalises to [4/7, 3/7]; then p=0.5 keeps only the first.

    (top-p on the raw distribution would have kept two.)
    """
    logits = _logits([0.4, 0.3, 0.2, 0.1])
    assert _kept(logits, top_p=0.5) == [0, 1]
    assert _kept(logits, top_k=2, top_p=0.5) == [0]
    # k=3 leaves [4/9, 3/9, 2/9], which p=0.75 cuts to two; the raw distribution would need three.
    assert _kept(logits, top_p=0.75) == [0, 1, 2]
    torch.testing.assert_close(adjusted_probs(logits, SamplingParams(top_k=3, top_p=0.75)),
                               torch.tensor([4 / 7, 3 / 7, 0, 0]), atol=1e-6, rtol=0)


def test_temperature_comes_before_top_p():
    """T=0.5 squares the probabilities: 0.25/0.365 = 0.685 alone reaches p=0.6."""
    logits = _logits(PROBS)
    assert _kept(logits, top_p=0.6) == [0, 1]
    assert _kept(logits, temperature=0.5, top_p=0.6) == [0]
    squared = torch.tensor(PROBS) ** 2
    torch.testing.assert_close(adjusted_probs(logits, SamplingParams(temperature=0.5)), squared / squared.sum())


# -- temperature -----------------------------------------------------------------------------------------


def test_temperature_zero_is_greedy():
    logits = torch.tensor([0.1, 2.0, -1.0, 2.0, 1.9])
    probs = adjusted_probs(logits, SamplingParams(temperature=0))
    assert probs.tolist() == [0, 1, 0, 0, 0]  # a tie goes to the lowest id
    gen = torch.Generator().manual_seed(0)
    assert all(sample(logits, SamplingParams(temperature=0), gen) == (1, 1.0) for _ in range(20))


def test_temperature_sharpens_and_flattens():
    logits = torch.randn(100, generator=torch.Generator().manual_seed(1)) * 2
    entropies = [_entropy(adjusted_probs(logits, SamplingParams(temperature=t))) for t in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert entropies[2] == pytest.approx(_entropy(logits.softmax(-1)))
    assert entropies[0] < entropies[1] < entropies[2] < entropies[3] < entropies[4] < math.log(100)
    for t in (0.5, 2.0):
        torch.testing.assert_close(adjusted_probs(logits, SamplingParams(temperature=t)), (logits / t).softmax(-1))


# -- against Hugging Face's warpers ------------------------------------------------------------------------


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 0.9), (0.7, 0, 0.5), (1.3, 50, 1.0), (0.8, 40, 0.95),
                                                     (2.0, 200, 0.3), (0.5, 5, 0.99)])
def test_matches_hf_logits_warpers(temperature, top_k, top_p):
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(1000, generator=torch.Generator().manual_seed(top_k + int(100 * top_p))) * 2.5
    scores = TemperatureLogitsWarper(temperature)(None, logits[None].clone())
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1:
        scores = TopPLogitsWarper(top_p)(None, scores)
    expected = scores.softmax(-1)[0]
    ours = adjusted_probs(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p))
    assert torch.equal(ours > 0, expected > 0)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("scale", [0.3, 1.5, 4.0])
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.99])
def test_nucleus_of_any_size(scale, top_p):
    """Over the full vocabulary the nucleus may hold a handful of tokens or tens of thousands.

    Checked against the definition in float64: the kept tokens are the n most likely, the first
    n-1 fall short of p and all n reach it. Where single tokens hold ~1e-5 of the mass, float32
    cannot tell which token crosses p, so the crossing is allowed a 1e-5 slack (HF's warper,
    summing upwards, can disagree with both by one token there).
    """
    logits = torch.randn(50257, generator=torch.Generator().manual_seed(int(scale * 10))) * scale
    ours = adjusted_probs(logits, SamplingParams(top_p=top_p))
    kept = ours > 0
    n = int(kept.sum())
    probs = logits.double().softmax(-1)
    ranked, order = torch.sort(probs, descending=True)
    assert set(torch.nonzero(kept).flatten().tolist()) == set(order[:n].tolist())
    mass = ranked.cumsum(0)
    assert mass[n - 1] >= top_p - 1e-5
    assert n == 1 or mass[n - 2] < top_p + 1e-5
    torch.testing.assert_close(ours[kept].double(), probs[kept] / probs[kept].sum(), atol=1e-7, rtol=1e-4)


def test_nucleus_sizes_span_small_to_huge():
    """The cases above really do range from a few tokens to most of the vocabulary."""
    sizes = [int((adjusted_probs(torch.randn(50257, generator=torch.Generator().manual_seed(int(scale * 10))) * scale,
                                 SamplingParams(top_p=p)) > 0).sum())
             for scale, p in ((4.0, 0.5), (0.3, 0.99))]
    assert sizes[0] < 256 and sizes[1] > 16384


# -- the draw ----------------------------------------------------------------------------------------------

# Chi-squared critical values at p = 0.001 by degrees of freedom (standard tables).
CHI2_CRITICAL_0001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 6: 22.458, 7: 24.322, 8: 26.124}


def test_draw_frequencies_fit_adjusted_probs():
    """20,000 seeded draws: cut tokens never come up, the rest fit adjusted_probs (chi-squared, p=0.001)."""
    logits = torch.tensor([2.0, 1.5, 1.2, 0.3, 0.0, -0.5, -1.0, -3.0])
    params = SamplingParams(temperature=0.8, top_k=6, top_p=0.97)
    probs = adjusted_probs(logits, params)
    live = probs > 0
    assert 3 <= int(live.sum()) < 6  # both cuts bite
    gen = torch.Generator().manual_seed(1234)
    n = 20_000
    counts = torch.zeros(len(logits))
    for _ in range(n):
        token, prob = sample(logits, params, gen)
        assert prob == pytest.approx(float(probs[token]))
        counts[token] += 1
    assert counts[~live].sum() == 0
    expected = n * probs[live]
    chi2 = float(((counts[live] - expected) ** 2 / expected).sum())
    assert chi2 < CHI2_CRITICAL_0001[int(live.sum()) - 1]
    # And the test has power: the raw softmax does not fit these counts.
    raw = n * logits.softmax(-1)
    assert float(((counts - raw) ** 2 / raw).sum()) > CHI2_CRITICAL_0001[len(logits) - 1]


def test_same_seed_same_draws():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(2))
    params = SamplingParams(temperature=1.2, top_p=0.9)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert [sample(logits, params, a)[0] for _ in range(30)] == [sample(logits, params, b)[0] for _ in range(30)]


def test_same_seed_same_generated_text(session, prompt_ids):
    params = SamplingParams(temperature=1.0, top_k=100, top_p=0.95)

    def run(seed):
        return [t.id for t in session.generate(prompt_ids, params, max_new_tokens=15, seed=seed, stop_at_eot=False)]

    first = run(42)
    assert run(42) == first
    assert run(43) != first


# -- invalid knobs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("knobs,message", [
    (dict(temperature=-0.1), "temperature must be a number ≥ 0"),
    (dict(top_k=-1), "top-k must be a whole number ≥ 0"),
    (dict(top_p=0.0), r"top-p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top-p must be in \(0, 1\]"),
    (dict(top_p=-0.2), r"top-p must be in \(0, 1\]"),
])
def test_invalid_knobs(knobs, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams(**knobs)


def test_defaults_are_plain_sampling():
    params = SamplingParams()
    assert (params.temperature, params.top_k, params.top_p, params.greedy) == (1.0, 0, 1.0, False)
    logits = torch.randn(20, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(adjusted_probs(logits, params), logits.softmax(-1))
