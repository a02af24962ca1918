"""Hugging Face checkpoints of the Llama-like families -> the canonical names of decoder.Decoder.

Each family stores the same parts under its own names; this is the one table of them. Fused
matrices (Phi-3's qkv_proj and gate_up_proj) are split here, so the model is written once.
"""

from __future__ import annotations

import re

import torch

from .architecture import ArchConfig

# Hugging Face name inside model.layers.N -> ours inside blocks.N, for the families with plain
# pre-norm blocks. Gemma's norms differ (below): its post_attention_layernorm is the sandwich norm
# after attention, where Llama's is the norm before the MLP.
LAYER_NAMES = {
    "input_layernorm": "ln1",
    "post_attention_layernorm": "ln2",
    "self_attn.q_proj": "attn.q",
    "self_attn.k_proj": "attn.k",
    "self_attn.v_proj": "attn.v",
    "self_attn.o_proj": "attn.o",
    "self_attn.q_norm": "attn.q_norm",
    "self_attn.k_norm": "attn.k_norm",
    "mlp.gate_proj": "mlp.gate",
    "mlp.up_proj": "mlp.up",
    "mlp.down_proj": "mlp.down",
}
GEMMA_NORMS = {
    "input_layernorm": "ln1",
    "post_attention_layernorm": "ln1_post",
    "pre_feedforward_layernorm": "ln2",
    "post_feedforward_layernorm": "ln2_post",
}
TOP_NAMES = {"model.embed_tokens.weight": "embed.weight", "model.norm.weight": "ln_final.weight",
             "lm_head.weight": "lm_head.weight"}
IGNORED = re.compile(r"(rotary_emb\.inv_freq|\.embed_scale)$"  # buffers some exporters saved
                     r"|^(model\.)?(vision_tower|multi_modal_projector)\.")  # Gemma 3's image side: not shown


class ConversionError(ValueError):
    pass


def canonical_state(state: dict[str, torch.Tensor], config: ArchConfig) -> dict[str, torch.Tensor]:
    """A Hugging Face state dict (consumed) -> Decoder names. Unknown tensors are an error, so a
    checkpoint with parts the model lacks is never silently run without them."""
    layer_names = {**LAYER_NAMES, **GEMMA_NORMS} if config.sandwich_norm else LAYER_NAMES
    out: dict[str, torch.Tensor] = {}
    for key in list(state):
        value = state.pop(key)  # each tensor moves over: nothing is held twice
        name = re.sub(r"^(language_model\.)?", "", key)
        if name.startswith("model.language_model."):  # multimodal wrappers (Gemma 3 vision checkpoints)
            name = "model." + name[len("model.language_model."):]
        if IGNORED.search(name):
            continue
        if name in TOP_NAMES:
            out[TOP_NAMES[name]] = value
            continue
        m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
        if m is None:
            raise ConversionError(f"unexpected tensor {key!r}")
        layer, part, kind = m.groups()
        prefix = f"blocks.{layer}."
        if part == "self_attn.qkv_proj":  # Phi-3: q, k and v stacked
            q, k, v = value.split([config.n_head * config.head_dim, config.n_kv_head * config.head_dim,
                                   config.n_kv_head * config.head_dim], dim=0)
            out.update({prefix + f"attn.{n}.{kind}": t.contiguous() for n, t in zip("qkv", (q, k, v))})
        elif part == "mlp.gate_up_proj":  # Phi-3: gate and up stacked
            gate, up = value.chunk(2, dim=0)
            out[prefix + f"mlp.gate.{kind}"], out[prefix + f"mlp.up.{kind}"] = gate.contiguous(), up.contiguous()
        elif part in layer_names:
            out[prefix + f"{layer_names[part]}.{kind}"] = value
        else:
            raise ConversionError(f"unexpected tensor {key!r}")
    if config.tied:
        out.pop("lm_head.weight", None)  # saved by some exporters although tied
    return out
