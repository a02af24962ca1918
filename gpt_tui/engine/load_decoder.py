"""Hugging Face directories of the Llama-like families and gpt-oss -> a Decoder with the model's own
tokenizer.

Weights come from model.safetensors or from the shards model.safetensors.index.json lists, read
with plain reads (fast.read_safetensors). Each tensor is cast to the wanted dtype on its own, so a
bfloat16 checkpoint loaded as bfloat16 is never widened, and one loaded as float32 is widened one
tensor at a time (never a second full copy). Before a byte of weights is read, the memory they
need is compared with what the device has free, and a model that will not fit is refused with
both numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import architecture
from .convert import ConversionError, canonical_state
from .decoder import Decoder
from .files import ModelLoadError, open_regular, read_json_object

INDEX = "model.safetensors.index.json"
HEADROOM = 1.1  # activations, caches and the allocator's slack on top of the weights


def weight_files(path: Path) -> list[Path]:
    """The safetensors files holding a directory's weights: one, or the shards of its index."""
    if (path / "model.safetensors").exists():
        return [path / "model.safetensors"]
    if (path / INDEX).exists():
        index = read_json_object(path / INDEX)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelLoadError(f"{path / INDEX}: no weight_map")
        names = sorted(set(weight_map.values()))
        for name in names:  # shard names come from the file: never let one point outside the directory
            if not isinstance(name, str) or Path(name).name != name:
                raise ModelLoadError(f"{path / INDEX}: shard name {name!r} is not a file in this directory")
        return [path / name for name in names]
    raise ModelLoadError(f"{path}: no model.safetensors or {INDEX} in this directory "
                         "(only safetensors weights are read for this architecture)")


def weight_bytes(files: list[Path], dtype: torch.dtype) -> int:
    """Bytes the weights take in `dtype`, from the files' headers alone."""
    from .fast import _safetensors_header

    total = 0
    for file in files:
        with open_regular(file) as f:
            try:
                header, _, _ = _safetensors_header(f)
            except (ValueError, KeyError) as exc:
                raise ModelLoadError(f"{file}: not a readable .safetensors file ({exc})") from None
        for name, info in header.items():
            count = 1
            for n in info["shape"]:
                count *= n
            if name.endswith("_scales") and info.get("dtype") == "U8":
                continue  # MXFP4 scales: gone once their blocks are dequantized
            if name.endswith("_blocks") and info.get("dtype") == "U8":
                count *= 2  # two 4-bit values a byte, each one element of `dtype` once dequantized
            total += count * dtype.itemsize
    return total


def free_bytes(device: torch.device) -> int | None:
    """Memory the device has free now (MemAvailable on the CPU), or None when it cannot be told."""
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0]
        except RuntimeError:
            return None
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(needed: int, device: torch.device, dtype: torch.dtype, name: str) -> None:
    free = free_bytes(device)
    if free is None or needed * HEADROOM <= free:
        return
    hint = " (bfloat16 would halve it: --dtype bfloat16)" if dtype == torch.float32 else ""
    raise ModelLoadError(f"{name}: the weights need {_size(needed)} in {str(dtype).replace('torch.', '')}"
                         f"{hint}, but {device.type} has {_size(free)} free")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def load_decoder_dir(path: Path, hf: dict, device: torch.device, dtype: torch.dtype, name: str):
    """A Llama/Qwen/Gemma/Mistral/Phi-3 directory -> LoadedModel."""
    from .hf_tokenizer import tokenizer_for_dir
    from .loading import LoadedModel, _generation_defaults, _MetaSkeleton, _read_safetensors, check_finite, fill_skeleton

    try:
        config = architecture.from_hf(hf)
    except (KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path / 'config.json'}: missing or odd field {exc}") from None
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    files = weight_files(path)
    check_memory(weight_bytes(files, dtype), device, dtype, name)
    state: dict[str, torch.Tensor] = {}
    for file in files:
        part, _ = _read_safetensors(file)
        for key in list(part):  # cast one tensor at a time: the peak is the weights once, plus one
            tensor = part.pop(key)
            state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    try:
        state = canonical_state(state, config, dtype)
    except ConversionError as exc:
        raise ModelLoadError(f"{path}: {exc}: not a {config.family} checkpoint gpt-tui can read") from None
    with torch.device("meta"), _MetaSkeleton():
        model = Decoder(config)
    check_finite(state)
    try:
        fill_skeleton(model, state, f"a {config.family} of this shape")
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    model = model.to(device=device).eval()
    tokenizer = tokenizer_for_dir(path, hf)
    return LoadedModel(model, tokenizer, name=name, source=str(path), generation=_generation_defaults(path),
                       meta={"architecture": config.family, "hf_config": _summary(hf)})


def _summary(hf: dict) -> dict:
    keep = ("model_type", "architectures", "torch_dtype", "dtype")
    return {k: hf[k] for k in keep if k in hf}


def is_decoder_family(hf: dict) -> bool:
    return architecture.model_type(hf) in architecture.FAMILIES


