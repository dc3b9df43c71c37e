"""The readers of vocabularies, phrase grammars and ARPA unigram models: normal files (CRLF
line ends, a byte-order mark, non-ASCII words) and every error, located at ``file:line``."""

from __future__ import annotations

import codecs
import math
import re

import pytest

from hybrid.speech.grammar_files import UnigramLM, read_arpa_unigram, read_phrases, read_words

LN10 = math.log(10)

# The unigram model given in the README of the yesno corpus.
YESNO_ARPA = "\\data\\\nngram 1=4\n\n\\1-grams:\n-1\tNO\n-1\tYES\n-99\t<s>\n-1\t</s>\n\n\\end\\\n"


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


# -- read_arpa_unigram ---------------------------------------------------------------------


def test_arpa_yesno_readme_model(tmp_path):
    model = read_arpa_unigram(write(tmp_path, YESNO_ARPA))
    assert isinstance(model, UnigramLM)
    assert model.log_probs == pytest.approx({"NO": -LN10, "YES": -LN10})
    assert model.end == pytest.approx(-LN10)


def test_arpa_preamble_backoff_unk_bom_crlf(tmp_path):
    text = (
        "Built by hand; \\data\\ follows.\n\n"
        "\\data\\\nngram  1 = 5\n\\1-grams:\n"
        "-0.5 naïve -0.2\n-1.25\tкошка\t0\n-99 <s> -0.3\n-2\t<unk>\n-0.75 </s>\n\\end\\\n"
        "anything after the end\n"
    )
    model = read_arpa_unigram(write(tmp_path, text, windows=True))
    assert list(model.log_probs) == ["naïve", "кошка", "<unk>"]
    assert model.log_probs == pytest.approx(
        {"naïve": -0.5 * LN10, "кошка": -1.25 * LN10, "<unk>": -2 * LN10}
    )
    assert model.end == pytest.approx(-0.75 * LN10)


def test_arpa_without_end_of_sentence(tmp_path):
    text = "\\data\\\nngram 1=2\n\\1-grams:\n-0.3 a\n-0.3 b\n\\end\\\n"
    model = read_arpa_unigram(write(tmp_path, text))
    assert model.end == 0.0
    assert model.log_probs == pytest.approx({"a": -0.3 * LN10, "b": -0.3 * LN10})


def arpa(tmp_path, lines: list[str]):
    """An ARPA file of ``lines`` (line ``i`` of the file is ``lines[i - 1]``)."""
    return write(tmp_path, "\n".join(lines) + "\n", name="model.arpa")


GOOD = ["\\data\\", "ngram 1=3", "", "\\1-grams:", "-1 YES", "-1 NO", "-1 </s>", "\\end\\"]


@pytest.mark.parametrize(
    ("lines", "line", "match"),
    [
        (["some text", "", "\\1-grams:", "-1 a"], 4, "without a \\\\data\\\\ line"),
        (GOOD[:2] + ["ngram 2=4"] + GOOD[2:], 3, "order 2; only unigram .*ngram-count -order 1"),
        (GOOD[:7] + ["\\2-grams:", "-1 YES NO"], 8, "order 2; only unigram models.*decoding"),
        (GOOD[:2] + ["\\3-grams:"], 3, "order 3; only unigram"),
        (["\\data\\", "\\1-grams:", "-1 a", "\\end\\"], 2, "before 'ngram 1=N'"),
        (GOOD[:2] + ["ngram 1=3"] + GOOD[2:], 3, r"'ngram 1=N' again \(first at line 2\)"),
        (GOOD[:2] + ["ngrams 1=3"], 3, "expected 'ngram 1=N' or \\\\1-grams:"),
        (GOOD[:2], 2, "ends in the \\\\data\\\\ section"),
        (["\\data\\", "ngram 1=4"] + GOOD[2:], 2, "ngram 1=4 but .*line 4.* has 3 entries"),
        (GOOD[:4] + ["x YES"] + GOOD[5:], 5, "probability 'x' is not a number <= 0"),
        (GOOD[:4] + ["nan YES"] + GOOD[5:], 5, "probability 'nan' is not a number"),
        (GOOD[:4] + ["0.5 YES"] + GOOD[5:], 5, "probability '0.5' is not a number <= 0"),
        (GOOD[:5] + ["-1 NO x"] + GOOD[6:], 6, "backoff weight 'x' is not a number"),
        (GOOD[:5] + ["-1 NO -1 -1"] + GOOD[6:], 6, "expected 'log10prob word \\[backoff\\]'"),
        (GOOD[:5] + ["-1 YES"] + GOOD[6:], 6, r"'YES' is listed again \(first at line 5\)"),
        (GOOD[:7], 7, "ends without \\\\end\\\\"),
        (["\\data\\", "ngram 1=2", "\\1-grams:", "-99 <s>", "-1 </s>", "\\end\\"], 3, "no word"),
    ],
)
def test_arpa_errors(tmp_path, lines, line, match):
    path = arpa(tmp_path, lines)
    with raises_at(path, line, match):
        read_arpa_unigram(path)


def test_arpa_empty_file(tmp_path):
    path = arpa(tmp_path, [""])
    with pytest.raises(ValueError, match=f"^{_escaped(path)}: the file ends without a"):
        read_arpa_unigram(path)
