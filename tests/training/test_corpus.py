"""Offline tests for the corpus recipe's readers, cleaning and splitting.

The package formats are built by hand here (tiny R serializations, a two-verse
SWORD module, a two-entry dictd database), so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from gpt_tui.training import corpus

# ---------------------------------------------------------------------------
# A minimal writer for R's XDR serialization, to feed the reader
# ---------------------------------------------------------------------------


def _int(value: int) -> bytes:
    return struct.pack(">i", value)


def _header() -> bytes:
    # format, version 2, written by R 3.6.2, readable from R 2.3.0
    return b"X\n" + _int(2) + _int(0x030602) + _int(0x020300)


def _charsxp(text: str | None) -> bytes:
    if text is None:
        return _int(9) + _int(-1)  # NA_character_
    raw = text.encode("utf-8")
    return _int(9 | (8 << 12)) + _int(len(raw)) + raw  # UTF8_MASK in the levels


def _strsxp(values: list[str | None], flags: int = 16) -> bytes:
    return _int(flags) + _int(len(values)) + b"".join(_charsxp(v) for v in values)


def _names_attribute(names: list[str]) -> bytes:
    # pairlist(names = c(...)): a tagged LISTSXP cell whose tag is the symbol `names`
    return (_int(2 | (1 << 10)) + _int(1) + _charsxp("names") + _strsxp(names)
            + _int(254))


def _named_list(items: dict[str, bytes]) -> bytes:
    return (_int(19 | (1 << 9)) + _int(len(items)) + b"".join(items.values())
            + _names_attribute(list(items)))


def _intsxp(values: list[int]) -> bytes:
    return _int(13) + _int(len(values)) + b"".join(_int(v) for v in values)


def test_unserialize_character_vector_with_na_and_utf8():
    data = _header() + _strsxp(["It is a truth", None, "café"])
    value = corpus.r_unserialize(data)
    assert value.rtype == "character"
    assert list(value) == ["It is a truth", None, "café"]


def test_unserialize_named_list_integers_and_symbol_reference():
    # list(a = 1:2, b = c(NA, 7L)) whose names attribute is read back as a dict;
    # then a pairlist reusing the symbol `names` through a back-reference.
    data = _header() + _named_list({"a": _intsxp([1, 2]),
                                    "b": _intsxp([corpus.NA_INTEGER, 7])})
    value = corpus.r_unserialize(data)
    assert value.rtype == "list"
    assert value.as_dict() == {"a": [1, 2], "b": [None, 7]}

    ref_to_first_symbol = _int((1 << 8) | 255)
    pairlist = (_int(2 | (1 << 10)) + _int(1) + _charsxp("x") + _intsxp([3])
                + _int(2 | (1 << 10)) + ref_to_first_symbol + _intsxp([4])
                + _int(254))
    value = corpus.r_unserialize(_header() + pairlist)
    assert value.rtype == "pairlist"
    assert value.names == ["x", "x"]
    assert list(value) == [[3], [4]]


def test_unserialize_version_3_header_and_logicals():
    data = (b"X\n" + _int(3) + _int(0x040200) + _int(0x030500) + _int(5) + b"UTF-8"
            + _int(10) + _int(3) + _int(1) + _int(0) + _int(corpus.NA_INTEGER))
    assert list(corpus.r_unserialize(data)) == [True, False, None]


def test_unserialize_rejects_non_xdr():
    with pytest.raises(ValueError):
        corpus.r_unserialize(b"A\n2\n")


def test_read_r_lazyload(tmp_path):
    emma = zlib.compress(_header() + _strsxp(["EMMA", "", "By Jane Austen"]))
    entry = struct.pack(">I", len(zlib.decompress(emma))) + emma
    padding = b"\0" * 7  # entries sit at offsets, not necessarily at 0
    (tmp_path / "Rdata.rdb").write_bytes(padding + entry)
    index = _header() + _named_list({
        "variables": _named_list({"emma": _intsxp([len(padding), len(entry)])}),
        "references": _int(19) + _int(0),
        "compressed": _int(10) + _int(1) + _int(1),
    })
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))

    variables = corpus.read_r_lazyload(tmp_path / "Rdata.rdb", tmp_path / "Rdata.rdx")
    assert list(variables) == ["emma"]
    assert list(variables["emma"]) == ["EMMA", "", "By Jane Austen"]


# ---------------------------------------------------------------------------
# SWORD zText
# ---------------------------------------------------------------------------


def _write_ztext(directory, testament: str, slots: list[str]) -> None:
    """One zlib block holding every slot; .bzs/.bzv index it as SWORD does."""
    raw = b"".join(s.encode("utf-8") for s in slots)
    block = zlib.compress(raw)
    (directory / f"{testament}.bzz").write_bytes(block)
    (directory / f"{testament}.bzs").write_bytes(struct.pack("<III", 0, len(block), len(raw)))
    index, offset = b"", 0
    for slot in slots:
        size = len(slot.encode("utf-8"))
        index += struct.pack("<IIH", 0, offset if size else 0, size)
        offset += size
    (directory / f"{testament}.bzv").write_bytes(index)


def test_read_sword_ztext_and_osis_to_text(tmp_path):
    slots = [
        "",  # slot 0 is always empty
        '<milestone type="x-importer"/>',  # module header
        '<div osisID="Gen" sID="b1" type="book"/><title type="main">Genesis</title>',
        '<chapter n="1" osisID="Gen.1" sID="Gen.1"/>',
        '<w lemma="strong:H1">In</w> the <w>beginning</w>, God<note placement="foot">'
        '<reference>1:1 </reference>a “note”</note><w>created</w> &amp; made.',
        '<div type="x-p" sID="p1"/>God saw it<note>n</note>, and <title>Heading</title>'
        '<q who="Jesus">“it was good.”</q>',
    ]
    _write_ztext(tmp_path, "ot", slots)

    verses = corpus.read_sword_ztext(tmp_path)
    assert [(b, c, v) for b, c, v, _ in verses] == [
        ("", 0, 2), ("Gen", 0, 0), ("Gen", 1, 0), ("Gen", 1, 1), ("Gen", 1, 2)]
    assert corpus.osis_main_title(verses[1][3]) == "Genesis"
    assert corpus.osis_to_text(verses[3][3]) == "In the beginning, God created & made."
    assert corpus.osis_to_text(verses[4][3]) == "God saw it, and “it was good.”"


def test_read_sword_ztext_splits_slot_with_book_end(tmp_path):
    slots = ["", '<div osisID="Rev" sID="b9" type="book"/>',
             '<chapter n="1" osisID="Rev.1" sID="Rev.1"/>', "Amen.",
             '<div eID="b9" osisID="Rev" type="book"/> Glossary text']
    _write_ztext(tmp_path, "nt", slots)
    verses = corpus.read_sword_ztext(tmp_path)
    assert [(b, c, v) for b, c, v, _ in verses] == [
        ("Rev", 0, 0), ("Rev", 1, 0), ("Rev", 1, 1), ("", 0, 0)]


# ---------------------------------------------------------------------------
# dictd, WordNet
# ---------------------------------------------------------------------------


def _b64(n: int) -> str:
    digits = ""
    while True:
        digits = corpus._B64[n % 64] + digits
        n //= 64
        if n == 0:
            return digits


def test_read_dictd(tmp_path):
    entries = ["00-database-short\n     A test\n", "ABASEMENT, n.  A decent attitude.\n\n",
               "ZEAL, n.  A nervous disorder.\n\n"]
    data = "".join(entries).encode("utf-8")
    offsets = [0, len(entries[0].encode()), len((entries[0] + entries[1]).encode())]
    lines = [f"00databaseshort\t{_b64(offsets[0])}\t{_b64(len(entries[0]))}",
             f"abasement\t{_b64(offsets[1])}\t{_b64(len(entries[1]))}",
             f"zeal\t{_b64(offsets[2])}\t{_b64(len(entries[2]))}",
             f"zealot\t{_b64(offsets[2])}\t{_b64(len(entries[2]))}"]  # same text, two headwords
    (tmp_path / "t.index").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "t.dict.dz").write_bytes(gzip.compress(data))

    result = corpus.read_dictd(tmp_path / "t.index", tmp_path / "t.dict.dz")
    assert [h for h, _ in result] == ["00databaseshort", "abasement", "zeal"]
    assert result[2][1] == entries[2]
    assert corpus._dictd_number("BV") == 1 * 64 + 21


def test_read_wordnet_data(tmp_path):
    path = tmp_path / "data.adj"
    path.write_text(
        "  1 This software and database is being provided to you  \n"
        "  2 by Princeton University.  \n"
        "00001740 00 a 02 able 0 galore(ip) 0 000 | (usually followed by `to') having the "
        "means; \"able to swim\"  \n", encoding="utf-8")
    synsets, notice = corpus.read_wordnet_data(path)
    assert synsets == [(["able", "galore"],
                        "(usually followed by `to') having the means; \"able to swim\"")]
    assert notice == "This software and database is being provided to you\nby Princeton University."


# ---------------------------------------------------------------------------
# Cleaning and splitting
# ---------------------------------------------------------------------------


def test_clean_text():
    raw = ("Title\r\n\r\n\r\n\r\nShe was _very_ enforc&egrave;d, &c.   \r\n"
           "_____________\r\nEnd\x0c\n")
    assert corpus.clean_text(raw) == "Title\n\nShe was very enforcèd, &c.\n\nEnd"


def test_strip_gutenberg():
    text = ("The Project Gutenberg EBook\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n"
            "Body.\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nLicence")
    assert corpus.strip_gutenberg(text).strip() == "Body."


def _source(n_docs: int, paras_per_doc: int) -> corpus.Source:
    docs = [corpus.Document(f"d{i}", [f"doc {i} paragraph {j} " + "x" * 1000
                                      for j in range(paras_per_doc)])
            for i in range(n_docs)]
    return corpus.Source("s", "p", "1", "o", "l", "n", docs)


def test_split_is_deterministic_and_covers_everything():
    source = _source(3, 120)  # 24 chunks per document of 5 paragraphs each
    split = corpus.split_source(source, min_chars=4096, val_every=25)
    again = corpus.split_source(source, min_chars=4096, val_every=25)
    assert split == again
    assert len(split.val) == 3  # chunks 12, 37, 62 of 72
    total = sum(len(p) for d in source.documents for p in d.paragraphs)
    text = "".join(split.train + split.val)
    assert sum(map(len, split.train + split.val)) >= total
    for doc in source.documents:
        for para in doc.paragraphs:
            assert para in text
    # Every validation piece is a whole number of paragraphs.
    assert all(piece.startswith("doc ") for piece in split.val)


def test_chunks_hold_whole_paragraphs():
    doc = corpus.Document("d", ["a" * 3000, "b" * 3000, "c" * 100, "d" * 9000, "e"])
    assert corpus.chunk_document(doc, 4096) == [
        "a" * 3000 + "\n\n" + "b" * 3000, "c" * 100 + "\n\n" + "d" * 9000, "e"]


def test_write_corpus(tmp_path):
    records = corpus.write_corpus(tmp_path, [_source(2, 80)], min_chars=4096, val_every=25)
    train = (tmp_path / "train.txt").read_text(encoding="utf-8")
    val = (tmp_path / "val.txt").read_text(encoding="utf-8")
    assert corpus.EOT in train and val
    (record,) = records
    assert record["train_chars"] + record["val_chars"] == record["chars"]
    assert record["train_chars"] == len(train.replace(corpus.EOT, ""))
    assert set(record) >= {"name", "package", "version", "url_or_origin", "licence",
                           "licence_note", "documents", "chars", "train_chars", "val_chars",
                           "gpt2_tokens"}


def test_sphinx_prose_keeps_paragraphs_and_drops_code_maths_and_marks(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        '<html><body><div class="sidebar"><p>Navigation text that is not prose here.</p></div>'
        '<div class="body" role="main">'
        '<h1><span class="section-number">4. </span>More Control Flow Tools'
        '<a class="headerlink" href="#x">¶</a></h1>'
        '<p>Besides the <code class="xref"><span class="pre">while</span></code> statement, Python has\n'
        'other tools &amp; twists.</p>'
        '<div class="highlight"><pre>for x in range(3):\n    print(x)</pre></div>'
        '<p>The variance is <span class="math notranslate">\\(\\sigma^2\\)</span> here.</p>'
        '<ul><li><p>A list item with words.</p></li></ul>'
        '<table><tr><td>a table cell with words</td></tr></table>'
        '<p>After the table, the prose goes on.<br>Same paragraph.</p>'
        '</div><p>Footer text outside the main part.</p></body></html>', encoding="utf-8")
    assert corpus.sphinx_prose(page) == [
        "More Control Flow Tools",
        "Besides the while statement, Python has other tools & twists.",
        "A list item with words.",
        "After the table, the prose goes on. Same paragraph.",
    ]


def test_jargon_entry_unwraps_and_drops_cross_reference_braces():
    text = "hop\n\n\n    1. n. One file transmission in a series on a {store-and-forward}\n    network. See {bang path}.\n\n    2. v. To log in.\n"
    assert corpus._jargon_entry(text) == ("hop\n\n1. n. One file transmission in a series on a store-and-forward "
                                          "network. See bang path.\n\n2. v. To log in.")


def test_wordnet_verb_sentences_fill_in_each_sense(tmp_path):
    (tmp_path / "sents.vrb").write_text("1 The children %s to the playground\n2 They %s the ball\n")
    (tmp_path / "sentidx.vrb").write_text("hop%2:38:04:: 1\nkick_off%2:30:00:: 1,2,9\n")
    assert corpus.read_wordnet_verb_sentences(tmp_path) == [
        "The children hop to the playground.", "The children kick off to the playground.", "They kick off the ball."]
