"""Speed-ups for inference on the CPU: weights packed for oneDNN, weights read without doubling
memory, and thread settings.

Batch-1 decoding reads every weight once per token, so it is bound by memory bandwidth; PyTorch's
default matrix-vector products reach only a fraction of it. oneDNN (PyTorch's CPU matmul library)
does much better when a weight is reordered once, at load time, into its own blocked layout.
`optimise_for_inference(model)` does that for every linear layer of the blocks (fusing the MLP's
tanh GELU into c_fc) and sends the tied unembedding through oneDNN too (W_E as it is in float32,
where that is as fast as a packed copy; a packed copy in bfloat16).

The ops used (`torch.ops.mkldnn._reorder_linear_weight`, `torch.ops.mkldnn._linear_pointwise`)
are private, so every packed module is checked against the plain module it replaces, on the real
weights, before it replaces it; if an op is missing or any check fails, the model is left exactly
as it was (the public-API path). Packed models are for inference only: no gradients, no `.to()`
afterwards. GPT_TUI_FAST=0 in the environment turns packing off.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

ENV_SWITCH = "GPT_TUI_FAST"
SELF_TEST_ROWS = 3  # rows of the random input each packed weight is checked with
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2}  # max error relative to the output's scale


@dataclass(frozen=True)
class FastReport:
    """What optimise_for_inference did, for `info` and the benchmarks."""

    packed: bool
    reason: str  # why not, or what was packed
    linears: int = 0
    unembedding: bool = False


def packing_support(device: torch.device, dtype: torch.dtype) -> str | None:
    """None when packed weights can be used for this device and dtype, else the reason why not."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "off", "false", "no"):
        return f"turned off by {ENV_SWITCH}=0"
    if device.type != "cpu":
        return f"packing is for the CPU (the model is on {device.type})"
    if dtype not in TOLERANCE:
        return f"packing supports float32 and bfloat16, not {str(dtype).replace('torch.', '')}"
    try:
        if not torch.backends.mkldnn.is_available():
            return "this PyTorch build has no oneDNN"
        ops = torch.ops.mkldnn
        for name in ("_reorder_linear_weight", "_linear_pointwise"):
            getattr(ops, name)  # raises when the private op is gone
        if dtype == torch.bfloat16 and not ops._is_mkldnn_bf16_supported():
            return "this CPU has no fast bfloat16 matmul in oneDNN"
    except (AttributeError, RuntimeError) as exc:
        return f"oneDNN ops unavailable ({type(exc).__name__})"
    return None


def _batch_hint() -> int | None:
    """Rows oneDNN tunes the packed layout for: 1 (decoding, the default) or GPT_TUI_PACK_BATCH
    (a number, or "none" for oneDNN's own choice), to compare layouts when benchmarking."""
    value = os.environ.get("GPT_TUI_PACK_BATCH", "1").strip().lower()
    return None if value in ("none", "", "0") else int(value)


def _pack(weight: torch.Tensor) -> torch.Tensor:
    """(out, in) dense weight -> oneDNN's blocked layout, tuned for one row at a time (decoding)."""
    hint = _batch_hint()
    weight = weight.detach().contiguous()
    if hint is None:
        return torch.ops.mkldnn._reorder_linear_weight(weight)
    return torch.ops.mkldnn._reorder_linear_weight(weight, hint)


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False) -> torch.Tensor:
    if gelu:
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "gelu", [], "tanh")
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class PackedLinear(nn.Module):
    """nn.Linear with its weight in oneDNN's layout (optionally with the tanh GELU fused after).

    The state dict still holds the dense (out, in) weight under the same name.
    """

    def __init__(self, linear: nn.Linear, gelu: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.gelu = gelu
        self.weight = nn.Parameter(_pack(linear.weight), requires_grad=False)
        bias = linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().contiguous(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(x, self.weight, self.bias, self.gelu)

    def dense_weight(self) -> torch.Tensor:
        return self.weight.data.to_dense()

    def unpacked(self) -> nn.Linear:
        """The plain nn.Linear again (the fallback); no activation."""
        out = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device="meta", dtype=self.bias.dtype if self.bias is not None else None)
        out.weight = nn.Parameter(self.dense_weight(), requires_grad=False)
        if self.bias is not None:
            out.bias = nn.Parameter(self.bias.data, requires_grad=False)
        return out

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        destination[prefix + "weight"] = self.dense_weight()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed, gelu={self.gelu}"


class PackedMLP(nn.Module):
    """GPT-2's MLP with packed weights: c_fc and the tanh GELU in one oneDNN call, then c_proj."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.c_fc = PackedLinear(mlp.c_fc, gelu=True)
        self.c_proj = PackedLinear(mlp.c_proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.c_fc(x))


class PackedMatrix:
    """h @ W.T through oneDNN for a (R, C) matrix W: the tied unembedding. Not a module (W_E is the parameter).

    In float32, oneDNN reads W_E in its plain layout as fast as a packed copy, so W_E itself is
    used and costs no memory; in bfloat16 a packed copy is much faster and costs half as much.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        weight = weight.detach()
        self.weight = _pack(weight) if weight.dtype == torch.bfloat16 else weight.contiguous()

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        return _linear(h, self.weight, None)


def _close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> bool:
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    got, want = got.float(), want.float()
    if not torch.isfinite(got).all():
        return False
    scale = max(1.0, float(want.abs().max()))
    return float((got - want).abs().max()) <= TOLERANCE[dtype] * scale


def _probe(features: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, SELF_TEST_ROWS, features, generator=gen).to(dtype)


def _replace_checked(parent: nn.Module, name: str, make, dtype: torch.dtype) -> bool:
    """Swap parent.<name> for make(old) if the new module gives the old one's outputs."""
    old = getattr(parent, name)
    features = old.in_features if isinstance(old, nn.Linear) else old.c_fc.in_features
    new = make(old)
    x = _probe(features, dtype, seed=features)
    with torch.inference_mode():
        if not _close(new(x), old(x), dtype):
            return False
    setattr(parent, name, new)
    return True


def _restore(model: nn.Module) -> None:
    """Undo packing: every PackedLinear/PackedMLP back to plain modules with dense weights."""
    from .gpt import MLP

    for block in model.h:
        attn = block.attn
        for name in ("c_attn", "c_proj"):
            if isinstance(getattr(attn, name), PackedLinear):
                setattr(attn, name, getattr(attn, name).unpacked())
        if isinstance(block.mlp, PackedMLP):
            packed = block.mlp
            mlp = MLP.__new__(MLP)
            nn.Module.__init__(mlp)
            mlp.c_fc, mlp.c_proj = packed.c_fc.unpacked(), packed.c_proj.unpacked()
            block.mlp = mlp
    model.packed_unembed = None


def optimise_for_inference(model: nn.Module, unembedding: bool = True) -> FastReport:
    """Pack the model's weights for the CPU in place; returns what was done (and why not).

    Call once after loading, on a model in eval mode that will not be trained or moved again.
    The result is recorded as model.fast. Safe to call on any model: if packing is unavailable
    or a packed weight does not reproduce F.linear, the model stays on the plain path.
    """
    if not hasattr(model, "wte"):
        from .fast_decoder import optimise_decoder  # the other architectures (decoder.py)

        return optimise_decoder(model, unembedding)
    weight = model.wte.weight
    reason = packing_support(weight.device, weight.dtype)
    if reason is None and model.training:
        reason = "the model is in training mode"
    if reason is not None:
        report = FastReport(False, reason)
        model.fast = report
        return report
    dtype = weight.dtype
    linears = 0
    try:
        for block in model.h:
            attn = block.attn
            for name in ("c_attn", "c_proj"):
                if isinstance(getattr(attn, name), nn.Linear):
                    if not _replace_checked(attn, name, PackedLinear, dtype):
                        raise _Mismatch(f"attn.{name}")
                    linears += 1
            if not isinstance(block.mlp, PackedMLP):
                if not _replace_checked(block, "mlp", PackedMLP, dtype):
                    raise _Mismatch("mlp")
                linears += 2
            release_free_memory()  # the dense weights just freed: keep the peak at one copy
        packed_unembed = False
        if unembedding:
            rows = model.wte.weight if model.row_ids is None else model.wte.weight[: model.config.n_rows]
            matrix = PackedMatrix(rows)
            x = _probe(rows.size(1), dtype, seed=1)
            with torch.inference_mode():
                if not _close(matrix(x), x @ rows.detach().T, dtype):
                    raise _Mismatch("unembedding")
            model.packed_unembed = matrix
            packed_unembed = True
    except (_Mismatch, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        _restore(model)
        what = f"self-test failed on {exc}" if isinstance(exc, _Mismatch) else f"{type(exc).__name__}: {exc}"
        report = FastReport(False, f"packing disabled, {what}"[:200])
        model.fast = report
        return report
    report = FastReport(True, f"{linears} linear layers packed for oneDNN"
                              f"{', the unembedding through it' if packed_unembed else ''}", linears, packed_unembed)
    model.fast = report
    return report


class _Mismatch(Exception):
    pass


# -- memory ----------------------------------------------------------------------------------------------------


def release_free_memory() -> None:
    """Hand the allocator's free pages back to the OS (glibc's malloc_trim; elsewhere nothing).

    Replacing weights one by one leaves holes in the heap that glibc keeps; without this, the
    process's resident set (and its peak) would hold both the dense and the packed weights.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None

_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}
MAX_HEADER = 100 * 1024 * 1024


def _safetensors_header(f) -> tuple[dict, dict, int]:
    """(tensor entries, metadata, offset of the data) of an open .safetensors file; ValueError if odd."""
    head = f.read(8)
    if len(head) != 8:
        raise ValueError("too short")
    n = int.from_bytes(head, "little")
    if n > MAX_HEADER:
        raise ValueError("header too large")
    header = json.loads(f.read(n))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    meta = header.pop("__metadata__", None) or {}
    size = os.fstat(f.fileno()).st_size
    for name, info in header.items():
        dtype = _ST_DTYPES[info["dtype"]]  # KeyError: a dtype this reader does not know
        begin, end = info["data_offsets"]
        if end - begin != math.prod(info["shape"]) * dtype.itemsize or 8 + n + end > size or begin < 0:
            raise ValueError(f"bad offsets for {name}")
    return header, meta, 8 + n


OWN_MAPPING_BYTES = 1 << 20  # tensors this large get their own anonymous mapping


def _owned_bytes(n: int) -> torch.Tensor:
    """n uninitialised bytes; large ones in an anonymous mapping of their own, which goes back to
    the OS the moment the tensor dies (so a weight replaced by its packed form really is freed)."""
    if n < OWN_MAPPING_BYTES:
        return torch.empty(n, dtype=torch.uint8)
    mapping = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):  # 2 MB pages, as torch's allocator gives (see engine/__init__.py)
        try:
            mapping.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return torch.frombuffer(mapping, dtype=torch.uint8)


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of a .safetensors file, read into memory this process owns (no mmap).

    safetensors' own reader maps the file, and pages of the mapping that were read stay in the
    process's resident set for as long as any tensor from it lives, so loading peaks at twice the
    weights. Plain reads into preallocated tensors peak at the weights once. Raises (ValueError,
    KeyError, OSError) on anything unusual; the caller then falls back to safetensors' reader.
    """
    if sys.byteorder != "little":
        raise ValueError("big-endian machine")
    with open(path, "rb", buffering=0) as f:
        header, meta, base = _safetensors_header(f)
        state = {}
        for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            begin, end = info["data_offsets"]
            raw = _owned_bytes(end - begin)
            view = memoryview(raw.numpy())
            f.seek(base + begin)
            done = 0
            while done < len(view):
                got = f.readinto(view[done:])
                if not got:
                    raise ValueError(f"file ends inside {name}")
                done += got
            state[name] = raw.view(_ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return {name: state[name] for name in header}, {str(k): str(v) for k, v in meta.items()}


# -- threads -----------------------------------------------------------------------------------------------


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def interactive_threads(cores: int | None = None) -> int:
    """Torch threads for an interactive session: leave one core to the UI on small machines.

    With every core busy in a matmul, a UI thread that wakes up to paint stalls a whole OpenMP
    team, and decoding slows two to three times; one core kept free avoids that. On big machines
    the share of one core is small, and beyond 8 threads batch-1 decoding gains little.
    """
    cores = available_cores() if cores is None else cores
    return max(1, min(cores - 1, 8))


def set_interactive_threads() -> int:
    """torch.set_num_threads(interactive_threads()) unless the user set OMP_NUM_THREADS; returns it."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    threads = interactive_threads()
    torch.set_num_threads(threads)
    return threads
