"""MODEL_CARD.md, generated from the shipped checkpoint itself (placeholder until samples exist)."""

from __future__ import annotations

from pathlib import Path


def write_model_card(model_dir: Path, console=None) -> Path:
    raise NotImplementedError
