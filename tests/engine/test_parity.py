"""Our GPT against Hugging Face's GPT2LMHeadModel on the same random checkpoint.

Logits, attention weights and the residual stream must agree within 1e-4 in float32, greedy
generation must pick the same tokens, and the KV cache must not change any logit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt_tui.engine.gpt import Trace
from gpt_tui.engine.loading import load_model
from gpt_tui.engine.sampling import SamplingParams

from .helpers import PROMPT, Runner, hf_logits, our_logits

ATOL = 1e-4


def _hf_outputs(hf, ids):
    """The reference's attentions, hidden states and the residual entering every ln_2."""
    mid: dict[int, torch.Tensor] = {}
    hooks = [block.ln_2.register_forward_pre_hook(lambda _m, args, layer=layer: mid.__setitem__(layer, args[0]))
             for layer, block in enumerate(hf.transformer.h)]
    try:
        with torch.no_grad():
            out = hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    finally:
        for hook in hooks:
            hook.remove()
    return out, mid


def _traced(loaded, ids):
    trace = Trace()
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids]), trace=trace)[0]
    return logits, trace


@pytest.mark.parametrize("optimise", [True, False], ids=["packed", "plain"])
@pytest.mark.parametrize("checkpoint", ["hf_dir", "hf_bin_dir"])
def test_logits_match_at_every_position(checkpoint, optimise, request, hf_model, prompt_ids):
    """Both HF serialisations load to a model whose logits match the reference everywhere,
    with the weights packed for the CPU (the default) or left as plain nn.Linear."""
    loaded = load_model(str(request.getfixturevalue(checkpoint)), device="cpu", dtype="float32", optimise=optimise)
    ours, ref = our_logits(loaded, prompt_ids), hf_logits(hf_model, prompt_ids)
    assert ours.shape == ref.shape == (len(prompt_ids), 50257)
    assert ref.std() > 1.0, "the random checkpoint should give confident, varied logits"
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


def test_traced_forward_gives_the_same_logits(loaded, hf_model, prompt_ids):
    """The traced path (explicit softmax) and the fused path agree with the reference alike."""
    logits, _ = _traced(loaded, prompt_ids)
    torch.testing.assert_close(logits, hf_logits(hf_model, prompt_ids), atol=ATOL, rtol=0)


def test_attention_weights_of_every_layer_and_head(loaded, hf_model, prompt_ids):
    out, _ = _hf_outputs(hf_model, prompt_ids)
    _, trace = _traced(loaded, prompt_ids)
    cfg = loaded.config
    assert len(trace.attention) == len(out.attentions) == cfg.n_layer
    T = len(prompt_ids)
    for layer, (ours, ref) in enumerate(zip(trace.attention, out.attentions)):
        assert ours.shape == ref.shape == (1, cfg.n_head, T, T)
        torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0, msg=f"layer {layer}")
    # Not uniform: a head that attends evenly would hide a scaling or masking mistake.
    last_row = trace.attention[-1][0, :, -1]
    assert (last_row.max(dim=-1).values > 3 / T).all()


def test_residual_stream_matches_hidden_states(loaded, hf_model, prompt_ids):
    """residual[0] = embeddings, [2l+1] = entering ln_2, [2l+2] = block output; ln_f(last) = HF's last."""
    out, mid = _hf_outputs(hf_model, prompt_ids)
    _, trace = _traced(loaded, prompt_ids)
    L = loaded.config.n_layer
    hidden = out.hidden_states
    assert len(trace.residual) == 2 * L + 1 and len(hidden) == L + 1
    torch.testing.assert_close(trace.residual[0], hidden[0], atol=ATOL, rtol=0)
    for layer in range(L):
        torch.testing.assert_close(trace.residual[2 * layer + 1], mid[layer], atol=ATOL, rtol=0)
        if layer < L - 1:
            torch.testing.assert_close(trace.residual[2 * layer + 2], hidden[layer + 1], atol=ATOL, rtol=0)
    with torch.no_grad():
        final = loaded.model.ln_f(trace.residual[-1])
    torch.testing.assert_close(final, hidden[-1], atol=ATOL, rtol=0)


def test_greedy_generation_matches_hf_generate(session, hf_model, prompt_ids):
    """20 greedy tokens from Session.generate (KV cache) == HF generate(do_sample=False)."""
    ours = [t.id for t in session.generate(prompt_ids, SamplingParams(temperature=0), max_new_tokens=20,
                                           seed=0, stop_at_eot=False)]
    x = torch.tensor([prompt_ids])
    with torch.no_grad():
        ref = hf_model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=20,
                                min_new_tokens=20, pad_token_id=0)
    ref_new = ref[0, len(prompt_ids):].tolist()
    assert len(ref_new) == 20
    assert ours == ref_new
    assert len(set(ours)) > 1


def test_kv_cache_chunks_give_the_full_forward_logits(loaded, hf_model, prompt_ids):
    """Feeding the text in chunks through a cache (T>1 with a past, then T=1) changes no logit."""
    ref = hf_logits(hf_model, prompt_ids)
    cache = loaded.model.new_cache()
    pieces, start = [], 0
    with torch.no_grad():
        for size in (5, 3, 1, 1, 4):
            chunk = prompt_ids[start:start + size]
            pieces.append(loaded.model(torch.tensor([chunk]), cache=cache)[0])
            start += size
        assert cache.length == start
        rest = loaded.model(torch.tensor([prompt_ids[start:]]), cache=cache)[0]
    torch.testing.assert_close(torch.cat([*pieces, rest]), ref, atol=ATOL, rtol=0)


def test_kv_cache_truncate_then_continue(loaded, hf_model, prompt_ids):
    """After truncating the cache (the text was edited), new tokens see only the kept prefix."""
    edited = prompt_ids[:6] + prompt_ids[9:]
    cache = loaded.model.new_cache()
    with torch.no_grad():
        loaded.model(torch.tensor([prompt_ids[:10]]), cache=cache)
        cache.truncate(6)
        tail = loaded.model(torch.tensor([edited[6:]]), cache=cache)[0]
    torch.testing.assert_close(tail, hf_logits(hf_model, edited)[6:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("keys", [1, 7, 300])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_one_query_attention_in_half_precision_matches_float64(dtype, keys):
    """Decoding's own attention path for half precision on the CPU == softmax(q kᵀ/√D) v in float64."""
    from gpt_tui.engine.gpt import _attend_one_query

    g = torch.Generator().manual_seed(keys)
    q, k, v = (torch.randn(2, 3, n, 16, generator=g).to(dtype) for n in (1, keys, keys))
    got = _attend_one_query(q, k, v)
    weights = torch.softmax(q.double() @ k.double().transpose(-2, -1) / 4.0, dim=-1)
    want = weights @ v.double()
    assert got.dtype == dtype and got.shape == (2, 3, 1, 16)
    torch.testing.assert_close(got.double(), want, atol=1e-2, rtol=1e-2)  # one rounding to half precision
    if keys > 1:  # the weights matter: neither uniform nor all on one key
        assert not torch.allclose(got.double(), v.double().mean(-2, keepdim=True), atol=1e-3)
        assert not torch.allclose(got.double(), v[..., -1:, :].double(), atol=1e-3)


def test_bfloat16_decoding_through_the_cache_matches_its_full_forward(hf_dir, prompt_ids):
    """One token at a time with the KV cache (the half-precision query path) == the full forward."""
    loaded = load_model(str(hf_dir), device="cpu", dtype="bfloat16")
    with torch.no_grad():
        full = loaded.model(torch.tensor([prompt_ids]))[0].float()
        cache = loaded.model.new_cache()
        steps = [loaded.model(torch.tensor([[t]]), cache=cache)[0, -1].float() for t in prompt_ids]
    torch.testing.assert_close(torch.stack(steps), full, atol=0.1, rtol=0.02)
    assert (torch.stack(steps).argmax(-1) == full.argmax(-1)).float().mean() >= 0.9


def test_generation_logits_equal_recomputation(session, hf_model, prompt_ids):
    """The logits each generated token was drawn from == a fresh full forward over the text so far."""
    params = SamplingParams(temperature=1.0, top_k=40)
    steps = list(session.generate(prompt_ids, params, max_new_tokens=12, seed=3, stop_at_eot=False,
                                  with_logits=True))
    text = list(prompt_ids)
    for step in steps:
        ref = hf_logits(hf_model, text)[-1]
        np.testing.assert_allclose(step.logits, ref.numpy(), atol=ATOL, rtol=0)
        text.append(step.id)


def test_sliding_window_when_the_context_fills(session, hf_model, gpt2_tok):
    """Past n_ctx tokens the window slides to the last 3/4 of n_ctx and is re-read from scratch."""
    n_ctx = session.n_ctx
    prompt = gpt2_tok.encode(" ".join(["alpha beta gamma delta"] * 40))[: n_ctx - 4]
    steps = list(session.generate(prompt, SamplingParams(temperature=0.9), max_new_tokens=24, seed=11,
                                  stop_at_eot=False, with_logits=True))
    assert len(steps) == 24
    window, slides = list(prompt), 0  # 60 tokens: slides to 48 at the 5th token, again at the 22nd
    for step in steps:
        assert len(window) <= n_ctx
        np.testing.assert_allclose(step.logits, hf_logits(hf_model, window)[-1].numpy(), atol=ATOL, rtol=0)
        window.append(step.id)
        if len(window) > n_ctx:
            window, slides = window[-(3 * n_ctx) // 4:], slides + 1
    assert slides == 2


def test_too_long_input_is_refused_by_the_model(loaded):
    with pytest.raises(ValueError, match="context window of 64"):
        loaded.model(torch.zeros(1, 65, dtype=torch.long))


# -- Session.analyse --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analysis_and_ref(session, hf_model):
    analysis = session.analyse(PROMPT)
    out, _ = _hf_outputs(hf_model, analysis.ids.tolist())
    return analysis, out


def test_analyse_last_logits_and_top_predictions(analysis_and_ref):
    analysis, out = analysis_and_ref
    ref = out.logits[0]
    np.testing.assert_allclose(analysis.last_logits, ref[-1].numpy(), atol=ATOL, rtol=0)
    K = analysis.top_ids.shape[1]
    ref_top = torch.topk(ref, K, dim=-1)
    np.testing.assert_allclose(analysis.top_logits, ref_top.values.numpy(), atol=ATOL, rtol=0)
    # Every reported id has, under the reference, the logit reported for it (ties cannot fool this).
    at_ids = ref.gather(1, torch.from_numpy(analysis.top_ids))
    np.testing.assert_allclose(analysis.top_logits, at_ids.numpy(), atol=ATOL, rtol=0)
    assert all(len(set(row)) == K for row in analysis.top_ids.tolist())
    np.testing.assert_allclose(analysis.logsumexp, torch.logsumexp(ref, -1).numpy(), atol=ATOL, rtol=0)
    probs = analysis.top_probs(3)
    np.testing.assert_allclose(probs, ref[3].softmax(-1)[ref_top.indices[3]].numpy(), atol=1e-5, rtol=0)


def test_analyse_token_logprobs(analysis_and_ref):
    analysis, out = analysis_and_ref
    ids = torch.from_numpy(analysis.ids)
    ref = out.logits[0].log_softmax(-1)[:-1].gather(1, ids[1:, None])[:, 0]
    assert np.isnan(analysis.token_logprobs[0])
    np.testing.assert_allclose(analysis.token_logprobs[1:], ref.numpy(), atol=ATOL, rtol=0)


def test_parts_derived_on_first_look_match_the_reference(session, hf_model):
    """The pass keeps only what every panel needs; one position's predictions and one query's or one
    layer's attention, derived later and alone, are the reference's numbers."""
    analysis = session.analyse(PROMPT + " Derived")
    out, _ = _hf_outputs(hf_model, analysis.ids.tolist())
    ref = out.logits[0]
    T = analysis.n_tokens
    assert set(analysis._memo) == {T - 2, T - 1}  # the pass itself gives the last two positions
    for pos in (T - 2, T - 1):
        np.testing.assert_allclose(analysis.position(pos).top_logits, ref[pos, analysis.position(pos).top_ids].numpy(),
                                   atol=ATOL, rtol=0)
    assert analysis.token_logprob(T - 1) == pytest.approx(float(ref[T - 2].log_softmax(-1)[analysis.ids[-1]]),
                                                          abs=ATOL)
    position = analysis.position(5)
    assert "all" not in analysis._memo  # one row of the unembedding, not every position's
    np.testing.assert_allclose(position.top_logits, torch.topk(ref[5], position.top_ids.size).values.numpy(),
                               atol=ATOL, rtol=0)
    np.testing.assert_allclose(position.top_logits, ref[5, position.top_ids].numpy(), atol=ATOL, rtol=0)
    assert position.logsumexp == pytest.approx(float(torch.logsumexp(ref[5], -1)), abs=ATOL)
    want = float(ref[5].log_softmax(-1)[analysis.ids[6]])
    assert position.next_logprob == pytest.approx(want, abs=ATOL) == analysis.token_logprob(6)
    assert np.isnan(analysis.position(-1).next_logprob) and np.isnan(analysis.token_logprob(0))
    assert analysis.position(T - 1) is analysis.position(-1)  # remembered
    stored = analysis.attention
    row = analysis.attention_row(1, 7)
    assert stored._layers == {}  # a row without the layer
    np.testing.assert_allclose(row, out.attentions[1][0, :, 7].numpy(), atol=ATOL, rtol=0)
    assert np.all(row[:, 8:] == 0)
    np.testing.assert_allclose(stored[0, 3], out.attentions[0][0, 3].numpy(), atol=ATOL, rtol=0)
    assert list(stored._layers) == [0]
    np.testing.assert_allclose(analysis.attention_row(0, 7), stored.layer(0)[:, 7], atol=0, rtol=0)


def test_analyse_attention_and_residual(analysis_and_ref, loaded):
    analysis, out = analysis_and_ref
    cfg = loaded.config
    T = analysis.n_tokens
    assert analysis.attention.shape == (cfg.n_layer, cfg.n_head, T, T)
    assert (analysis.n_layer, analysis.n_head) == (cfg.n_layer, cfg.n_head)
    np.testing.assert_allclose(analysis.attention, torch.cat(out.attentions).numpy(), atol=ATOL, rtol=0)
    assert np.all(np.triu(analysis.attention, k=1) == 0)
    assert analysis.residual.shape == (2 * cfg.n_layer + 1, T, cfg.n_embd)
    np.testing.assert_allclose(analysis.residual[0], out.hidden_states[0][0].numpy(), atol=ATOL, rtol=0)
    # attended(): the strongest keys of a query, strongest first, read from the same weights.
    keys = analysis.attended(1, 2, T - 1, top=3)
    row = out.attentions[1][0, 2, T - 1]
    assert [k for k, _ in keys] == torch.topk(row, 3).indices.tolist()


# -- incremental analysis: the previous text's KV cache reused -------------------------------------------


def _assert_pass_matches(result, hf_model, ids):
    out, _ = _hf_outputs(hf_model, ids)
    ref = out.logits[0]
    np.testing.assert_allclose(result.last_logits, ref[-1].numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.top_logits, torch.topk(ref, result.top_ids.shape[1]).values.numpy(),
                               atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.top_logits, ref.gather(1, torch.from_numpy(result.top_ids)).numpy(),
                               atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.logsumexp, torch.logsumexp(ref, -1).numpy(), atol=ATOL, rtol=0)
    logprobs = ref.log_softmax(-1)[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    assert np.isnan(result.token_logprobs[0])
    np.testing.assert_allclose(result.token_logprobs[1:], logprobs.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.attention, torch.cat(out.attentions).numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.residual[0], out.hidden_states[0][0].numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(result.residual[2], out.hidden_states[1][0].numpy(), atol=ATOL, rtol=0)


def test_analysis_pass_reuses_the_shared_prefix(loaded, hf_model, prompt_ids):
    """Typing appends or edits the end: only the changed positions run, and every array is still exact."""
    runner = Runner(loaded.model)
    first = runner.run(prompt_ids[:12])
    assert first.reused == 0
    _assert_pass_matches(first, hf_model, prompt_ids[:12])
    extended = runner.run(prompt_ids)  # 12 tokens shared: positions 12… run
    assert extended.reused == 12
    _assert_pass_matches(extended, hf_model, prompt_ids)
    edited = prompt_ids[:7] + [464, 3290] + prompt_ids[7:]
    again = runner.run(edited)  # an insertion after 7 tokens
    assert again.reused == 7
    _assert_pass_matches(again, hf_model, edited)
    shorter = runner.run(edited[:5])  # text deleted from the end
    assert shorter.reused == 4
    _assert_pass_matches(shorter, hf_model, edited[:5])


def test_analysis_pass_does_not_reuse_across_different_flags(loaded, hf_model, prompt_ids):
    runner = Runner(loaded.model)
    runner.run(prompt_ids, attention=False, residual=False)
    result = runner.run(prompt_ids)
    assert result.reused == 0
    _assert_pass_matches(result, hf_model, prompt_ids)

