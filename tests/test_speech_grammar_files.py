"""The readers of vocabularies and phrase grammars: normal files (CRLF
line ends, a byte-order mark, non-ASCII words) and every error, located at ``file:line``."""

from __future__ import annotations

import codecs
import re

import pytest

from hybrid.speech.grammar_files import read_phrases, read_words


def write(tmp_path, text: str, windows: bool = False, name: str = "file.txt"):
    """``text`` written to ``tmp_path/name`` as UTF-8; with ``windows``, with a byte-order
    mark and CRLF line ends."""
    path = tmp_path / name
    data = text.replace("\n", "\r\n").encode() if windows else text.encode()
    path.write_bytes(codecs.BOM_UTF8 + data if windows else data)
    return path


def raises_at(path, line: int, match: str):
    """``pytest.raises`` for a ValueError at ``path:line`` whose message matches ``match``."""
    return pytest.raises(ValueError, match=f"^{_escaped(path)}:{line}: .*{match}")


def _escaped(path) -> str:
    return re.escape(str(path))


# -- read_words ----------------------------------------------------------------------------


def test_words_one_per_line(tmp_path):
    path = write(tmp_path, "oui  \n\nnon\t\nnaïve\n日本\n", windows=True)
    assert read_words(path) == ("oui", "non", "naïve", "日本")


def test_words_kaldi_table_ordered_by_id_without_symbols(tmp_path):
    text = "<eps> 0\nnaïve 4\n#0 6\n<s> 5\nOUI 1\n</s> 7\n<unk> 3\n日本 2\n#12 8\n"
    path = write(tmp_path, text, windows=True)
    assert read_words(path) == ("OUI", "日本", "<unk>", "naïve")


def test_words_drop_symbols_in_plain_list(tmp_path):
    assert read_words(write(tmp_path, "<s>\nyes\n#0\n</s>\n#\nno\n")) == ("yes", "#", "no")


def test_words_duplicate_names_both_lines(tmp_path):
    path = write(tmp_path, "yes\nno\n\nyes\n")
    with raises_at(path, 4, r"'yes' is listed again \(first at line 1\)"):
        read_words(path)


def test_words_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path, "<eps> 0\nyes 1\nno 1\n")
    with raises_at(path, 3, r"id 1 is used again \(first at line 2\)"):
        read_words(path)


def test_words_too_many_fields(tmp_path):
    path = write(tmp_path, "yes 1\nno 2 3\n")
    with raises_at(path, 2, "3 fields; expected a word, or a word and its id"):
        read_words(path)


@pytest.mark.parametrize("bad", ["x", "1.5", "-3", "٣"])
def test_words_id_not_an_integer(tmp_path, bad):
    path = write(tmp_path, f"yes 1\nno {bad}\n")
    with raises_at(path, 2, "is not a non-negative integer"):
        read_words(path)


@pytest.mark.parametrize("text", ["yes 1\nno\n", "yes\nno 2\n"])
def test_words_mixed_forms(tmp_path, text):
    path = write(tmp_path, text)
    with raises_at(path, 2, "but line 1 has .* not both"):
        read_words(path)


@pytest.mark.parametrize("text", ["", "\n \n", "<eps> 0\n<s> 1\n</s> 2\n#0 3\n"])
def test_words_empty(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=f"^{_escaped(path)}: no word"):
        read_words(path)


def test_words_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("yes\nnaïve\n".encode("latin-1"))
    with pytest.raises(ValueError, match="line 2: .* not UTF-8"):
        read_words(path)


# -- read_phrases --------------------------------------------------------------------------


def test_phrases(tmp_path):
    text = "# allowed commands\nallume  la lumière \n\n  # indented comment\nstop\n"
    text += "allume la   lumière\n東京 へ 行く\n"
    path = write(tmp_path, text, windows=True)
    assert read_phrases(path) == [("allume", "la", "lumière"), ("stop",), ("東京", "へ", "行く")]


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing\n#\n"])
def test_phrases_empty(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=f"^{_escaped(path)}: no phrase"):
        read_phrases(path)
