"""Every checkpoint format loads to the same model: logits compared with the HF reference."""

from __future__ import annotations

import json
import shutil

import pytest
import numpy as np
import torch
from safetensors.torch import save_file

from gpt_tui.engine.loading import FORMAT, ModelLoadError, load_model, save_model
from gpt_tui.engine.session import Session
from gpt_tui.engine.tokenizer import get_tokenizer

from .helpers import hf_logits, make_hf_model, nanogpt_checkpoint, our_logits

ATOL = 1e-4


def _load(path, dtype="float32"):
    return load_model(str(path), device="cpu", dtype=dtype)


def _assert_matches(loaded, hf, ids):
    torch.testing.assert_close(our_logits(loaded, ids), hf_logits(hf, ids), atol=ATOL, rtol=0)


# -- Hugging Face directories and lone files ---------------------------------------------------------


def test_hf_directory_metadata(loaded, hf_dir, hf_model):
    """The loaded model knows its shape, device, dtype, name and tokenizer."""
    cfg = loaded.config
    hc = hf_model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.n_ctx, cfg.vocab_size) == (
        hc.n_layer, hc.n_head, hc.n_embd, hc.n_positions, hc.vocab_size)
    assert loaded.device.type == "cpu" and loaded.dtype == torch.float32
    assert loaded.name == hf_dir.name and loaded.source == str(hf_dir)
    assert loaded.tokenizer is get_tokenizer("gpt2")
    assert not loaded.model.training


@pytest.mark.parametrize("prefix", ["transformer.", ""])
def test_lone_safetensors_next_to_a_config(prefix, hf_model, tmp_path, prompt_ids):
    """A bare HF state dict in a .safetensors file, with or without `transformer.`; n_head from config.json."""
    state = {k.removeprefix("transformer.") if not prefix else k: v.contiguous()
             for k, v in hf_model.state_dict().items() if k != "lm_head.weight"}
    assert any(k.startswith("transformer.") for k in state) == bool(prefix)
    save_file(state, str(tmp_path / "weights.safetensors"))
    hf_model.config.to_json_file(str(tmp_path / "config.json"))
    loaded = _load(tmp_path / "weights.safetensors")
    assert loaded.config.n_head == hf_model.config.n_head
    _assert_matches(loaded, hf_model, prompt_ids)


def test_lone_safetensors_without_a_config(tmp_path, prompt_ids):
    """With no config.json anywhere, the shape comes from the tensors and heads are 64 wide."""
    hf = make_hf_model(seed=1, n_embd=128, n_head=2, n_layer=1, n_positions=32)
    state = {k: v.contiguous() for k, v in hf.state_dict().items()}  # lm_head.weight included, tied
    save_file({k: v.clone() for k, v in state.items()}, str(tmp_path / "gpt.safetensors"))
    loaded = _load(tmp_path / "gpt.safetensors")
    cfg = loaded.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.n_ctx) == (1, 2, 128, 32)
    _assert_matches(loaded, hf, prompt_ids[:32])


def test_untied_lm_head_is_refused(hf_model, tmp_path):
    state = {k: v.clone().contiguous() for k, v in hf_model.state_dict().items()}
    state["lm_head.weight"] = state["lm_head.weight"] + 0.01
    save_file(state, str(tmp_path / "untied.safetensors"))
    with pytest.raises(ModelLoadError, match="lm_head is not tied"):
        _load(tmp_path / "untied.safetensors")


def test_hf_bin_buffers_and_tied_head_are_ignored(hf_bin_dir):
    """The pickle carries lm_head.weight and attn.bias/masked_bias; none becomes a parameter."""
    raw = torch.load(hf_bin_dir / "pytorch_model.bin", weights_only=True)
    assert "lm_head.weight" in raw and "transformer.h.0.attn.masked_bias" in raw
    loaded = _load(hf_bin_dir)
    names = set(loaded.model.state_dict())
    assert not any(n.endswith((".attn.bias", ".attn.masked_bias")) or n.startswith("lm_head") for n in names)


# -- nanoGPT ckpt.pt ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix,buffers", [("", False), ("_orig_mod.", False), ("", True)],
                         ids=["plain", "compiled", "with-mask-buffers"])
def test_nanogpt_checkpoint(prefix, buffers, hf_model, tmp_path, prompt_ids):
    torch.save(nanogpt_checkpoint(hf_model, prefix=prefix, buffers=buffers), tmp_path / "ckpt.pt")
    loaded = _load(tmp_path / "ckpt.pt")
    assert loaded.config.n_head == hf_model.config.n_head and loaded.config.bias
    _assert_matches(loaded, hf_model, prompt_ids)


def test_nanogpt_padded_vocabulary(hf_model, tmp_path, prompt_ids):
    """nanoGPT pads the vocabulary to 50304: the extra ids exist but the session ignores them."""
    torch.save(nanogpt_checkpoint(hf_model, pad_to=50304), tmp_path / "ckpt.pt")
    loaded = _load(tmp_path / "ckpt.pt")
    assert loaded.config.vocab_size == 50304
    torch.testing.assert_close(our_logits(loaded, prompt_ids)[:, :50257], hf_logits(hf_model, prompt_ids),
                               atol=ATOL, rtol=0)
    session = Session(loaded)
    assert session.n_vocab == 50257
    analysis = session.analyse("Hello there")
    assert analysis.last_logits.shape == (50257,) and analysis.top_ids.max() < 50257
    # The padding rows are not tokens: never neighbours, even of a vector equal to one of them.
    padding_row = loaded.model.wte.weight[50300].detach().float()
    result = session.nearest(padding_row, "padding", top=5)
    assert result.searched == 50257 and all(n.id < 50257 for n in result.neighbours)


def test_nanogpt_without_biases(tmp_path, prompt_ids):
    """bias=False: no biases in linear layers or layer norms; the reference has them all zero."""
    hf = make_hf_model(seed=2)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
    torch.save(nanogpt_checkpoint(hf, bias=False, buffers=True), tmp_path / "ckpt.pt")
    loaded = _load(tmp_path / "ckpt.pt")
    assert not loaded.config.bias
    assert not any(n.endswith(".bias") for n in loaded.model.state_dict())
    _assert_matches(loaded, hf, prompt_ids)


def test_nanogpt_bias_flag_must_match_the_tensors(hf_model, tmp_path):
    ckpt = nanogpt_checkpoint(hf_model, bias=False)
    ckpt["model_args"]["bias"] = True
    torch.save(ckpt, tmp_path / "ckpt.pt")
    with pytest.raises(ModelLoadError, match="bias=True but the tensors disagree"):
        _load(tmp_path / "ckpt.pt")


def test_bare_state_dict_in_a_pt_file(tmp_path, prompt_ids):
    """A plain HF state dict saved with torch.save under any name; with no config, heads are 64 wide."""
    hf = make_hf_model(seed=3, n_embd=128, n_head=2, n_layer=1)
    torch.save(hf.state_dict(), tmp_path / "weights.pth")
    _assert_matches(_load(tmp_path / "weights.pth"), hf, prompt_ids)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_weights_file_inside_an_hf_directory(name, hf_dir, hf_bin_dir, hf_model, prompt_ids):
    """Pointing at the weights file rather than its directory reads n_head from the config beside it."""
    path = (hf_dir if name.endswith(".safetensors") else hf_bin_dir) / name
    loaded = _load(path)
    assert loaded.config.n_head == hf_model.config.n_head
    _assert_matches(loaded, hf_model, prompt_ids)


# -- our own format ------------------------------------------------------------------------------------


def test_save_model_round_trip(loaded, hf_model, tmp_path, prompt_ids):
    """save_model writes config.json + model.safetensors that load back to identical logits."""
    path = save_model(loaded.model, tmp_path / "ours", meta={"name": "ours", "tokenizer": "gpt2", "note": "x"})
    meta = json.loads((path / "config.json").read_text())
    assert meta["format"] == FORMAT and meta["note"] == "x"
    again = _load(path)
    assert again.meta["note"] == "x" and again.token_counts is None
    assert torch.equal(our_logits(again, prompt_ids), our_logits(loaded, prompt_ids))
    _assert_matches(again, hf_model, prompt_ids)
    # The safetensors file alone carries its config in its metadata.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(path / "model.safetensors", alone / "m.safetensors")
    assert torch.equal(our_logits(_load(alone / "m.safetensors"), prompt_ids), our_logits(loaded, prompt_ids))


def _compact_reference(compact, ids: list[int]) -> torch.Tensor:
    """The compact model's expected logits over the whole vocabulary, from the reference."""
    lookup = {token: row for row, token in enumerate(compact.row_ids)}
    unknown = len(compact.row_ids)
    rows = [lookup.get(i, unknown) for i in ids]
    ref_rows = hf_logits(compact.hf, rows)[:, :unknown]
    full = torch.full((len(ids), 50257), float("-inf"))
    full[:, torch.tensor(compact.row_ids)] = ref_rows
    return full


def test_compact_vocabulary_round_trip(compact, prompt_ids):
    """Listed ids get the reference's logits for their rows; every other id gets -inf."""
    loaded = _load(compact.path)
    assert loaded.config.n_rows == len(compact.row_ids)
    assert loaded.model.row_ids.tolist() == compact.row_ids
    assert torch.equal(loaded.token_counts, compact.counts)
    ours = our_logits(loaded, prompt_ids)
    expected = _compact_reference(compact, prompt_ids)
    absent = torch.ones(50257, dtype=torch.bool)
    absent[torch.tensor(compact.row_ids)] = False
    assert absent.sum() == 50257 - len(compact.row_ids)
    assert torch.isneginf(ours[:, absent]).all()
    torch.testing.assert_close(ours[:, ~absent], expected[:, ~absent], atol=ATOL, rtol=0)


def test_compact_model_accepts_absent_ids(compact):
    """Ids outside the compact vocabulary are read through the unknown row, not rejected."""
    loaded = _load(compact.path)
    listed = set(compact.row_ids)
    absent = [i for i in range(50257) if i not in listed][:3]
    ids = [compact.row_ids[0], *absent, compact.row_ids[1]]
    ours = our_logits(loaded, ids)
    expected = _compact_reference(compact, ids)
    live = torch.isfinite(expected)
    assert torch.equal(torch.isfinite(ours), live)
    torch.testing.assert_close(ours[live], expected[live], atol=ATOL, rtol=0)


# -- precision ---------------------------------------------------------------------------------------------


def test_bfloat16_is_close_to_the_float32_reference(hf_dir, hf_model, prompt_ids):
    loaded = _load(hf_dir, dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in loaded.model.parameters())
    ours, ref = our_logits(loaded, prompt_ids), hf_logits(hf_model, prompt_ids)
    assert (ours - ref).abs().max() < 0.1 * ref.abs().max()
    # bfloat16 keeps the prediction: the reference's favourite is within our top 5 nearly always.
    top5 = torch.topk(ours, 5, dim=-1).indices
    hits = (top5 == ref.argmax(-1, keepdim=True)).any(-1).float().mean()
    assert hits > 0.9
    # A session in bfloat16 still produces finite float32 analyses.
    analysis = Session(loaded).analyse("Hello world, again")
    assert analysis.last_logits.dtype.name == "float32" and analysis.attention.dtype.name == "float32"
    assert abs(np.asarray(analysis.attention).sum(-1) - 1).max() < 1e-5


# -- bad inputs: one clear line each ------------------------------------------------------------------------


def _error(spec, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(str(spec), **{"device": "cpu", "dtype": "float32", **kwargs})
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    return message


def _copy_hf_dir(hf_dir, tmp_path):
    return shutil.copytree(hf_dir, tmp_path / "copy")


def test_missing_path(tmp_path):
    assert "no such file or directory" in _error(tmp_path / "nope.safetensors")
    assert "no such file or directory" in _error("no-such-model")


def test_directory_without_config(tmp_path):
    assert "no config.json" in _error(tmp_path)


def test_directory_without_weights(hf_dir, tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    shutil.copy(hf_dir / "config.json", path)
    assert "no model.safetensors or pytorch_model.bin" in _error(path)


def test_unreadable_config_json(hf_dir, tmp_path):
    path = _copy_hf_dir(hf_dir, tmp_path)
    (path / "config.json").write_text("{not json")
    message = _error(path)
    assert "config.json" in message and "unreadable" in message


def test_wrong_model_type(hf_dir, tmp_path):
    path = _copy_hf_dir(hf_dir, tmp_path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    message = _error(path)
    assert "model_type 'bert' is not supported" in message and "llama" in message  # the families it does read


def test_gpt2_weights_under_a_llama_config_are_refused(hf_dir, tmp_path):
    path = _copy_hf_dir(hf_dir, tmp_path)
    config = json.loads((path / "config.json").read_text())
    llama = {**config, "model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
             "intermediate_size": 128}
    (path / "config.json").write_text(json.dumps(llama))
    assert "not a llama checkpoint" in _error(path)


def test_config_that_does_not_fit_the_weights(hf_dir, tmp_path):
    path = _copy_hf_dir(hf_dir, tmp_path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "n_layer": 3}))
    message = _error(path)
    assert message.endswith("the configuration says 3 layers but the weights hold 2")


def test_config_with_impossible_heads(hf_dir, tmp_path):
    path = _copy_hf_dir(hf_dir, tmp_path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "n_head": 5}))
    assert "divisible" in _error(path)


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
                     .numpy().tobytes())
    assert "not a readable .safetensors file" in _error(path)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_file(name, hf_dir, hf_bin_dir, tmp_path):
    source = (hf_dir if name.endswith(".safetensors") else hf_bin_dir) / name
    data = source.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    message = _error(path)
    assert "not a readable" in message and str(path) in message


def test_safetensors_that_is_not_gpt2(tmp_path):
    save_file({"encoder.layer.0.weight": torch.zeros(4, 4)}, str(tmp_path / "bert.safetensors"))
    assert "no token embedding (wte.weight) found" in _error(tmp_path / "bert.safetensors")


def test_pickle_of_something_else(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    assert "expected a state dict or a nanoGPT checkpoint" in _error(tmp_path / "list.pt")


def test_unknown_file_type(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\0" * 16)
    assert "not a checkpoint gpt-tui can read" in _error(tmp_path / "model.onnx")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(hf_dir):
    assert "no CUDA GPU" in _error(hf_dir, device="cuda")
    assert "no CUDA GPU" in _error(hf_dir, device="cuda:1")


def test_unknown_device(hf_dir):
    message = _error(hf_dir, device="tpu")
    assert "unknown device 'tpu'" in message and "cpu" in message


def test_unknown_dtype(hf_dir):
    message = _error(hf_dir, dtype="float64")
    assert "unknown dtype 'float64'" in message and "bfloat16" in message


@pytest.mark.parametrize("dtype", ["float16", "fp16"])
def test_float16_on_the_cpu(dtype, hf_dir):
    assert "float16 is not supported on the CPU" in _error(hf_dir, dtype=dtype)


def test_auto_device_and_dtype_on_this_machine(hf_dir):
    """auto picks the CPU here (no GPU) and float32 there."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine picks cuda/bfloat16")
    loaded = load_model(str(hf_dir))
    assert loaded.device.type in ("cpu", "mps")
    assert loaded.dtype == torch.float32


def test_the_finite_check_looks_at_each_value_only_when_the_sum_is_not_finite():
    from gpt_tui.engine.loading import check_finite

    huge = torch.full((4, 4), 3e38)  # every value finite, their sum is not
    check_finite({"w": huge, "h": torch.full((300, 300), 60000.0, dtype=torch.float16), "ids": torch.arange(3)})
    for bad in (float("nan"), float("inf"), -float("inf")):
        w = huge.clone()
        w[1, 2] = bad
        with pytest.raises(ModelLoadError, match="w holds NaN or infinite values"):
            check_finite({"w": w})
    mixed = torch.zeros(5)
    mixed[0], mixed[1] = float("inf"), -float("inf")  # a sum of NaN, found all the same
    with pytest.raises(ModelLoadError):
        check_finite({"mixed": mixed.to(torch.bfloat16)})
