"""Loading the Llama-like families: sharded safetensors, bfloat16 checkpoints, the memory check,
and clear refusals for what is not supported."""

from __future__ import annotations

import json

import pytest
import torch

from gpt_tui.engine import load_decoder
from gpt_tui.engine.files import ModelLoadError
from gpt_tui.engine.loading import load_model

from .families import SAMPLE, build


def _ids(loaded, text=SAMPLE):
    return [*loaded.tokenizer.prefix_ids, *loaded.tokenizer.encode(text)]


def test_sharded_checkpoint_loads_every_shard(tmp_path):
    hf = build("qwen2", tmp_path, seed=3, shard_bytes="60KB")
    assert (tmp_path / "model.safetensors.index.json").exists() and not (tmp_path / "model.safetensors").exists()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 2
    loaded = load_model(str(tmp_path), device="cpu", dtype="float32")
    ids = _ids(loaded)
    with torch.no_grad():
        assert (loaded.model(torch.tensor([ids])) - hf(torch.tensor([ids])).logits).abs().max() <= 1e-4


def test_a_shard_name_pointing_outside_the_directory_is_refused(tmp_path):
    build("qwen2", tmp_path, seed=3, shard_bytes="60KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = "../elsewhere.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="not a file in this directory"):
        load_model(str(tmp_path), device="cpu", dtype="float32")


def test_bfloat16_checkpoint_stays_bfloat16_and_widens_exactly(tmp_path):
    from safetensors.torch import load_file

    build("llama", tmp_path, seed=4, dtype=torch.bfloat16)
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert stored["model.embed_tokens.weight"].dtype == torch.bfloat16
    as_bf16 = load_model(str(tmp_path), device="cpu", dtype="bfloat16", optimise=False)
    assert as_bf16.model.embed_weight.dtype == torch.bfloat16
    assert torch.equal(as_bf16.model.blocks[1].attn.k.weight, stored["model.layers.1.self_attn.k_proj.weight"])
    as_fp32 = load_model(str(tmp_path), device="cpu", dtype="float32", optimise=False)
    assert torch.equal(as_fp32.model.blocks[1].mlp.down.weight,
                       stored["model.layers.1.mlp.down_proj.weight"].float())


def test_bfloat16_logits_stay_close_to_float32(tmp_path):
    build("gemma2", tmp_path, seed=4)
    ids = None
    out = {}
    for dtype in ("float32", "bfloat16"):
        loaded = load_model(str(tmp_path), device="cpu", dtype=dtype)
        ids = ids or _ids(loaded)
        with torch.no_grad():
            out[dtype] = loaded.model(torch.tensor([ids]))[0].float()
    scale = out["float32"].abs().max()
    assert (out["bfloat16"] - out["float32"]).abs().max() <= 0.1 * scale


def test_a_model_that_does_not_fit_says_how_much_it_needs(tmp_path, monkeypatch):
    build("qwen3", tmp_path, seed=5)
    monkeypatch.setattr(load_decoder, "free_bytes", lambda device: 100_000)
    with pytest.raises(ModelLoadError, match=r"the weights need 0\.\d MiB in float32 \(bfloat16 would halve it.*0\.1 MiB free"):
        load_model(str(tmp_path), device="cpu", dtype="float32")
    needed = load_decoder.weight_bytes(load_decoder.weight_files(tmp_path), torch.float32)
    monkeypatch.setattr(load_decoder, "free_bytes", lambda device: 2 * needed)
    load_model(str(tmp_path), device="cpu", dtype="float32")


@pytest.mark.parametrize("change, message", [
    ({"rope_parameters": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}},
     "rotary scaling 'dynamic' is not supported"),
    ({"model_type": "mamba", "architectures": ["MambaForCausalLM"]}, "model_type 'mamba' is not supported"),
    ({"num_key_value_heads": 3}, "cannot share 3 key/value heads"),
    ({"hidden_act": "relu"}, "activation 'relu' is not supported"),
])
def test_unsupported_configurations_are_refused_clearly(tmp_path, change, message):
    build("llama", tmp_path, seed=6)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(tmp_path), device="cpu", dtype="float32")


def test_extra_tensors_are_refused_not_ignored(tmp_path):
    from safetensors.torch import load_file, save_file

    build("qwen3", tmp_path, seed=7)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["model.layers.0.self_attn.mystery.weight"] = torch.zeros(2, 2)
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="unexpected tensor"):
        load_model(str(tmp_path), device="cpu", dtype="float32")


def test_gemma_3_image_text_checkpoint_opens_its_language_model(tmp_path):
    """Gemma 3's 4B+ checkpoints are image-text models (model_type gemma3, a text_config inside): the
    language model is read, the vision tower left out, and text-only logits equal transformers'."""
    import transformers

    from .families import randomise_, sentencepiece_tokenizer

    (tmp_path / "tokenizer.json").write_text(sentencepiece_tokenizer())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<bos>", "eos_token": "<eos>"}))
    text = dict(vocab_size=640, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, sliding_window=4, layer_types=["sliding_attention", "full_attention"])
    vision = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14)
    config = transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                                       image_token_index=639, boi_token_index=637, eoi_token_index=638)
    torch.manual_seed(0)
    hf = randomise_(transformers.Gemma3ForConditionalGeneration(config), 0).eval()
    hf.save_pretrained(str(tmp_path))
    loaded = load_model(str(tmp_path), device="cpu", dtype="float32")
    assert loaded.model.config.family == "gemma3" and loaded.model.config.windows == (4, None)
    ids = _ids(loaded)
    with torch.no_grad():
        want = hf(input_ids=torch.tensor([ids])).logits
        assert (loaded.model(torch.tensor([ids])) - want).abs().max() <= 1e-4
