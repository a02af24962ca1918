"""The views inside the layers against Hugging Face's GPT2LMHeadModel on a random checkpoint.

- the logit lens at every depth = HF's hidden state -> ln_f -> lm_head (the last hidden state is
  already normed: it is HF's logits), and mid-block = the residual entering ln_2 -> ln_f -> lm_head;
- the stages' parts (embedding, each attention and MLP output) equal HF's module outputs and sum to
  the residual entering HF's ln_f; their direct logits match a float64 recomputation from HF;
- compare's cosines match a float64 recomputation from HF's hidden states;
- the overview grid is the lens's top-1 everywhere; positions and sinusoids against their formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gpt_tui.engine.positions import PositionTable, downsample, evenly_spaced, sinusoidal

from .helpers import PROMPT

ATOL = 1e-4


def _hf_run(hf, ids):
    """HF's outputs plus every block's attention and MLP output, the residual entering each ln_2 and
    the residual entering ln_f (HF's last hidden state has ln_f applied already)."""
    captured: dict = {"attn": {}, "mlp": {}, "mid": {}}
    hooks = []
    for layer, block in enumerate(hf.transformer.h):
        hooks.append(block.attn.register_forward_hook(
            lambda _m, _a, out, layer=layer: captured["attn"].__setitem__(layer, out[0])))
        hooks.append(block.mlp.register_forward_hook(
            lambda _m, _a, out, layer=layer: captured["mlp"].__setitem__(layer, out)))
        hooks.append(block.ln_2.register_forward_pre_hook(
            lambda _m, args, layer=layer: captured["mid"].__setitem__(layer, args[0])))
    hooks.append(hf.transformer.ln_f.register_forward_pre_hook(
        lambda _m, args: captured.__setitem__("final", args[0])))
    try:
        with torch.no_grad():
            out = hf(torch.tensor([ids]), output_hidden_states=True)
    finally:
        for hook in hooks:
            hook.remove()
    return out, captured


def _hf_lens_logits(hf, vectors: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf.lm_head(hf.transformer.ln_f(vectors))


@pytest.fixture(scope="module")
def analysed(session, hf_model):
    analysis = session.analyse(PROMPT)
    out, captured = _hf_run(hf_model, analysis.ids.tolist())
    return analysis, out, captured


@pytest.mark.parametrize("position", [0, 7, -1])
def test_lens_at_every_depth_equals_hidden_states_through_ln_f(analysed, hf_model, position):
    analysis, out, captured = analysed
    L = hf_model.config.n_layer
    pos = position % analysis.n_tokens
    ref = [_hf_lens_logits(hf_model, out.hidden_states[d][0, pos]) for d in range(L)]
    ref.append(out.logits[0, pos])  # hidden_states[L] went through ln_f: HF's own logits
    ours = analysis.readout.lens_logits(analysis.residual[0::2, pos][:L])  # the depths before the last
    ours = np.vstack([ours, analysis.readout.lens_logits(analysis.final_hidden[pos:pos + 1], normed=True)])
    ref = torch.stack(ref).numpy()
    assert ours.shape == ref.shape == (L + 1, 50257)
    assert np.abs(ours - ref).max() < ATOL

    lens = analysis.lens(position, top=5)
    assert [e.name for e in lens.layers] == ["embed", *(f"block {i}" for i in range(L))]
    assert [e.depth for e in lens.layers] == list(range(L + 1))
    final_token = int(np.argmax(ref[-1]))
    assert lens.final_token == final_token and lens.token_id == int(analysis.ids[pos])
    for entry, logits in zip(lens.layers, torch.from_numpy(ref)):
        probs = logits.double().softmax(-1)
        top = torch.topk(probs, 5)
        assert entry.top_ids.tolist() == top.indices.tolist(), entry.name
        np.testing.assert_allclose(entry.top_probs, top.values.numpy(), atol=1e-5)
        entropy = float(-(probs * probs.log()).sum())
        assert entry.entropy == pytest.approx(entropy, abs=ATOL)
        assert entry.final_token_rank == int((logits > logits[final_token]).sum()) + 1
        assert entry.final_token_prob == pytest.approx(float(probs[final_token]), abs=1e-5)
    assert lens.layers[-1].final_token_rank == 1
    # The lens is not the final answer at every depth on this checkpoint (or the test would be blind).
    assert any(e.top_ids[0] != final_token for e in lens.layers[:-1])


def test_mid_block_lens_reads_the_residual_entering_ln_2(analysed, hf_model):
    analysis, out, captured = analysed
    L = hf_model.config.n_layer
    lens = analysis.lens(-1, top=3, mid=True)
    assert len(lens.layers) == L + 1 and len(lens.mid) == L  # `layers` stays one entry per boundary
    assert [e.name for e in lens.mid] == [f"block {i} attn" for i in range(L)]
    for layer, entry in enumerate(lens.mid):
        logits = _hf_lens_logits(hf_model, captured["mid"][layer][0, -1]).double()
        top = torch.topk(logits.softmax(-1), 3)
        assert entry.top_ids.tolist() == top.indices.tolist()
        np.testing.assert_allclose(entry.top_probs, top.values.numpy(), atol=1e-5)


def test_last_lens_entry_is_the_models_own_next_token_distribution(session, analysed):
    """Exactly the numbers `next` shows (temperature 1, nothing cut), not a recomputation."""
    from gpt_tui.engine.sampling import SamplingParams

    analysis, _, _ = analysed
    last = analysis.lens(-1, top=10).layers[-1]
    candidates = session.candidates(analysis.last_logits, SamplingParams(), top=10)
    assert last.top_ids.tolist() == [c.id for c in candidates]
    assert [float(p) for p in last.top_probs] == [c.prob for c in candidates]


def test_embedding_plus_every_block_output_is_the_final_residual(analysed, hf_model):
    analysis, out, captured = analysed
    L = hf_model.config.n_layer
    res = analysis.residual.astype(np.float64)  # (2L+1, T, C)
    parts = np.diff(res, axis=0)
    np.testing.assert_allclose(res[0], out.hidden_states[0][0].numpy(), atol=ATOL)
    for layer in range(L):
        np.testing.assert_allclose(parts[2 * layer], captured["attn"][layer][0].numpy(), atol=ATOL)
        np.testing.assert_allclose(parts[2 * layer + 1], captured["mlp"][layer][0].numpy(), atol=ATOL)
    hf_sum = out.hidden_states[0][0].double() + sum(
        captured["attn"][l][0].double() + captured["mlp"][l][0].double() for l in range(L))
    final = captured["final"][0].double()
    assert float((hf_sum - final).abs().max()) < ATOL  # the reference's own residual stream adds up
    assert np.abs(res[0] + parts.sum(0) - final.numpy()).max() < ATOL


@pytest.mark.parametrize("position", [3, -1])
def test_stages_against_a_float64_recomputation(analysed, hf_model, position):
    analysis, out, captured = analysed
    L = hf_model.config.n_layer
    pos = position % analysis.n_tokens
    st = analysis.stages(position)
    logits = out.logits[0, pos]
    token = int(logits.argmax())
    assert st.final_token == token and st.final_logit == pytest.approx(float(logits[token]), abs=ATOL)
    assert st.final_prob == pytest.approx(float(logits.double().softmax(-1)[token]), abs=1e-5)
    # Direct effects from HF's own parts, through ln_f with the final residual's scale held fixed.
    ln = hf_model.transformer.ln_f.requires_grad_(False)
    final = captured["final"][0, pos].double()
    scale = torch.sqrt(final.var(unbiased=False) + ln.eps)
    w_u = hf_model.lm_head.weight[token].detach().double()

    def direct(part):
        part = part.double()
        return float(((part - part.mean()) / scale * ln.weight.double()) @ w_u)

    assert st.embed_direct_logit == pytest.approx(direct(out.hidden_states[0][0, pos]), abs=ATOL)
    for b in st.blocks:
        attn, mlp = captured["attn"][b.layer][0, pos], captured["mlp"][b.layer][0, pos]
        assert b.attn_direct_logit == pytest.approx(direct(attn), abs=ATOL)
        assert b.mlp_direct_logit == pytest.approx(direct(mlp), abs=ATOL)
        assert b.attn_norm == pytest.approx(float(attn.double().norm()), abs=ATOL)
        assert b.mlp_norm == pytest.approx(float(mlp.double().norm()), abs=ATOL)
    assert [b.layer for b in st.blocks] == list(range(L))
    assert st.blocks[-1].resid_norm == pytest.approx(float(final.norm()), abs=ATOL) == st.final_norm
    assert st.bias_logit == pytest.approx(float(ln.bias.double() @ w_u), abs=ATOL)
    total = st.embed_direct_logit + sum(b.attn_direct_logit + b.mlp_direct_logit for b in st.blocks) + st.bias_logit
    assert total == pytest.approx(st.final_logit, abs=ATOL)  # linear given the scale: the parts add up exactly
    wte, wpe = hf_model.transformer.wte.weight.detach(), hf_model.transformer.wpe.weight.detach()
    assert st.token_norm == pytest.approx(float(wte[int(analysis.ids[pos])].norm()), abs=1e-5)
    assert st.position_norm == pytest.approx(float(wpe[pos].norm()), abs=1e-5)


@pytest.mark.parametrize("text_b", ["A fashion model", "A famous fashion model"])
def test_compare_cosines_match_float64_from_hidden_states(session, hf_model, text_b):
    result, a, b = session.compare("The machine learning model", text_b, top=3)
    L = hf_model.config.n_layer
    assert result.token_a == result.token_b == session.tokenizer.encode(" model")[0]
    assert result.token_cosine == pytest.approx(1.0, abs=1e-12)
    out_a, cap_a = _hf_run(hf_model, a.ids.tolist())
    out_b, cap_b = _hf_run(hf_model, b.ids.tolist())
    va = [out_a.hidden_states[d][0, result.position_a] for d in range(L)] + [cap_a["final"][0, result.position_a]]
    vb = [out_b.hidden_states[d][0, result.position_b] for d in range(L)] + [cap_b["final"][0, result.position_b]]
    expected = [float(torch.nn.functional.cosine_similarity(x.double(), y.double(), dim=0)) for x, y in zip(va, vb)]
    got = [layer.cosine for layer in result.layers]
    assert len(got) == L + 1
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if result.position_a == result.position_b:  # same token, same place: the same embedding
        assert got[0] == pytest.approx(1.0, abs=1e-12) and min(got[1:]) < 0.999
    else:  # the position embeddings differ, so the embedding's cosine is not 1
        assert got[0] < 1 - 1e-3
    # Each side's tops are that side's lens.
    assert result.layers[-1].a.top_ids.tolist() == a.lens(result.position_a, 3).layers[-1].top_ids.tolist()


def test_compare_follows_a_named_word(session):
    result, a, b = session.compare("the model of the model was here", "a model walked", word="model")
    assert result.position_a == 4 and result.position_b == 1  # the last occurrence in each
    from gpt_tui.engine.session import InputError

    with pytest.raises(InputError, match="does not occur"):
        session.compare("the model", "a cat", word="model")


def test_overview_grid_is_the_lens_top1_everywhere(analysed):
    analysis, _, _ = analysed
    calls = []
    assert analysis.lens_grid(should_stop=lambda: calls.append(1) or len(calls) > 1) is None  # stopped
    assert analysis.lens_grid_ready is None  # a stopped grid is not remembered
    grid = analysis.lens_grid()
    L = analysis.n_layer
    assert grid.top_ids.shape == grid.top_probs.shape == (L + 1, analysis.n_tokens)
    for pos in (0, 5, analysis.n_tokens - 1):
        lens = analysis.lens(pos, top=1)
        assert grid.top_ids[:, pos].tolist() == [int(e.top_ids[0]) for e in lens.layers]
        np.testing.assert_allclose(grid.top_probs[:, pos], [float(e.top_probs[0]) for e in lens.layers], atol=1e-5)
    assert grid.top_ids[-1].tolist() == analysis.top_ids[:, 0].tolist()
    assert analysis.lens_grid_ready is grid


def test_lens_needs_residuals(session):
    from gpt_tui.engine.session import InputError

    analysis = session.analyse(PROMPT, residual=False)
    with pytest.raises(InputError, match="without residuals"):
        analysis.lens(0)


def test_lens_on_a_compact_vocabulary_model(compact):
    """Ids the model never embedded have logit −inf: probability 0, and the entropy stays finite."""
    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    s = Session(load_model(str(compact.path), device="cpu", dtype="float32"))
    analysis = s.analyse(PROMPT)
    lens = analysis.lens(-1, top=5)
    rows = [compact.row_ids.index(int(i)) for i in lens.layers[0].top_ids]  # every top id is a real row
    ids = torch.tensor([[compact.row_ids.index(int(i)) for i in analysis.ids]])
    with torch.no_grad():
        out = compact.hf(ids, output_hidden_states=True)
        logits = compact.hf.lm_head(compact.hf.transformer.ln_f(out.hidden_states[0][0, -1]))
    probs = logits[:-1].double().softmax(-1)  # without the "unknown" row, which no id maps to here
    assert rows == torch.topk(probs, 5).indices.tolist()
    assert all(math.isfinite(e.entropy) and e.entropy > 0 for e in lens.layers)


# -- positions ---------------------------------------------------------------------------------------------


def test_position_table_against_the_reference(session, hf_model):
    table = session.position_table()
    wpe = hf_model.transformer.wpe.weight.detach().double().numpy()
    assert (table.kind, table.n_positions, table.d_model) == ("learned", *wpe.shape)
    np.testing.assert_allclose(table.norms, np.linalg.norm(wpe, axis=1), rtol=1e-6)
    unit = wpe / np.linalg.norm(wpe, axis=1, keepdims=True)
    np.testing.assert_allclose(table.neighbour_cosine, (unit[1:] * unit[:-1]).sum(1), atol=1e-6)
    np.testing.assert_allclose(table.cosine_matrix(), unit @ unit.T, atol=1e-6)


def test_sinusoids_follow_the_papers_formula():
    P, C = 50, 16
    table = sinusoidal(P, C)
    for p in (0, 1, 37):
        for i in range(C // 2):
            angle = p / 10000 ** (2 * i / C)
            assert table[p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    # Every position has the same length: a sine and a cosine of one angle per pair of dimensions.
    np.testing.assert_allclose(PositionTable("sinusoidal", table).norms, math.sqrt(C / 2), rtol=1e-6)
    assert sinusoidal(4, 7).shape == (4, 7)  # an odd width keeps its last sine


def test_downsampling_picks_values_and_never_averages():
    matrix = np.arange(256 * 384, dtype=np.float32).reshape(256, 384)
    picked, rows, cols = downsample(matrix, 64, 96)
    assert picked.shape == (64, 96) and rows[0] == 0 and rows[-1] == 255 and cols[-1] == 383
    assert np.array_equal(picked, matrix[np.ix_(rows, cols)])
    assert evenly_spaced(10, 20).tolist() == list(range(10))


def test_a_model_without_a_position_table_says_so(gpt2_tok):
    """Rotary or relative positions have no W_pos: the views say so instead of drawing nothing."""
    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT
    from gpt_tui.engine.loading import LoadedModel
    from gpt_tui.engine.session import Session

    model = GPT(GPTConfig(n_ctx=16, n_embd=16, n_layer=1, n_head=2)).eval()
    del model.wpe
    s = Session(LoadedModel(model, gpt2_tok, name="no-table", source="test"))
    table = s.position_table()
    assert (table.kind, table.n_positions) == ("none", 0)
    tokens, positions = s.readout.embedding_parts(np.array([1, 2]))
    assert tokens.shape == (2, 16) and positions is None
    assert s.info()["positions"] == "none"
    info = s.info()
    assert sum(m["total"] for m in info["matrices"]) == info["parameters"] == model.num_parameters()
