"""The bAbI question-answering format (Weston et al. 2015) and its 20 tasks.

A task file holds stories. Each line is ``ID text``; the IDs restart at 1 with every new
story. A question line is ``ID question<TAB>answer<TAB>supporting IDs``; its context is every
statement of the story before it (questions are not statements). Answers of tasks 8 and 19
hold several words separated by commas (``"apple,football"``, ``"n,w"``).

Nothing here needs torch: the reader returns `Question` records of strings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..corpora import expand_paths
from ..files import read_lines
from ..vocabulary import str_tuple

__all__ = ["TASKS", "Question", "load_files", "load_tasks", "read_babi", "task_file", "tokenize"]

#: The 20 tasks by number (file names read ``qa<N>_<name>_{train,test}.txt``).
TASKS = {
    1: "single-supporting-fact",
    2: "two-supporting-facts",
    3: "three-supporting-facts",
    4: "two-arg-relations",
    5: "three-arg-relations",
    6: "yes-no-questions",
    7: "counting",
    8: "lists-sets",
    9: "simple-negation",
    10: "indefinite-knowledge",
    11: "basic-coreference",
    12: "conjunction",
    13: "compound-coreference",
    14: "time-reasoning",
    15: "basic-deduction",
    16: "basic-induction",
    17: "positional-reasoning",
    18: "size-reasoning",
    19: "path-finding",
    20: "agents-motivations",
}

_WORD = re.compile(r"[a-z0-9]+")
# A task's file name: ``qa<N>_...``.
_TASK_NAME = re.compile(r"qa(\d+)_")


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased words of ``text``, punctuation dropped: ``"Where is Mary?"`` → 3 words."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    return tuple(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class Question:
    """One question with the story it is asked about.

    Attributes:
        story: The story's statements before the question, oldest first, each a tuple of
            words (the memory a reader attends over).
        question: The question's words.
        answer: The answer's words (one, or several for tasks 8 and 19).
        supporting: Indices into ``story`` of the statements the answer rests on.
        task: The bAbI task number, or 0 when unknown.

    Raises:
        ValueError: for non-string words, an empty question or answer, or a supporting
            index outside the story.
    """

    story: tuple[tuple[str, ...], ...]
    question: tuple[str, ...]
    answer: tuple[str, ...]
    supporting: tuple[int, ...] = ()
    task: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.story, str):
            raise ValueError("story must be a sequence of sentences, not a single string")
        story = tuple(str_tuple(s, f"story[{i}]") for i, s in enumerate(self.story))
        object.__setattr__(self, "story", story)
        for name in ("question", "answer"):
            words = str_tuple(getattr(self, name), name)
            if not words:
                raise ValueError(f"{name} must hold at least one word")
            object.__setattr__(self, name, words)
        supporting = tuple(self.supporting)
        for i in supporting:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(story):
                raise ValueError(
                    f"supporting must hold indices in [0, {len(story)}) (the story), got {i!r}"
                )
        object.__setattr__(self, "supporting", supporting)

    @property
    def answer_text(self) -> str:
        """The answer as bAbI writes it: words joined by commas."""
        return ",".join(self.answer)


def task_file(folder: str | os.PathLike[str], task: int, split: str) -> Path:
    """The file of ``task`` (1-20) and ``split`` (``"train"`` or ``"test"``) in ``folder``.

    Raises:
        ValueError: for an unknown task or split.
        FileNotFoundError: when the file is not in ``folder``.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of 1..20, got {task!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(folder) / f"qa{task}_{TASKS[task]}_{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no bAbI file {path.name} in {folder}")
    return path


def read_babi(path: str | os.PathLike[str], task: int = 0) -> list[Question]:
    """Every question of a bAbI file, each with its story so far.

    Args:
        path: A ``qaN_<name>_{train,test}.txt`` file.
        task: Task number stored in each `Question` (default: read from a ``qaN_`` file
            name, else 0).

    Raises:
        ValueError: naming the file and line for a line without an ID, an ID that does not
            follow the previous one, a question without answer or supporting IDs, a
            supporting ID that is not an earlier statement of the story, or bytes that are
            not UTF-8 (a byte-order mark is dropped).
    """
    path = Path(path)
    task = task or _task_of(path)
    questions: list[Question] = []
    story: list[tuple[str, ...]] = []
    position: dict[int, int] = {}  # line ID of a statement -> its index in the story
    last_id = 0
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        head, _, text = line.partition(" ")
        if not head.isdigit():
            raise ValueError(f"{where}: expected 'ID text', got {line[:40]!r}")
        line_id = int(head)
        if line_id == 1:
            story, position = [], {}
        elif line_id != last_id + 1:
            raise ValueError(f"{where}: ID {line_id} does not follow ID {last_id}")
        last_id = line_id
        if "\t" not in text:
            position[line_id] = len(story)
            story.append(tokenize(text))
            continue
        fields = text.split("\t")
        if len(fields) != 3 or not fields[1].strip():
            raise ValueError(f"{where}: expected 'question<TAB>answer<TAB>supporting IDs'")
        try:
            supporting = tuple(position[int(i)] for i in fields[2].split())
        except (KeyError, ValueError):
            raise ValueError(
                f"{where}: supporting IDs {fields[2]!r} are not earlier statements"
            ) from None
        answer = tuple(w.strip().lower() for w in fields[1].split(","))
        questions.append(Question(tuple(story), tokenize(fields[0]), answer, supporting, task))
    return questions


def load_tasks(
    folder: str | os.PathLike[str], tasks: Sequence[int] = tuple(TASKS)
) -> dict[int, dict[str, list[Question]]]:
    """The ``train`` and ``test`` questions of each of ``tasks`` in a bAbI ``en/`` folder."""
    if not Path(folder).is_dir():
        raise ValueError(f"no bAbI folder at {folder} (expected the tasks' en/ folder)")
    return {
        task: {
            split: read_babi(task_file(folder, task, split), task) for split in ("train", "test")
        }
        for task in tasks
    }


def _task_of(path: Path) -> int:
    """The task number of a ``qaN_...`` file name; 0 for any other name."""
    match = _TASK_NAME.match(path.name)
    return int(match.group(1)) if match else 0


def load_files(
    train: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    test: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> dict[int, dict[str, list[Question]]]:
    """The ``train`` and ``test`` questions of bAbI-format files given by path, by task.

    Each file is read by `read_babi`. Its task is the ``N`` of a ``qaN_`` file name (as
    `read_babi` reads it, ``qa1_single-supporting-fact_train.txt``: task 1), else 0, so that
    files named otherwise form one task 0. The questions of a task's training files are
    concatenated in the order the files are given, and so are those of its test files.

    Args:
        train: The training files: a path, a glob pattern (``en/qa1_*_train.txt``; its
            matches sorted by name), or a list of them.
        test: The test files, the same way.

    Returns:
        What `load_tasks` returns for the tasks found: ``{task: {"train": [...], "test":
        [...]}}``, tasks in increasing order, each `Question` with ``task`` set to its key.

    Raises:
        ValueError: naming the option (``--train``, ``--test``) and the pattern: no pattern,
            a pattern matching no file, a folder (`hybrid.corpora.expand_paths`); naming the
            file: a file given twice (for one split or both), a file without questions, a
            task with training files but no test file or the reverse (naming the files it
            has); naming the file and line, what `read_babi` refuses.
    """
    files = {"train": expand_paths(train, "--train"), "test": expand_paths(test, "--test")}
    seen: dict[Path, str] = {}  # each file, resolved, and its split
    for split, paths in files.items():
        for path in paths:
            key = path.resolve()
            if key in seen:
                first = seen[key]
                where = f"both --{first} and --{split}" if first != split else f"--{split} twice"
                raise ValueError(f"{str(path)!r} is given for {where}; each file may be read once")
            seen[key] = split
    tasks: dict[int, dict[str, list[Path]]] = {}
    for split, paths in files.items():
        for path in paths:
            tasks.setdefault(_task_of(path), {"train": [], "test": []})[split].append(path)
    for task, by_split in tasks.items():
        for split, other in (("train", "test"), ("test", "train")):
            if not by_split[split]:
                named = ", ".join(map(str, by_split[other]))
                raise ValueError(
                    f"task {task}: --{other} gives {named} but --{split} gives no file of this "
                    f"task (its task is the N of a 'qaN_' file name, else 0)"
                )
    loaded: dict[int, dict[str, list[Question]]] = {}
    for task in sorted(tasks):
        loaded[task] = {}
        for split, paths in tasks[task].items():
            questions: list[Question] = []
            for path in paths:
                read = read_babi(path)
                if not read:
                    raise ValueError(f"--{split}: no question in {str(path)!r}")
                questions.extend(read)
            loaded[task][split] = questions
    return loaded
