"""bAbI-format files given by path (`load_files`): tasks from ``qaN_`` names or 0, several
files of a task, globs, a task missing a split, and the real task 1 as `load_tasks` reads it."""

from __future__ import annotations

import pytest
from realdata import real_corpus

from hybrid.qa import TASKS, load_tasks, read_babi
from hybrid.qa.babi import load_files


def story(name: str, place: str) -> str:
    """A two-question story of ``name``, whose answers are ``place`` and ``garden``."""
    return (
        f"1 {name} went to the {place}.\n"
        f"2 Where is {name}?\t{place}\t1\n"
        "3 Bill went to the garden.\n"
        f"4 Where is Bill?\tgarden\t3\n"
    )


def write(path, *names, end="\n", bom=False):
    """One `story` per name (places ``kitchen``, ``office``, ...) into ``path``."""
    places = ["kitchen", "office", "hallway", "bedroom"]
    text = "".join(story(name, places[k % 4]) for k, name in enumerate(names))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.replace("\n", end).encode())
    return path


def people(questions) -> list[str]:
    """Who each question asks about."""
    return [q.question[-1] for q in questions]


def test_tasks_come_from_qaN_names(tmp_path):
    write(tmp_path / "qa1_mine_train.txt", "mary")
    write(tmp_path / "qa1_mine_test.txt", "john")
    write(tmp_path / "qa12_other_train.txt", "sandra")
    write(tmp_path / "qa12_other_test.txt", "daniel")
    tasks = load_files(str(tmp_path / "*_train.txt"), str(tmp_path / "*_test.txt"))
    assert list(tasks) == [1, 12]
    assert {split: people(q) for split, q in tasks[1].items()} == {
        "train": ["mary", "bill"],
        "test": ["john", "bill"],
    }
    assert people(tasks[12]["test"]) == ["daniel", "bill"]
    assert [q.task for q in tasks[12]["train"]] == [12, 12]
    assert tasks[1]["train"][0].answer == ("kitchen",) and tasks[1]["train"][1].supporting == (1,)


def test_files_without_qaN_names_are_task_0(tmp_path):
    train = write(tmp_path / "stories" / "train.txt", "mary", "john")
    test = write(tmp_path / "stories" / "test.txt", "sandra")
    tasks = load_files(train, [test])
    assert list(tasks) == [0]
    assert people(tasks[0]["train"]) == ["mary", "bill", "john", "bill"]
    assert people(tasks[0]["test"]) == ["sandra", "bill"]
    assert {q.task for split in tasks[0].values() for q in split} == {0}
    # the second story starts afresh: its first question sees only its own statement
    assert len(tasks[0]["train"][2].story) == 1


def test_named_and_unnamed_files_mix(tmp_path):
    write(tmp_path / "qa3_x_train.txt", "mary")
    write(tmp_path / "qa3_x_test.txt", "john")
    write(tmp_path / "extra_train.txt", "sandra")
    write(tmp_path / "extra_test.txt", "daniel")
    tasks = load_files(str(tmp_path / "*train.txt"), str(tmp_path / "*test.txt"))
    assert {task: people(s["test"]) for task, s in tasks.items()} == {
        0: ["daniel", "bill"],
        3: ["john", "bill"],
    }


def test_several_train_files_of_a_task_are_concatenated_in_order(tmp_path):
    first = write(tmp_path / "qa2_b_train.txt", "mary")
    second = write(tmp_path / "qa2_a_train.txt", "john")
    test = write(tmp_path / "qa2_test.txt", "sandra")
    given_order = load_files([first, second], test)
    assert people(given_order[2]["train"]) == ["mary", "bill", "john", "bill"]
    by_glob = load_files(str(tmp_path / "qa2_*_train.txt"), test)  # sorted: a before b
    assert people(by_glob[2]["train"]) == ["john", "bill", "mary", "bill"]
    assert by_glob[2]["train"] == read_babi(second) + read_babi(first)


def test_line_ends_and_a_byte_order_mark_read_the_same(tmp_path):
    plain = write(tmp_path / "plain" / "qa1_train.txt", "mary", "john")
    write(tmp_path / "plain" / "qa1_test.txt", "sandra")
    crlf = write(tmp_path / "crlf" / "qa1_train.txt", "mary", "john", end="\r\n", bom=True)
    write(tmp_path / "crlf" / "qa1_test.txt", "sandra", end="\r\n", bom=True)
    expected = load_files(plain, tmp_path / "plain" / "qa1_test.txt")
    assert load_files(crlf, tmp_path / "crlf" / "qa1_test.txt") == expected
    assert len(expected[1]["train"]) == 4


def test_a_task_missing_its_test_file_is_refused(tmp_path):
    train1 = write(tmp_path / "qa1_x_train.txt", "mary")
    train5 = write(tmp_path / "qa5_y_train.txt", "john")
    test1 = write(tmp_path / "qa1_x_test.txt", "sandra")
    with pytest.raises(ValueError, match="task 5: --train gives .* but --test gives no file") as e:
        load_files([train1, train5], test1)
    assert str(train5) in str(e.value) and str(train1) not in str(e.value)


def test_a_task_missing_its_train_file_is_refused(tmp_path):
    train = write(tmp_path / "train.txt", "mary")
    test = write(tmp_path / "qa7_z_test.txt", "john")
    other = write(tmp_path / "test.txt", "sandra")
    with pytest.raises(ValueError, match="task 7: --test gives .* but --train gives no file") as e:
        load_files(train, [test, other])
    assert str(test) in str(e.value)


@pytest.mark.parametrize("option", ["--train", "--test"])
def test_a_pattern_matching_nothing_names_the_pattern_and_the_option(tmp_path, option):
    given = {
        "--train": write(tmp_path / "train.txt", "mary"),
        "--test": write(tmp_path / "test.txt", "john"),
    }
    missing = str(tmp_path / "nowhere" / "qa*.txt")
    given[option] = missing
    with pytest.raises(ValueError, match="no file matches") as error:
        load_files(given["--train"], given["--test"])
    assert str(error.value).startswith(f"{option}:") and repr(missing) in str(error.value)


def test_a_file_given_twice_or_empty_is_refused(tmp_path):
    train = write(tmp_path / "a_train.txt", "mary")
    test = write(tmp_path / "a_test.txt", "john")
    with pytest.raises(ValueError, match=r"a_test\.txt' is given for both --train and --test"):
        load_files(str(tmp_path / "*.txt"), test)
    with pytest.raises(ValueError, match=r"a_train\.txt' is given for --train twice"):
        load_files([train, str(tmp_path / "a_*n.txt")], test)
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"--test: no question in .*blank\.txt"):
        load_files(train, tmp_path / "blank.txt")


def test_bad_lines_name_the_file_and_line(tmp_path):
    train = write(tmp_path / "one" / "qa1_train.txt", "mary")
    bad = tmp_path / "two" / "qa1_test.txt"
    bad.parent.mkdir()
    bad.write_text("1 Mary went home.\n2 Where is Mary?\thome\t1\n4 Mary left.\n")
    with pytest.raises(ValueError, match="does not follow") as error:
        load_files(train, bad)
    # the whole path: files of the same name in other folders are told apart
    assert f"{bad} line 3" in str(error.value)


def test_real_task_1_by_path_is_load_tasks():
    folder = real_corpus("babi") / "en"
    train = folder / f"qa1_{TASKS[1]}_train.txt"
    by_path = load_files(train, str(folder / "qa1_*_test.txt"))
    assert by_path == load_tasks(folder, [1])
    assert [len(by_path[1][split]) for split in ("train", "test")] == [1000, 1000]


def test_real_tasks_by_glob_group_by_task_number():
    folder = real_corpus("babi") / "en"
    by_glob = load_files(str(folder / "qa[23]_*_train.txt"), str(folder / "qa[23]_*_test.txt"))
    assert list(by_glob) == [2, 3]
    assert by_glob == load_tasks(folder, [2, 3])


def test_the_command_trains_on_files_and_records_their_checksums(tmp_path, capsys):
    import hashlib
    import json

    from hybrid.cli import main

    train = write(tmp_path / "mine" / "stories_train.txt", *["Mary", "John", "Sandra"] * 20)
    test = write(tmp_path / "mine" / "stories_test.txt", "Daniel", "Mary", end="\r\n", bom=True)
    runs = tmp_path / "runs"
    argv = ["train-qa", "--train", str(train), "--test", str(test), "--models", "lstm"]
    argv += ["--seeds", "0", "--epochs", "1", "--runs", str(runs), "--quiet"]
    assert main(argv) == 0
    results = json.loads((runs / "qa-stories_train" / "results.json").read_text())
    assert results["data"] == {
        split: [{"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]
        for split, path in (("train", train), ("test", test))
    }
    assert main(["train-qa", "--corpus", "babi", "--train", str(train), "--test", str(test)]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main(["train-qa", "--train", str(train)]) == 2
    assert "--test: expected the bAbI test files" in capsys.readouterr().err
