"""The question-answering path end to end: train, resume, evaluate, save, load, answer, report."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
import torch
from realdata import real_corpus

from hybrid.cli import main
from hybrid.nn.memory import answer_loss
from hybrid.qa import QAVocabulary, batches, collate, load_tasks
from hybrid.qa.experiment import default_settings, hold_out, per_task, run_qa
from hybrid.qa.inference import answer, parse_story
from hybrid.qa.model import Reader, ReaderConfig
from hybrid.qa.synthetic import generate_stories
from hybrid.qa.train import QATrainConfig, ReadingTask, evaluate, fit

FAST = QATrainConfig(epochs=3, linear_start_epochs=2)


@pytest.fixture(scope="module")
def stories():
    train, valid = hold_out(generate_stories(240, seed=0))
    return train, valid, generate_stories(60, seed=1)


def _reader(train, kind="memory", seed=0):
    vocabulary = QAVocabulary.build(train)
    torch.manual_seed(seed)
    config = ReaderConfig(kind=kind, dim=8, hidden=8, sentence_size=6)
    return Reader(config, vocabulary), vocabulary


def test_synthetic_stories_are_consistent():
    for q in generate_stories(50, seed=4):
        person = q.question[-1]
        (support,) = q.supporting
        assert q.story[support][0] == person and q.story[support][-1] == q.answer[0]
        # no later statement moves the same person
        assert all(s[0] != person for s in q.story[support + 1 :])
    assert generate_stories(30, seed=2) == generate_stories(30, seed=2)


def test_linear_start_then_softmax(stories):
    train, valid, _ = stories
    reader, vocabulary = _reader(train)
    seen = []  # the softmax switch as each pass over a batch finds it
    original = reader.forward
    reader.forward = lambda batch: (seen.append(reader.model.linear_start), original(batch))[1]
    training = replace(FAST, linear_start_lr=0.01, anneal_every=2)
    history = fit(
        reader, collate(train, vocabulary), collate(valid, vocabulary), training, progress=False
    )
    assert history.linear == [True, True, False, False, False]
    assert reader.model.linear_start is False
    assert all(len(v) == 5 for v in (history.loss, history.valid_error, history.seconds))
    # linear start at its own rate, then the main schedule halved every 2 main epochs
    assert history.lr == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])
    # a linear-start epoch is never kept
    assert history.best_epoch > 2
    main_errors = history.valid_error[2:]
    assert history.valid_error[history.best_epoch - 1] == min(main_errors)
    assert True in seen and seen[-1] is False


def test_the_batch_loss_is_a_sum_that_splits_over_processes(stories):
    train, valid, _ = stories
    reader, vocabulary = _reader(train)
    data = collate(train, vocabulary)
    task = ReadingTask(reader, data, collate(valid, vocabulary), FAST)
    reader.eval()  # no noise: the same loss for the same questions
    generator = torch.Generator()
    batch = task.plan(torch.Generator().manual_seed(0))[0]
    assert len(batch) == FAST.batch_size
    total, units = task.loss(batch, generator)
    assert units == len(batch)
    questions = data.select(torch.tensor(batch))
    mean = answer_loss(reader(questions)[0], questions.answers)
    torch.testing.assert_close(total / units, mean)
    # two processes take every other question: their totals and units add up to the batch's
    halves = [task.loss(batch[rank::2], generator) for rank in range(2)]
    torch.testing.assert_close(halves[0][0] + halves[1][0], total)
    assert halves[0][1] + halves[1][1] == units
    assert task.reduction == "sum"
    assert ReadingTask(reader, data, data, replace(FAST, reduction="mean")).reduction == "mean"


def test_the_epoch_plan_draws_the_batches_of_the_collated_split(stories):
    train, valid, _ = stories
    for kind, bucket in (("memory", False), ("lstm", True)):
        reader, vocabulary = _reader(train, kind)
        data = collate(train, vocabulary)
        task = ReadingTask(reader, data, collate(valid, vocabulary), FAST)
        plan = task.plan(torch.Generator().manual_seed(4))
        generator = torch.Generator().manual_seed(4)
        drawn = batches(data, FAST.batch_size, shuffle=True, generator=generator, bucket=bucket)
        for indices, batch in zip(plan, drawn, strict=True):
            assert torch.equal(data.select(torch.tensor(indices)).text, batch.text)
        assert sorted(i for indices in plan for i in indices) == list(range(len(data)))


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"reduction": "avg"}, "reduction must be 'sum' or 'mean'"),
        ({"linear_start_epochs": 0}, "linear_start_epochs must be a positive integer"),
        ({"linear_start_lr": 0.0}, "linear_start_lr must be positive"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"clip": -1.0}, "clip must be >= 0"),
    ],
)
def test_training_settings_are_checked(setting, named):
    with pytest.raises(ValueError, match=named):
        QATrainConfig(**setting)


def test_lstm_readers_have_no_linear_start(stories):
    train, valid, _ = stories
    reader, vocabulary = _reader(train, "lstm")
    history = fit(
        reader, collate(train, vocabulary), collate(valid, vocabulary), FAST, progress=False
    )
    assert history.linear == [False] * FAST.epochs
    assert history.lr == [FAST.lr] * FAST.epochs


def test_resume_continues_exactly(stories, tmp_path):
    train, valid, _ = stories
    data = lambda vocabulary: (collate(train, vocabulary), collate(valid, vocabulary))  # noqa: E731
    straight, vocabulary = _reader(train)
    expected = fit(straight, *data(vocabulary), FAST, progress=False)
    interrupted, vocabulary = _reader(train)
    checkpoint = tmp_path / "run.pt"
    fit(interrupted, *data(vocabulary), replace(FAST, epochs=1), checkpoint, progress=False)
    resumed, vocabulary = _reader(train)
    messages = []
    history = fit(resumed, *data(vocabulary), FAST, checkpoint, False, messages.append)
    assert messages and "resumed" in messages[0]
    assert history.valid_error == expected.valid_error and history.loss == expected.loss
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)


class _Fixed(torch.nn.Module):
    """A stand-in reader with fixed answer scores and attention."""

    def __init__(self, logits, attention):
        super().__init__()
        self.logits, self.attention = logits, attention
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return self.logits[: len(batch)], self.attention[: len(batch)]


def test_evaluate_counts_errors_and_supporting_facts(stories):
    train, _, _ = stories
    vocabulary = QAVocabulary.build(train)
    data = collate(train[:3], vocabulary)
    answers = data.answers.tolist()
    logits = torch.zeros(3, len(vocabulary.answers))
    logits[0, answers[0]] = logits[1, answers[1]] = 1.0  # two right, the third wrong
    logits[2, (answers[2] + 1) % len(vocabulary.answers)] = 1.0
    slots = data.memory.shape[1]
    attention = torch.zeros(3, 2, slots)
    gold = data.supporting[:, 0]
    attention[:, 0].scatter_(1, gold[:, None], 1.0)  # hop 1 always on the gold statement
    attention[:, 1, 0] = 1.0  # hop 2 always on the oldest statement
    scores = evaluate(_Fixed(logits, attention), data)
    assert scores["error"] == pytest.approx(1 / 3)
    oldest_supports = sum(0 in row.tolist() for row in data.supporting)
    assert scores["support"] == [1.0, oldest_supports / 3]
    assert scores["predicted"][:2] == answers[:2]


def test_run_qa_writes_results_and_reads_them_back(stories, tmp_path):
    train, valid, test = stories
    tasks = {1: {"train": train + valid, "test": test}}
    settings = {
        kind: (replace(default_settings(kind)[0], dim=8, hidden=8), replace(FAST, epochs=1))
        for kind in ("memory", "attentive", "lstm")
    }
    results = run_qa(
        tasks, tmp_path, seeds=(0, 1), settings=settings, progress=False, log=lambda _: None
    )
    rows = results["rows"]
    for split in ("valid", "test"):
        assert {(r["system"], r["seed"]) for r in rows if r["split"] == split} == {
            (k, s) for k in settings for s in (0, 1)
        }
    figures = per_task(results)
    memory = figures["memory"]["tasks"][1]
    mine = [r for r in rows if r["system"] == "memory"]
    errors = [r["metrics"]["error"] for r in mine if r["split"] == "test"]
    assert memory["mean"] == pytest.approx(sum(errors) / 2)
    valid_errors = [r["metrics"]["error"] for r in mine if r["split"] == "valid"]
    assert memory["best_seed"] == min((v, s) for s, v in enumerate(valid_errors))[1]
    assert len(memory["support"]) == 3 and figures["lstm"]["tasks"][1]["support"] is None
    for name in (
        "results.json",
        "results.md",
        "errors.png",
        "validation_curves.png",
        "hop_attention.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows
    lines = []
    again = run_qa(
        tasks, tmp_path, seeds=(0, 1), settings=settings, progress=False, log=lines.append
    )
    assert again["rows"] == rows
    assert sum("read back" in line for line in lines) == 6
    other = dict(settings, memory=(settings["memory"][0], replace(FAST, epochs=1, lr=0.5)))
    with pytest.raises(ValueError, match="other settings"):
        run_qa(tasks, tmp_path, ("memory",), (0,), settings=other, progress=False)


def test_answer_and_parse_story(stories):
    train, valid, _ = stories
    reader, vocabulary = _reader(train)
    fit(reader, collate(train, vocabulary), collate(valid, vocabulary), FAST, progress=False)
    story, question = parse_story(
        "1 anna walked to the attic.\n2 bruno ran to the porch.\n3 Where is anna?\tattic\t1\n"
    )
    assert story == ["anna walked to the attic.", "bruno ran to the porch."]
    assert question == "Where is anna?"
    result = answer(reader, vocabulary, story, question)
    assert result["answer"] in vocabulary.answers.tokens and 0 < result["confidence"] <= 1
    assert len(result["attended"]) == 3 and all(s in story for s, _ in result["attended"])
    with pytest.raises(ValueError, match="statement"):
        parse_story("Where is anna?")
    with pytest.raises(ValueError, match="question"):
        answer(reader, vocabulary, story, "?!")


def test_command_line_train_and_answer(tmp_path, monkeypatch, capsys):
    code = main(
        [
            "train-qa",
            "--runs",
            str(tmp_path),
            "--name",
            "s",
            "--epochs",
            "1",
            "--quiet",
            "--models",
            "memory",
            "lstm",
            "--no-empty-slots",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "| 1 |" in out
    settings = json.loads((tmp_path / "s" / "results.json").read_text())["settings"]
    assert settings["readers"]["memory"]["reader"]["attend_empty"] is False
    model = tmp_path / "s" / "models" / "memory-task1-seed0.pt"
    monkeypatch.setattr("sys.stdin", io.StringIO("emil ran to the garage\nwhere is emil?\n"))
    assert main(["answer", "--model", str(model)]) == 0
    printed = capsys.readouterr().out
    assert (
        printed.startswith("answer: ")
        and "hop 3: emil ran to the garage" in printed
        or "hop 3:" in printed
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("where is emil?\n"))
    assert main(["answer", "--model", str(model)]) == 2


@pytest.mark.parametrize("kind", ["memory", "attentive"])
def test_a_reader_saves_itself_and_loads_back_with_its_vocabulary(stories, tmp_path, kind):
    reader, vocabulary = _reader(stories[0], kind)
    assert reader.vocabulary is vocabulary
    assert "vocabulary" not in reader._modules  # plain data, not a submodule
    assert not any(k.startswith("vocabulary") for k in reader.state_dict())
    path = tmp_path / "reader.pt"
    reader.save(path)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"file_kind", "config", "vocabulary", "model"}
    assert saved["file_kind"] == "reader"
    loaded = Reader.load(path, device="cpu")
    assert type(loaded) is Reader and not any(m.training for m in loaded.modules())
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    assert loaded.config == reader.config and loaded.vocabulary == vocabulary
    weights, loaded_weights = reader.state_dict(), loaded.state_dict()
    assert weights.keys() == loaded_weights.keys()
    assert all(torch.equal(weights[k], loaded_weights[k]) for k in weights)
    assert reader.training  # saving leaves the reader as it was


def test_tiny_reader_on_real_task_one(tmp_path):
    """Read, train, save, load, answer and score on real bAbI task 1 (a few seconds)."""
    tasks = load_tasks(real_corpus("babi") / "en", [1])
    train, valid = hold_out(tasks[1]["train"])
    reader, vocabulary = _reader(train)
    training = QATrainConfig(epochs=15, linear_start_epochs=5)
    fit(reader, collate(train, vocabulary), collate(valid, vocabulary), training, progress=False)
    test = collate(tasks[1]["test"], vocabulary)
    scores = evaluate(reader, test)
    assert scores["error"] < 0.5  # chance is 5/6 (six places)
    reader.save(tmp_path / "reader.pt")
    loaded = Reader.load(tmp_path / "reader.pt")
    loaded_vocabulary = loaded.vocabulary
    assert loaded_vocabulary == vocabulary
    assert evaluate(loaded, test)["predicted"] == scores["predicted"]
    question = tasks[1]["test"][0]
    story = [" ".join(s) for s in question.story]
    result = answer(loaded, loaded_vocabulary, story, " ".join(question.question))
    assert result["answer"] == vocabulary.answers.token(scores["predicted"][0])


def test_joint_training_is_one_reader_for_all_tasks(tmp_path):
    tasks = {
        task: {
            "train": generate_stories(80, seed=task, task=task),
            "test": generate_stories(20, seed=9, task=task),
        }
        for task in (1, 2)
    }
    reader, training = default_settings("memory", joint=True)
    assert reader.dim == 50 and training.epochs == 60 and training.anneal_every == 15
    settings = {"memory": (replace(reader, dim=8), replace(FAST, epochs=1))}
    results = run_qa(
        tasks,
        tmp_path,
        ("memory",),
        (0,),
        joint=True,
        settings=settings,
        progress=False,
        log=lambda _: None,
    )
    assert results["settings"]["mode"] == "joint" and results["settings"]["tasks"] == [1, 2]
    tested = [r for r in results["rows"] if r["split"] == "test"]
    assert sorted(r["task"] for r in tested) == [1, 2]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["memory-joint-seed0.pt"]
    # one reader: the same training record (time, epochs, unit) for both tasks
    assert len({(r["seconds"], r["epochs"], r["unit"]) for r in results["rows"]}) == 1
    assert results["rows"][0]["unit"] == "joint"
