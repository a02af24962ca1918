"""Every CLI command's JSON against the reference implementation (HF transformers, tiktoken)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

TEXT = "The most effective way to learn computer science is"


def run_json(cli, *args, input=None):
    result = cli(*args, "--json", input=input)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def hf_forward(reference, ids):
    with torch.no_grad():
        return reference(torch.tensor([ids]), output_attentions=True)


def gpt2_ids(text):
    from gpt_tui.engine.tokenizer import get_tokenizer

    return get_tokenizer("gpt2").encode(text)


def test_tokenize_strawberry_in_both_encodings(cli):
    gpt2 = run_json(cli, "tokenize", "strawberry")
    assert [t["text"] for t in gpt2["tokens"]] == ["st", "raw", "berry"]
    assert (gpt2["model"], gpt2["encoding"], gpt2["n_tokens"], gpt2["n_chars"]) == ("bundled", "gpt2", 3, 10)
    cl100k = run_json(cli, "tokenize", "strawberry", "--encoding", "cl100k_base")
    assert [t["text"] for t in cl100k["tokens"]] == ["str", "aw", "berry"]


def test_tokenize_bytes_and_spans_rebuild_the_text(cli):
    text = "naïve 草莓 🍓!"
    out = run_json(cli, "tokenize", text)
    assert b"".join(bytes.fromhex(t["bytes"]) for t in out["tokens"]) == text.encode()
    assert out["tokens"][0]["start"] == 0 and out["tokens"][-1]["end"] == len(text)
    assert "\ufffd" not in "".join(t["text"] for t in out["tokens"])
    assert [t["id"] for t in out["tokens"]] == gpt2_ids(text)


def test_tokenize_reads_stdin(cli):
    assert [t["text"] for t in run_json(cli, "tokenize", input="strawberry")["tokens"]] == ["st", "raw", "berry"]


def test_invalid_utf8_on_stdin_is_one_clear_line(cli):
    result = cli("tokenize", input=b"ok \xff\xfe")
    assert result.exit_code == 1
    assert result.stderr.strip() == "gpt-tui: stdin is not valid UTF-8 (byte 0xff at offset 3)"


def test_special_token_text_stays_text_unless_asked(cli):
    plain = run_json(cli, "tokenize", "<|endoftext|>")
    assert 50256 not in [t["id"] for t in plain["tokens"]] and plain["n_tokens"] > 1
    special = run_json(cli, "tokenize", "<|endoftext|>", "--allow-special")
    assert [t["id"] for t in special["tokens"]] == [50256]


def test_next_equals_reference(cli, reference, model_dir):
    out = run_json(cli, "next", TEXT, "--model", model_dir, "--top", 20, "-t", 0.7, "-k", 10, "-p", 0.6)
    logits = hf_forward(reference, gpt2_ids(TEXT)).logits[0, -1]
    probs = logits.softmax(-1)
    top = torch.topk(logits, 20)
    assert [c["id"] for c in out["candidates"]] == top.indices.tolist()
    for c, cum in zip(out["candidates"], probs[top.indices].cumsum(0)):
        assert abs(c["logit"] - float(logits[c["id"]])) < 1e-4
        assert abs(c["prob"] - float(probs[c["id"]])) < 1e-5
        assert abs(c["cum_prob"] - float(cum)) < 1e-5
    # The knobs, recomputed from the reference's logits: T, then top-10, then top-p 0.6.
    scaled = (logits / 0.7)
    kept = torch.topk(scaled, 10)
    p = kept.values.softmax(-1)
    n_keep = int(((p.cumsum(0) - p) < 0.6).sum())
    expected = dict(zip(kept.indices[:n_keep].tolist(), (p[:n_keep] / p[:n_keep].sum()).tolist()))
    for c in out["candidates"]:
        assert abs(c["adjusted_prob"] - expected.get(c["id"], 0.0)) < 1e-5
    assert out["survivors"] == n_keep


def test_attention_equals_reference(cli, reference, model_dir):
    out = run_json(cli, "attention", TEXT, "--model", model_dir, "--layer", 2, "--head", 1)
    expected = hf_forward(reference, gpt2_ids(TEXT)).attentions[2][0, 1]
    assert (out["layer"], out["head"]) == (2, 1)
    assert [t["id"] for t in out["tokens"]] == gpt2_ids(TEXT)
    np.testing.assert_allclose(np.array(out["weights"]), expected.numpy(), atol=1e-4)


def test_score_equals_reference(cli, reference, model_dir):
    out = run_json(cli, "score", TEXT, "--model", model_dir)
    ids = gpt2_ids(TEXT)
    with torch.no_grad():
        ref = reference(torch.tensor([ids]), labels=torch.tensor([ids]))
    logprobs = ref.logits[0, :-1].log_softmax(-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)
    assert out["tokens"][0]["logprob"] is None
    np.testing.assert_allclose([t["logprob"] for t in out["tokens"][1:]], logprobs.numpy(), atol=1e-4)
    assert abs(out["mean_logprob"] + float(ref.loss)) < 1e-4
    assert abs(out["perplexity"] - math.exp(float(ref.loss))) < 1e-3 * math.exp(float(ref.loss))


def test_generate_greedy_equals_reference_and_seeds_repeat(cli, reference, model_dir):
    ids = gpt2_ids("Once upon a time")
    out = run_json(cli, "generate", "Once upon a time", "--model", model_dir, "-t", 0, "--max-new-tokens", 12, "--no-stop-at-eot")
    with torch.no_grad():
        ref = reference.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, pad_token_id=50256)
    assert [t["id"] for t in out["tokens"]] == ref[0, len(ids):].tolist()
    assert all(t["prob"] == 1.0 for t in out["tokens"])  # greedy: the whole mass on the choice
    first = run_json(cli, "generate", "Once upon a time", "--model", model_dir, "--seed", 3, "--max-new-tokens", 15)
    again = run_json(cli, "generate", "Once upon a time", "--model", model_dir, "--seed", 3, "--max-new-tokens", 15)
    assert first["completion"] == again["completion"] and first["seed"] == 3
    assert first["prompt"] == "Once upon a time"
    assert first["completion"] == "".join(t["text"] for t in first["tokens"] if t["id"] != 50256)


def test_neighbours_cosines_equal_numpy(cli, reference, model_dir):
    out = run_json(cli, "neighbours", " king", "--model", model_dir, "--top", 5)
    wte = reference.transformer.wte.weight.detach().numpy()
    unit = wte / np.linalg.norm(wte, axis=1, keepdims=True)
    king = out["token"]["id"]
    assert out["token"]["text"] == " king"
    cos = unit @ unit[king]
    cos[king] = -np.inf
    assert [n["id"] for n in out["neighbours"]] == list(np.argsort(-cos)[:5])
    np.testing.assert_allclose([n["cosine"] for n in out["neighbours"]], np.sort(cos)[::-1][:5], atol=1e-5)
    mean = wte.mean(axis=0)  # no token counts: every row is searched, so the common direction is their mean
    assert out["common_cosine"] == pytest.approx(unit[king] @ mean / np.linalg.norm(mean), abs=1e-5)
    alias = run_json(cli, "neighbors", "--id", king, "--model", model_dir, "--top", 5)
    assert alias["neighbours"] == out["neighbours"]


def test_info_counts_parameters_like_the_reference(cli, reference, model_dir):
    out = run_json(cli, "info", "--model", model_dir)
    assert out["parameters"] == reference.num_parameters()
    assert (out["n_layer"], out["n_head"], out["n_embd"], out["n_ctx"]) == (3, 3, 48, 32)
    assert out["matrices"][0]["count"] == 50257 * 48  # W_E = vocab × d_model
    assert sum(m["total"] for m in out["matrices"]) == out["parameters"]


def test_text_longer_than_the_context_keeps_the_end(cli, model_dir):
    text = " ".join(["word"] * 100)  # 100 tokens, context 32
    out = run_json(cli, "next", text, "--model", model_dir)
    assert out["n_tokens"] == 32 and out["dropped"] == 68
    human = cli("next", text, "--model", model_dir)
    assert "kept the last 32 tokens (68 dropped" in human.stderr


def test_human_output_streams_and_shows_tables(cli, model_dir):
    gen = cli("generate", "Hello", "--model", model_dir, "--seed", 1, "--max-new-tokens", 5)
    assert gen.exit_code == 0 and gen.stdout.startswith("Hello") and "seed 1" in gen.stderr
    nxt = cli("next", "Hello", "--model", model_dir, "-k", 2)
    assert nxt.exit_code == 0 and "2 tokens survive" in nxt.stdout
    att = cli("attention", "a b c", "--model", model_dir)
    assert att.exit_code == 0 and "layer 0, head 0" in att.stdout


def test_streamed_text_is_whole_characters(cli, tmp_path):
    """A model that can only write the two byte-tokens of “ streams characters, never escapes."""
    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT
    from gpt_tui.engine.loading import save_model

    halves = gpt2_ids("“")  # b"\xe2\x80" + b"\x9c" in GPT-2
    assert len(halves) == 2
    model = GPT(GPTConfig(n_ctx=16, n_embd=16, n_layer=1, n_head=2, n_rows=2))
    model.init_weights(seed=0)
    model.set_row_ids(torch.tensor(sorted(halves)))
    save_model(model, tmp_path, meta={"tokenizer": "gpt2"})
    as_json = run_json(cli, "generate", "Hi", "--model", tmp_path, "--seed", 1, "--max-new-tokens", 12)
    assert any("\\x" in t["text"] for t in as_json["tokens"])  # the tokens themselves are halves
    streamed = cli("generate", "Hi", "--model", tmp_path, "--seed", 1, "--max-new-tokens", 12)
    assert streamed.exit_code == 0 and "\\x" not in streamed.stdout
    assert streamed.stdout.rstrip("\n") == "Hi" + as_json["completion"]
