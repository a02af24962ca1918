"""`gpt-tui next/attention/score/lens --model DIR --json` on Llama-, Qwen2-, Qwen3-, Gemma- and gpt-oss-shaped
checkpoints the engine tests never saw (other seeds, other shapes) equal `transformers` within 1e-4."""

from __future__ import annotations

import json

import pytest
import torch

from tests.engine.families import build

TOL = 1e-4
TEXT = "Grüße, the quick brown fox 🦊 jumps over the lazy dog again and again."
UNSEEN = {"num_hidden_layers": 2, "hidden_size": 48, "num_attention_heads": 6, "num_key_value_heads": 2}


def run_json(cli, *args):
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module", params=["llama", "qwen2", "qwen3", "gemma2", "gemma3", "gpt_oss"])
def unseen(request, tmp_path_factory):
    """(family, transformers model, directory, the ids the model's own tokenizer gives TEXT)."""
    from gpt_tui.engine.hf_tokenizer import tokenizer_for_dir

    path = tmp_path_factory.mktemp(f"unseen-{request.param}")
    head_dim = {"qwen3": 12, "gemma2": 8, "gemma3": 8}.get(request.param)
    extra = {**UNSEEN, **({"head_dim": head_dim} if head_dim else {})}
    if request.param in ("gemma3", "gpt_oss"):
        extra["layer_types"] = ["sliding_attention", "full_attention"]
    hf = build(request.param, path, seed=11, overrides=extra)
    tok = tokenizer_for_dir(path)
    return request.param, hf, path, [*tok.prefix_ids, *tok.encode(TEXT)]


def _reference(hf, ids):
    with torch.no_grad():
        return hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)


def test_next(cli, unseen):
    name, hf, path, ids = unseen
    out = run_json(cli, "next", TEXT, "--model", path, "--device", "cpu", "--dtype", "float32", "--top", 10)
    assert out["n_tokens"] == len(ids)
    logits = _reference(hf, ids).logits[0, -1]
    probs = logits[: hf.config.vocab_size - 6].softmax(-1)  # over the tokenizer's ids (the rest is padding)
    want = torch.topk(logits[: hf.config.vocab_size - 6], 10)
    assert [c["id"] for c in out["candidates"]] == want.indices.tolist()
    for c in out["candidates"]:
        assert abs(c["logit"] - float(logits[c["id"]])) <= TOL
        assert abs(c["prob"] - float(probs[c["id"]])) <= TOL


def test_attention_every_layer_and_head(cli, unseen):
    name, hf, path, ids = unseen
    ref = _reference(hf, ids).attentions
    for layer in range(len(ref)):
        for head in (0, hf.config.num_attention_heads - 1):
            out = run_json(cli, "attention", TEXT, "--model", path, "--device", "cpu", "--dtype", "float32",
                           "--layer", layer, "--head", head)
            got = torch.tensor(out["weights"])
            assert (got - ref[layer][0, head]).abs().max() <= TOL
            assert [t["id"] for t in out["tokens"]] == ids


def test_score(cli, unseen):
    name, hf, path, ids = unseen
    out = run_json(cli, "score", TEXT, "--model", path, "--device", "cpu", "--dtype", "float32")
    logits = _reference(hf, ids).logits[0, :, : hf.config.vocab_size - 6]
    logprobs = logits.log_softmax(-1)
    assert out["tokens"][0]["logprob"] is None
    for t, token in enumerate(out["tokens"][1:], 1):
        assert token["id"] == ids[t]
        assert abs(token["logprob"] - float(logprobs[t - 1, ids[t]])) <= TOL


def test_lens(cli, unseen):
    """Each depth through the model's own final norm, unembedding and soft-cap."""
    name, hf, path, ids = unseen
    out = run_json(cli, "lens", TEXT, "--model", path, "--device", "cpu", "--dtype", "float32", "--top", 3,
                   "--position", -1)
    ref = _reference(hf, ids)
    states = ref.hidden_states
    n_vocab = hf.config.vocab_size - 6
    cap = getattr(hf.config, "final_logit_softcapping", None)
    with torch.no_grad():
        for depth, entry in enumerate(out["layers"]):
            h = states[depth][0, -1]
            normed = h if depth == len(states) - 1 else hf.model.norm(h)  # transformers' last state is normed
            logits = hf.lm_head(normed)
            if cap is not None:
                logits = cap * torch.tanh(logits / cap)
            probs = logits[:n_vocab].softmax(-1)
            top = torch.topk(probs, 3)
            assert [t["id"] for t in entry["top"]] == top.indices.tolist(), depth
            assert max(abs(t["prob"] - float(p)) for t, p in zip(entry["top"], top.values)) <= TOL


def test_tokenize_uses_the_models_own_tokenizer(cli, unseen):
    from tokenizers import Tokenizer

    name, hf, path, ids = unseen
    out = run_json(cli, "tokenize", TEXT, "--model", path)
    want = Tokenizer.from_file(str(path / "tokenizer.json")).encode(TEXT, add_special_tokens=False).ids
    assert [t["id"] for t in out["tokens"]] == want
    assert b"".join(bytes.fromhex(t["bytes"]) for t in out["tokens"]) == TEXT.encode()


def test_attention_says_what_the_sink_takes(cli, unseen):
    """gpt-oss: each query's weights on the tokens and its sink's share add up to 1; the sliding
    layer names its window."""
    name, hf, path, ids = unseen
    out = run_json(cli, "attention", TEXT, "--model", path, "--device", "cpu", "--dtype", "float32", "-l", "0", "-H", "1")
    if name != "gpt_oss":  # no sinks: the rows sum to 1 and nothing is said of a sink
        assert "sink" not in out and torch.allclose(torch.tensor(out["weights"]).sum(-1), torch.ones(len(ids)))
        return
    assert out["window"] == 4
    rows = torch.tensor(out["weights"]).sum(-1)
    sink = torch.tensor(out["sink"])
    assert (sink > 0).any() and torch.allclose(rows + sink, torch.ones_like(rows), atol=1e-6)
