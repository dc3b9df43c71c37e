"""Files written and read back: atomic writes under concurrency, merged and locked run results,
resumes refused with other settings, model files checked for what they hold, corpus text.

Issue 21, "lost data, run folders, model files and corpus file reading". The helpers of
`hybrid.files` are imported inside the tests that use them, so that on a checkout without them
every other test fails for its own reason.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch

from hybrid.parsing.data import ParsingVocabulary
from hybrid.parsing.experiment import default_settings as parsing_settings
from hybrid.parsing.experiment import new_parser, run_parsing
from hybrid.parsing.parser import Parser
from hybrid.parsing.synthetic import synthetic_trees
from hybrid.parsing.train import ParserTrainConfig
from hybrid.parsing.train import fit as fit_parser
from hybrid.parsing.treebank import read_trees
from hybrid.qa import QAVocabulary, collate
from hybrid.qa.babi import read_babi
from hybrid.qa.experiment import default_settings as qa_settings
from hybrid.qa.experiment import hold_out, run_qa
from hybrid.qa.model import Reader, ReaderConfig
from hybrid.qa.synthetic import generate_stories
from hybrid.qa.train import QATrainConfig
from hybrid.qa.train import fit as fit_reader
from hybrid.speech.acoustic import AcousticConfig, build
from hybrid.speech.corpus import FeatureConfig, synthetic_recordings, synthetic_split
from hybrid.speech.experiment import ExperimentSettings, run_speech
from hybrid.speech.fsdd import DIGITS
from hybrid.speech.recognizer import Recognizer, system_dict
from hybrid.speech.systems import SystemSettings
from hybrid.speech.topology import Topology
from hybrid.speech.train import AcousticTrainConfig, fit_acoustic
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.corpus import read_atis, read_conll
from hybrid.tagging.experiment import run_comparison
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.synthetic import airline_splits
from hybrid.tagging.train import TaggerTrainConfig, evaluate
from hybrid.tagging.train import fit as fit_tagger

QUIET = {"progress": False, "log": lambda _: None}
SMALL_TAGGER = TaggerConfig(word_dim=8, hidden=8, char_dim=4, char_out=4, dropout=0.1)
TAGGING = {k: v[:24] for k, v in airline_splits(train=24, valid=24, test=24, seed=3).items()}
STORIES = hold_out(generate_stories(60, seed=0))
TREES = synthetic_trees(60, seed=3)


# -- the models and runs of each domain, tiny ----------------------------------------------


def _tagger() -> tuple[Tagger, TaggingVocabulary]:
    vocabulary = TaggingVocabulary.build(TAGGING["train"])
    torch.manual_seed(0)
    return Tagger(SMALL_TAGGER, vocabulary), vocabulary


def _reader(hidden: int = 8) -> tuple[Reader, QAVocabulary]:
    vocabulary = QAVocabulary.build(STORIES[0])
    torch.manual_seed(0)
    config = ReaderConfig(kind="memory", dim=8, hidden=hidden, sentence_size=6)
    return Reader(config, vocabulary), vocabulary


def _parser(hidden: int = 16) -> Parser:
    base = parsing_settings("synthetic")
    model = {**base.model, "hidden": hidden, "word_dim": 8, "target_dim": 8}
    torch.manual_seed(0)
    return new_parser(ParsingVocabulary.build(TREES), replace(base, model=model), False, "none")


def _speech_system() -> dict:
    config = AcousticConfig(kind="classifier", input_dim=4, num_outputs=2, hidden=4, layers=1)
    model = {"config": asdict(config), "weights": build(config).state_dict()}
    scales = {"acoustic_scale": 1.0, "prior_scale": 1.0, "word_penalty": 0.0}
    return system_dict("rnn", Topology(("no", "yes")), "isolated", scales, model)


def _fit_tagger(checkpoint: Path, epochs: int = 1, lr: float = 1e-2, hidden: int = 8):
    model, vocabulary = _tagger()
    if hidden != SMALL_TAGGER.hidden:
        model = Tagger(replace(SMALL_TAGGER, hidden=hidden), vocabulary)
    config = TaggerTrainConfig(epochs=epochs, batch_size=12, lr=lr)
    return fit_tagger(
        model, vocabulary, TAGGING["train"], TAGGING["valid"], config, checkpoint, **QUIET
    )


def _fit_reader(checkpoint: Path, epochs: int = 1, lr: float = 0.005, hidden: int = 8):
    reader, vocabulary = _reader(hidden)
    train, valid = (collate(part, vocabulary) for part in STORIES)
    config = QATrainConfig(epochs=epochs, lr=lr, linear_start=False)
    return fit_reader(reader, train, valid, config, checkpoint, **QUIET)


def _fit_parser(checkpoint: Path, epochs: int = 1, lr: float = 3e-3, hidden: int = 16):
    config = ParserTrainConfig(epochs=epochs, batch_size=32, lr=lr)
    return fit_parser(_parser(hidden), TREES[:40], TREES[40:50], config, checkpoint, **QUIET)


def _fit_speech(checkpoint: Path, epochs: int = 1, lr: float = 1e-3, hidden: int = 8):
    generator = torch.Generator().manual_seed(2)
    features = [torch.randn(n, 5, generator=generator) for n in (5, 8, 6, 7)]
    targets = [torch.randint(0, 3, (len(f),), generator=generator) for f in features]
    torch.manual_seed(0)
    model = build(AcousticConfig(kind="dnn", input_dim=5, num_outputs=3, hidden=hidden, context=1))
    config = AcousticTrainConfig(epochs=epochs, batch_size=2, lr=lr)
    return fit_acoustic(model, features, targets, config, checkpoint)


FITS = {"tagger": _fit_tagger, "reader": _fit_reader, "parser": _fit_parser, "speech": _fit_speech}


# -- 1. atomic writes ------------------------------------------------------------------------


def test_a_writer_finishing_during_another_write_spoils_neither(tmp_path):
    from hybrid.files import write_atomic

    path = tmp_path / "results.json"

    def slow(stream):
        stream.write(b"first")
        write_atomic(path, lambda inner: inner.write(b"second"))  # a second process, say
        assert path.read_bytes() == b"second"

    write_atomic(path, slow)
    assert path.read_bytes() == b"first"  # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from hybrid.files import write_atomic, write_text_atomic

    path = tmp_path / "model.pt"
    write_text_atomic(path, "old")

    def broken(stream):
        stream.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def _merge_rows(path: Path, writer: str) -> None:
    """50 read-modify-writes of ``path``, each adding the row ``<writer>-<i>``."""
    from hybrid.files import update_json

    for i in range(50):
        update_json(path, lambda saved, i=i: {"rows": saved.get("rows", []) + [f"{writer}-{i}"]})


def test_two_processes_merging_rows_lose_none_and_the_file_stays_json(tmp_path):
    path = tmp_path / "results.json"
    context = multiprocessing.get_context("fork")  # the children start at once, hybrid loaded
    writers = [context.Process(target=_merge_rows, args=(path, name)) for name in "ab"]
    for writer in writers:
        writer.start()
    while any(writer.is_alive() for writer in writers):
        if path.exists():
            json.loads(path.read_text())  # every version read is whole
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    rows = json.loads(path.read_text())["rows"]
    assert sorted(rows) == sorted(f"{w}-{i}" for w in "ab" for i in range(50))


# -- 2. runs accumulate in a run folder --------------------------------------------------------


def test_tagging_runs_of_other_heads_accumulate_in_one_folder(tmp_path, monkeypatch):
    drawn = {}  # what the figures were drawn from, by figure
    for figure in ("plot_curves", "plot_label_f1"):
        monkeypatch.setattr(
            f"hybrid.tagging.experiment.{figure}",
            lambda data, *_, figure=figure, **__: drawn.__setitem__(figure, sorted(data)),
        )
    monkeypatch.setattr("hybrid.tagging.experiment.plot_confusion", lambda *_, **__: None)
    training = TaggerTrainConfig(epochs=1, batch_size=12)
    for head in ("crf", "softmax"):
        run_comparison(TAGGING, tmp_path, [head], [0], SMALL_TAGGER, training, **QUIET)
    results = json.loads((tmp_path / "results.json").read_text())
    rows = [(r["system"], r["split"]) for r in results["rows"]]
    assert rows == [("crf", "test"), ("crf", "dev"), ("softmax", "test"), ("softmax", "dev")]
    assert {s["system"] for s in results["summary"]} == {"crf", "softmax"}
    table = (tmp_path / "results.md").read_text()
    assert "| crf | 1 |" in table and "| softmax | 1 |" in table
    assert drawn == {
        "plot_curves": [("crf", 0), ("softmax", 0)],
        "plot_label_f1": ["crf", "softmax"],
    }
    again = run_comparison(TAGGING, tmp_path, ["softmax"], [0], SMALL_TAGGER, training, **QUIET)
    assert [(r["system"], r["split"]) for r in again["rows"]] == rows  # replaced, not doubled
    with pytest.raises(ValueError, match=r"results\.json was trained with other settings.*hidden"):
        other = replace(SMALL_TAGGER, hidden=12)
        run_comparison(TAGGING, tmp_path, ["ssvm"], [0], other, training, **QUIET)


def test_qa_runs_of_other_readers_accumulate_in_one_folder(tmp_path):
    tasks = {1: {"train": STORIES[0] + STORIES[1], "test": generate_stories(20, seed=1)}}
    fast = QATrainConfig(epochs=1, linear_start=False)
    settings = {
        kind: (replace(qa_settings(kind)[0], dim=8, hidden=8), fast)
        for kind in ("memory", "attentive", "lstm")
    }
    for kind in ("memory", "lstm"):
        run_qa(tasks, tmp_path, [kind], [0], settings=settings, **QUIET)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["system"], r["task"], r["seed"], r["split"]) for r in results["rows"]] == [
        ("memory", 1, 0, "valid"),
        ("memory", 1, 0, "test"),
        ("lstm", 1, 0, "valid"),
        ("lstm", 1, 0, "test"),
    ]
    assert {entry["system"] for entry in results["summary"]} == {"memory", "lstm"}
    assert {k: v["reader"]["dim"] for k, v in results["settings"]["readers"].items()} == {
        "memory": 8,
        "attentive": 8,
        "lstm": 8,
    }
    table = (tmp_path / "results.md").read_text()
    assert "memory best" in table and "lstm best" in table


# -- 3. a resume with other settings ---------------------------------------------------------


@pytest.mark.parametrize("domain", FITS)
def test_a_resume_with_other_settings_is_refused_naming_them(domain, tmp_path):
    fit = FITS[domain]
    checkpoint = tmp_path / "checkpoints" / "run.pt"
    fit(checkpoint)
    named = re.escape(str(checkpoint))
    with pytest.raises(ValueError, match=rf"{named}.*training\.lr: .* there, 0\.5 asked"):
        fit(checkpoint, lr=0.5)
    with pytest.raises(ValueError, match=rf"{named}.*model\.hidden: .* there, 6 asked"):
        fit(checkpoint, hidden=6)  # refused before the weights: no size-mismatch traceback


@pytest.mark.parametrize("domain", FITS)
def test_a_resume_may_train_on_for_more_epochs_and_records_it(domain, tmp_path):
    fit = FITS[domain]
    checkpoint = tmp_path / "checkpoints" / "run.pt"
    fit(checkpoint)
    history = fit(checkpoint, epochs=2)
    changed = {"training.epochs": [1, 2]}
    assert len(history.loss) == 2
    assert history.changes == [{"after_epoch": 1, "changed": changed}]


def test_a_truncated_checkpoint_names_the_file_and_how_to_continue(tmp_path):
    checkpoint = tmp_path / "checkpoints" / "crf-seed0.pt"
    _fit_tagger(checkpoint)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    named = re.escape(str(checkpoint))
    with pytest.raises(ValueError, match=rf"{named} .*truncated.*delete it to restart"):
        _fit_tagger(checkpoint, epochs=2)
    checkpoint.unlink()
    assert len(_fit_tagger(checkpoint, epochs=2).loss) == 2  # from its beginning


# -- 4. model files --------------------------------------------------------------------------


def _write_tagger(path):
    _tagger()[0].save(path)


def _write_reader(path):
    _reader()[0].save(path)


def _write_parser(path):
    _parser().save(path)


def _write_speech(path):
    recordings = {"features": asdict(FeatureConfig()), "sample_rate": 8000}
    Recognizer(_speech_system() | recordings).save(path)


LOADERS = {
    "tagger": (Tagger.load, _write_tagger, "hybrid train-tagger"),
    "reader": (Reader.load, _write_reader, "hybrid train-qa"),
    "parser": (Parser.load, _write_parser, "hybrid train-parser"),
    "speech system": (Recognizer.load, _write_speech, "hybrid train-asr"),
}


def _bad_file(kind: str, path: Path) -> None:
    if kind == "truncated":
        _write_tagger(path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        generator = torch.Generator().manual_seed(0)
        path.write_bytes(bytes(torch.randint(0, 256, (500,), generator=generator).tolist()))
    elif kind == "a tensor":
        torch.save(torch.zeros(3), path)


@pytest.mark.parametrize("bad", ["missing", "empty", "truncated", "random", "a tensor"])
@pytest.mark.parametrize("expected", LOADERS)
def test_a_file_that_is_no_model_names_the_file_and_what_was_expected(bad, expected, tmp_path):
    load = LOADERS[expected][0]
    path = tmp_path / "model.pt"
    _bad_file(bad, path)
    what = "does not exist" if bad == "missing" else "is not a file written by hybrid"
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} {what}.*a trained {expected} "):
        load(path)


@pytest.mark.parametrize(("made", "expected"), [(m, e) for m in LOADERS for e in LOADERS if m != e])
def test_a_model_of_another_kind_says_what_it_is(made, expected, tmp_path):
    load = LOADERS[expected][0]
    _, save, command = LOADERS[made]
    path = tmp_path / "model.pt"
    save(path)
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))} holds a trained {made} \(written by `{command}`.*"
        rf"expected a trained {expected} ",
    ):
        load(path)


def test_a_checkpoint_given_as_a_model_says_where_the_models_are(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoints" / "crf-seed0.pt"
    _fit_tagger(checkpoint)
    models = tmp_path / "run" / "models"
    where = re.escape(f"{models}/")
    with pytest.raises(ValueError, match=rf"training checkpoint.*models of a run are in {where}"):
        Tagger.load(checkpoint)


def test_models_saved_before_the_stamp_still_load_and_are_still_told_apart(tmp_path):
    model, vocabulary = _tagger()
    old = {
        "config": asdict(model.config),
        "vocabulary": vocabulary.to_dict(),
        "model": model.state_dict(),
    }
    torch.save(old, tmp_path / "tagger.pt")
    loaded = Tagger.load(tmp_path / "tagger.pt")
    assert evaluate(loaded, loaded.vocabulary, TAGGING["test"]) == evaluate(
        model.eval(), vocabulary, TAGGING["test"]
    )
    torch.save(_speech_system() | {"features": None}, tmp_path / "system.pt")
    assert Recognizer.load(tmp_path / "system.pt").kind == "rnn"
    with pytest.raises(ValueError, match="holds a trained tagger.*expected a trained reader"):
        Reader.load(tmp_path / "tagger.pt")
    with pytest.raises(
        ValueError, match="holds a trained speech system.*expected a trained parser"
    ):
        Parser.load(tmp_path / "system.pt")


# -- 5. corpus text --------------------------------------------------------------------------


def _atis(folder: Path, encode) -> list:
    split = folder / "train"
    split.mkdir(parents=True)
    lines = {"seq.in": "fly to boston\ncafé prices\n", "seq.out": "O O B-city\nO O\n"}
    for name, text in (lines | {"label": "flight\nairfare\n"}).items():
        (split / name).write_bytes(encode(text))
    return read_atis(folder, "train")


def _conll(folder: Path, encode) -> list:
    (folder / "chunks.txt").write_bytes(encode("the DT B-NP\ncafé NN I-NP\n"))
    return read_conll(folder / "chunks.txt")


def _babi(folder: Path, encode) -> list:
    text = "1 Mary went to the hall.\n2 Mary went to the café.\n3 Where is Mary?\tcafé\t2\n"
    (folder / "qa1_single_train.txt").write_bytes(encode(text))
    return read_babi(folder / "qa1_single_train.txt")


def _treebank(folder: Path, encode) -> list:
    (folder / "wsj_0001.mrg").write_bytes(encode("(S (NP (DT the) (NN man))\n (VP (VBZ café)))\n"))
    return read_trees(folder / "wsj_0001.mrg")


READERS = {"atis": _atis, "conll": _conll, "babi": _babi, "treebank": _treebank}


@pytest.mark.parametrize("reader", READERS)
def test_corpus_readers_drop_a_byte_order_mark(reader, tmp_path):
    for folder in ("plain", "marked"):
        (tmp_path / folder).mkdir()
    plain = READERS[reader](tmp_path / "plain", str.encode)
    marked = READERS[reader](tmp_path / "marked", lambda text: "\ufeff".encode() + text.encode())
    assert marked == plain


@pytest.mark.parametrize("reader", READERS)
def test_corpus_readers_name_the_file_line_and_bytes_that_are_not_utf8(reader, tmp_path):
    where = re.escape(str(tmp_path))
    with pytest.raises(ValueError, match=rf"{where}/\S+, line 2: bytes b'\\xe9' are not UTF-8"):
        READERS[reader](tmp_path, lambda text: text.encode("latin-1"))


# -- 6. a run folder asked for more epochs trains on and records it ------------------------
# Issue 21: "A run resumed ... with different settings is refused, naming the setting;
# raising `--epochs` to train on is allowed, and recorded." Here at the level of the run
# folders (``results.json``) of the four comparisons, above the checkpoints of section 3.


def _recorded_change(results: dict, setting: str, before: int, after: int) -> None:
    """``results`` (a ``results.json``) records one change: ``setting`` raised, with its time."""
    [change] = results["changes"]
    assert change["changed"] == {setting: [before, after]}
    assert datetime.fromisoformat(change["time"]).utcoffset() == timedelta(0)


def test_a_parsing_run_folder_trains_on_for_more_epochs_and_records_it(tmp_path):
    base = parsing_settings("synthetic", epochs=1)
    settings = replace(base, model={**base.model, "hidden": 16, "word_dim": 8, "target_dim": 8})
    data = (TREES[:40], TREES[40:50], TREES[50:52])
    only = {"inputs": ["words"], "models": ["none"], "corpus": "synthetic"}
    first = run_parsing(*data, tmp_path, settings=settings, **only)
    more = replace(settings, training=replace(settings.training, epochs=2))
    results = run_parsing(*data, tmp_path, settings=more, **only)
    assert results == json.loads((tmp_path / "results.json").read_text())
    _recorded_change(results, "training.epochs", 1, 2)
    [before] = [r["history"] for r in first["rows"] if r["split"] == "dev"]
    [history] = [r["history"] for r in results["rows"] if r["split"] == "dev"]
    assert len(history["loss"]) == 2 and history["loss"][0] == before["loss"][0]
    # on from the checkpoint of the first run, not trained again from the start
    assert history["changes"] == [{"after_epoch": 1, "changed": {"training.epochs": [1, 2]}}]
    tested = sorted(r["decoder"] for r in results["rows"] if r["split"] == "test")
    assert tested == ["beam", "constrained", "greedy"]
    assert all(r["epochs"] == 2 for r in results["rows"])  # the rows of 1 epoch dropped
    named = re.escape(str(tmp_path / "results.json"))
    other = replace(more, training=replace(more.training, lr=0.5))
    refused = r"\(settings\.training\.lr: 0\.003 there, 0\.5 asked\)"
    with pytest.raises(ValueError, match=rf"{named} .*{refused}"):
        run_parsing(*data, tmp_path, settings=other, **only)
    refused = r"\(settings\.training\.epochs: 2 there, 1 asked\)"
    with pytest.raises(ValueError, match=rf"{named} .*{refused}"):
        run_parsing(*data, tmp_path, settings=settings, **only)  # fewer epochs: refused


def test_a_speech_run_folder_trains_its_networks_on_for_more_epochs_and_records_it(tmp_path):
    train, test = synthetic_split(synthetic_recordings(speakers=1, takes=6, seed=1))
    systems = SystemSettings(
        word_states=2,
        silence_states=1,
        mixtures=1,
        gmm_iterations=1,
        viterbi_iterations=0,
        rnn={"hidden": 4, "layers": 1},
        training=AcousticTrainConfig(epochs=1, batch_size=8),
    )
    settings = ExperimentSettings(systems=systems)
    only = {"tasks": ["isolated"], "systems": ["gmm", "rnn"], "corpus": "synthetic"}
    data = (train, test[:10], tmp_path)
    first = run_speech(*data, settings=settings, words=DIGITS, **only)
    raised = replace(systems, training=replace(systems.training, epochs=2))
    results = run_speech(*data, settings=replace(settings, systems=raised), words=DIGITS, **only)
    _recorded_change(results, "systems.training.epochs", 1, 2)
    rows = {row["system"]: row for row in results["rows"]}
    assert rows["gmm"] == next(r for r in first["rows"] if r["system"] == "gmm")  # no epochs
    [history] = rows["rnn"]["history"]  # one network pass, trained on from its checkpoint
    assert len(history["loss"]) == 2 and history["best_epoch"] in (1, 2)
    assert history["changes"] == [{"after_epoch": 1, "changed": {"training.epochs": [1, 2]}}]
    other = replace(settings, systems=replace(raised, training=replace(raised.training, lr=0.5)))
    refused = r"results\.json .*\(settings\.systems\.training\.lr: 0\.001 there"
    with pytest.raises(ValueError, match=refused):
        run_speech(*data, settings=other, words=DIGITS, **only)


def test_a_tagging_run_folder_trains_on_for_more_epochs_and_records_it(tmp_path, monkeypatch):
    for figure in ("plot_curves", "plot_label_f1", "plot_confusion"):
        monkeypatch.setattr(f"hybrid.tagging.experiment.{figure}", lambda *_, **__: None)
    one = TaggerTrainConfig(epochs=1, batch_size=12)
    two = TaggerTrainConfig(epochs=2, batch_size=12)
    run_comparison(TAGGING, tmp_path, ["crf", "softmax"], [0], SMALL_TAGGER, one, **QUIET)
    results = run_comparison(TAGGING, tmp_path, ["crf"], [0], SMALL_TAGGER, two, **QUIET)
    _recorded_change(results, "training.epochs", 1, 2)
    # the softmax rows, trained for fewer epochs, no longer stand for this folder
    assert [(r["system"], r["split"], r["epochs"]) for r in results["rows"]] == [
        ("crf", "test", 2),
        ("crf", "dev", 2),
    ]
    record = json.loads((tmp_path / "checkpoints" / "crf-seed0.json").read_text())
    assert record["history"]["changes"] == [
        {"after_epoch": 1, "changed": {"training.epochs": [1, 2]}}
    ]
    results = run_comparison(TAGGING, tmp_path, ["softmax"], [0], SMALL_TAGGER, two, **QUIET)
    assert [(r["system"], r["epochs"]) for r in results["rows"] if r["split"] == "test"] == [
        ("crf", 2),
        ("softmax", 2),
    ]
    assert len(results["changes"]) == 1
    refused = r"results\.json .*\(settings\.training\.lr: 0\.001 there, 0\.5 asked\)"
    with pytest.raises(ValueError, match=refused):
        run_comparison(TAGGING, tmp_path, ["crf"], [0], SMALL_TAGGER, replace(two, lr=0.5), **QUIET)


def test_a_qa_run_folder_trains_a_reader_on_for_more_epochs_and_records_it(tmp_path):
    tasks = {1: {"train": STORIES[0] + STORIES[1], "test": generate_stories(20, seed=1)}}

    def settings(**memory):
        """Every reader's settings, one epoch each, the memory network's training changed."""
        fast = QATrainConfig(epochs=1, linear_start=False)
        return {
            kind: (
                replace(qa_settings(kind)[0], dim=8, hidden=8),
                replace(fast, **memory) if kind == "memory" else fast,
            )
            for kind in ("memory", "attentive", "lstm")
        }

    run_qa(tasks, tmp_path, ["lstm"], [0], settings=settings(), **QUIET)
    run_qa(tasks, tmp_path, ["memory"], [0], settings=settings(), **QUIET)
    results = run_qa(tasks, tmp_path, ["memory"], [0], settings=settings(epochs=2), **QUIET)
    _recorded_change(results, "readers.memory.training.epochs", 1, 2)
    assert [(r["system"], r["split"], r["epochs"]) for r in results["rows"]] == [
        ("lstm", "valid", 1),
        ("lstm", "test", 1),
        ("memory", "valid", 2),
        ("memory", "test", 2),
    ]
    record = json.loads((tmp_path / "checkpoints" / "memory-task1-seed0.json").read_text())
    assert record["history"]["changes"] == [
        {"after_epoch": 1, "changed": {"training.epochs": [1, 2]}}
    ]
    refused = r"\(settings\.readers\.memory\.training\.lr: 0\.005 there, 0\.5"
    with pytest.raises(ValueError, match=refused):
        run_qa(tasks, tmp_path, ["memory"], [0], settings=settings(epochs=2, lr=0.5), **QUIET)


def test_a_setting_that_may_be_raised_is_refused_lowered_or_not_a_number(tmp_path):
    from hybrid.saved import check_same_setup

    saved = {"training": {"epochs": 3, "lr": 0.1}}
    raise_epochs = {"may_raise": ["training.epochs"]}
    assert check_same_setup(tmp_path, saved, saved, **raise_epochs) == {}
    more = {"training": {"epochs": 5, "lr": 0.1}}
    assert check_same_setup(tmp_path, saved, more, **raise_epochs) == {"training.epochs": [3, 5]}
    for asked in (2, "5", True, None):
        with pytest.raises(ValueError, match=rf"training\.epochs: 3 there, {asked!r} asked"):
            check_same_setup(tmp_path, saved, {"training": {"epochs": asked}}, **raise_epochs)


# -- 7. the file lock without fcntl (Windows) ------------------------------------------------

_WITHOUT_FCNTL = """
import json, sys, types, warnings
sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows
import hybrid, hybrid.cli
from hybrid.files import update_json
calls = []
msvcrt = types.ModuleType("msvcrt")  # after the imports: with it, `subprocess` takes it for Windows
msvcrt.LK_LOCK, msvcrt.LK_UNLCK = "lock", "unlock"
msvcrt.locking = lambda descriptor, mode, size: calls.append([mode, size])
sys.modules["msvcrt"] = msvcrt
path = sys.argv[1]
update_json(path, lambda saved: {"rows": [1]})
sys.modules["msvcrt"] = None  # neither: unlocked, with one warning
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for row in (2, 3):
        update_json(path, lambda saved: {"rows": saved["rows"] + [row]})
print(json.dumps({"calls": calls, "warnings": [str(w.message) for w in caught]}))
"""


def test_hybrid_imports_and_locks_without_fcntl(tmp_path):
    path = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_FCNTL, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["calls"] == [["lock", 1], ["unlock", 1]]
    [warning] = report["warnings"]
    assert "neither fcntl nor msvcrt" in warning and "without a lock" in warning
    assert json.loads(path.read_text()) == {"rows": [1, 2, 3]}


# -- 8. figures are written atomically ----------------------------------------------------------


def test_a_figure_is_written_whole_or_not_at_all_and_closed(tmp_path):
    import matplotlib.pyplot as plt

    from hybrid.files import save_figure

    path = tmp_path / "errors.png"
    figure = plt.figure()
    save_figure(figure, path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert figure.number not in plt.get_fignums()
    old = path.read_bytes()
    figure = plt.figure()
    with pytest.raises(ValueError, match="nope"):
        save_figure(figure, path.with_suffix(".nope"))  # a format matplotlib does not write
    assert figure.number not in plt.get_fignums()
    assert [p.name for p in tmp_path.iterdir()] == ["errors.png"] and path.read_bytes() == old


def test_every_figure_of_the_library_goes_through_save_figure():
    package = Path(__file__).resolve().parents[1] / "hybrid"
    direct = [
        f"{source.relative_to(package)}:{number}"
        for source in sorted(package.rglob("*.py"))
        if source.name != "files.py"
        for number, line in enumerate(source.read_text().splitlines(), start=1)
        if ".savefig(" in line
    ]
    assert direct == []


# -- 9. word vectors and ARPA files as corpus text ------------------------------------------------

VECTORS = "the 1 2\ncafé 3 4\n"


def _vectors(path: Path) -> tuple[int, list]:
    from hybrid.nn.encoders import SequenceEncoder

    encoder = SequenceEncoder(3, word_dim=2, hidden=2)
    found = encoder.load_vectors(path, ["<pad>", "the", "café"])
    return found, encoder.word_embedding.weight[1:].tolist()


def test_word_vectors_drop_a_byte_order_mark_and_name_the_line_that_is_not_utf8(tmp_path):
    plain, marked, latin = (tmp_path / name for name in ("plain.txt", "marked.txt", "latin.txt"))
    plain.write_text(VECTORS, encoding="utf-8")
    marked.write_text(VECTORS, encoding="utf-8-sig")
    assert _vectors(marked) == _vectors(plain) == (2, [[1.0, 2.0], [3.0, 4.0]])
    latin.write_text(VECTORS, encoding="latin-1")
    named = re.escape(str(latin))
    with pytest.raises(ValueError, match=rf"{named}, line 2: bytes b'\\xe9' are not UTF-8"):
        _vectors(latin)


def test_an_arpa_file_names_the_line_that_is_not_utf8(tmp_path):
    from hybrid.ctc.lm import read_arpa

    path = tmp_path / "lm.arpa"
    arpa = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1 <s>\n-0.5 café\n-0.5 </s>\n\n\\end\\\n"
    path.write_text(arpa, encoding="latin-1")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 6: bytes b'\\xe9'"):
        read_arpa(path)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf", b"a\nb", b"a\r\nb\r\n", b"a\rb\r\rc\n", b"\n\n", b"a\r\r\n\xc3\xa9\n"],
)
def test_lines_read_one_at_a_time_are_those_of_the_whole_text(data, tmp_path):
    from hybrid.files import iter_lines, read_lines, read_text

    path = tmp_path / "text.txt"
    path.write_bytes(data)
    text = read_text(path)
    whole = text.removesuffix("\n").split("\n") if text else []
    assert list(iter_lines(path)) == read_lines(path) == whole
    path.write_bytes(data + b"\xff\n")  # bytes that are not UTF-8, after those lines
    with pytest.raises(ValueError) as at_once:
        read_text(path)
    with pytest.raises(ValueError) as one_at_a_time:
        list(iter_lines(path))
    assert str(one_at_a_time.value) == str(at_once.value)
    assert f"line {text.count(chr(10)) + 1}:" in str(at_once.value)  # the line after them


# -- 10. a resume asked for fewer epochs than its checkpoint was trained for ---------------------
# Issue 21, found by an independent tester: a training run resumed with fewer epochs than its
# checkpoint holds was accepted, so the run folder recorded the lower number for weights trained
# longer. `load_checkpoint` lets `training.epochs` be raised only; raising it stays allowed and
# recorded (section 3).


@pytest.mark.parametrize("domain", FITS)
def test_a_resume_with_fewer_epochs_than_its_checkpoint_is_refused_naming_them(domain, tmp_path):
    fit = FITS[domain]
    checkpoint = tmp_path / "checkpoints" / "run.pt"
    fit(checkpoint, epochs=2)
    saved = checkpoint.read_bytes()
    named = re.escape(str(checkpoint))
    refused = rf"{named} .*\(training\.epochs: 2 there, 1 asked\).*may change, and only upward"
    with pytest.raises(ValueError, match=refused):
        fit(checkpoint, epochs=1)
    assert checkpoint.read_bytes() == saved  # refused before anything is written
