"""The bAbI reader, vocabularies and batching, on hand-written files and the real tasks."""

from __future__ import annotations

import pytest
import torch
from realdata import real_corpus

from hybrid.qa import TASKS, QAVocabulary, Question, collate, load_tasks, read_babi, tokenize
from hybrid.qa.batching import batch_indices, batches

STORY = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel? \thallway\t4
1 Sandra picked up the apple there.
2 Sandra took the football there.
3 What is Sandra carrying? \tapple,football\t1 2
"""


@pytest.fixture
def story_file(tmp_path):
    path = tmp_path / "qa8_lists-sets_train.txt"
    path.write_text(STORY)
    return path


def test_reader_builds_each_question_with_its_story(story_file):
    questions = read_babi(story_file)
    assert [q.question for q in questions] == [
        ("where", "is", "mary"),
        ("where", "is", "daniel"),
        ("what", "is", "sandra", "carrying"),
    ]
    first, second, third = questions
    assert first.story == (
        ("mary", "moved", "to", "the", "bathroom"),
        ("john", "went", "to", "the", "hallway"),
    )
    assert first.supporting == (0,) and first.answer == ("bathroom",)
    # questions are not statements: line 4 is the story's third statement
    assert len(second.story) == 3 and second.supporting == (2,)
    # a new story starts at ID 1; a multi-word answer is split on commas
    assert len(third.story) == 2 and third.supporting == (0, 1)
    assert third.answer == ("apple", "football") and third.answer_text == "apple,football"
    assert {q.task for q in questions} == {8}  # from the file name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 Mary went home.\n3 Where is Mary?\thome\t1\n", "does not follow"),
        ("1 Mary went home.\n2 Where is Mary?\thome\t5\n", "not earlier statements"),
        ("1 Mary went home.\n2 Where is Mary?\thome\n", "question<TAB>answer"),
        ("Mary went home.\n", "expected 'ID text'"),
    ],
)
def test_reader_names_the_file_and_line_of_bad_input(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_babi(path)
    assert "bad.txt line" in str(error.value)


def test_question_validation():
    with pytest.raises(ValueError, match="supporting"):
        Question((("a", "b"),), ("q",), ("x",), (1,))
    with pytest.raises(ValueError, match="question"):
        Question((("a",),), (), ("x",))
    with pytest.raises(ValueError, match="story"):
        Question("a story", ("q",), ("x",))
    assert tokenize("Where is Mary?") == ("where", "is", "mary")


def test_vocabulary_holds_answers_as_words(story_file):
    questions = read_babi(story_file)
    vocabulary = QAVocabulary.build(questions)
    assert vocabulary.answers.tokens == ["apple,football", "bathroom", "hallway"]
    assert vocabulary.words.decode(vocabulary.answer_words.tolist()) == vocabulary.answers.tokens
    assert QAVocabulary.from_dict(vocabulary.to_dict()) == vocabulary
    unseen = Question((("a",),), ("where",), ("garden",))
    assert vocabulary.answer_index(unseen) == -1


def test_collate_keeps_the_most_recent_statements_and_remaps_support():
    story = tuple((f"w{i}", "x") for i in range(6))
    question = Question(story, ("q",), ("w1",), (1, 4))
    vocabulary = QAVocabulary.build([question])
    batch = collate([question], vocabulary, memory_size=3)
    kept = [vocabulary.words.decode(row[row != 0].tolist()) for row in batch.memory[0]]
    assert kept == [["w3", "x"], ["w4", "x"], ["w5", "x"]]
    assert batch.supporting[0].tolist() == [1]  # statement 4 is slot 1; statement 1 dropped
    assert batch.text_lengths.tolist() == [6]
    assert batch.text_statement[0].tolist() == [0, 0, 1, 1, 2, 2]


def test_text_is_the_memory_read_in_order(story_file):
    questions = read_babi(story_file)
    vocabulary = QAVocabulary.build(questions)
    batch = collate(questions, vocabulary)
    for b in range(len(questions)):
        slots = batch.memory[b, : batch.memory_lengths[b]]
        words = slots[slots != 0].tolist()
        assert batch.text[b, : batch.text_lengths[b]].tolist() == words
        assert (batch.text[b, batch.text_lengths[b] :] == 0).all()
        owners = batch.text_statement[b, : batch.text_lengths[b]]
        assert owners.tolist() == sorted(owners.tolist())


def test_select_equals_collating_the_subset(story_file):
    questions = read_babi(story_file)
    vocabulary = QAVocabulary.build(questions)
    whole = collate(questions, vocabulary)
    for index in ([0], [2, 0], [1, 2]):
        picked = whole.select(torch.tensor(index))
        direct = collate([questions[i] for i in index], vocabulary)
        for name, value in vars(direct).items():
            other = getattr(picked, name)
            if name == "supporting":  # padded to the widest of the whole set
                other = other[:, : value.shape[1]]
            assert torch.equal(value, other), name


def test_batches_cover_every_question_once(story_file):
    questions = read_babi(story_file)
    vocabulary = QAVocabulary.build(questions)
    data = collate(questions, vocabulary)
    generator = torch.Generator().manual_seed(0)
    seen = torch.cat([b.answers for b in batches(data, 2, shuffle=True, generator=generator)])
    assert sorted(seen.tolist()) == sorted(data.answers.tolist())
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(data, 0))
    with pytest.raises(ValueError, match="memory_size"):
        collate(questions, vocabulary, memory_size=0)


def test_all_twenty_real_tasks_read():
    folder = real_corpus("babi") / "en"
    tasks = load_tasks(folder)
    assert sorted(tasks) == sorted(TASKS)
    for task, splits in tasks.items():
        for split, questions in splits.items():
            assert len(questions) == 1000, (task, split)
            assert all(q.task == task for q in questions)
            # every supporting fact is a statement of the story (checked by Question) and
            # every question has at least one
            assert all(q.story and q.supporting for q in questions), (task, split)
    # path finding answers two directions; lists-sets answers up to three objects
    assert {len(q.answer) for q in tasks[19]["train"]} == {2}
    assert {len(q.answer) for q in tasks[8]["train"]} == {1, 2, 3}


def test_bucketed_batches_cover_every_question_once_with_less_padding():
    questions = [
        Question(tuple(("w", "x") for _ in range(1 + i % 7)), ("q",), (f"a{i % 3}",), task=1)
        for i in range(100)
    ]
    vocabulary = QAVocabulary.build(questions)
    data = collate(questions, vocabulary)
    generator = torch.Generator().manual_seed(3)
    found = list(batches(data, 8, shuffle=True, generator=generator, bucket=True))
    lengths = sorted(int(n) for b in found for n in b.text_lengths)
    assert lengths == sorted(data.text_lengths.tolist())
    padded = sum(b.text.numel() for b in found)
    plain = sum(b.text.numel() for b in batches(data, 8, shuffle=True, generator=generator))
    assert padded < plain


def test_batch_indices_draw_a_permutation_of_the_questions_then_of_the_batches():
    questions = [
        Question(tuple(("w", "x") for _ in range(1 + i % 5)), ("q",), ("a",), task=1)
        for i in range(40)
    ]
    data = collate(questions, QAVocabulary.build(questions))
    assert batch_indices(data, 16) == [list(range(16)), list(range(16, 32)), list(range(32, 40))]
    generator = torch.Generator().manual_seed(5)
    plan = batch_indices(data, 4, shuffle=True, generator=generator, bucket=True)
    assert sorted(i for batch in plan for i in batch) == list(range(40))
    # the same draws as the permutation of the questions, then that of the 10 batches
    again = torch.Generator().manual_seed(5)
    order = torch.randperm(40, generator=again)
    torch.randperm(10, generator=again)
    assert torch.equal(generator.get_state(), again.get_state())
    # the batches are cut from the permutation sorted by length within its one window of
    # 16 * 4 questions (here all 40)
    ranked = order[data.text_lengths[order].argsort(stable=True)].tolist()
    assert sorted(plan) == sorted(ranked[i : i + 4] for i in range(0, 40, 4))
