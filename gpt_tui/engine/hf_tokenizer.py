"""A model's own tokenizer.json, through Hugging Face's `tokenizers` library, with the same honesty as
the tiktoken path (tokenizer.py): every piece's exact bytes and the characters it covers.

A token's bytes are read from its vocabulary entry, not from `decode` (which drops or merges
spaces): byte-level BPE (Llama 3, Qwen, SmolLM) spells each byte as a printable character, undone
here; SentencePiece-style BPE (Gemma, Mistral, Phi-3) writes a space as ▁, shown as the space it
is, and a byte it has no piece for as <0xNN>, which is that one byte (so a character split over
several tokens shows as \\xNN escapes). Added tokens (<bos>, <|im_start|> …) are their text.

The begin-of-sequence token is added exactly as the model's files say: what the tokenizer.json
post-processor puts in front of a text, unless tokenizer_config.json sets add_bos_token, which
then decides (true: the bos_token first; false: nothing).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .tokenizer import Piece, Tokenizer, TokenizerError, check_text


@lru_cache(maxsize=1)
def _byte_level_chars() -> dict[str, int]:
    """GPT-2's byte-to-printable-character table, inverted: character -> the byte it stands for."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    table = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


class HFTokenizer(Tokenizer):
    """tokenizers.Tokenizer with the interface of tokenizer.Tokenizer (ids, bytes, pieces)."""

    def __init__(self, plain, literal, spec: dict, name: str, bos: str | None = None, eos: str | None = None,
                 add_bos: bool | None = None) -> None:
        super().__init__(encoding=None)
        self.plain = plain  # special tokens in the text are recognised (allow_special)
        self.literal = literal  # the same tokenizer with encode_special_tokens: typed <bos> stays text
        self._name = name
        self.byte_level = "ByteLevel" in json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
        model = spec.get("model") or {}
        self.byte_fallback = bool(model.get("byte_fallback"))
        self.added = {i: t.content for i, t in plain.get_added_tokens_decoder().items()}
        self.special_ids = frozenset(i for i, t in plain.get_added_tokens_decoder().items() if t.special)
        self.bos_id = plain.token_to_id(bos) if bos else None
        self.eos_id = plain.token_to_id(eos) if eos else None
        self.prefix_ids = self._prefix(add_bos)
        self._bytes: dict[int, bytes] = {}
        # Llama 2, Mistral and Phi-3's SentencePiece files put a ▁ (space) before the text ("Hello" ->
        # "▁Hello"): the first piece's space is the tokenizer's, not a character of the text.
        sample = plain.encode("a", add_special_tokens=False).ids
        self.dummy_prefix = b"".join(self.token_bytes(i) for i in sample) == b" a"

    def _prefix(self, add_bos: bool | None) -> tuple[int, ...]:
        """The ids the model's files put before every text (its BOS), as the module docstring says."""
        if add_bos is not None:
            return (self.bos_id,) if add_bos and self.bos_id is not None else ()
        with_special = self.plain.encode("a", add_special_tokens=True).ids
        bare = self.plain.encode("a", add_special_tokens=False).ids
        at = next((i for i in range(len(with_special)) if with_special[i:i + len(bare)] == bare), 0)
        return tuple(with_special[:at])

    @property
    def name(self) -> str:
        return self._name

    @property
    def n_vocab(self) -> int:
        return self.plain.get_vocab_size(with_added_tokens=True)

    @property
    def eot_id(self) -> int | None:
        return self.eos_id

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Text -> ids, without the BOS (prefix_ids says what the model puts first)."""
        check_text(text)
        return (self.plain if allow_special else self.literal).encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        found = self._bytes.get(token_id)
        if found is None:
            found = self._bytes[token_id] = self._read_bytes(token_id)
        return found

    def _read_bytes(self, token_id: int) -> bytes:
        if token_id in self.added:
            return self.added[token_id].encode("utf-8")
        piece = self.plain.id_to_token(token_id)
        if piece is None:
            raise ValueError(f"token id {token_id} is not in the vocabulary")
        if self.byte_level:
            table = _byte_level_chars()
            return bytes(table[c] for c in piece) if all(c in table for c in piece) else piece.encode("utf-8")
        if self.byte_fallback and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            return bytes([int(piece[3:5], 16)])
        return piece.replace("\u2581", " ").encode("utf-8")

    @property
    def special_texts(self) -> tuple[str, ...]:
        """The text of every special token (<bos>, <|im_start|> …), to find them in a chat document."""
        return tuple(self.added[i] for i in sorted(self.special_ids))

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_ids

    def pieces(self, ids: list[int], text: str | None = None) -> list[Piece]:
        """Pieces with spans in the text they came from. Under a dummy prefix the first text piece
        keeps its true bytes (" Hello") but the ▁ the tokenizer put there covers no character of
        the text: the spans from there on move one character back, so "Hello" is characters 0–5.
        Whether a ▁ was put there depends on the text (a Metaspace tokenizer adds none before a
        typed space, so " Hello" and "Hello" can give the same ids): give the text when known."""
        out = [Piece(p.id, p.bytes, p.start, p.end, special=p.id in self.special_ids) for p in super().pieces(ids)]
        first = next((i for i, p in enumerate(out) if not p.special), None)
        if not self.dummy_prefix or first is None or not out[first].bytes.startswith(b" "):
            return out
        if text is not None:
            typed = b"".join(p.bytes for p in out if not p.special)
            if typed != b" " + text.encode("utf-8", errors="surrogatepass"):
                return out  # every space is the text's own (or the text was cut from the front)
        at = out[first].start
        return out[:first] + [Piece(p.id, p.bytes, p.start - (p.start > at), p.end - 1, special=p.special)
                              for p in out[first:]]

    def tokenize(self, text: str, allow_special: bool = False) -> list[Piece]:
        return self.pieces(self.encode(text, allow_special=allow_special), text)


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def tokenizer_for_dir(path: Path, hf: dict | None = None) -> HFTokenizer:
    """The tokenizer.json (and tokenizer_config.json) of a model directory."""
    from .files import dir_label, read_bytes

    file = path / "tokenizer.json"
    if not file.exists():
        raise TokenizerError(f"{path}: no tokenizer.json — this model's tokenizer cannot be read")
    try:
        from tokenizers import Tokenizer as Backend
    except ImportError:
        raise TokenizerError("reading this model's tokenizer.json needs the tokenizers package "
                             "(pip install tokenizers)") from None
    data = read_bytes(file).decode("utf-8", errors="strict")
    try:
        spec = json.loads(data)
        plain, literal = Backend.from_str(data), Backend.from_str(data)
    except Exception as exc:  # the library's own parse errors are plain Exceptions
        raise TokenizerError(f"{file}: not a tokenizer.json the tokenizers library can read "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from None
    literal.encode_special_tokens = True
    config = {}
    if (path / "tokenizer_config.json").exists():
        from .files import read_json_object

        config = read_json_object(path / "tokenizer_config.json")
    add_bos = config.get("add_bos_token")
    eos = _token_text(config.get("eos_token"))
    if eos is None and hf is not None and isinstance(hf.get("eos_token_id"), int):
        eos = plain.id_to_token(hf["eos_token_id"])
    bos = _token_text(config.get("bos_token"))
    if bos is None and hf is not None and isinstance(hf.get("bos_token_id"), int):
        bos = plain.id_to_token(hf["bos_token_id"])
    return HFTokenizer(plain, literal, spec, name=f"{dir_label(path)} (tokenizer.json)", bos=bos, eos=eos,
                       add_bos=add_bos if isinstance(add_bos, bool) else None)
