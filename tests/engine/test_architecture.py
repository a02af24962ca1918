"""config.json files as the hub serves them (transformers-4 spellings: rope_theta and rope_scaling at
the top level) -> ArchConfig, and the rotary frequencies against transformers' own for each scaling."""

from __future__ import annotations

import pytest
import torch

from gpt_tui.engine import architecture
from gpt_tui.engine.rotary import inverse_frequencies

# The fields that matter of real config.json files (shapes as published).
LLAMA_3_2_1B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
                "intermediate_size": 8192, "num_attention_heads": 32, "num_hidden_layers": 16,
                "num_key_value_heads": 8, "head_dim": 64, "rms_norm_eps": 1e-5, "hidden_act": "silu",
                "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                 "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                "rope_theta": 500000.0, "tie_word_embeddings": True, "vocab_size": 128256,
                "max_position_embeddings": 131072}
QWEN2_5_0_5B = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
                "intermediate_size": 4864, "num_attention_heads": 14, "num_key_value_heads": 2,
                "num_hidden_layers": 24, "rope_theta": 1000000.0, "sliding_window": 32768,
                "use_sliding_window": False, "max_window_layers": 21, "tie_word_embeddings": True,
                "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "hidden_act": "silu"}
QWEN3_YARN = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
              "intermediate_size": 3072, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
              "num_hidden_layers": 28, "rope_theta": 1000000.0, "vocab_size": 151936,
              "max_position_embeddings": 131072, "tie_word_embeddings": True, "hidden_act": "silu",
              "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
GEMMA_2_2B = {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 2304,
              "intermediate_size": 9216, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
              "num_hidden_layers": 26, "query_pre_attn_scalar": 256, "sliding_window": 4096,
              "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "rope_theta": 10000.0,
              "hidden_activation": "gelu_pytorch_tanh", "vocab_size": 256000, "max_position_embeddings": 8192}
GEMMA_3_1B = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 1152,
              "intermediate_size": 6912, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
              "num_hidden_layers": 26, "query_pre_attn_scalar": 256, "sliding_window": 512,
              "sliding_window_pattern": 6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
              "rope_scaling": None, "hidden_activation": "gelu_pytorch_tanh", "vocab_size": 262144,
              "max_position_embeddings": 32768, "final_logit_softcapping": None, "attn_logit_softcapping": None}
PHI_3_5_MINI = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 3072,
                "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 32,
                "num_hidden_layers": 32, "original_max_position_embeddings": 4096, "max_position_embeddings": 131072,
                "rope_theta": 10000.0, "vocab_size": 32064, "hidden_act": "silu", "sliding_window": 262144,
                "rope_scaling": {"type": "longrope", "short_factor": [1.0 + i / 50 for i in range(48)],
                                 "long_factor": [1.0 + i for i in range(48)]}, "pad_token_id": 32000}


def test_llama_3_2():
    cfg = architecture.from_hf(LLAMA_3_2_1B)
    assert (cfg.family, cfg.n_head, cfg.n_kv_head, cfg.head_dim, cfg.tied) == ("llama", 32, 8, 64, True)
    assert cfg.rope(0).kind == "llama3" and cfg.rope(0).original_ctx == 8192 and cfg.windows[0] is None


def test_qwen2_5_windows_off_unless_switched_on():
    cfg = architecture.from_hf(QWEN2_5_0_5B)
    assert cfg.qkv_bias and not cfg.windows and cfg.n_kv_head == 2 and cfg.tied


def test_gemma_2_alternates_sliding_and_global_layers():
    cfg = architecture.from_hf(GEMMA_2_2B)
    assert cfg.windows[:4] == (4096, None, 4096, None) and cfg.attn_softcap == 50.0 and cfg.final_softcap == 30.0
    assert cfg.norm == "rmsnorm_1p" and cfg.sandwich_norm and cfg.mlp == "geglu_tanh" and cfg.tied
    assert cfg.scale() == 256 ** -0.5 and cfg.embed_scale == 2304 ** 0.5


def test_gemma_3_five_local_layers_then_a_global_one_each_with_its_own_rope():
    cfg = architecture.from_hf(GEMMA_3_1B)
    assert cfg.windows[:6] == (512,) * 5 + (None,) and cfg.qk_norm
    assert cfg.rope(0).theta == 10000.0 and cfg.rope(5).theta == 1000000.0


@pytest.mark.parametrize("hf, transformers_config", [
    (LLAMA_3_2_1B, "LlamaConfig"), (QWEN3_YARN, "Qwen3Config"), (PHI_3_5_MINI, "Phi3Config"),
    ({**QWEN2_5_0_5B, "rope_scaling": {"type": "linear", "factor": 4.0}}, "Qwen2Config"),
])
def test_rotary_frequencies_equal_transformers(hf, transformers_config):
    import transformers
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = architecture.from_hf(hf)
    reference = getattr(transformers, transformers_config)(**{k: v for k, v in hf.items() if k != "architectures"})
    rope = cfg.rope(0)
    for long in ((False, True) if rope.kind == "longrope" else (False,)):
        seq_len = rope.original_ctx + 1 if long else 1
        want, want_scale = ROPE_INIT_FUNCTIONS[rope.kind](reference, torch.device("cpu"), seq_len=seq_len)
        got, scale = inverse_frequencies(rope, cfg.head_dim, long=long)
        assert torch.allclose(got, want, rtol=1e-6, atol=0) and abs(scale - want_scale) < 1e-9


def test_unknown_families_and_scalings_are_named():
    with pytest.raises(ValueError, match="model_type 'bert' is not supported"):
        architecture.from_hf({"model_type": "bert"})
    with pytest.raises(ValueError, match="rotary scaling 'dynamic' is not supported"):
        architecture.from_hf({**LLAMA_3_2_1B, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}})


def test_a_config_that_does_not_say_takes_the_familys_own_tying():
    """transformers leaves out of config.json a value equal to its config class's default: SmolLM3's
    unembedding is tied by default, Llama's, Qwen's and Mistral's are not, Gemma's always is."""
    def silent(config: dict, model_type: str) -> dict:
        return {k: v for k, v in config.items() if k != "tie_word_embeddings"} | {"model_type": model_type}

    assert architecture.from_hf(silent(LLAMA_3_2_1B, "smollm3")).tied
    assert not architecture.from_hf(silent(LLAMA_3_2_1B, "llama")).tied
    assert not architecture.from_hf(silent(QWEN2_5_0_5B, "qwen2")).tied
    assert architecture.from_hf(GEMMA_2_2B).tied
    assert architecture.from_hf(LLAMA_3_2_1B).tied  # said: as said
