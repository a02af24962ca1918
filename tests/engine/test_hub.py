"""Hub models the Hugging Face way, without a network: the standard cache read by huggingface_hub
itself, `id@revision`, sharded and `.bin`-only checkpoints, download progress, and errors that say
what to do. Downloads go through a fake Hub (huggingface_hub's two entry points replaced) that
serves files from local directories into a cache laid out as the real one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants
from huggingface_hub import utils as hf_utils
from safetensors.torch import load_file, save_file

from gpt_tui.engine import hub
from gpt_tui.engine.files import ModelLoadError, hub_repo
from gpt_tui.engine.loading import load_model

from .helpers import hf_logits, our_logits

SHA = "0123456789abcdef0123456789abcdef01234567"


def snapshot(cache: Path, repo: str, sha: str = SHA) -> Path:
    """The folder huggingface_hub keeps a commit's files in, with refs/main pointing at it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(sha)
    path = root / "snapshots" / sha
    path.mkdir(parents=True, exist_ok=True)
    return path


def hf_error(cls, message: str):
    """An instance of one of huggingface_hub's errors (newer releases want an HTTP response)."""
    try:
        return cls(message)
    except TypeError:
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        return exc


class FakeHub:
    """Repositories served from local folders: model_info lists them, hf_hub_download copies a file
    into the cache in chunks and tells the progress bar it was given, as the real one does."""

    def __init__(self, cache: Path) -> None:
        self.cache, self.repos, self.failures, self.calls = cache, {}, {}, []

    def add(self, repo: str, folder: Path) -> None:
        self.repos[repo] = folder

    def model_info(self, repo, revision=None, files_metadata=False, **kwargs):
        self.calls.append(("model_info", repo, revision))
        if repo in self.failures:
            raise self.failures[repo]
        if repo not in self.repos:
            raise hf_error(hf_utils.RepositoryNotFoundError, f"404 Client Error: Repository Not Found for {repo}")
        if revision not in (None, "main", SHA):
            raise hf_error(hf_utils.RevisionNotFoundError, f"404 Client Error: Revision Not Found for {revision}")
        files = sorted(p for p in self.repos[repo].iterdir() if p.is_file())
        return SimpleNamespace(sha=SHA, siblings=[SimpleNamespace(rfilename=p.name, size=p.stat().st_size)
                                                  for p in files])

    def hf_hub_download(self, repo, filename, revision=None, local_files_only=False, tqdm_class=None, **kwargs):
        if local_files_only:
            path = self.cache / f"models--{repo.replace('/', '--')}" / "snapshots" / SHA / filename
            if not path.is_file():
                raise hf_error(hf_utils.LocalEntryNotFoundError, "not in the cache")
            return str(path)
        self.calls.append(("download", repo, filename, revision))
        source = self.repos[repo] / filename
        target = snapshot(self.cache, repo) / filename
        data = source.read_bytes()
        bar = tqdm_class(total=len(data), unit="B", unit_scale=True, desc=filename) if tqdm_class else None
        with open(target, "wb") as out:
            for start in range(0, len(data), 4096):
                out.write(data[start:start + 4096])
                if bar is not None:
                    bar.update(len(data[start:start + 4096]))
        if bar is not None:
            bar.close()
        return str(target)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of this test's own (HF_HUB_CACHE as huggingface_hub reads it)."""
    path = tmp_path / "hub-cache"
    path.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(path))
    return path


@pytest.fixture
def online(monkeypatch, cache):
    """The fake Hub, reachable: HF_HUB_OFFLINE unset, any real request bound to fail at once."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    fake = FakeHub(cache)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info",
                        lambda self, repo, **kwargs: fake.model_info(repo, **kwargs))
    return fake


def sharded(hf_dir: Path, out: Path) -> Path:
    """hf_dir's checkpoint as two safetensors shards and their index, as save_pretrained writes
    a large model."""
    out.mkdir()
    shutil.copy(hf_dir / "config.json", out / "config.json")
    state = load_file(str(hf_dir / "model.safetensors"))
    names = sorted(state)
    half = len(names) // 2
    weight_map = {}
    for i, part in enumerate((names[:half], names[half:]), 1):
        shard = f"model-0000{i}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, str(out / shard), metadata={"format": "pt"})
        weight_map.update({k: shard for k in part})
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return out


# -- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,repo", [
    ("gpt2@v1.0", "openai-community/gpt2@v1.0"), ("org/model@" + SHA, "org/model@" + SHA),
    ("org/model@refs/pr/3", "org/model@refs/pr/3"), ("org/model@", None), ("gpt2@bad rev", None),
])
def test_a_revision_rides_on_the_id(spec, repo):
    assert hub_repo(spec) == repo


def test_revision_folds_into_the_spec():
    assert hub.with_revision("org/m", "v2") == "org/m@v2"
    assert hub.with_revision("org/m@v1", "v2") == "org/m@v1"  # the id's own revision wins
    assert hub.split_revision("org/m@v2") == ("org/m", "v2")


# -- the standard cache, read by huggingface_hub itself ------------------------------------------------------


def test_a_cached_model_loads_offline_through_the_standard_cache(cache, hf_dir, hf_model):
    folder = snapshot(cache, "org/tiny")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(hf_dir / name, folder / name)
    ids = [1, 2, 3, 4]
    for spec in ("org/tiny", f"org/tiny@{SHA}"):
        loaded = load_model(spec, device="cpu", optimise=False)
        assert loaded.source == f"hub:{spec}"
        torch.testing.assert_close(our_logits(loaded, ids), hf_logits(hf_model, ids), atol=1e-4, rtol=1e-4)


def test_offline_and_not_cached_names_the_variable_and_the_cache(cache):
    with pytest.raises(ModelLoadError) as info:
        load_model("org/absent", device="cpu")
    message = str(info.value)
    assert "not in the Hugging Face cache" in message and "HF_HUB_OFFLINE" in message and str(cache) in message


def test_an_incomplete_cache_is_not_taken_for_the_model(cache, hf_dir):
    folder = snapshot(cache, "org/half")
    shutil.copy(hf_dir / "config.json", folder / "config.json")  # the weights never arrived
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_model("org/half", device="cpu")


# -- downloads ------------------------------------------------------------------------------------------------


def test_a_sharded_checkpoint_downloads_with_progress_and_loads(online, hf_dir, hf_model, tmp_path):
    online.add("org/sharded", sharded(hf_dir, tmp_path / "remote"))
    seen = []
    with hub.reporting(seen.append):
        loaded = load_model("org/sharded", device="cpu", optimise=False)
    ids = [5, 6, 7]
    torch.testing.assert_close(our_logits(loaded, ids), hf_logits(hf_model, ids), atol=1e-4, rtol=1e-4)
    fetched = [c[2] for c in online.calls if c[0] == "download"]
    assert "model.safetensors.index.json" in fetched and {"model-00001-of-00002.safetensors",
                                                          "model-00002-of-00002.safetensors"} <= set(fetched)
    assert all(c[3] == SHA for c in online.calls if c[0] == "download")  # every file from one commit
    done = [p.done for p in seen]
    assert done == sorted(done) and seen[-1].done == seen[-1].total > 0
    assert seen[-1].line().startswith("downloading org/sharded: ") and "/s" in seen[-1].line()
    again = load_model("org/sharded", device="cpu", optimise=False)  # now from the cache: no request
    assert len([c for c in online.calls if c[0] == "model_info"]) == 1 and again.config == loaded.config


def test_a_bin_only_repository_loads_through_the_safe_loader(online, hf_bin_dir, hf_model, monkeypatch):
    online.add("org/old", hf_bin_dir)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real_load(*a, **k))
    loaded = load_model("org/old", device="cpu", optimise=False)
    ids = [1, 9, 3]
    torch.testing.assert_close(our_logits(loaded, ids), hf_logits(hf_model, ids), atol=1e-4, rtol=1e-4)
    assert calls == [True]


def test_a_revision_is_asked_for(online, hf_dir):
    online.add("org/tiny", hf_dir)
    load_model("org/tiny@main", device="cpu", optimise=False)
    assert ("model_info", "org/tiny", "main") in online.calls


# -- errors ----------------------------------------------------------------------------------------------------


def _error(online, repo: str, exc: BaseException | None = None, spec: str | None = None) -> str:
    if exc is not None:
        online.failures[repo] = exc
    with pytest.raises(ModelLoadError) as info:
        load_model(spec or repo, device="cpu")
    return str(info.value)


def test_gated_says_how_to_authenticate(online, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", "/nonexistent/token")
    message = _error(online, "meta/gated", hf_error(hf_utils.GatedRepoError, "401 Client Error: gated"))
    assert "is gated" in message and "HF_TOKEN" in message and "hf auth login" in message
    assert "https://huggingface.co/meta/gated" in message


def test_not_found_says_check_the_id(online):
    message = _error(online, "org/nope")
    assert "not found on the Hugging Face Hub" in message and "check the id" in message


def test_an_unknown_revision_is_named(online, hf_dir):
    online.add("org/tiny", hf_dir)
    message = _error(online, "org/tiny", spec="org/tiny@no-such-branch")
    assert "no revision 'no-such-branch'" in message


def test_a_network_failure_keeps_its_cause(online):
    cause = OSError("[Errno -3] Temporary failure in name resolution")
    try:
        try:
            raise cause
        except OSError as inner:
            raise ConnectionError("Max retries exceeded with url: /api/models/org/x") from inner
    except ConnectionError as exc:
        failure = exc
    message = _error(online, "org/x", failure)
    assert "cannot reach the Hugging Face Hub" in message and "Temporary failure in name resolution" in message
    assert "HF_HUB_OFFLINE=1" in message


def test_a_repository_without_weights_says_so(online, tmp_path, hf_dir):
    remote = tmp_path / "remote"
    remote.mkdir()
    shutil.copy(hf_dir / "config.json", remote / "config.json")
    online.add("org/empty", remote)
    assert "no model.safetensors or pytorch_model.bin" in _error(online, "org/empty")


# -- sharded checkpoints on disk --------------------------------------------------------------------------------


def test_a_local_sharded_directory_loads(hf_dir, hf_model, tmp_path):
    loaded = load_model(str(sharded(hf_dir, tmp_path / "local")), device="cpu", optimise=False)
    ids = [1, 2, 3, 4]
    torch.testing.assert_close(our_logits(loaded, ids), hf_logits(hf_model, ids), atol=1e-4, rtol=1e-4)


def test_a_missing_shard_is_named(hf_dir, tmp_path):
    folder = sharded(hf_dir, tmp_path / "local")
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="shard model-00002-of-00002.safetensors .* is missing"):
        load_model(str(folder), device="cpu")


def test_progress_line_on_a_terminal():
    import io

    out = io.StringIO()
    report = hub.stderr_reporter(out, every=0)
    report(hub.Progress("gpt2", 50 * 2**20, 100 * 2**20, 5.0))
    report(hub.Progress("gpt2", 100 * 2**20, 100 * 2**20, 10.0))
    text = out.getvalue()
    assert "\r\x1b[2Kdownloading gpt2: 50.0 MiB of 100.0 MiB · 10.0 MiB/s · 0:05 left" in text
    assert text.endswith("100.0 MiB of 100.0 MiB · 10.0 MiB/s · 0:00 left\n")


# -- the command line -------------------------------------------------------------------------------------------


def _cli(*args):
    from typer.testing import CliRunner

    from gpt_tui.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_cli_takes_revision_anywhere_and_shows_progress_only_on_a_terminal(online, hf_dir, monkeypatch):
    import gpt_tui.cli

    online.add("org/tiny", hf_dir)
    quiet = _cli("info", "--model", "org/tiny", "--json", "--revision", "main")
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    assert ("model_info", "org/tiny", "main") in online.calls
    shutil.rmtree(online.cache)
    online.cache.mkdir()
    monkeypatch.setattr(gpt_tui.cli, "_on_terminal", lambda stream: True)
    shown = _cli("--revision", "main", "info", "--model", "org/tiny", "--json")
    assert shown.exit_code == 0 and "downloading org/tiny: " in shown.stderr and "left\n" in shown.stderr


def test_the_cli_refuses_a_revision_without_a_hub_model(hf_dir):
    for args in (["info", "--revision", "main"], ["info", "--model", hf_dir, "--revision", "main"]):
        result = _cli(*args)
        assert result.exit_code == 2 and "--revision needs --model naming a Hugging Face Hub model" in result.stderr


def test_progress_without_a_progress_bar_hook(online, hf_dir, monkeypatch):
    """huggingface_hub releases before hf_hub_download took tqdm_class: the growing *.incomplete
    file in the cache is watched instead."""
    import time

    online.add("org/tiny", hf_dir)

    def old_download(repo, filename, revision=None, local_files_only=False, cache_dir=None):  # no tqdm_class
        if local_files_only:
            return online.hf_hub_download(repo, filename, revision=revision, local_files_only=True)
        blobs = online.cache / f"models--{repo.replace('/', '--')}" / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        data = (online.repos[repo] / filename).read_bytes()
        partial = blobs / f"{filename}.incomplete"
        with open(partial, "wb") as out:
            for start in range(0, len(data), len(data) // 4 + 1):
                out.write(data[start:start + len(data) // 4 + 1])
                out.flush()
                time.sleep(0.1)
        target = snapshot(online.cache, repo) / filename
        partial.replace(target)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", old_download)
    monkeypatch.setattr(hub, "WATCH_EVERY", 0.01)
    seen = []
    with hub.reporting(seen.append):
        load_model("org/tiny", device="cpu", optimise=False)
    total = seen[-1].total
    assert seen[-1].done == total == sum(p.stat().st_size for p in hf_dir.iterdir() if p.name in
                                         ("config.json", "generation_config.json", "model.safetensors"))
    assert any(0 < p.done < total and p.done not in (0, total) for p in seen[:-1])  # seen while it grew


# -- a hub model's tokenizer alone (`gpt-tui tokenize --model owner/name`) ----------------------------------


def test_a_hub_models_own_tokenizer_comes_without_its_weights(online, tmp_path, monkeypatch):
    from gpt_tui.engine.tokenizer import tokenizer_for_model

    from .families import build

    remote = tmp_path / "remote"
    build("qwen2", remote, seed=1)
    online.add("org/qwenish", remote)
    local = tokenizer_for_model(str(remote))
    got = tokenizer_for_model("org/qwenish")
    text = "Hello, world: the fox"
    assert got.name == "org/qwenish (tokenizer.json)" and local.name == "remote (tokenizer.json)"
    assert got.encode(text) == local.encode(text)
    fetched = {c[2] for c in online.calls if c[0] == "download"}
    assert {"config.json", "tokenizer.json"} <= fetched
    assert not any(n.endswith((".safetensors", ".bin")) for n in fetched)  # never the weights
    monkeypatch.setattr(hub, "offline", lambda: True)  # now from the cache alone
    assert tokenizer_for_model("org/qwenish").encode(text) == local.encode(text)
    assert tokenizer_for_model("gpt2").name == "gpt2"  # the GPT-2 family needs no request at all
    assert len([c for c in online.calls if c[0] == "model_info"]) == 1


def test_a_hub_tokenizer_not_cached_offline_is_one_line(cache):
    from gpt_tui.engine.tokenizer import tokenizer_for_model

    with pytest.raises(ModelLoadError) as info:
        tokenizer_for_model("org/absent")
    assert "its tokenizer is not in the Hugging Face cache" in str(info.value) and "\n" not in str(info.value)
