"""fast.py's packed weights for decoder.Decoder: every linear layer of its blocks in oneDNN's layout,
each checked against the plain layer on the real weights before it replaces it (else the model
stays as it was), and the unembedding through oneDNN as for GPT-2."""

from __future__ import annotations

import torch
import torch.nn as nn

from .fast import FastReport, PackedLinear, PackedMatrix, _close, _probe, packing_support, release_free_memory

LINEARS = (("attn", ("q", "k", "v", "o")), ("mlp", ("gate", "up", "down")))


def optimise_decoder(model: nn.Module, unembedding: bool = True) -> FastReport:
    weight = model.embed_weight
    reason = packing_support(weight.device, weight.dtype)
    if reason is None and model.training:
        reason = "the model is in training mode"
    if reason is not None:
        model.fast = FastReport(False, reason)
        return model.fast
    dtype, swapped = weight.dtype, []
    try:
        for block in model.blocks:
            for part, names in LINEARS:
                parent = getattr(block, part)
                for name in names:
                    old = getattr(parent, name, None)  # a mixture of experts has no gate/up/down layers
                    if not isinstance(old, nn.Linear):
                        continue
                    new = PackedLinear(old)
                    x = _probe(old.in_features, dtype, seed=old.in_features)
                    with torch.inference_mode():
                        if not _close(new(x), old(x), dtype):
                            raise ValueError(f"self-test failed on {part}.{name}")
                    setattr(parent, name, new)
                    swapped.append((parent, name))  # the dense weight is freed here
            release_free_memory()
        packed_unembed = False
        if unembedding:
            rows = model.unembed_weight
            matrix = PackedMatrix(rows)
            x = _probe(rows.size(1), dtype, seed=1)
            with torch.inference_mode():
                if not _close(matrix(x), x @ rows.detach().T, dtype):
                    raise ValueError("self-test failed on the unembedding")
            model.packed_unembed, packed_unembed = matrix, True
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        for parent, name in swapped:  # back to the plain layers, all of them
            setattr(parent, name, getattr(parent, name).unpacked())
        model.packed_unembed = None
        model.fast = FastReport(False, f"packing disabled, {type(exc).__name__}: {exc}"[:200])
        return model.fast
    model.fast = FastReport(True, f"{len(swapped)} linear layers packed for oneDNN"
                                  f"{', the unembedding through it' if packed_unembed else ''}", len(swapped),
                            packed_unembed)
    return model.fast
