"""A checkpoint is data: a pickle that would run code is refused before any of it runs."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile

import pytest
import torch

from gpt_tui.engine.loading import ModelLoadError, load_model


class _ShellPayload:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class _ExecPayload:
    """Unpickling this runs Python that writes the marker file (no shell needed)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def _state_with(payload) -> dict:
    """A plausible state dict with the payload hidden among the tensors."""
    return {"transformer.wte.weight": torch.zeros(8, 4), "transformer.h.0.attn.bias": payload}


def _write_legacy_pickle(obj, path) -> None:
    """The old, non-zip torch.save format is a plain pickle stream."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _write_zip_pickle(obj, path) -> None:
    """torch.save's zip format, whose data.pkl holds the payload."""
    torch.save(obj, path)
    with zipfile.ZipFile(path) as z:
        assert any(name.endswith("data.pkl") for name in z.namelist())


WRITERS = {"zip": _write_zip_pickle, "legacy": _write_legacy_pickle}
PAYLOADS = {"os.system": _ShellPayload, "exec": _ExecPayload}


def _refused(path, marker) -> str:
    assert not marker.exists()
    with pytest.raises(ModelLoadError) as info:
        load_model(str(path), device="cpu", dtype="float32")
    assert not marker.exists(), "the payload ran"
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_malicious_pt_file_is_refused(writer, payload, tmp_path):
    marker = tmp_path / "pwned"
    WRITERS[writer](_state_with(PAYLOADS[payload](marker)), tmp_path / "ckpt.pt")
    message = _refused(tmp_path / "ckpt.pt", marker)
    assert "refused to load" in message and "could run code" in message


@pytest.mark.parametrize("writer", WRITERS)
def test_malicious_nanogpt_checkpoint_is_refused(writer, tmp_path):
    """The payload may hide outside the weights, e.g. in the training config."""
    marker = tmp_path / "pwned"
    ckpt = {"model": {"transformer.wte.weight": torch.zeros(8, 4)}, "model_args": {"n_head": 1},
            "config": {"dataset": _ShellPayload(marker)}}
    WRITERS[writer](ckpt, tmp_path / "ckpt.pt")
    assert "refused to load" in _refused(tmp_path / "ckpt.pt", marker)


@pytest.mark.parametrize("writer", WRITERS)
def test_malicious_pytorch_model_bin_in_an_hf_directory(writer, hf_dir, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model"
    path.mkdir()
    shutil.copy(hf_dir / "config.json", path)
    WRITERS[writer](_state_with(_ExecPayload(marker)), path / "pytorch_model.bin")
    message = _refused(path, marker)
    assert "refused to load" in message and "pytorch_model.bin" in message


def test_payload_really_runs_when_unpickled_freely(tmp_path):
    """Control: the payload is live, so the tests above prove the loader stopped it."""
    marker = tmp_path / "pwned"
    _write_legacy_pickle(_ExecPayload(marker), tmp_path / "x.pkl")
    with open(tmp_path / "x.pkl", "rb") as f:
        pickle.load(f)  # noqa: S301 - deliberately unsafe, on our own payload
    assert marker.read_text() == "pwned"


def test_safetensors_is_preferred_over_a_pickle(hf_dir, tmp_path):
    """With both files present the pickle is never opened, however poisoned it is."""
    marker = tmp_path / "pwned"
    path = shutil.copytree(hf_dir, tmp_path / "both")
    _write_legacy_pickle(_state_with(_ExecPayload(marker)), path / "pytorch_model.bin")
    loaded = load_model(str(path), device="cpu", dtype="float32")
    assert loaded.config.n_layer == 2
    assert not marker.exists()
