"""Models from the Hugging Face Hub, the way the ecosystem expects: the standard cache first
(HF_HOME / HF_HUB_CACHE, as huggingface_hub resolves them), a revision pinned with `id@revision`,
single, sharded (`*.index.json`) and `.bin`-only checkpoints, download progress with bytes, rate
and ETA, and errors that say what to do (authenticate, check the id, go online) with the network's
own cause kept.

Nothing is unpickled here; the caller reads the weights (safetensors, or torch.load with
weights_only=True).
"""

from __future__ import annotations

import contextvars
import inspect
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .files import ModelLoadError

# What a model directory needs besides its weights (absent ones are skipped); the families beyond
# GPT-2 bring their own tokenizer and chat template (hf_tokenizer.py, chat.py).
SIDE_FILES = ("config.json", "generation_config.json", "vocab.json", "merges.txt", "tokenizer.json",
              "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
# The weights, in the order they are preferred: safetensors first, one file before shards.
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


# -- names ------------------------------------------------------------------------------------------


def split_revision(spec: str) -> tuple[str, str | None]:
    """"owner/name@revision" -> ("owner/name", "revision"); no "@" -> (spec, None)."""
    repo, at, revision = spec.partition("@")
    return repo, (revision if at else None)


def with_revision(spec: str | None, revision: str | None) -> str | None:
    """The model spec with --revision folded in (an "@" in the spec itself wins)."""
    if not revision or spec is None or "@" in spec:
        return spec
    return f"{spec}@{revision}"


# -- which files ---------------------------------------------------------------------------------------


def weights_files(present: Callable[[str], bool], read_index: Callable[[str], dict]) -> list[str]:
    """The weight files a repository's checkpoint is made of, given which names exist and a way
    to read an index: one file, or an index and every shard it names. [] when there are none."""
    for name in WEIGHTS:
        if not present(name):
            continue
        if not name.endswith(".index.json"):
            return [name]
        weight_map = read_index(name).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelLoadError(f"{name}: no \"weight_map\" naming the shards")
        shards = sorted(set(weight_map.values()))
        if any(not isinstance(s, str) or "/" in s or s.startswith(".") for s in shards):
            raise ModelLoadError(f"{name}: a shard name that is not a file beside it")
        return [name, *shards]
    return []


def read_weights(path: Path, read_safetensors, torch_load) -> dict:
    """The state dict of a Hugging Face model directory: model.safetensors, its shards, or
    pytorch_model.bin (or its shards) through the caller's safe torch.load."""
    # exists(), not is_file(): a FIFO or a directory in its place is named as such by the reader
    files = weights_files(lambda n: (path / n).exists(), lambda n: _read_index(path / n))
    if not files:
        raise ModelLoadError(f"{path}: no model.safetensors or pytorch_model.bin (nor a sharded index) "
                             "in this directory")
    shards = files[1:] if files[0].endswith(".index.json") else files
    state: dict = {}
    for name in shards:
        if not (path / name).exists():
            raise ModelLoadError(f"{path}: shard {name} named by {files[0]} is missing")
        part = read_safetensors(path / name)[0] if name.endswith(".safetensors") else torch_load(path / name)
        if not isinstance(part, dict):
            raise ModelLoadError(f"{path / name}: expected a state dict")
        state.update(part)
    return state


def _read_index(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable index ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: not a JSON object")
    return data


# -- progress --------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """How a download stands: bytes done of total, at what rate, and how long is left."""

    repo: str
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None until there is a rate."""
        return (self.total - self.done) / self.rate if self.rate > 0 and self.total else None

    def line(self) -> str:
        """"downloading gpt2: 120.3 MiB of 522.7 MiB · 14.2 MiB/s · 0:28 left"."""
        eta = self.eta
        left = f" · {int(eta) // 60}:{int(eta) % 60:02d} left" if eta is not None else ""
        return (f"downloading {self.repo}: {_size(self.done)} of {_size(self.total)} · "
                f"{_size(self.rate)}/s{left}")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


_reporter: contextvars.ContextVar[Callable[[Progress], None] | None] = contextvars.ContextVar("reporter", default=None)


@contextmanager
def reporting(report: Callable[[Progress], None]):
    """Downloads started inside the block (in this thread) call `report` as bytes arrive."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


def stderr_reporter(stream, every: float = 0.2) -> Callable[[Progress], None]:
    """A progress line on a terminal, redrawn in place at most every `every` seconds."""
    last = [0.0]

    def report(progress: Progress) -> None:
        now = time.monotonic()
        finished = progress.done >= progress.total
        if now - last[0] < every and not finished:
            return
        last[0] = now
        stream.write(f"\r\x1b[2K{progress.line()}" + ("\n" if finished else ""))
        stream.flush()

    return report


class _Tally:
    """Bytes of several files counted as one download."""

    def __init__(self, repo: str, total: int, report: Callable[[Progress], None]) -> None:
        self.repo, self.total, self.report = repo, total, report
        self.done = 0
        self.start = time.monotonic()

    def add(self, n: int) -> None:
        self.done += n
        self.report(Progress(self.repo, min(self.done, self.total), self.total, time.monotonic() - self.start))

    def bar_class(self):
        """A stand-in for tqdm that huggingface_hub's download loop updates: it only counts."""
        tally = self

        class Bar:
            def __init__(self, *args, initial: int = 0, total=None, **kwargs) -> None:
                self.n, self.total = initial, total
                if initial:
                    tally.add(initial)  # a resumed download: those bytes are here already

            def update(self, n: int = 1) -> None:
                self.n += n or 0
                tally.add(n or 0)

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

            def close(self) -> None:
                pass

            def __getattr__(self, name):  # set_description, refresh, … : nothing to draw
                return lambda *args, **kwargs: None

        return Bar


# -- the cache and the Hub ----------------------------------------------------------------------------


def offline() -> bool:
    """HF_HUB_OFFLINE (or the older TRANSFORMERS_OFFLINE) set: the cache only."""
    from huggingface_hub import constants

    truthy = ("1", "on", "yes", "true")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False)) or any(
        os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cache_dir() -> str:
    """The Hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def model_dir(spec: str) -> Path:
    """A hub model's directory ("owner/name" or "owner/name@revision"): from the cache when it
    holds the whole checkpoint, else downloaded into it. Errors are ModelLoadError, one line each."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise ModelLoadError("loading hub models needs huggingface_hub (pip install huggingface_hub)") from None
    repo, revision = split_revision(spec)
    cached = _cached(repo, revision)
    if cached is not None:
        return cached
    where = repr(repo) + (f" at revision {revision!r}" if revision else "")
    if offline():
        raise ModelLoadError(f"{where} is not in the Hugging Face cache ({cache_dir()}) and HF_HUB_OFFLINE is set, "
                             "so it cannot be downloaded: unset HF_HUB_OFFLINE and connect once, or pass a local path")
    try:
        return _download(repo, revision)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every Hub failure becomes one true line
        raise ModelLoadError(explain(exc, repo, revision)) from None


TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt")


def tokenizer_dir(spec: str) -> Path:
    """A hub model's tokenizer files without its weights (`gpt-tui tokenize --model owner/name`):
    from the cache, else config.json and the tokenizer files downloaded (kilobytes to megabytes)."""
    try:
        import huggingface_hub
    except ImportError:
        raise ModelLoadError("reading hub models needs huggingface_hub (pip install huggingface_hub)") from None
    repo, revision = split_revision(spec)
    try:
        snapshot = Path(huggingface_hub.hf_hub_download(repo, "config.json", revision=revision,
                                                        local_files_only=True, cache_dir=cache_dir())).parent
        if (snapshot / "tokenizer.json").is_file() or (snapshot / "vocab.json").is_file():
            return snapshot
    except Exception:  # not cached: downloading decides
        pass
    where = repr(repo) + (f" at revision {revision!r}" if revision else "")
    if offline():
        raise ModelLoadError(f"{where}: its tokenizer is not in the Hugging Face cache ({cache_dir()}) and "
                             "HF_HUB_OFFLINE is set: unset HF_HUB_OFFLINE and connect once, or pass a local path")
    try:
        info = huggingface_hub.HfApi().model_info(repo, revision=revision)
        present = {s.rfilename for s in (info.siblings or [])}
        if "config.json" not in present:
            raise ModelLoadError(f"{repo}: the repository has no config.json")
        fetch = _fetcher(repo, info.sha or revision, with_progress=False)  # every file from the same commit
        paths = [fetch(name) for name in TOKENIZER_FILES if name in present]
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every Hub failure becomes one true line
        raise ModelLoadError(explain(exc, repo, revision)) from None
    return Path(paths[0]).parent


def _cached(repo: str, revision: str | None) -> Path | None:
    """The snapshot directory if the cache has config.json and every weight file, else None."""
    import huggingface_hub

    try:
        config = huggingface_hub.hf_hub_download(repo, "config.json", revision=revision, local_files_only=True,
                                                 cache_dir=cache_dir())
    except Exception:  # not cached (or not all of it): downloading decides
        return None
    snapshot = Path(config).parent
    try:
        files = weights_files(lambda n: (snapshot / n).is_file(), lambda n: _read_index(snapshot / n))
    except ModelLoadError:
        return None
    return snapshot if files and all((snapshot / n).is_file() for n in files) else None


def _download(repo: str, revision: str | None) -> Path:
    import huggingface_hub

    info = huggingface_hub.HfApi().model_info(repo, revision=revision, files_metadata=True)
    sizes = {s.rfilename: (s.size or 0) for s in (info.siblings or [])}
    commit = info.sha or revision  # every file from the same commit, even if the branch moves meanwhile
    report = _reporter.get()
    fetch = _fetcher(repo, commit, report is not None)

    def read_index(name: str) -> dict:
        return _read_index(Path(fetch(name)))

    weights = weights_files(lambda n: n in sizes, read_index)
    if not weights:
        raise ModelLoadError(f"{repo}: the repository has no model.safetensors or pytorch_model.bin "
                             "(nor a sharded index): not a checkpoint gpt-tui can read")
    if "config.json" not in sizes:
        raise ModelLoadError(f"{repo}: the repository has no config.json")
    wanted = [n for n in SIDE_FILES if n in sizes] + [n for n in weights if not n.endswith(".index.json")]
    tally = _Tally(repo, sum(sizes.get(n, 0) for n in wanted), report) if report else None
    paths = [fetch(name, tally, sizes.get(name, 0)) for name in wanted]
    return Path(paths[0]).parent


def _fetcher(repo: str, commit: str | None, with_progress: bool):
    """fetch(filename, tally=None, size=0) -> local path, through huggingface_hub's own download (its cache,
    its locks, its resumption), its bytes counted into `tally`: through the progress bar class
    huggingface_hub accepts, or (releases before it took one) by watching the file grow."""
    import huggingface_hub

    reports = "tqdm_class" in inspect.signature(huggingface_hub.hf_hub_download).parameters
    where = cache_dir()  # as huggingface_hub resolved HF_HOME / HF_HUB_CACHE, passed on explicitly

    def fetch(filename: str, tally: _Tally | None = None, size: int = 0) -> str:
        if tally is None or not with_progress:
            return huggingface_hub.hf_hub_download(repo, filename, revision=commit, cache_dir=where)
        if reports:
            return huggingface_hub.hf_hub_download(repo, filename, revision=commit, cache_dir=where,
                                                   tqdm_class=tally.bar_class())
        with _watching(repo, tally, size):
            return huggingface_hub.hf_hub_download(repo, filename, revision=commit, cache_dir=where)

    return fetch


WATCH_EVERY = 0.25  # seconds between looks at a growing download


@contextmanager
def _watching(repo: str, tally: _Tally, size: int):
    """Count the bytes of the repository's `*.incomplete` files in the cache (where huggingface_hub
    writes a download before it moves it into place) until the block ends."""
    import threading

    blobs = Path(cache_dir()) / f"models--{repo.replace('/', '--')}" / "blobs"
    stop = threading.Event()
    counted = [0]

    def grown() -> int:
        try:
            return sum(p.stat().st_size for p in blobs.glob("*.incomplete"))
        except OSError:  # moved into place between listing and stat
            return counted[0]

    def watch() -> None:
        while not stop.wait(WATCH_EVERY):
            size = grown()
            if size > counted[0]:
                tally.add(size - counted[0])
                counted[0] = size

    watcher = threading.Thread(target=watch, name="gpt-tui-download-progress", daemon=True)
    watcher.start()
    start = tally.done
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    tally.done = start  # the file is whole now: count exactly its size, not what was seen of it
    tally.add(size)


# -- errors -------------------------------------------------------------------------------------------


def explain(exc: BaseException, repo: str, revision: str | None = None) -> str:
    """One line that says what went wrong with the Hub and what to do about it."""
    from huggingface_hub import utils as hf

    token = "a token was sent but does not give access" if _has_token() else "no token was sent"
    login = "set HF_TOKEN to an access token or run `hf auth login`"
    page = f"https://huggingface.co/{repo}"
    if isinstance(exc, getattr(hf, "GatedRepoError", ())):
        return f"{repo} is gated: accept its conditions at {page}, then authenticate ({login}); {token}"
    if isinstance(exc, getattr(hf, "RevisionNotFoundError", ())):
        return f"{repo} has no revision {revision!r}: check the branch, tag or commit (see {page}/tree/main)"
    if isinstance(exc, getattr(hf, "EntryNotFoundError", ())):
        return f"{repo}: a file the repository lists could not be fetched ({_cause(exc)})"
    if isinstance(exc, getattr(hf, "RepositoryNotFoundError", ())) or _status(exc) in (401, 404):
        return (f"{repo} was not found on the Hugging Face Hub: check the id (e.g. openai-community/gpt2); "
                f"if it is private, {login} ({token})")
    if _status(exc) == 403:
        return f"{repo}: access refused (403): {login} with a token that may read it ({token})"
    if _status(exc) == 429:
        return f"{repo}: the Hub is rate-limiting this machine (429); wait a little, or authenticate ({login})"
    return (f"{repo}: cannot reach the Hugging Face Hub ({_cause(exc)}); check the connection or HF_ENDPOINT, "
            f"or set HF_HUB_OFFLINE=1 to use only the cache ({cache_dir()})")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _cause(exc: BaseException) -> str:
    """The innermost reason in the exception chain, e.g. "[Errno -3] Temporary failure in name
    resolution", one line."""
    seen, reason = set(), ""
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc).strip().splitlines()
        if text:
            reason = text[0].strip()
        exc = exc.__cause__ or exc.__context__
    return reason[:200] or "no reason given"


def _has_token() -> bool:
    try:
        from huggingface_hub import get_token

        return bool(get_token())
    except Exception:  # noqa: BLE001 - an old huggingface_hub, an unreadable token file
        return bool(os.environ.get("HF_TOKEN"))
