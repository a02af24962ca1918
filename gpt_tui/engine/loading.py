"""Checkpoints -> GPT: the bundled model, Hugging Face directories and hub ids, lone .safetensors
files, PyTorch .bin files and nanoGPT ckpt.pt files.

Nothing here unpickles freely: safetensors is preferred, and torch.load always runs with
weights_only=True, which refuses any pickle that would construct objects or run code.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import hub
from .config import GPTConfig
from .files import ModelLoadError, check_regular, locate, read_json_object, sniff
from .generation_config import RAW, GenerationConfigError, GenerationDefaults, read_generation_config
from .gpt import GPT
from .tokenizer import Tokenizer, get_tokenizer, tokenizer_from_dir

FORMAT = "gpt-tui"  # marks checkpoints this project wrote (nn.Linear layout, our key names)
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@dataclass
class LoadedModel:
    model: GPT  # or decoder.Decoder: the same protocol (embed_weight, final_norm, unembed, hidden …)
    tokenizer: Tokenizer
    name: str  # what the user would call it: "gpt2", "bundled", a path
    source: str  # where the weights came from
    token_counts: torch.Tensor | None = None  # per embedding row, when the trainer recorded them
    meta: dict = field(default_factory=dict)  # config.json of our own checkpoints
    generation: GenerationDefaults = RAW  # default sampling knobs (generation_config.json)

    @property
    def config(self) -> GPTConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.embed_weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_weight.dtype


# -- devices ----------------------------------------------------------------------------------------


def resolve_device(spec: str = "auto") -> torch.device:
    """auto | cpu | cuda | cuda:N | mps -> a device that exists here, or a clear error."""
    spec = "auto" if spec is None else spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec) if spec else None
        if device is None:
            raise RuntimeError
    except RuntimeError:
        raise ModelLoadError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError("--device cuda: no CUDA GPU is visible to this PyTorch build")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelLoadError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("--device mps: Apple's Metal backend is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"unsupported device {spec!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on a CUDA GPU, float32 elsewhere."""
    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if spec not in DTYPES:
        raise ModelLoadError(f"unknown dtype {spec!r}; use auto, float32, bfloat16 or float16")
    return DTYPES[spec]


# -- the bundled model ------------------------------------------------------------------------------


def bundled_model_dir() -> Path | None:
    """The model shipped with gpt-tui: inside the wheel, or model/ in a source checkout."""
    here = Path(__file__).resolve().parent.parent  # gpt_tui/
    for candidate in (here / "_bundled_model", here.parent / "model"):
        if (candidate / "model.safetensors").exists() and (candidate / "config.json").exists():
            return candidate
    return None


# -- state dicts --------------------------------------------------------------------------------------


def _canonical_state(state: dict[str, torch.Tensor], conv1d: bool | None) -> dict[str, torch.Tensor]:
    """Any GPT-2 naming -> ours: drop prefixes and causal-mask buffers, transpose Conv1D weights.

    conv1d: True for Hugging Face layouts, False for nn.Linear ones (nanoGPT, ours), None to
    decide from the shape of the first c_attn weight ((C, 3C) is Conv1D).
    """
    out = {}
    for key, value in state.items():
        key = re.sub(r"^(_orig_mod\.)?(module\.)?(transformer\.)?", "", key)
        if re.search(r"\.attn\.(bias|masked_bias)$", key):
            continue  # causal-mask buffers of old GPT-2 code, not parameters
        out[key] = value
    if "wte.weight" not in out:
        raise ModelLoadError("no token embedding (wte.weight) found: not a GPT-2 checkpoint")
    lm_head = out.pop("lm_head.weight", None)
    if lm_head is not None and lm_head.shape == out["wte.weight"].shape and not torch.equal(lm_head, out["wte.weight"]):
        raise ModelLoadError("this checkpoint's lm_head is not tied to its embedding; gpt-tui supports tied GPT-2 only")
    if conv1d is None:
        c_attn = out.get("h.0.attn.c_attn.weight")
        conv1d = c_attn is not None and c_attn.shape[0] * 3 == c_attn.shape[1]
    state.clear()  # consumed: each transposed copy below then replaces (and frees) its source
    if conv1d:
        for key in list(out):
            if key.endswith(CONV1D_WEIGHTS):
                out[key] = out[key].t().contiguous()
    return out


def _config_from_state(state: dict[str, torch.Tensor], n_head: int | None = None, **extra) -> GPTConfig:
    """Infer the shape from the tensors. n_head is invisible in shapes; GPT-2 used 64-dim heads."""
    layers = [int(m.group(1)) for k in state if (m := re.match(r"h\.(\d+)\.", k))]
    if not layers or "wpe.weight" not in state or state["wte.weight"].dim() != 2:
        raise ModelLoadError("the weights lack transformer blocks (h.0…) or a position embedding: not a GPT-2 checkpoint")
    rows, n_embd = state["wte.weight"].shape
    n_layer = 1 + max(layers)
    n_ctx = state["wpe.weight"].shape[0]
    bias = "h.0.attn.c_attn.bias" in state
    return GPTConfig(vocab_size=extra.pop("vocab_size", rows), n_ctx=n_ctx, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head or max(1, n_embd // 64), bias=bias, **extra)


class _MetaSkeleton(torch.overrides.TorchFunctionMode):
    """Used with torch.device("meta") while a model's skeleton is built, to keep PyTorch's Python
    meta kernels out of it: the first normal_ on a meta tensor imports torch._dynamo, the first
    arange sympy, together over a second of loading, and nothing else in gpt-tui needs either.
    So initialisers (torch.nn.init.*, Tensor.normal_) are skipped on meta tensors, which hold no
    values to fill (the checkpoint replaces every one), and arange counts on the CPU, then goes
    to meta like the rest. Modes are per thread: other threads are untouched.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.normal_ or getattr(func, "__module__", None) == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        if func is torch.arange and kwargs.get("device") is None:  # a buffer's ids: small
            return func(*args, **kwargs, device="cpu").to("meta")
        return func(*args, **kwargs)


def _check_fits(config: GPTConfig, state: dict[str, torch.Tensor]) -> None:
    """The configuration against the weights, before a module is built: a config.json that says
    10,000 layers over weights that hold 6 would otherwise build (and time) a huge skeleton first."""
    layers = {int(m.group(1)) for k in state if (m := re.match(r"h\.(\d+)\.", k))}
    n_layers = 1 + max(layers) if layers else 0
    if n_layers != config.n_layer:
        raise ModelLoadError(f"the configuration says {config.n_layer} layers but the weights hold {n_layers}")
    for name, want in (("wte.weight", (config.embedding_rows, config.n_embd)), ("wpe.weight", (config.n_ctx, config.n_embd))):
        got = tuple(state[name].shape) if name in state else None
        if got is not None and got != want:
            raise ModelLoadError(f"{name} is {' × '.join(map(str, got))} but the configuration "
                                 f"(vocabulary, n_ctx, n_embd) needs {' × '.join(map(str, want))}")
    for name, tensor in state.items():
        if name.endswith((".weight", ".bias")) and not tensor.is_floating_point():
            dtype = str(tensor.dtype).replace("torch.", "")
            raise ModelLoadError(f"{name} is stored as {dtype}: gpt-tui reads float32, float16 and bfloat16 "
                                 f"weights, not quantised ones")
    check_finite(state)


def check_finite(state: dict[str, torch.Tensor]) -> None:
    for name, tensor in state.items():
        # A finite sum proves every value finite (NaN and ±inf propagate through it), in one pass and
        # without a mask as large as the tensor (a third of gpt2's load time): each value is looked
        # at only when the sum is not finite (a NaN or inf, or huge finite values that overflow it).
        if tensor.is_floating_point() and not math.isfinite(float(tensor.sum(dtype=torch.float32))) \
                and not bool(torch.isfinite(tensor).all()):
            raise ModelLoadError(f"{name} holds NaN or infinite values: the checkpoint is corrupt")


def fill_skeleton(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Give a skeleton built on the meta device the checkpoint's tensors (assigned, not copied),
    refusing weights that do not fit it; `state` is emptied, so that the model alone holds them.
    what: the model the weights should fit, for the message ("a GPT-2 of this shape")."""
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        sample = sorted(missing)[:3] or sorted(unexpected)[:3]
        raise ModelLoadError(f"the weights do not fit {what} ({len(missing)} missing, "
                             f"{len(unexpected)} unexpected tensors, e.g. {', '.join(sample)})")
    try:
        model.load_state_dict(state, assign=True, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"checkpoint tensors have the wrong shapes: {str(exc).splitlines()[-1].strip()}") from None
    state.clear()  # the model holds the tensors now; a dtype conversion after this frees each original


def _build(config: GPTConfig, state: dict[str, torch.Tensor], device, dtype) -> GPT:
    _check_fits(config, state)
    with torch.device("meta"), _MetaSkeleton():
        model = GPT(config)
    for k, v in state.items():  # in place, so that no second dict keeps the originals alive
        if v.is_floating_point():
            state[k] = v.float()
    fill_skeleton(model, state, "a GPT-2 of this shape")
    if config.n_rows is None:
        model.row_ids = model.id_rows = None
    model.refresh_id_rows()
    return model.to(device=device, dtype=dtype).eval()


# -- file formats --------------------------------------------------------------------------------------


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from .fast import read_safetensors

    check_regular(path)
    try:
        return read_safetensors(path)  # plain reads, no mmap: loading peaks at the weights once
    except Exception:
        pass  # anything unusual: safetensors' own reader decides, and words the error
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable .safetensors file ({exc})") from None


def _torch_load(path: Path) -> object:
    """torch.load restricted to tensors and plain containers: a malicious pickle is refused."""
    check_regular(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "GLOBAL" not in message.upper():  # not a refusal: the pickle itself is damaged or foreign
            detail = next((line.strip() for line in message.split("WeightsUnpickler error:", 1)[-1].splitlines()
                           if line.strip()), "")
            raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint (damaged or not torch's data: "
                                 f"{detail[:120]})") from None
        blocked = next((line.strip() for line in message.splitlines() if "GLOBAL" in line.upper()), "")
        raise ModelLoadError(f"{path}: refused to load — the file holds objects other than tensors, "
                             f"which could run code ({blocked[:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:160]})") from None


def _load_own_dir(path: Path, device, dtype, name: str) -> LoadedModel:
    meta = read_json_object(path / "config.json")
    if not isinstance(meta.get("config"), dict):
        raise ModelLoadError(f"{path / 'config.json'}: no \"config\" object with the model's shape")
    config = GPTConfig.from_dict(meta["config"])
    state, _ = _read_safetensors(path / "model.safetensors")
    counts = state.pop("token_counts", None)
    model = _build(config, _canonical_state(state, conv1d=False), device, dtype)
    tokenizer = get_tokenizer(meta.get("tokenizer", "gpt2"))
    return LoadedModel(model, tokenizer, name=name, source=str(path), token_counts=counts, meta=meta,
                       generation=_generation_defaults(path))


def _generation_defaults(path: Path) -> GenerationDefaults:
    try:
        return read_generation_config(path)
    except GenerationConfigError as exc:
        raise ModelLoadError(f"{exc} (fix or remove the file)") from None


def _dir_tokenizer(path: Path) -> Tokenizer:
    if (path / "vocab.json").exists() and (path / "merges.txt").exists():
        return tokenizer_from_dir(path)
    return get_tokenizer("gpt2")


def _load_hf_dir(path: Path, device, dtype, name: str) -> LoadedModel:
    hf = read_json_object(path / "config.json")
    if hf.get("model_type") not in (None, "gpt2"):
        from .load_decoder import load_decoder_dir  # Llama, Qwen, Gemma, Mistral, Phi-3 (architecture.py)

        return load_decoder_dir(path, hf, device, dtype, name)
    state = hub.read_weights(path, _read_safetensors, _torch_load)  # one file or shards; safetensors first
    config = GPTConfig.from_hf(hf)
    model = _build(config, _canonical_state(state, conv1d=True), device, dtype)
    return LoadedModel(model, _dir_tokenizer(path), name=name, source=str(path),
                       generation=_generation_defaults(path))


def _sibling_n_head(path: Path) -> int | None:
    """n_head from a Hugging Face config.json next to a weights file (shapes cannot tell it)."""
    sibling = path.parent / "config.json"
    try:
        return read_json_object(sibling).get("n_head") if sibling.exists() else None
    except ModelLoadError:
        return None


def _load_safetensors_file(path: Path, device, dtype) -> LoadedModel:
    state, meta = _read_safetensors(path)
    counts = state.pop("token_counts", None)
    if meta.get("format") == FORMAT:
        config = GPTConfig.from_dict(json.loads(meta["config"]))
        canonical = _canonical_state(state, conv1d=False)
    else:
        canonical = _canonical_state(state, conv1d=None)
        config = _config_from_state(canonical, n_head=_sibling_n_head(path))
    model = _build(config, canonical, device, dtype)
    return LoadedModel(model, get_tokenizer("gpt2"), name=path.name, source=str(path), token_counts=counts)


def _load_torch_file(path: Path, device, dtype) -> LoadedModel:
    payload = _torch_load(path)
    if not isinstance(payload, dict):
        raise ModelLoadError(f"{path}: expected a state dict or a nanoGPT checkpoint")
    if "model" in payload and isinstance(payload["model"], dict):  # nanoGPT ckpt.pt
        args = payload.get("model_args", {})
        state = _canonical_state(payload["model"], conv1d=False)
        config = _config_from_state(state, n_head=args.get("n_head"))
        if "bias" in args and args["bias"] != config.bias:
            raise ModelLoadError(f"{path}: model_args say bias={args['bias']} but the tensors disagree")
    else:  # a bare state dict, as in pytorch_model.bin
        state = _canonical_state(payload, conv1d=None)
        config = _config_from_state(state, n_head=_sibling_n_head(path))
    model = _build(config, state, device, dtype)
    return LoadedModel(model, get_tokenizer("gpt2"), name=path.name, source=str(path))


def load_model(spec: str | None = None, device: str = "auto", dtype: str = "auto",
               optimise: bool = True) -> LoadedModel:
    """Load a model by name or path. None means the bundled model.

    optimise: pack the weights for fast inference on the CPU (fast.py; checked at load, with a
    plain fallback). Pass False for plain nn.Linear modules, e.g. to train the model further.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if dev.type == "cpu" and dt == torch.float16:
        raise ModelLoadError("float16 is not supported on the CPU; use float32 or bfloat16")
    try:
        loaded = _load_spec(spec, dev, dt)
    except (ValueError, TypeError, KeyError, ZeroDivisionError) as exc:  # numbers that cannot make a GPT-2
        raise ModelLoadError(f"{spec or 'bundled'}: unusable model configuration: {exc}") from None
    if optimise:
        from .fast import optimise_for_inference

        optimise_for_inference(loaded.model)
    return loaded


def _load_spec(spec: str | None, dev: torch.device, dt: torch.dtype) -> LoadedModel:
    if spec is None or spec == "bundled":
        path = bundled_model_dir()
        if path is None:
            raise ModelLoadError("no bundled model in this installation; pass --model (a path, or gpt2 when online)")
        return _load_own_dir(path, dev, dt, name="bundled")
    kind, where = locate(spec)
    if kind == "dir":
        path = where
        is_ours = read_json_object(path / "config.json").get("format") == FORMAT
        loader = _load_own_dir if is_ours else _load_hf_dir
        return loader(path, dev, dt, name=path.name)
    if kind == "file":
        # What the file holds decides how it is read, not its name (a .pt may be safetensors).
        content = sniff(where)
        if content == "empty":
            raise ModelLoadError(f"{where}: the file is empty")
        if content == "safetensors" or (content == "unknown" and where.suffix == ".safetensors"):
            return _load_safetensors_file(where, dev, dt)
        if content in ("zip", "pickle"):
            return _load_torch_file(where, dev, dt)
        raise ModelLoadError(f"{where}: not a checkpoint gpt-tui can read (neither safetensors nor a PyTorch "
                             f"file); give a .safetensors, .bin or .pt file or a model directory")
    loaded = _load_hf_dir(hub.model_dir(where), dev, dt, name=spec)
    loaded.source = f"hub:{where}"
    return loaded


# -- saving ------------------------------------------------------------------------------------------


def save_model(model: GPT, out: Path, meta: dict, dtype: torch.dtype = torch.float32,
               token_counts: torch.Tensor | None = None) -> Path:
    """Write model.safetensors and config.json in this project's format; return the directory."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    if token_counts is not None:
        state["token_counts"] = token_counts.to(torch.int64).contiguous()
    config = model.config.to_dict()
    config["dropout"] = 0.0  # inference
    save_file(state, str(out / "model.safetensors"), metadata={"format": FORMAT, "config": json.dumps(config)})
    (out / "config.json").write_text(json.dumps({"format": FORMAT, "config": config, **meta}, indent=2) + "\n")
    return out
