"""`lens`, `stages`, `compare`, `positions`, `chat`: their JSON against the reference (HF transformers)
and the schemas of issue 11; errors as one line with the CLI's exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

TEXT = "The most effective way to learn computer science is"
N_LAYER = 3  # the reference fixture's


def run_json(cli, *args, input=None):
    result = cli(*args, "--json", input=input)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def gpt2_ids(text):
    from gpt_tui.engine.tokenizer import get_tokenizer

    return get_tokenizer("gpt2").encode(text)


def _hidden(reference, ids):
    final = {}
    hook = reference.transformer.ln_f.register_forward_pre_hook(lambda _m, args: final.__setitem__("x", args[0]))
    try:
        with torch.no_grad():
            out = reference(torch.tensor([ids]), output_hidden_states=True)
    finally:
        hook.remove()
    return out, final["x"]


def test_lens_json_schema_and_values(cli, reference, model_dir):
    out = run_json(cli, "lens", TEXT, "--model", model_dir, "--top", 4)
    ids = gpt2_ids(TEXT)
    assert set(out) >= {"model", "position", "token", "layers"}
    assert out["position"] == len(ids) - 1  # the last token by default
    assert out["token"] == {"id": ids[-1], "text": " is"}
    assert [e["layer"] for e in out["layers"]] == list(range(N_LAYER + 1))
    assert [e["name"] for e in out["layers"]] == ["embed", "block 0", "block 1", "block 2"]
    assert "mid" not in out
    hf, _ = _hidden(reference, ids)
    with torch.no_grad():
        ref = [reference.lm_head(reference.transformer.ln_f(hf.hidden_states[d][0, -1])) for d in range(N_LAYER)]
    ref.append(hf.logits[0, -1])
    final = int(ref[-1].argmax())
    for entry, logits in zip(out["layers"], ref):
        assert set(entry) == {"layer", "name", "top", "entropy", "final_token_rank", "final_token_prob"}
        probs = logits.double().softmax(-1)
        top = torch.topk(probs, 4)
        assert [t["id"] for t in entry["top"]] == top.indices.tolist()
        np.testing.assert_allclose([t["prob"] for t in entry["top"]], top.values.numpy(), atol=1e-5)
        assert all(set(t) == {"id", "text", "prob"} for t in entry["top"])
        assert entry["entropy"] == pytest.approx(float(-(probs * probs.log()).sum()), abs=1e-4)
        assert entry["final_token_rank"] == int((logits > logits[final]).sum()) + 1
        assert entry["final_token_prob"] == pytest.approx(float(probs[final]), abs=1e-5)


def test_last_lens_entry_equals_next_exactly(cli, model_dir):
    lens = run_json(cli, "lens", TEXT, "--model", model_dir, "--top", 8)
    nxt = run_json(cli, "next", TEXT, "--model", model_dir, "--top", 8)
    assert lens["layers"][-1]["top"] == [{k: c[k] for k in ("id", "text", "prob")} for c in nxt["candidates"]]


def test_lens_position_and_mid(cli, model_dir):
    ids = gpt2_ids(TEXT)
    first = run_json(cli, "lens", TEXT, "--model", model_dir, "--position", 2, "--mid")
    assert first["position"] == 2 and first["token"]["id"] == ids[2]
    assert len(first["layers"]) == N_LAYER + 1  # one entry per block boundary, whatever --mid says
    assert [e["name"] for e in first["mid"]] == ["block 0 attn", "block 1 attn", "block 2 attn"]
    assert [e["layer"] for e in first["mid"]] == [0, 1, 2]
    last = run_json(cli, "lens", TEXT, "--model", model_dir, "--position", -1)
    assert last["position"] == len(ids) - 1
    bad = cli("lens", TEXT, "--model", model_dir, "--position", 99)
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1
    assert f"the text has {len(ids)} tokens" in bad.stderr and "Traceback" not in bad.stderr


def test_lens_reads_stdin_and_prints_a_table(cli, model_dir):
    out = run_json(cli, "lens", "--model", model_dir, input=TEXT)
    assert out["token"]["text"] == " is"
    human = cli("lens", TEXT, "--model", model_dir)
    assert human.exit_code == 0 and "embed" in human.stdout and "block 2" in human.stdout
    assert "final LayerNorm" in human.stdout


def test_stages_json_adds_up_to_the_reference_logit(cli, reference, model_dir):
    out = run_json(cli, "stages", TEXT, "--model", model_dir, "--position", 3)
    ids = gpt2_ids(TEXT)
    assert set(out) >= {"position", "embed", "blocks", "final_token"}
    assert set(out["embed"]) >= {"token_norm", "position_norm"}
    assert all(set(b) == {"layer", "attn_norm", "mlp_norm", "attn_direct_logit", "mlp_direct_logit", "resid_norm"}
               for b in out["blocks"])
    assert [b["layer"] for b in out["blocks"]] == [0, 1, 2]
    assert set(out["final_token"]) >= {"id", "text", "logit"}
    hf, final = _hidden(reference, ids)
    logits = hf.logits[0, 3]
    assert out["final_token"]["id"] == int(logits.argmax())
    assert out["final_token"]["logit"] == pytest.approx(float(logits.max()), abs=1e-4)
    parts = out["embed"]["direct_logit"] + sum(b["attn_direct_logit"] + b["mlp_direct_logit"] for b in out["blocks"])
    assert parts + out["bias_logit"] == pytest.approx(out["final_token"]["logit"], abs=1e-4)
    wte, wpe = reference.transformer.wte.weight.detach(), reference.transformer.wpe.weight.detach()
    assert out["embed"]["token_norm"] == pytest.approx(float(wte[ids[3]].norm()), abs=1e-5)
    assert out["embed"]["position_norm"] == pytest.approx(float(wpe[3].norm()), abs=1e-5)
    assert out["blocks"][-1]["resid_norm"] == pytest.approx(float(final[0, 3].norm()), abs=1e-4)
    assert "linearised" in out["direct_logit"]


def test_compare_json(cli, reference, model_dir):
    out = run_json(cli, "compare", "machine learning model", "fashion model", "--model", model_dir)
    assert out["word"] == " model"
    assert out["a"]["position"] == 2 and out["b"]["position"] == 1
    assert out["token_cosine"] == pytest.approx(1.0)
    assert [l["layer"] for l in out["layers"]] == list(range(N_LAYER + 1))
    assert all(set(l) == {"layer", "name", "cosine", "a_top", "b_top"} for l in out["layers"])
    ha, fa = _hidden(reference, gpt2_ids("machine learning model"))
    hb, fb = _hidden(reference, gpt2_ids("fashion model"))
    va = [ha.hidden_states[d][0, 2] for d in range(N_LAYER)] + [fa[0, 2]]
    vb = [hb.hidden_states[d][0, 1] for d in range(N_LAYER)] + [fb[0, 1]]
    expected = [float(torch.nn.functional.cosine_similarity(x.double(), y.double(), dim=0)) for x, y in zip(va, vb)]
    np.testing.assert_allclose([l["cosine"] for l in out["layers"]], expected, atol=1e-5)
    named = run_json(cli, "compare", "the model is big", "a model walked in", "--word", "model", "--model", model_dir)
    assert (named["a"]["position"], named["b"]["position"]) == (1, 1) and named["word"] == "model"
    missing = cli("compare", "a cat", "a dog", "--word", "model", "--model", model_dir)
    assert missing.exit_code == 1 and "does not occur" in missing.stderr and missing.stderr.count("\n") == 1


def test_positions_json(cli, reference, model_dir):
    out = run_json(cli, "positions", "--model", model_dir)
    wpe = reference.transformer.wpe.weight.detach().double().numpy()
    assert (out["kind"], out["n_positions"], out["d_model"]) == ("learned", 32, 48)
    np.testing.assert_allclose(out["norms"], np.linalg.norm(wpe, axis=1), rtol=1e-6)
    unit = wpe / np.linalg.norm(wpe, axis=1, keepdims=True)
    np.testing.assert_allclose(out["neighbour_cosine"], (unit[1:] * unit[:-1]).sum(1), atol=1e-6)
    np.testing.assert_allclose(out["sinusoidal"]["norms"], np.sqrt(48 / 2), rtol=1e-6)
    assert len(out["sinusoidal"]["neighbour_cosine"]) == 31


def test_chat_json_is_the_document_and_its_continuation(cli, model_dir):
    out = run_json(cli, "chat", "-s", "Be brief.", "user: Hi", "--model", model_dir, "--max-new-tokens", 6, "--seed", 1, "-t", 0)
    assert out["document"] == "<|endoftext|>Be brief.\n\nUser: Hi\nAssistant:"
    assert out["format"] == "plain" and out["special"] == [{"start": 0, "end": 13, "text": "<|endoftext|>"}]
    assert [t["role"] for t in out["turns"]] == ["system", "user"]
    greedy = run_json(cli, "generate", "<|endoftext|>Be brief.\n\nUser: Hi\nAssistant:", "--allow-special",
                      "--model", model_dir, "--max-new-tokens", 6, "-t", 0, "--seed", 1)
    assert greedy["completion"].startswith(out["reply"]) and out["reply"]  # the same continuation, up to a stop
    piped = run_json(cli, "chat", "--model", model_dir, "--max-new-tokens", 0, input='[{"role": "user", "content": "Hi"}]')
    assert piped["document"] == "<|endoftext|>User: Hi\nAssistant:" and piped["reply"] is None
    bad = cli("chat", "robot: beep", "--model", model_dir)
    assert bad.exit_code == 2 and "ROLE: TEXT" in bad.stderr


def test_score_honours_allow_special(cli, model_dir):
    plain = run_json(cli, "score", "<|endoftext|>Hello", "--model", model_dir)
    special = run_json(cli, "score", "<|endoftext|>Hello", "--model", model_dir, "--allow-special")
    assert special["tokens"][0]["id"] == 50256 and 50256 not in [t["id"] for t in plain["tokens"]]


def test_info_explains_the_parameter_table(cli, model_dir):
    out = run_json(cli, "info", "--model", model_dir)
    assert out["matrices"][0]["formula"] == "vocabulary × d_model = 50,257 × 48 = 2,412,336"
    assert out["positions"] == "learned" and out["kv_cache_bytes_per_token"] == 2 * 3 * 48 * 4
    human = cli("info", "--model", model_dir)
    assert "Biases are counted" in human.stdout and "2,412,336" in human.stdout
    json.dumps(out)  # plain JSON values only
