"""The parsing recipe end to end on the synthetic treebank: training, resume, decoders, the run
folder, saved parsers, the command line."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace

import pytest
import torch

from hybrid.cli import main
from hybrid.parsing.chart import ChartParser
from hybrid.parsing.data import ParsingVocabulary
from hybrid.parsing.evalb import evalb
from hybrid.parsing.experiment import (
    ParsingSettings,
    default_settings,
    load_corpus,
    new_parser,
    run_parsing,
)
from hybrid.parsing.linearize import linearize
from hybrid.parsing.parser import BaseParser, Parser
from hybrid.parsing.synthetic import synthetic_trees
from hybrid.parsing.train import ParserTrainConfig, dev_scores, fit, inputs_of

TREES = synthetic_trees(260, seed=3)
TRAIN, DEV, TEST = TREES[:200], TREES[200:230], TREES[230:]


def tiny_settings(epochs=2, **changes):
    base = default_settings("synthetic", epochs)
    model = {**base.model, "hidden": 16, "word_dim": 12, "target_dim": 8}
    return replace(base, model=model, **changes)


def untrained(model="attention", tags=False):
    torch.manual_seed(0)  # the same initial weights every time
    return new_parser(ParsingVocabulary.build(TRAIN), tiny_settings(), tags, model)


def test_interrupted_training_resumes_exactly(tmp_path):
    config = ParserTrainConfig(epochs=2, batch_size=32, lr=3e-3)
    straight = untrained()
    whole = fit(straight, TRAIN, DEV, config, progress=False, log=lambda _: None)
    resumed = untrained()
    checkpoint = tmp_path / "parser.pt"
    quiet = {"progress": False, "log": lambda _: None}
    fit(resumed, TRAIN, DEV, replace(config, epochs=1), checkpoint, **quiet)
    messages = []
    history = fit(resumed, TRAIN, DEV, config, checkpoint, progress=False, log=messages.append)
    assert messages[0] == f"resumed from {checkpoint} after epoch 1"
    assert len(messages) == 2 and messages[1].startswith("parser epoch 2: loss ")
    assert len(history.loss) == 2
    for column in ("loss", "dev_loss", "dev_f1"):
        assert history[column] == whole[column]
    assert history.best_epoch == whole.best_epoch
    assert checkpoint.with_suffix(".log").read_text().splitlines()[-1] == messages[1]
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value)


def test_the_summed_loss_of_a_batch_is_the_sum_over_its_parts():
    parser = untrained()
    parser.model.eval()  # no dropout: the same loss for the same trees
    whole, tokens = parser.summed_loss(TRAIN[:6], label_smoothing=0.1)
    assert tokens == sum(len(linearize(tree)) + 1 for tree in TRAIN[:6])  # with </s>
    first, second = parser.summed_loss(TRAIN[:2], 0.1), parser.summed_loss(TRAIN[2:6], 0.1)
    torch.testing.assert_close(whole, first[0] + second[0])
    assert tokens == first[1] + second[1]
    torch.testing.assert_close(parser.loss(TRAIN[:6], 0.1), whole / tokens)


def test_training_history_and_configuration():
    assert ParserTrainConfig().epochs == 40 and ParserTrainConfig().label_smoothing == 0.0
    with pytest.raises(ValueError, match="label_smoothing"):
        ParserTrainConfig(label_smoothing=1.0)
    parser = untrained()
    config = ParserTrainConfig(epochs=2, lr=3e-3, average=0.5, label_smoothing=0.1)
    history = fit(parser, TRAIN, DEV, config, progress=False, log=lambda _: None)
    assert set(history.columns) == {"loss", "lr", "seconds", "dev_loss", "dev_f1"}
    assert len(history) == 2 and history.lr == [3e-3, 3e-3]
    best = history.best_epoch - 1
    assert history.dev_f1[best] == max(history.dev_f1)
    # the parser keeps the weights scored for its best epoch (here, their moving average)
    assert dev_scores(parser, DEV) == (history.dev_loss[best], history.dev_f1[best])


@pytest.mark.parametrize(
    ("model", "tags"), [("attention", False), ("attention", True), ("pointer", True)]
)
def test_decoders_give_trees_over_the_sentences(model, tags):
    parser = untrained(model, tags)
    fit(parser, TRAIN, DEV, ParserTrainConfig(epochs=1, lr=3e-3), progress=False)
    sentences, pos = inputs_of(TEST)
    for mode in ("greedy", "beam", "constrained"):
        parses = parser.parse(sentences, pos if tags else None, mode=mode, beam=3)
        assert [p.tree.leaves() for p in parses] == sentences
        # a tree before repair exactly when the repaired tree writes the same tokens back
        assert all(p.well_formed == (linearize(p.tree) == p.tokens) for p in parses)
        assert not {"<pad>", "<s>", "<unk>"} & {t for p in parses for t in p.tokens}
        if mode == "constrained":
            assert all(p.well_formed for p in parses)
    with pytest.raises(ValueError, match="mode must be one of"):
        parser.parse(sentences, mode="sampling")
    if tags:
        with pytest.raises(ValueError, match="tags are required"):
            parser.parse(sentences)


def test_saved_parser_parses_as_before(tmp_path):
    parser = untrained()
    fit(parser, TRAIN, DEV, ParserTrainConfig(epochs=1, lr=3e-3), progress=False)
    parser.save(tmp_path / "p.pt")
    loaded = Parser.load(tmp_path / "p.pt")
    sentences, _ = inputs_of(TEST)
    assert [p.tokens for p in loaded.parse(sentences)] == [
        p.tokens for p in parser.parse(sentences)
    ]
    with pytest.raises(ValueError, match="does not exist"):
        Parser.load(tmp_path / "missing.pt")


def test_a_parser_saves_itself_and_loads_back_in_evaluation_mode(tmp_path):
    parser = untrained()
    parser.model.train()
    parser.save(tmp_path / "p.pt")
    loaded = BaseParser.load(tmp_path / "p.pt", device="cpu")
    assert type(loaded) is Parser and not any(m.training for m in loaded.model.modules())
    assert all(p.device.type == "cpu" for p in loaded.model.parameters())
    assert loaded.vocabulary.to_dict() == parser.vocabulary.to_dict()
    weights, loaded_weights = parser.model.state_dict(), loaded.model.state_dict()
    assert weights.keys() == loaded_weights.keys()
    assert all(torch.equal(weights[k], loaded_weights[k]) for k in weights)


def test_run_folder_reads_back_and_refuses_other_settings(tmp_path):
    settings = tiny_settings(epochs=1)
    run = tmp_path / "run"
    results = run_parsing(TRAIN, DEV, TEST, run, inputs=["words"], settings=settings)
    rows = [r for r in results["rows"] if r["split"] == "test"]
    assert {(r["task"], r["system"], r["decoder"], r["seed"]) for r in rows} == {
        ("words", m, d, 0)
        for m in ("none", "attention", "pointer")
        for d in ("greedy", "beam", "constrained")
    } | {("words", "chart-crf", "cky", 0), ("words", "chart-crf", "mbr", 0)} | {
        ("words", "chart-ssvm", "cky", 0)
    }
    lengths = [len(tree.leaves()) for tree in TEST]
    for row in rows:
        assert 0 <= row["metrics"]["f1"] <= 1 and len(row["outputs"]) == len(TEST)
        if row["decoder"] in ("constrained", "cky", "mbr"):
            assert row["metrics"]["well_formed"] == 1.0
        assert list(row["f1_by_length"]) == ["1-10", "11-20", "21-30", "31-40", "41+"]
    again = run_parsing(TRAIN, DEV, TEST, run, inputs=["words"], settings=settings)
    assert again["rows"] == json.loads((run / "results.json").read_text())["rows"]
    assert [r for r in again["rows"] if r["split"] == "test"] == rows
    # a parser that finished before it had a decoder gets its row from the saved model
    stored = json.loads((run / "results.json").read_text())
    stored["rows"] = [r for r in stored["rows"] if r["decoder"] != "mbr"]
    (run / "results.json").write_text(json.dumps(stored))
    rescored = run_parsing(TRAIN, DEV, TEST, run, inputs=["words"], settings=settings)["rows"]

    def mbr_rows(rows):
        kept = ("system", "f1_by_length", "outputs", "seconds", "epochs")
        return sorted(
            [[r[k] for k in kept], r["metrics"]["f1"], r["metrics"]["exact"]]
            for r in rows
            if r["decoder"] == "mbr"
        )

    assert len(mbr_rows(rows)) == 1 and mbr_rows(rescored) == mbr_rows(rows)
    assert len(rescored) == len(again["rows"])
    files = ("results.md", "training.png", "f1-by-length.png", "attention.png")
    for name in (*files, "pointer-attention.png"):
        assert (run / name).stat().st_size > 0
    table = (run / "results.md").read_text()
    assert "| chart, tree CRF | cky |" in table and "Test F1 by sentence length" in table
    with pytest.raises(ValueError, match="trained with other settings"):
        run_parsing(TRAIN, DEV, TEST, run, inputs=["words"], settings=replace(settings, beam=7))
    # the saved parser gives the recorded outputs, and the recorded F1 is EVALB's on them
    parser = Parser.load(run / "models" / "words-attention-seed0.pt")
    sentences, tags = inputs_of(TEST)
    parses = parser.parse(sentences, mode="constrained", beam=settings.beam)
    constrained = next(
        r for r in rows if (r["system"], r["decoder"]) == ("attention", "constrained")
    )
    assert [" ".join(p.tokens) for p in parses] == constrained["outputs"]
    retagged = [p.tree.with_tags(t) for p, t in zip(parses, tags, strict=True)]
    assert evalb(TEST, retagged).f1 == pytest.approx(constrained["metrics"]["f1"])
    assert evalb(TEST, retagged).errors == ()  # punctuation deleted alike in both trees
    # the same for a chart parser, and a length bin's F1 is EVALB's on its sentences
    chart = BaseParser.load(run / "models" / "words-chart-crf-seed0.pt")
    assert isinstance(chart, ChartParser)
    parses = chart.parse(sentences)
    row = next(r for r in rows if r["system"] == "chart-crf")
    assert [" ".join(p.tokens) for p in parses] == row["outputs"]
    retagged = [p.tree.with_tags(t) for p, t in zip(parses, tags, strict=True)]
    assert evalb(TEST, retagged).f1 == pytest.approx(row["metrics"]["f1"])
    for name, (first, last) in (("1-10", (1, 10)), ("11-20", (11, 20))):
        chosen = [k for k, n in enumerate(lengths) if first <= n <= last]
        expected = evalb([TEST[k] for k in chosen], [retagged[k] for k in chosen]).f1
        assert row["f1_by_length"][name] == pytest.approx(expected if chosen else None)


def test_command_line_trains_and_parses(tmp_path, capsys):
    code = main(
        [
            "train-parser",
            "--epochs",
            "1",
            "--inputs",
            "words",
            "--models",
            "attention",
            "--train-size",
            "300",
            "--runs",
            str(tmp_path),
            "--name",
            "cli",
            "--quiet",
        ]
    )
    assert code == 0
    assert "synthetic" in capsys.readouterr().out
    results = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert results["settings"]["train_trees"] == 300
    assert main(["train-parser", "--train-size", "0", "--runs", str(tmp_path)]) == 2
    assert "--train-size must be a positive number" in capsys.readouterr().err
    model = tmp_path / "cli" / "models" / "words-attention-seed0.pt"
    assert main(["parse", "--model", str(model), "the dog saw a cat ."]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("(") and "dog" in printed
    assert main(["parse", "--model", str(tmp_path / "nope.pt"), "a"]) == 2


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="inputs must be among"):
        run_parsing(TRAIN, DEV, TEST, tmp_path, inputs=["chars"])
    with pytest.raises(ValueError, match="train, dev and test must all hold trees"):
        run_parsing(TRAIN, [], TEST, tmp_path, settings=ParsingSettings())
    with pytest.raises(ValueError, match="corpus must be"):
        load_corpus("wsj", None)
    with pytest.raises(ValueError, match="reverse must be False"):
        vocabulary = ParsingVocabulary.build(TRAIN, reverse=True)
        new_parser(vocabulary, tiny_settings(), False, "pointer")


def test_reversed_source_reverses_words_characters_and_tags_but_not_targets():
    from hybrid.parsing.data import collate

    forward = ParsingVocabulary.build(TRAIN)
    backward = ParsingVocabulary.build(TRAIN, reverse=True)
    sentences, tags = inputs_of(TEST[:3])
    a = collate(forward, sentences, tags, TEST[:3])
    b = collate(backward, sentences, tags, TEST[:3])
    for i, n in enumerate(a.lengths.tolist()):
        assert torch.equal(b.words[i, :n], a.words[i, :n].flip(0))
        assert torch.equal(b.tags[i, :n], a.tags[i, :n].flip(0))
        assert torch.equal(b.chars[i, :n], a.chars[i, :n].flip(0))
    assert torch.equal(a.targets, b.targets)


def test_the_command_trains_its_seeds_into_one_run_folder(tmp_path, capsys):
    args = ["--models", "chart-crf", "--inputs", "words", "--epochs", "1", "--quiet"]
    args += ["--train-size", "40", "--runs", str(tmp_path), "--name", "r", "--seeds", "0", "1"]
    assert main(["train-parser", *args]) == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert {(r["decoder"], r["seed"]) for r in results["rows"] if r["split"] == "test"} == {
        (d, s) for d in ("cky", "mbr") for s in (0, 1)
    }
    assert "seed" not in results["settings"]["training"]
    table = (tmp_path / "r" / "results.md").read_text()
    assert "mean ± std over seeds 0, 1" in table and table in capsys.readouterr().out
    f1 = [
        100 * r["metrics"]["f1"]
        for r in results["rows"]
        if (r["decoder"], r["split"]) == ("cky", "test")
    ]
    # mean and sample deviation over the two seeds, and how many seeds trained it
    shown = f"{statistics.fmean(f1):.2f} ± {statistics.stdev(f1):.2f} (2)"
    assert f"| chart, tree CRF | cky | {shown} |" in table
