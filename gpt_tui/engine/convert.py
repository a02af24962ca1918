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


# gpt-oss: the parts that are not weight/bias pairs of a linear layer.
OSS_NAMES = {
    "self_attn.sinks": "attn.sinks",
    "mlp.experts.gate_up_proj": "mlp.gate_up",
    "mlp.experts.gate_up_proj_bias": "mlp.gate_up_bias",
    "mlp.experts.down_proj": "mlp.down",
    "mlp.experts.down_proj_bias": "mlp.down_bias",
    "mlp.router.weight": "mlp.router.weight",
    "mlp.router.bias": "mlp.router.bias",
}
# MXFP4 (the official gpt-oss files): 4-bit e2m1 values, two per byte (low nibble first), in blocks of
# 32 sharing one power-of-two scale stored as a biased exponent (2^(s - 127)).
FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)


def dequantize_mxfp4(blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """blocks (E, R, G, 16) uint8 and scales (E, R, G) uint8 -> (E, G·32, R) in dtype: the experts'
    matrix as x @ it reads it (the files keep it transposed, R rows of G·32 values)."""
    if (blocks.dtype != torch.uint8 or scales.dtype != torch.uint8 or blocks.dim() != 4
            or blocks.shape[:-1] != scales.shape):
        raise ConversionError(f"MXFP4 blocks {tuple(blocks.shape)} and scales {tuple(scales.shape)} do not match")
    table = torch.tensor(FP4_VALUES, dtype=dtype)
    E, R, G, B = blocks.shape
    out = torch.empty(E, G * B * 2, R, dtype=dtype)
    for e in range(E):  # one expert at a time: the index tensors of a whole gpt-oss-120b layer take GBs
        values = torch.empty(R, G, B, 2, dtype=dtype)
        values[..., 0] = table[(blocks[e] & 0x0F).long()]
        values[..., 1] = table[(blocks[e] >> 4).long()]
        values = torch.ldexp(values, (scales[e].to(torch.int32) - 127)[..., None, None].to(dtype))
        out[e] = values.reshape(R, G * B * 2).T
    return out


def canonical_state(state: dict[str, torch.Tensor], config: ArchConfig,
                    dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A Hugging Face state dict (consumed) -> Decoder names. Unknown tensors are an error, so a
    checkpoint with parts the model lacks is never silently run without them. MXFP4 experts are
    dequantized to `dtype`, one matrix at a time."""
    layer_names = {**LAYER_NAMES, **GEMMA_NORMS} if config.sandwich_norm else LAYER_NAMES
    out: dict[str, torch.Tensor] = {}
    for key in list(state):
        if key not in state:
            continue  # taken already with its pair (MXFP4 blocks and scales)
        value = state.pop(key)  # each tensor moves over: nothing is held twice
        name = re.sub(r"^(language_model\.)?", "", key)
        if name.startswith("model.language_model."):  # multimodal wrappers (Gemma 3 vision checkpoints)
            name = "model." + name[len("model.language_model."):]
        if IGNORED.search(name):
            continue
        if name in TOP_NAMES:
            out[TOP_NAMES[name]] = value
            continue
        oss = re.fullmatch(r"model\.layers\.(\d+)\.(self_attn\.sinks|mlp\.(experts|router)\..+)", name)
        if oss is not None and config.n_experts:
            layer, part = oss.group(1), oss.group(2)
            if part.endswith("_blocks"):  # MXFP4: its scales are a tensor of their own
                scales = state.pop(key[: -len("_blocks")] + "_scales", None)
                if scales is None:
                    raise ConversionError(f"{key!r} without its _scales")
                value, part = dequantize_mxfp4(value, scales, dtype), part[: -len("_blocks")]
            elif part.endswith("_scales"):
                blocks = state.pop(key[: -len("_scales")] + "_blocks", None)
                if blocks is None:
                    raise ConversionError(f"{key!r} without its _blocks")
                value, part = dequantize_mxfp4(blocks, value, dtype), part[: -len("_scales")]
            if part not in OSS_NAMES:
                raise ConversionError(f"unexpected tensor {key!r}")
            out[f"blocks.{layer}.{OSS_NAMES[part]}"] = value
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
