"""The fast paths: packed oneDNN weights (with their load-time self-test and fallback) and the
analysis pass that reuses the KV cache. Each must give what the plain path gives."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

from gpt_tui.engine import fast
from gpt_tui.engine.analysis_pass import common_prefix
from gpt_tui.engine.gpt import Trace
from gpt_tui.engine.loading import load_model
from gpt_tui.engine.sampling import SamplingParams
from gpt_tui.engine.session import Session

from .helpers import PROMPT, Runner, hf_logits

ATOL = 1e-4
needs_packing = pytest.mark.skipif(fast.packing_support(torch.device("cpu"), torch.float32) is not None,
                                   reason="oneDNN packing unavailable in this PyTorch build")


def _load(hf_dir, optimise=True, dtype="float32"):
    return load_model(str(hf_dir), device="cpu", dtype=dtype, optimise=optimise)


def _logits(loaded, ids, trace=None):
    with torch.inference_mode():
        return loaded.model(torch.tensor([ids]), trace=trace)[0].float()


@pytest.fixture(scope="module")
def plain(hf_dir):
    return _load(hf_dir, optimise=False)


@pytest.fixture(scope="module")
def packed(hf_dir):
    return _load(hf_dir)


# -- packed weights ---------------------------------------------------------------------------------


@needs_packing
def test_packed_model_matches_reference_and_plain(packed, plain, hf_model, prompt_ids):
    report = packed.model.fast
    assert report.packed and report.unembedding and report.linears == 4 * packed.config.n_layer
    assert isinstance(packed.model.h[0].mlp, fast.PackedMLP)
    ours = _logits(packed, prompt_ids)
    torch.testing.assert_close(ours, hf_logits(hf_model, prompt_ids), atol=ATOL, rtol=0)
    torch.testing.assert_close(ours, _logits(plain, prompt_ids), atol=ATOL, rtol=0)
    with torch.no_grad():  # not only under inference_mode
        torch.testing.assert_close(packed.model(torch.tensor([prompt_ids]))[0], ours, atol=0, rtol=0)


@needs_packing
def test_packed_traced_pass_matches_plain(packed, plain, prompt_ids):
    a, b = Trace(), Trace()
    torch.testing.assert_close(_logits(packed, prompt_ids, a), _logits(plain, prompt_ids, b), atol=ATOL, rtol=0)
    for x, y in zip(a.attention + a.residual, b.attention + b.residual, strict=True):
        torch.testing.assert_close(x, y, atol=ATOL, rtol=0)


@needs_packing
def test_packed_state_dict_is_the_plain_one(packed, plain):
    """Same names, dense tensors, equal values: saving a packed model writes a normal checkpoint."""
    ours, theirs = packed.model.state_dict(), plain.model.state_dict()
    assert list(ours) == list(theirs)
    for name, value in ours.items():
        assert not value.is_mkldnn and torch.equal(value, theirs[name]), name
    assert sum(p.numel() for p in packed.model.parameters()) == sum(p.numel() for p in plain.model.parameters())


@needs_packing
def test_packed_greedy_generation_picks_the_same_tokens(packed, plain, prompt_ids):
    params = SamplingParams(temperature=0)
    a = [t.id for t in Session(packed).generate(prompt_ids, params, 12, seed=0, stop_at_eot=False)]
    b = [t.id for t in Session(plain).generate(prompt_ids, params, 12, seed=0, stop_at_eot=False)]
    assert a == b


@needs_packing
def test_packed_bfloat16_stays_close_to_plain_bfloat16(hf_dir, prompt_ids):
    if fast.packing_support(torch.device("cpu"), torch.bfloat16) is not None:
        pytest.skip("no bfloat16 packing on this CPU")
    a, b = _load(hf_dir, dtype="bfloat16"), _load(hf_dir, optimise=False, dtype="bfloat16")
    assert a.model.fast.packed and a.dtype == torch.bfloat16
    x, y = _logits(a, prompt_ids), _logits(b, prompt_ids)
    assert float((x - y).abs().max()) < 0.05 * float(y.abs().max())


@needs_packing
def test_compact_vocabulary_packs_its_rows(compact, prompt_ids):
    a = load_model(str(compact.path), device="cpu", dtype="float32")
    b = load_model(str(compact.path), device="cpu", dtype="float32", optimise=False)
    assert a.model.fast.unembedding
    x, y = _logits(a, prompt_ids), _logits(b, prompt_ids)
    assert torch.equal(torch.isneginf(x), torch.isneginf(y))
    finite = torch.isfinite(y)
    torch.testing.assert_close(x[finite], y[finite], atol=ATOL, rtol=0)


# -- the self-test and the fallback -------------------------------------------------------------------


def _assert_plain(loaded, reference, ids):
    model = loaded.model
    assert not model.fast.packed and model.packed_unembed is None
    assert all(isinstance(m, nn.Linear) for b in model.h for m in (b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc))
    assert torch.equal(_logits(loaded, ids), _logits(reference, ids))


@needs_packing
def test_a_packed_weight_that_disagrees_is_never_used(hf_dir, plain, prompt_ids, monkeypatch):
    """The self-test runs on the real weights; one mismatch (here in the MLP) undoes all packing."""
    real = fast._linear
    monkeypatch.setattr(fast, "_linear", lambda x, w, b, gelu=False: real(x, w, b, gelu) + (1.0 if gelu else 0.0))
    loaded = _load(hf_dir)
    assert "self-test failed on mlp" in loaded.model.fast.reason
    _assert_plain(loaded, plain, prompt_ids)


def test_a_missing_private_op_falls_back(hf_dir, plain, prompt_ids, monkeypatch):
    def gone(weight):
        raise RuntimeError("mkldnn::_reorder_linear_weight: no such operator")

    monkeypatch.setattr(fast, "_pack", gone)
    loaded = _load(hf_dir)
    assert "RuntimeError" in loaded.model.fast.reason
    _assert_plain(loaded, plain, prompt_ids)


def test_the_environment_switch_and_non_cpu_devices(hf_dir, plain, prompt_ids, monkeypatch):
    monkeypatch.setenv(fast.ENV_SWITCH, "0")
    loaded = _load(hf_dir)
    assert "turned off" in loaded.model.fast.reason
    _assert_plain(loaded, plain, prompt_ids)
    monkeypatch.delenv(fast.ENV_SWITCH)
    assert "CPU" in fast.packing_support(torch.device("meta"), torch.float32)
    assert "float16" in fast.packing_support(torch.device("cpu"), torch.float16)


def test_optimise_false_keeps_plain_modules(plain, packed):
    assert not hasattr(plain.model, "fast") and isinstance(plain.model.h[0].attn.c_attn, nn.Linear)
    assert Session(plain).info()["inference"] == "plain PyTorch modules"
    assert Session(packed).info()["inference"] == packed.model.fast.reason


def test_interactive_threads_leave_a_core_to_the_ui():
    assert [fast.interactive_threads(n) for n in (1, 2, 4, 8, 64)] == [1, 1, 3, 7, 8]


# -- the analysis pass ----------------------------------------------------------------------------------


def _full(model, ids, n_vocab=50257):
    return Runner(model, reuse_cache=False, n_vocab=n_vocab).run(ids)


def _assert_same(got, want):
    assert got.attention.shape == want.attention.shape and got.residual.shape == want.residual.shape
    for name in ("top_logits", "logsumexp", "last_logits", "token_logprobs", "attention", "residual"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=2e-5, rtol=0, err_msg=name)
    # Ranks can only swap between near-equal logits.
    swapped = got.top_ids != want.top_ids
    assert swapped.mean() < 0.01


def test_common_prefix():
    assert [common_prefix(a, b) for a, b in [((1, 2, 3), (1, 2)), ((1, 2), (1, 3)), ((), (1,)), ((4,), (5,))]] == \
        [2, 1, 0, 0]


def test_analysis_pass_matches_the_traced_forward(packed, prompt_ids):
    """The derived statistics and weights and the preallocated buffers hold what a traced pass that
    keeps every weight gives (the pass runs the fused attention kernel: rounding differs a little)."""
    model, n_vocab = packed.model, 50257
    trace = Trace()
    logits = _logits(packed, prompt_ids, trace)
    out = _full(model, prompt_ids, n_vocab)
    np.testing.assert_allclose(out.attention, torch.stack(trace.attention)[:, 0].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(out.residual, torch.stack(trace.residual)[:, 0].numpy(), atol=2e-5, rtol=0)
    lse = torch.logsumexp(logits, -1)
    np.testing.assert_allclose(out.logsumexp, lse.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.last_logits, logits[-1].numpy(), atol=2e-5, rtol=0)
    following = torch.tensor(prompt_ids[1:]).unsqueeze(1)
    expected = (logits[:-1].gather(1, following).squeeze(1) - lse[:-1]).numpy()
    assert np.isnan(out.token_logprobs[0])
    np.testing.assert_allclose(out.token_logprobs[1:], expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(out.top_ids[:, 0], logits.argmax(-1).numpy())


def test_analysis_pass_in_chunks(packed, prompt_ids, monkeypatch):
    """Logits are reduced a few positions at a time; chunk edges change nothing."""
    want = _full(packed.model, prompt_ids, 50257)
    monkeypatch.setattr("gpt_tui.engine.analysis_pass.LOGIT_CHUNK", 7)
    _assert_same(_full(packed.model, prompt_ids, 50257), want)


def test_editing_the_end_reuses_the_cache_and_changes_nothing(packed, gpt2_tok):
    """Typing, deleting and editing: every result equals a pass from scratch."""
    runner = Runner(packed.model)
    texts = [PROMPT, PROMPT + " And", PROMPT + " And then", PROMPT[:40], PROMPT[:40] + " lazy cat",
             "Something else entirely.", "Something else entirely. Yes"]
    reused = []
    for text in texts:
        ids = gpt2_tok.encode(text)
        got = runner.run(ids)
        _assert_same(got, _full(packed.model, ids, 50257))
        reused.append(got.reused)
    assert reused[0] == 0 and reused[5] == 0  # nothing to reuse
    assert all(r > 0 for i, r in enumerate(reused) if i not in (0, 5))
    ids = gpt2_tok.encode(PROMPT)
    runner.run(ids)
    shorter = runner.run(ids[:-1])
    assert shorter.reused == len(ids) - 2  # a token deleted: only the new last position is run again
    _assert_same(shorter, _full(packed.model, ids[:-1], 50257))


def test_session_analyse_reuses_and_matches_reference(hf_dir, hf_model, gpt2_tok):
    session = Session(_load(hf_dir))
    first = session.analyse(PROMPT)
    second = session.analyse(PROMPT + " More")
    ids = gpt2_tok.encode(PROMPT + " More")
    with torch.no_grad():
        ref = hf_model(torch.tensor([ids]), output_attentions=True)
    np.testing.assert_allclose(second.attention, torch.stack(ref.attentions)[:, 0].numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(second.last_logits, ref.logits[0, -1].numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(second.attention[:, :, : first.n_tokens, : first.n_tokens], first.attention,
                               atol=1e-5, rtol=0)


def test_concurrent_passes_stay_correct(packed, gpt2_tok):
    """Two threads on one runner: each result is its own text's, whoever holds the cache."""
    runner = Runner(packed.model)
    texts = [PROMPT, PROMPT + " A", "Other words here", PROMPT + " A B"] * 2
    wants = {t: _full(packed.model, gpt2_tok.encode(t), 50257) for t in set(texts)}
    errors, done = [], []

    def work(chunk):
        try:
            for text in chunk:
                _assert_same(runner.run(gpt2_tok.encode(text)), wants[text])
                done.append(text)
        except BaseException as exc:  # a wrong result or a crash in the thread: reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(texts[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(done) == sorted(texts)  # every pass ran to the end and was checked


# -- reading weights ----------------------------------------------------------------------------------------


def test_owned_reader_gives_what_safetensors_gives(hf_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    path = hf_dir / "model.safetensors"
    ours, meta = fast.read_safetensors(path)
    theirs = load_file(str(path))
    assert list(ours) == list(theirs) and meta.get("format") == "pt"
    for name, value in theirs.items():
        assert ours[name].dtype == value.dtype and torch.equal(ours[name], value), name
    mixed = {"big": torch.randn(600, 600).to(torch.bfloat16), "ids": torch.arange(5), "flag": torch.tensor(True),
             "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5, dtype=torch.float16)}
    save_file(mixed, str(tmp_path / "mixed.safetensors"), metadata={"k": "v"})
    got, meta = fast.read_safetensors(tmp_path / "mixed.safetensors")
    assert meta == {"k": "v"}
    for name, value in mixed.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape and torch.equal(got[name], value)


def test_owned_reader_refuses_odd_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError):
        fast.read_safetensors(bad)
    header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    bad.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 8)  # data cut short
    with pytest.raises(ValueError):
        fast.read_safetensors(bad)


def test_a_small_kv_cache_grows_and_changes_nothing(packed, prompt_ids):
    model = packed.model
    cache = model.new_cache(capacity=3)
    with torch.inference_mode():
        parts = [model(torch.tensor([prompt_ids[i:i + 4]]), cache=cache)[0] for i in range(0, len(prompt_ids), 4)]
        full = model(torch.tensor([prompt_ids]))[0]
    assert cache.length == len(prompt_ids) and cache.keys[0].size(2) >= len(prompt_ids)
    torch.testing.assert_close(torch.cat(parts), full, atol=1e-5, rtol=0)
    big = model.new_cache(capacity=10_000)
    assert big.keys[0].size(2) == model.config.n_ctx
