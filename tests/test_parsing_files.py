"""Treebank files given by path (`load_treebank_files`): globs, line ends, encodings, errors
naming the file and line, held-out splits, and the same trees as the ``ptb`` preset."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import pytest
from realdata import real_corpus

from hybrid.parsing.experiment import load_corpus, load_treebank_files, treebank_checksums
from hybrid.parsing.tree import Tree

T = Tree.from_string


def wsj_tree(i: int) -> str:
    """A distinct one-line WSJ-style tree: outer bracket, function tags, an empty element."""
    return f"( (S (NP-SBJ (NNP W{i})) (VP (VBZ runs) (NP (-NONE- *T*-1))) (. .)) )"


def parsed(i: int) -> Tree:
    """`wsj_tree` ``i`` as `normalize` leaves it, written out by hand."""
    return T(f"(S (NP (NNP W{i})) (VP (VBZ runs)) (. .))")


def write(path, trees, end="\n", bom=False):
    """``trees`` (bracketed strings) into ``path`` one per line, with ``end`` line ends."""
    text = "".join(tree + "\n" for tree in trees).replace("\n", end)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.fixture
def splits(tmp_path):
    """Train files a, b, c (3 trees each), one dev file, one test file."""
    for k, name in enumerate("abc"):
        write(tmp_path / "train" / f"{name}.mrg", [wsj_tree(10 * k + j) for j in range(3)])
    write(tmp_path / "dev.mrg", [wsj_tree(100), wsj_tree(101)])
    write(tmp_path / "test.mrg", [wsj_tree(200)])
    return tmp_path


# --- reading ----------------------------------------------------------------------------------


def test_a_glob_reads_its_files_in_name_order(splits):
    train, dev, test, notes = load_treebank_files(
        str(splits / "train" / "*.mrg"), splits / "dev.mrg", [str(splits / "test.mrg")]
    )
    assert train == [parsed(i) for i in (0, 1, 2, 10, 11, 12, 20, 21, 22)]
    assert dev == [parsed(100), parsed(101)] and test == [parsed(200)]
    assert notes == []


def test_several_patterns_are_read_in_the_order_given(splits):
    folder = splits / "train"
    train, *_ = load_treebank_files(
        [folder / "c.mrg", str(folder / "[ab].mrg")], splits / "dev.mrg", splits / "test.mrg"
    )
    assert train == [parsed(i) for i in (20, 21, 22, 0, 1, 2, 10, 11, 12)]


def test_trees_over_several_lines_and_one_per_line_mix(tmp_path):
    text = (
        "( (S\n"
        "    (NP-SBJ (DT The) (NN dog) )\n"
        "    (VP (VBD barked) )\n"
        "    (. .) ))\n"
        f"{wsj_tree(1)}\n"
        "\n"
        "(ROOT (S (NP (PRP It)) (VP (VBD rained))))   (TOP (NP (NN rain)))\n"
    )
    (tmp_path / "mixed.mrg").write_text(text, encoding="utf-8")
    write(tmp_path / "dev.mrg", [wsj_tree(2)])
    write(tmp_path / "test.mrg", [wsj_tree(3)])
    train, *_ = load_treebank_files(
        tmp_path / "mixed.mrg", tmp_path / "dev.mrg", tmp_path / "test.mrg"
    )
    assert train == [
        T("(S (NP (DT The) (NN dog)) (VP (VBD barked)) (. .))"),
        parsed(1),
        T("(S (NP (PRP It)) (VP (VBD rained)))"),
        T("(NP (NN rain))"),
    ]


@pytest.mark.parametrize(
    ("end", "bom", "trailing"),
    [
        ("\r\n", False, ""),
        ("\n", True, ""),
        ("\r\n", True, "\r\n\r\n  \r\n"),
        ("\n", False, "\n\n\n"),
        ("\r", False, "\r\r"),
    ],
    ids=["crlf", "bom", "bom-crlf-blank-lines", "blank-lines", "cr"],
)
def test_line_ends_byte_order_mark_and_blank_lines_read_the_same(tmp_path, end, bom, trailing):
    lines = [
        "( (S (NP-SBJ (NNP Zoë) (NNP Müller))",
        "     (VP (VBD aß) (NP (NN Crème) (NN brûlée))) (. .)) )",
        "( (FRAG (NP (NN 東京)) (. 。)) )",
    ]
    path = write(tmp_path / "data.mrg", lines, end=end, bom=bom)
    path.write_bytes(path.read_bytes() + trailing.encode())
    write(tmp_path / "d.mrg", [wsj_tree(1)])
    write(tmp_path / "t.mrg", [wsj_tree(2)])
    train, *_ = load_treebank_files(path, tmp_path / "d.mrg", tmp_path / "t.mrg")
    assert train == [
        T("(S (NP (NNP Zoë) (NNP Müller)) (VP (VBD aß) (NP (NN Crème) (NN brûlée))) (. .))"),
        T("(FRAG (NP (NN 東京)) (. 。))"),
    ]
    assert train[0].leaves()[0] == "Zoë"  # no byte-order mark glued to a word


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (f"{wsj_tree(1)}\n\n( (S (NP (PRP I)) (VP (VBP go))))) )\n", 3, "')' without '('"),
        (f"{wsj_tree(1)}\n{wsj_tree(2)}\n( (S (NP (PRP I))\n  (VP (VBP go)))\n", 3, "never closed"),
        (f"{wsj_tree(1)}\r\n\r\n\r\n( (S (NP (PRP I)) (VP (VBP go))))) )\r\n", 4, "')' without"),
        (f"{wsj_tree(1)}\r\r( (S (NP (PRP I)) (VP (VBP go))))) )\r", 3, "')' without"),
    ],
    ids=["extra-close", "never-closed", "crlf-extra-close", "cr-extra-close"],
)
def test_unbalanced_brackets_name_the_file_and_line(splits, text, line, message):
    bad = splits / "broken.mrg"
    bad.write_bytes(text.encode())
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        load_treebank_files(str(splits / "train" / "*.mrg"), splits / "dev.mrg", bad)
    assert str(bad) in str(error.value)
    assert f"line {line}" in str(error.value)


def test_every_file_is_read_before_loading_returns(splits):
    # the bad file is the test file, read last: the error still comes from the loader
    (splits / "late.mrg").write_text(f"{wsj_tree(1)}\n( (S (NP (PRP I)) (VP (VBP go)))\n")
    with pytest.raises(ValueError, match=r"late\.mrg, tree 2 \(line 2\)"):
        load_treebank_files(splits / "train" / "a.mrg", splits / "dev.mrg", splits / "late.mrg")


def test_bytes_that_are_not_utf8_name_the_file_and_line(splits):
    bad = splits / "latin1.mrg"
    bad.write_bytes(f"{wsj_tree(1)}\n".encode() + "( (NP (NN café)) )\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8") as error:
        load_treebank_files(bad, splits / "dev.mrg", splits / "test.mrg")
    assert "latin1.mrg, line 2" in str(error.value)


@pytest.mark.parametrize("option", ["--train", "--dev", "--test"])
def test_a_pattern_matching_nothing_names_the_pattern_and_the_option(splits, option):
    given = {
        "--train": str(splits / "train" / "*.mrg"),
        "--dev": splits / "dev.mrg",
        "--test": splits / "test.mrg",
    }
    missing = str(splits / "nowhere" / "*.mrg")
    given[option] = missing
    with pytest.raises(ValueError, match="no file matches") as error:
        load_treebank_files(given["--train"], given["--dev"], given["--test"])
    assert str(error.value).startswith(f"{option}:") and repr(missing) in str(error.value)


def test_a_missing_file_and_a_folder_are_refused(splits):
    with pytest.raises(ValueError, match="--dev: no file .*absent.mrg"):
        load_treebank_files(splits / "train" / "a.mrg", splits / "absent.mrg")
    with pytest.raises(ValueError, match="--train: .* is a folder"):
        load_treebank_files(splits / "train")


def test_a_file_without_trees_is_refused(splits):
    (splits / "empty.mrg").write_text("\n\n  \n")
    with pytest.raises(ValueError, match=r"--dev: no tree in .*empty\.mrg"):
        load_treebank_files(splits / "train" / "a.mrg", splits / "empty.mrg", splits / "test.mrg")


def test_a_split_of_empty_elements_only_is_refused_and_dropped_trees_are_noted(splits):
    empty = "( (S (NP-SBJ (-NONE- *)) (VP (-NONE- *?*))) )"
    write(splits / "gaps.mrg", [empty, empty])
    with pytest.raises(ValueError, match=r"--test: no tree left after normalisation.*gaps\.mrg"):
        load_treebank_files(splits / "train" / "a.mrg", splits / "dev.mrg", splits / "gaps.mrg")
    write(splits / "some.mrg", [empty, wsj_tree(7), empty])
    _, dev, _, notes = load_treebank_files(
        splits / "train" / "a.mrg", splits / "some.mrg", splits / "test.mrg"
    )
    assert dev == [parsed(7)]
    assert notes == ["--dev: 2 of 3 trees dropped, only empty elements (-NONE-)"]


def test_a_file_given_for_two_splits_is_refused(splits):
    with pytest.raises(ValueError, match=r"test\.mrg' is given for both --train and --test"):
        load_treebank_files(str(splits / "*.mrg"), None, splits / "test.mrg")
    with pytest.raises(ValueError, match=r"a\.mrg' is given for --train twice"):
        load_treebank_files([splits / "train" / "a.mrg", str(splits / "train" / "*.mrg")])


# --- held-out splits ------------------------------------------------------------------------------


@pytest.fixture
def hundred(tmp_path):
    """One training file of 100 distinct trees, and a dev and a test file."""
    write(tmp_path / "train.mrg", [wsj_tree(i) for i in range(100)])
    write(tmp_path / "dev.mrg", [wsj_tree(1000)])
    write(tmp_path / "test.mrg", [wsj_tree(2000)])
    return tmp_path


def test_dev_and_test_are_held_out_of_train_when_not_given(hundred):
    train, dev, test, notes = load_treebank_files(hundred / "train.mrg")
    assert (len(train), len(dev), len(test)) == (81, 10, 9)
    everything = [parsed(i) for i in range(100)]
    assert Counter(map(str, train + dev + test)) == Counter(map(str, everything))  # disjoint
    for split in (train, dev, test):  # each keeps the file's order
        positions = [everything.index(tree) for tree in split]
        assert positions == sorted(positions)
    assert notes == [
        "no --dev: 10 of 100 training trees (10%, seed 0) held out for development",
        "no --test: 9 of 90 training trees left (10%, seed 0) held out for testing",
    ]
    assert load_treebank_files(hundred / "train.mrg") == (train, dev, test, notes)  # seeded


def test_only_the_missing_split_is_held_out(hundred):
    train, dev, test, notes = load_treebank_files(
        hundred / "train.mrg", dev=hundred / "dev.mrg", dev_fraction=0.25
    )
    assert dev == [parsed(1000)] and (len(train), len(test)) == (75, 25)
    assert notes == ["no --test: 25 of 100 training trees (25%, seed 0) held out for testing"]
    train2, dev2, test2, notes2 = load_treebank_files(
        hundred / "train.mrg", test=hundred / "test.mrg", dev_fraction=0.25
    )
    assert test2 == [parsed(2000)] and (len(train2), len(dev2)) == (75, 25)
    assert notes2 == ["no --dev: 25 of 100 training trees (25%, seed 0) held out for development"]
    # the same seed picks the same trees, whichever split they go to
    assert dev2 == test and train2 == train


def test_holding_out_needs_enough_trees_and_a_fraction_in_0_1(hundred):
    write(hundred / "one.mrg", [wsj_tree(1)])
    with pytest.raises(ValueError, match="no --dev.*too few"):
        load_treebank_files(hundred / "one.mrg")
    with pytest.raises(ValueError, match=r"no --dev.*fraction must be in \(0, 1\)"):
        load_treebank_files(hundred / "train.mrg", dev_fraction=1.0)
    # a fraction that is not used is not checked
    assert (
        load_treebank_files(
            hundred / "train.mrg", hundred / "dev.mrg", hundred / "test.mrg", dev_fraction=2.0
        )[3]
        == []
    )


# --- checksums ---------------------------------------------------------------------------------


def test_checksums_name_every_file_read_in_order(splits):
    sums = treebank_checksums(str(splits / "train" / "*.mrg"), None, splits / "test.mrg")
    assert list(sums) == ["train", "test"]
    assert [entry["path"] for entry in sums["train"]] == [
        str(splits / "train" / f"{name}.mrg") for name in "abc"
    ]
    test_bytes = (splits / "test.mrg").read_bytes()
    assert sums["test"] == [
        {"path": str(splits / "test.mrg"), "sha256": hashlib.sha256(test_bytes).hexdigest()}
    ]
    with pytest.raises(ValueError, match="--dev: no file matches"):
        treebank_checksums(splits / "test.mrg", str(splits / "none*.mrg"))


# --- the same trees as the ptb preset ---------------------------------------------------------

PRESET_PATTERNS = (
    ["wsj_000[1-9].mrg", "wsj_00[1-9][0-9].mrg", "wsj_01[0-4][0-9].mrg"],
    "wsj_015[0-9].mrg",
    "wsj_016[0-9].mrg",
)


def preset_globs(folder):
    train, dev, test = PRESET_PATTERNS
    return [str(folder / p) for p in train], str(folder / dev), str(folder / test)


def test_normalisation_is_that_of_the_ptb_preset(tmp_path):
    folder = tmp_path / "ptb_sample"
    shapes = [
        "( (S (NP-SBJ-1 (NNP W{i})) (VP (VBD was) (VP (VBN seen) (NP (-NONE- *-1))))) )",
        "( (S (NP-SBJ (NP (NN w{i})) (SBAR (-NONE- 0) (S (-NONE- *T*-2)))) (VP (VBZ is))) )",
        "(TOP (NP-TTL (NNP W{i}) (-LRB- -LRB-) (CD 1) (-RRB- -RRB-)))",
        "( (S (NP-SBJ (-NONE- *)) (VP (-NONE- *?*))) )",  # only empty elements: dropped
    ]
    for number in range(1, 170):
        trees = [shape.format(i=number) for shape in shapes[: 1 + number % 4]]
        write(folder / f"wsj_{number:04d}.mrg", trees, end="\r\n" if number % 2 else "\n")
    preset = load_corpus("ptb", str(tmp_path))
    *given, notes = load_treebank_files(*preset_globs(folder))
    assert tuple(given) == preset
    assert sum(map(len, preset)) == sum(min(1 + n % 4, 3) for n in range(1, 170))
    assert len(notes) == 3 and all("dropped, only empty elements" in note for note in notes)


def test_real_ptb_files_by_glob_are_the_preset():
    folder = real_corpus("ptb_sample")
    preset = load_corpus("ptb", str(folder.parent))
    train, dev, test, notes = load_treebank_files(*preset_globs(folder))
    assert (train, dev, test) == preset
    assert sum(map(len, preset)) == 3501 and notes == []
    sums = treebank_checksums(*preset_globs(folder))
    assert [len(sums[split]) for split in ("train", "dev", "test")] == [149, 10, 10]


def test_the_command_trains_on_files_and_records_their_checksums(hundred, capsys):
    import json

    from hybrid.cli import main

    runs = hundred / "runs"
    argv = [
        "train-parser",
        "--train",
        str(hundred / "train.mrg"),
        "--test",
        str(hundred / "test.mrg"),
    ]
    argv += ["--models", "chart-crf", "--inputs", "words", "--epochs", "1", "--runs", str(runs)]
    assert main([*argv, "--name", "mine", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "no --dev: 10 of 100 training trees" in out
    results = json.loads((runs / "mine" / "results.json").read_text())
    assert results["data"]["train"] == [
        {
            "path": str(hundred / "train.mrg"),
            "sha256": hashlib.sha256((hundred / "train.mrg").read_bytes()).hexdigest(),
        }
    ]
    assert main(["train-parser", "--corpus", "ptb", "--train", str(hundred / "train.mrg")]) == 2
    assert "give one of them" in capsys.readouterr().err
