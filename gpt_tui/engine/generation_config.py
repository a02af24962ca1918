"""A model's default sampling knobs, from a Hugging Face style ``generation_config.json``.

Real Hugging Face models ship one next to their weights, and so does the bundled model. Only
the knobs gpt-tui has are read (``temperature``, ``top_k``, ``top_p``, and ``do_sample``: an
explicit false means greedy). A key the file leaves out keeps gpt-tui's own default, which is
the raw distribution (T=1, no cuts) — not Hugging Face's implicit top-k of 50, so a model
whose file says nothing about sampling is shown as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .sampling import SamplingParams

FILE_NAME = "generation_config.json"


@dataclass(frozen=True)
class GenerationDefaults:
    params: SamplingParams
    source: str  # the file they came from, or "" for gpt-tui's own defaults

    @property
    def from_model(self) -> bool:
        return bool(self.source)


RAW = GenerationDefaults(SamplingParams(), "")


class GenerationConfigError(ValueError):
    """generation_config.json exists but cannot be used; the message says why."""


def read_generation_config(directory: Path) -> GenerationDefaults:
    """The sampling defaults in ``directory/generation_config.json``; RAW when there is none."""
    path = Path(directory) / FILE_NAME
    if not path.is_file():
        return RAW
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenerationConfigError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise GenerationConfigError(f"{path}: expected a JSON object")
    defaults = SamplingParams()
    try:
        temperature = _number(data, "temperature", float, defaults.temperature)
        top_k = _number(data, "top_k", int, defaults.top_k)
        top_p = _number(data, "top_p", float, defaults.top_p)
        if data.get("do_sample") is False:
            temperature = 0.0  # Hugging Face decodes greedily unless told to sample
        params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p)
    except (TypeError, ValueError) as exc:
        raise GenerationConfigError(f"{path}: {exc}") from None
    return GenerationDefaults(params, str(path))


def _number(data: dict, key: str, kind: type, default):
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise TypeError(f"{key} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    return kind(value)


def write_generation_config(directory: Path, params: SamplingParams, note: str = "") -> Path:
    """Write the knobs in Hugging Face's spelling (do_sample true unless greedy)."""
    path = Path(directory) / FILE_NAME
    data = {"do_sample": not params.greedy, "temperature": params.temperature, "top_k": params.top_k,
            "top_p": params.top_p, "bos_token_id": 50256, "eos_token_id": 50256}
    if note:
        data["_comment"] = note
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
