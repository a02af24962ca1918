"""gpt-oss beyond the parity every family gets (test_families.py): its MXFP4 expert files, read as
transformers reads them, and its attention sinks as the analysis shows them."""

from __future__ import annotations

import json

import numpy as np
import torch

from gpt_tui.engine.convert import FP4_VALUES, dequantize_mxfp4
from gpt_tui.engine.loading import load_model
from gpt_tui.engine.session import Session

from .families import SAMPLE, build


def quantize_mxfp4(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E, K, R) as x @ it reads it -> MXFP4 blocks (E, R, K/32, 16) and scales (E, R, K/32), the
    layout of the official gpt-oss files: each row of 32 values shares a power-of-two scale, each
    value is the nearest of the 16 e2m1 numbers, two a byte, the low nibble first."""
    rows = matrix.transpose(1, 2).float()  # (E, R, K)
    E, R, K = rows.shape
    groups = rows.reshape(E, R, K // 32, 32)
    peak = groups.abs().amax(-1).clamp(min=1e-30)
    exponent = torch.ceil(torch.log2(peak / 6.0)).clamp(-127, 127)  # the largest value fits ±6
    scaled = groups / torch.exp2(exponent)[..., None]
    table = torch.tensor(FP4_VALUES)
    codes = (scaled[..., None] - table).abs().argmin(-1)  # (E, R, G, 32) nearest code
    packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).to(torch.uint8)
    return packed, (exponent + 127).to(torch.uint8)


def transformers_dequantize(blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The experts as transformers' MXFP4 loading gives them to the model: (E, K, R). Before 4.56
    convert_moe_packed_tensors returned (E, R, K) and the loader transposed it; since then it
    transposes itself."""
    import transformers
    from packaging.version import Version
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    matrix = convert_moe_packed_tensors(blocks.clone(), scales.clone(), dtype=dtype)
    return matrix.transpose(1, 2).contiguous() if Version(transformers.__version__) < Version("4.56") else matrix


def test_mxfp4_dequantization_matches_transformers():
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (3, 10, 4, 16), generator=gen, dtype=torch.uint8)
    scales = torch.randint(120, 134, (3, 10, 4), generator=gen, dtype=torch.uint8)
    for dtype in (torch.float32, torch.bfloat16):
        ours = dequantize_mxfp4(blocks, scales, dtype)
        want = transformers_dequantize(blocks, scales, dtype)
        assert ours.dtype == dtype and ours.shape == want.shape == (3, 128, 10)
        assert torch.equal(ours, want)


def test_an_mxfp4_checkpoint_loads_as_transformers_dequantizes_it(tmp_path):
    """The official files keep the experts in MXFP4 (_blocks and _scales): they load, and the model
    computes what transformers computes with the same experts dequantized."""
    from safetensors.torch import load_file, save_file

    hf = build("gpt_oss", tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    for key in [k for k in state if k.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
        blocks, scales = quantize_mxfp4(state.pop(key))
        state[key + "_blocks"], state[key + "_scales"] = blocks, scales
        with torch.no_grad():  # the reference model gets the same experts, dequantized by transformers
            hf.get_parameter(key).copy_(transformers_dequantize(blocks, scales, torch.float32))
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((tmp_path / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn"]}
    (tmp_path / "config.json").write_text(json.dumps(config))

    session = Session(load_model(str(tmp_path), device="cpu", dtype="float32"))
    ids = session.encode(SAMPLE).ids
    with torch.no_grad():
        want = hf(torch.tensor([ids])).logits[0, -1, : session.n_vocab]
    assert np.abs(session.analyse(SAMPLE).last_logits - want.numpy()).max() <= 1e-4


def test_attention_sinks_leave_each_row_short_of_one(tmp_path):
    """Every query's weights on the tokens sum below 1 (the sink takes the rest), as transformers'
    own weights do."""
    hf = build("gpt_oss", tmp_path)
    session = Session(load_model(str(tmp_path), device="cpu", dtype="float32"))
    analysis = session.analyse(SAMPLE)
    sums = np.stack([np.asarray(analysis.attention[layer]).sum(-1) for layer in range(session.config.n_layer)])
    assert sums.max() <= 1 + 1e-6 and sums.min() > 0 and sums.mean() < 0.9, (sums.max(), sums.mean())
    assert analysis.attention.has_sinks(0)
    with torch.no_grad():
        ref = hf(torch.tensor([list(analysis.ids)]), output_attentions=True).attentions
    want = np.stack([w[0].sum(-1).numpy() for w in ref])
    assert np.abs(sums - want).max() <= 1e-4
    # one query's row, computed without the whole layer, says the same
    row = analysis.attention.row(1, 3)
    assert np.abs(row.sum(-1) - sums[1, :, 3]).max() <= 1e-5
