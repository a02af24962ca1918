"""Finding and reading the files a model is made of, without torch.

One place for what a model argument names (a directory, a file, a hub model, or nothing that
exists) and for reading: regular files only, checked before a byte is read (reading a FIFO or a
terminal would wait forever), and errors that say what is wrong with which path.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from .config import PRESETS
from .errors import GptTuiError

HUB_MODELS = tuple(PRESETS)
CONFIG_LIMIT = 16 * 2**20  # bytes of a JSON file we read at most (config.json is a few kB)


class ModelLoadError(GptTuiError, RuntimeError):
    """A model could not be loaded; the message says why in one line."""


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def path_kind(path: Path) -> str | None:
    """"dir" or "file" for what path names (following links), None when nothing is there; any
    other kind of file (FIFO, device, socket), a link loop or a path we may not look at is an error."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # a symlink loop, a name too long, no permission to look
        raise ModelLoadError(f"{path}: {_reason(exc)}") from None
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise ModelLoadError(f"{path}: {_kind(mode)}, not a regular file or a directory")


def open_regular(path: Path):
    """The file opened for binary reading, if it is a regular file (else a clear error, at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))  # a FIFO opens without waiting
    except OSError as exc:
        raise ModelLoadError(f"{path}: {_reason(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ModelLoadError(f"{path}: {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: Path) -> Path:
    """The path, once it is known to be a regular file we can open (for readers that open it themselves)."""
    open_regular(path).close()
    return path


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    with open_regular(path) as f:
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ModelLoadError(f"{path}: larger than {limit // 2**20} MiB; not the file it should be")
    return data


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object (config.json and the like)."""
    data = read_bytes(path, CONFIG_LIMIT)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path}: expected a JSON object {{…}}, found {type(value).__name__ if value is not None else 'null'}")
    return value


def hub_repo(spec: str) -> str | None:
    """The Hugging Face repository a model name stands for ("gpt2" -> "openai-community/gpt2"), or None.

    "owner/name" is a hub id unless its first part is a local directory (a mistyped path). Either
    may end in "@revision" (a branch, tag or commit), which is kept: "gpt2@main" -> "openai-community/gpt2@main"."""
    spec, at, revision = spec.partition("@")
    if at and not re.fullmatch(r"[\w.][\w./-]*", revision):
        return None
    if spec in HUB_MODELS:
        return ("distilbert/distilgpt2" if spec == "distilgpt2" else f"openai-community/{spec}") + at + revision
    if re.fullmatch(r"[\w.-]+/[\w.-]+", spec) and not spec.startswith((".", "/")) \
            and path_kind(Path(spec.split("/")[0])) != "dir":
        return spec + at + revision
    return None


def dir_label(path: Path) -> str:
    """A model directory as people name it: "owner/name" for a snapshot in the Hugging Face cache
    (…/models--owner--name/snapshots/<commit>), else the directory's own name."""
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name[len("models--"):].replace("--", "/")
    return path.name


def locate(spec: str) -> tuple[str, Path | str]:
    """What a --model argument names: ("dir", path), ("file", path) or ("hub", repo id); else an error."""
    path = Path(spec).expanduser()
    kind = path_kind(path)
    if kind == "dir" and path_kind(path / "config.json") != "file":
        raise ModelLoadError(f"{path}: no config.json — not a model directory")
    if kind is not None:
        return kind, path
    repo = hub_repo(spec)
    if repo is not None:
        return "hub", repo
    raise ModelLoadError(f"{spec}: no such file or directory, and not a known model ({', '.join(HUB_MODELS)})")


# -- what a weights file holds -------------------------------------------------------------------------


def sniff(path: Path) -> str:
    """"safetensors", "zip" (torch.save), "pickle" (torch's legacy format), "empty" or "unknown", from
    the first bytes, so a file is read as what it is, whatever its name says."""
    with open_regular(path) as f:
        head = f.read(9)
        size = os.fstat(f.fileno()).st_size
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size:
        return "safetensors"
    return "unknown"
