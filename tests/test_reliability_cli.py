"""Issue 21, the command line and streaming inference: out-of-range options refused by
argparse, every bad input one line ``hybrid: error: ...`` and exit status 2, all k best
taggings printed, and inference that reads its input in windows, batches it within a padded
size budget and yields the results lazily, in input order."""

from __future__ import annotations

import codecs
import io
import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hybrid import cli
from hybrid.batching import budget_batches, map_in_batches
from hybrid.parsing.data import ParsingVocabulary
from hybrid.parsing.experiment import default_settings, new_parser
from hybrid.parsing.parser import Parser
from hybrid.parsing.synthetic import synthetic_trees
from hybrid.qa.batching import QAVocabulary
from hybrid.qa.inference import answer, answer_stories
from hybrid.qa.model import Reader, ReaderConfig
from hybrid.qa.synthetic import generate_stories
from hybrid.speech.acoustic import AcousticConfig, build
from hybrid.speech.corpus import FeatureConfig, synthetic_recordings
from hybrid.speech.fsdd import DIGITS
from hybrid.speech.recognizer import Recognizer, system_dict
from hybrid.speech.topology import Topology
from hybrid.tagging import commands as tagging_commands
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.corpus import Sentence, read_atis
from hybrid.tagging.experiment import run_comparison
from hybrid.tagging.inference import tag_stream, tag_texts
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.synthetic import airline_splits
from hybrid.tagging.train import TaggerTrainConfig

ROOT = Path(__file__).resolve().parents[1]
WORDS = "show me flights from boston to denver on monday morning".split()

# --- the shared streaming helper ------------------------------------------------------------


@given(st.lists(st.integers(0, 30), max_size=40), st.integers(1, 60))
def test_budget_batches_partition_the_items_within_the_budget(lengths, budget):
    batches = budget_batches(lengths, budget)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(max(1, lengths[i]) for i in batch)
        assert padded <= budget or len(batch) == 1


@given(
    st.lists(st.integers(0, 30), max_size=40),
    st.integers(1, 60),
    st.integers(1, 12),
)
def test_map_in_batches_equals_a_plain_map_in_input_order(lengths, budget, window):
    items = list(enumerate(lengths))  # (position, length): equal lengths stay distinct
    seen = []

    def run(batch):
        seen.append([length for _, length in batch])
        return [f"result {position}" for position, _ in batch]

    results = list(map_in_batches(run, items, lambda item: item[1], budget, window))
    assert results == [f"result {position}" for position, _ in items]
    assert all(len(b) * max(1, *b) <= budget or len(b) == 1 for b in seen)
    assert all(len(b) <= window for b in seen)


def test_map_in_batches_refuses_bad_arguments_and_a_short_run():
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        map_in_batches(list, [1], len, 0)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        map_in_batches(list, [1], len, 5, window=0)
    with pytest.raises(ValueError, match="run must return one result per item"):
        list(map_in_batches(lambda batch: batch[:-1], [[1], [2]], len, 5))


# --- the four inference entry points, streamed ------------------------------------------------


def _texts(count: int, seed: int = 0) -> list[str]:
    """``count`` sentences of 1 to 12 words, and one of 40 words in the middle."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 13, (count,), generator=generator).tolist()
    lengths[count // 2] = 40
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(n)) for i, n in enumerate(lengths)]


@dataclass
class Streamed:
    """One streaming entry point under test.

    Attributes:
        run: ``(items, budget, window)`` to an iterator of results.
        single: One item to its result, run alone.
        items: Inputs of varied sizes, one of them larger than ``budget``.
        budget: A padded-size budget smaller than the items together.
        spy: Installs a recorder of the padded size of every batch the model sees; returns
            the list it appends to: ``(items in the batch, padded positions)``.
        same: Whether two results agree (exact structure, floats to rounding).
    """

    run: Callable[[Iterable, int, int], Iterator]
    single: Callable[[object], object]
    items: list
    budget: int
    spy: Callable[[pytest.MonkeyPatch], list]
    same: Callable[[object, object], bool]


def _close(a, b) -> bool:
    """Equal structures, floats within 1e-3 (batched and single runs round differently)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-3
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _tiny_tagger() -> tuple[Tagger, TaggingVocabulary]:
    """An untrained CRF tagger over a small airline corpus (random weights suffice here)."""
    torch.manual_seed(0)
    train = airline_splits(train=60, valid=10, test=10, seed=3)["train"]
    vocabulary = TaggingVocabulary.build(train)
    config = TaggerConfig(word_dim=8, hidden=8, char_dim=4, char_out=4, dropout=0.0)
    return Tagger(config, vocabulary), vocabulary


def _tiny_reader(memory_size: int = 50) -> tuple[Reader, QAVocabulary]:
    """An untrained memory network over generated task-1 stories."""
    torch.manual_seed(0)
    vocabulary = QAVocabulary.build(generate_stories(40, seed=0))
    config = ReaderConfig(kind="memory", dim=8, memory_size=memory_size, sentence_size=8)
    return Reader(config, vocabulary), vocabulary


def _tagging() -> Streamed:
    model, vocabulary = _tiny_tagger()

    def spy(monkeypatch):
        sizes = []
        predict = model.predict

        def recorded(batch, k=None):
            sizes.append((len(batch.lengths), batch.words.numel()))
            return predict(batch, k)

        monkeypatch.setattr(model, "predict", recorded)
        return sizes

    return Streamed(
        run=lambda items, budget, window: tag_stream(
            model, vocabulary, items, k=3, budget=budget, window=window
        ),
        single=lambda text: tag_texts(model, vocabulary, [text], k=3)[0],
        items=_texts(23),
        budget=30,
        spy=spy,
        same=_close,
    )


def _parsing() -> Streamed:
    torch.manual_seed(0)
    trees = synthetic_trees(60, seed=3)
    base = default_settings("synthetic")
    settings = type(base)(**{**vars(base), "model": {**base.model, "hidden": 8, "word_dim": 8}})
    untrained = new_parser(ParsingVocabulary.build(trees), settings, False, "attention")
    # Outputs of at most n + 10 tokens: an untrained decoder runs to the limit.
    parser = Parser(untrained.model, untrained.vocabulary, max_ratio=1)

    def spy(monkeypatch):
        sizes = []
        batch = parser.batch

        def recorded(sentences, tags=None, trees=None):
            out = batch(sentences, tags, trees)
            sizes.append((len(sentences), out.words.numel()))
            return out

        monkeypatch.setattr(parser, "batch", recorded)
        return sizes

    return Streamed(
        run=lambda items, budget, window: parser.parse_stream(
            items, mode="greedy", budget=budget, window=window
        ),
        single=lambda words: parser.parse([words], mode="greedy")[0],
        items=[text.split() for text in _texts(10, seed=1)],
        budget=30,
        spy=spy,
        same=lambda a, b: (a.tokens, str(a.tree)) == (b.tokens, str(b.tree)),
    )


def _qa() -> Streamed:
    reader, vocabulary = _tiny_reader(memory_size=6)
    questions = generate_stories(14, seed=1)
    stories = [([" ".join(s) for s in q.story], " ".join(q.question)) for q in questions]
    stories[5] = ([" ".join(["john"] * 30)] * 6, "where is john")  # a memory beyond the budget

    def spy(monkeypatch):
        sizes = []
        forward = reader.forward

        def recorded(batch):
            sizes.append((len(batch), batch.memory.numel()))
            return forward(batch)

        monkeypatch.setattr(reader, "forward", recorded)
        return sizes

    return Streamed(
        run=lambda items, budget, window: answer_stories(
            reader, vocabulary, items, budget=budget, window=window
        ),
        single=lambda item: answer(reader, vocabulary, *item),
        items=stories,
        budget=120,
        spy=spy,
        same=_close,
    )


def _speech() -> Streamed:
    torch.manual_seed(0)
    features = FeatureConfig(cmvn="utterance")
    network = build(AcousticConfig("bilstm", features.dim, len(DIGITS) + 1, hidden=8, layers=1))
    model = {"config": asdict(network.config), "weights": network.state_dict(), "blank": 10}
    scales = {"acoustic_scale": 1.0, "prior_scale": 1.0, "word_penalty": 0.0}
    system = system_dict("ctc", Topology(DIGITS, 2, 1), "loop", scales, model)
    recognizer = Recognizer({**system, "features": asdict(features), "sample_rate": 8000})
    recordings = synthetic_recordings(speakers=1, takes=1)
    # One utterance much longer than the budget: five recordings end to end.
    long = torch.cat([r.waveform for r in recordings[:5]])
    waveforms = [(r.waveform, r.sample_rate) for r in recordings]
    waveforms.insert(4, (long, 8000))

    def spy(monkeypatch):
        sizes = []
        decode = recognizer._decode_batch

        def recorded(batch):
            sizes.append((len(batch), len(batch) * max(len(f) for f in batch)))
            return decode(batch)

        monkeypatch.setattr(recognizer, "_decode_batch", recorded)
        return sizes

    return Streamed(
        run=recognizer.recognize_stream,
        single=lambda item: recognizer.recognize([item])[0],
        items=waveforms,
        budget=120,
        spy=spy,
        same=lambda a, b: a == b,
    )


STREAMS = {"tag": _tagging, "parse": _parsing, "answer": _qa, "recognize": _speech}


@pytest.fixture(scope="module", params=list(STREAMS))
def streamed(request):
    return STREAMS[request.param]()


def test_results_come_in_input_order_as_run_one_at_a_time(streamed):
    results = list(streamed.run(iter(streamed.items), streamed.budget, 4))
    assert len(results) == len(streamed.items)
    for item, result in zip(streamed.items, results, strict=True):
        assert streamed.same(result, streamed.single(item))


def test_the_first_result_comes_before_the_input_is_exhausted(streamed):
    consumed = []

    def source():
        for item in streamed.items:
            consumed.append(item)
            yield item

    results = streamed.run(source(), streamed.budget, 4)
    next(results)
    assert len(consumed) == 4 < len(streamed.items)


def test_no_batch_pads_beyond_the_budget_but_a_lone_long_item(streamed, monkeypatch):
    sizes = streamed.spy(monkeypatch)
    list(streamed.run(iter(streamed.items), streamed.budget, 8))
    assert sum(count for count, _ in sizes) == len(streamed.items)
    assert any(padded > streamed.budget for _, padded in sizes)  # the long item, alone
    for count, padded in sizes:
        assert padded <= streamed.budget or count == 1, sizes
    assert len(sizes) < len(streamed.items)  # short items share batches


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tagger_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tagger") / "crf.pt"
    _tiny_tagger()[0].save(path)
    return path


@pytest.fixture(scope="module")
def reader_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("reader") / "memory.pt"
    _tiny_reader()[0].save(path)
    return path


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory):
    """Files that are no model: random bytes, an empty file, a folder, a missing path."""
    folder = tmp_path_factory.mktemp("bad")
    random_bytes = folder / "random.pt"
    random_bytes.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    empty = folder / "empty.pt"
    empty.write_bytes(b"")
    return {"random bytes": random_bytes, "empty": empty, "folder": folder, "missing": folder / "x"}


def _one_error_line(capsys, *names: str) -> str:
    """The single line the command wrote to standard error, checked to name ``names``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hybrid: error: "), err
    for name in names:
        assert name in lines[0], err
    return lines[0]


def test_tag_prints_all_k_best_taggings_ranked(tagger_file, capsys):
    text = "show me flights from boston to denver"
    assert cli.main(["tag", "--model", str(tagger_file), "--json", "--k", "3", text]) == 0
    nbest = json.loads(capsys.readouterr().out)["nbest"]
    assert len(nbest) == 3
    assert cli.main(["tag", "--model", str(tagger_file), "--k", "3", text]) == 0
    printed = capsys.readouterr().out.splitlines()
    words = text.split()
    for rank, tagging in enumerate(nbest, start=1):
        tagged = " ".join(f"{w}/{t}" for w, t in zip(words, tagging["tags"], strict=True))
        assert f"  {rank}. ({tagging['score']:.2f}) {tagged}" in printed


@pytest.mark.parametrize(
    ("command", "option", "value", "expected"),
    [
        ("train-tagger", "--epochs", "0", "a positive integer"),
        ("train-tagger", "--batch-size", "0", "a positive integer"),
        ("train-tagger", "--hidden", "0", "a positive integer"),
        ("train-tagger", "--word-dim", "0", "a positive integer"),
        ("train-tagger", "--layers", "0", "a positive integer"),
        ("train-tagger", "--patience", "-1", "a non-negative integer"),
        ("train-tagger", "--lm-words", "0", "a positive integer"),
        ("train-tagger", "--limit", "-5", "a positive integer"),
        ("train-tagger", "--seeds", "-1", "a non-negative integer"),
        ("train-tagger", "--lr", "0", "a positive number"),
        ("train-tagger", "--lr", "nan", "a positive number"),
        ("train-tagger", "--dropout", "1", "a probability in [0, 1)"),
        ("train-tagger", "--word-dropout", "-0.1", "a probability in [0, 1)"),
        ("train-tagger", "--average", "1", "a probability in [0, 1)"),
        ("train-tagger", "--lm-weight", "-1", "a non-negative number"),
        ("train-tagger", "--intent-weight", "inf", "a non-negative number"),
        ("tag --model m.pt", "--k", "0", "an integer from 1 to 100"),
        ("train-qa", "--epochs", "0", "a positive integer"),
        ("train-qa", "--lr", "0", "a positive number"),
        ("train-qa", "--hops", "0", "a positive integer"),
        ("train-qa", "--dim", "0", "a positive integer"),
        ("train-qa", "--noise", "1", "a probability in [0, 1)"),
        ("train-qa", "--seeds", "-1", "a non-negative integer"),
        ("train-qa", "--tasks", "21", "a bAbI task number from 1 to 20"),
        ("train-asr", "--epochs", "0", "a positive integer"),
        ("train-asr", "--threads", "0", "a positive integer"),
        ("train-asr", "--speed-factors", "0", "a positive number"),
        ("train-parser", "--epochs", "0", "a positive integer"),
        ("train-parser", "--threads", "0", "a positive integer"),
        ("parse --model m.pt", "--beam", "0", "a positive integer"),
    ],
)
def test_out_of_range_options_are_refused_by_argparse(command, option, value, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([*command.split(), option, value])
    assert exit_.value.code == 2
    name = command.split()[0]
    message = f"hybrid {name}: error: argument {option}: expected {expected}, got {value}"
    assert message in capsys.readouterr().err


# The loaders of parse and recognize named a missing file or a folder before issue 21.
NO_MODEL = [
    (command, bad)
    for command in ("tag", "answer", "parse", "recognize")
    for bad in ("random bytes", "empty", "folder", "missing")
    if command in ("tag", "answer") or bad in ("random bytes", "empty")
]


@pytest.mark.parametrize(("command", "bad"), NO_MODEL)
def test_a_file_that_is_no_model_is_one_error_line(command, bad, bad_models, capsys, tmp_path):
    path = str(bad_models[bad])
    inputs = {"tag": ["a b"], "answer": [], "parse": ["a b"], "recognize": [str(tmp_path)]}
    assert cli.main([command, "--model", path, *inputs[command]]) == 2
    _one_error_line(capsys, path)


@pytest.mark.parametrize(
    "error",
    [
        pickle.UnpicklingError("invalid load key, '\\x9c'."),
        EOFError(),
        RuntimeError("PytorchStreamReader failed reading zip archive\nmore detail"),
    ],
)
def test_what_torch_load_raises_is_one_error_line_as_a_last_resort(error, monkeypatch, capsys):
    def load(path):
        raise error

    monkeypatch.setattr(Tagger, "load", staticmethod(load))
    assert cli.main(["tag", "--model", "some/model.pt", "a b"]) == 2
    _one_error_line(capsys, "some/model.pt")


@pytest.mark.parametrize(
    ("command", "folder"),
    [
        ("train-tagger --corpus atis", "atis"),
        ("train-tagger --corpus conll2000", "conll2000"),
        ("train-qa --corpus babi --tasks 1", "babi/en"),
    ],
)
def test_a_corpus_folder_without_its_files_is_one_error_line(command, folder, capsys, tmp_path):
    (tmp_path / folder).mkdir(parents=True)
    assert cli.main([*command.split(), "--data", str(tmp_path), "--runs", str(tmp_path)]) == 2
    _one_error_line(capsys, str(tmp_path / folder))


def test_undecodable_input_is_one_error_line(tagger_file, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"a b\n\xff\xfe\n"), "utf-8"))
    assert cli.main(["tag", "--model", str(tagger_file)]) == 2
    _one_error_line(capsys, "standard input, line 2", "UTF-8")


def test_the_console_command_ends_a_bad_model_in_one_line(bad_models):
    model = str(bad_models["random bytes"])
    run = subprocess.run(
        [sys.executable, "-m", "hybrid.cli", "tag", "--model", model, "a b"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("hybrid: error: ") and len(run.stderr.splitlines()) == 1
    assert model in run.stderr


def test_an_interrupt_exits_130_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tagging_commands, "_tag", interrupted)
    assert cli.main(["tag", "--model", "m.pt", "a"]) == 130
    assert capsys.readouterr().err.strip() == "hybrid: interrupted"

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(tagging_commands, "_tag", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["tag", "--model", "m.pt", "a"])


class _Counted:
    """Standard input that counts the lines read and the lines read at the first output."""

    def __init__(self, lines: list[str]):
        self.lines, self.read, self.at_first_output = lines, 0, None

    def __iter__(self):
        for line in self.lines:
            self.read += 1
            yield line

    def write(self, text: str) -> int:
        if self.at_first_output is None:
            self.at_first_output = self.read
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_tag_streams_its_output_before_reading_all_input(tagger_file, monkeypatch, capsys):
    lines = [text + "\n" for text in _texts(2500)]
    counted = _Counted(lines)
    monkeypatch.setattr("sys.stdin", counted)
    monkeypatch.setattr("sys.stdout", counted)
    assert cli.main(["tag", "--model", str(tagger_file)]) == 0
    assert counted.read == len(lines)
    assert counted.at_first_output is not None and counted.at_first_output < len(lines)


def test_answer_reads_stories_separated_by_blank_lines(reader_file, monkeypatch, capsys):
    stories = [
        ("mary went to the office", "where is mary?"),
        ("john went to the kitchen\njohn moved to the garden", "where is john?"),
    ]
    text = "\n\n".join(f"{story}\n{question}" for story, question in stories) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cli.main(["answer", "--model", str(reader_file)]) == 0
    answers = [line for line in capsys.readouterr().out.splitlines() if line.startswith("answer")]
    reader = Reader.load(reader_file)
    expected = [answer(reader, reader.vocabulary, s.split("\n"), q) for s, q in stories]
    assert answers == [f"answer: {e['answer']} ({e['confidence']:.2f})" for e in expected]


# === Issue 21, defects an independent tester found after the first round ======================
# Each test below failed at the commit before its fix (59f0d6a / 00f0774).

# --- standard input is UTF-8 whatever the locale: the bad line named, a byte-order mark dropped


def _run_hybrid(arguments: list[str], stdin: bytes, env: dict[str, str]):
    """``python -m hybrid.cli arguments`` in a fresh interpreter (its own locale and stdin)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONIOENCODING"} | env
    return subprocess.run(
        [sys.executable, "-m", "hybrid.cli", *arguments],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("bad_line", [2, 5000])
@pytest.mark.parametrize("env", [{"LC_ALL": "C"}, {"PYTHONIOENCODING": "utf-8"}])
def test_stdin_that_is_not_utf8_names_its_line_under_any_locale(tagger_file, env, bad_line):
    # under the C locale Python reads stdin with surrogateescape: the byte went into a word;
    # under strict UTF-8 the line counted those already read, in chunks (4096, not 5000)
    lines = [b"show me flights"] * (bad_line - 1) + [b"to bost\xe9n", b"from denver"]
    run = _run_hybrid(["tag", "--model", str(tagger_file)], b"\n".join(lines) + b"\n", env)
    assert run.returncode == 2, run.stdout[-300:]
    err = run.stderr.decode()
    assert err.startswith("hybrid: error: ") and len(err.splitlines()) == 1, err
    assert f"standard input, line {bad_line}: bytes b'\\xe9' are not UTF-8" in err


def test_a_byte_order_mark_on_stdin_is_dropped(tagger_file, monkeypatch, capsys):
    text = "show me flights\r\nto boston\n"
    results = []
    for data in (text.encode(), codecs.BOM_UTF8 + text.encode()):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), "utf-8"))
        assert cli.main(["tag", "--json", "--model", str(tagger_file)]) == 0
        results.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    plain, marked = results
    assert marked == plain
    assert [r["words"] for r in marked] == [["show", "me", "flights"], ["to", "boston"]]


@pytest.mark.parametrize(
    ("data", "line"), [(b"a b\n\xff\n", 2), (b"a\r\nb\rc\n\n\xc3(\n", 5), (b"\xef\xbb\xbf\xe9", 1)]
)
def test_stdin_and_files_decode_through_one_function(data, line, tmp_path):
    from hybrid.files import decode_lines, read_lines

    path = tmp_path / "text.txt"
    path.write_bytes(data)
    with pytest.raises(ValueError) as from_file:
        read_lines(path)
    with pytest.raises(ValueError) as from_stream:
        list(decode_lines(io.BytesIO(data), "standard input"))
    assert str(from_file.value) == str(from_stream.value).replace("standard input", str(path))
    assert str(from_stream.value).startswith(f"standard input, line {line}: bytes ")


# --- a very long word: the character tensor stays bounded ----------------------------------------


def test_a_very_long_word_does_not_widen_the_character_tensor(monkeypatch):
    from hybrid.tagging.text import MAX_WORD_CHARS, word_characters

    model, vocabulary = _tiny_tagger()
    word = "bost" + "o" * 50_000 + "n"
    texts = _texts(20)
    texts[7] = f"flights to {word} on monday"
    widths = []
    predict = model.predict

    def recorded(batch, k=None):
        widths.append(batch.chars.shape[-1])
        return predict(batch, k)

    monkeypatch.setattr(model, "predict", recorded)
    results = list(tag_stream(model, vocabulary, iter(texts), budget=30))
    assert max(widths) <= MAX_WORD_CHARS
    monkeypatch.undo()
    # the other sentences are tagged as when alone; the long word as its prefix and suffix
    for i, (text, result) in enumerate(zip(texts, results, strict=True)):
        if i != 7:
            assert _close(result, tag_texts(model, vocabulary, [text])[0])
    spelled = texts[7].replace(word, word_characters(word))
    assert len(word_characters(word)) == MAX_WORD_CHARS
    assert results[7]["tags"] == tag_texts(model, vocabulary, [spelled])[0]["tags"]


def test_training_batches_read_real_words_whole_and_a_long_one_capped():
    from hybrid.tagging.text import MAX_WORD_CHARS, word_characters

    _, vocabulary = _tiny_tagger()
    sentences = airline_splits(train=30, valid=1, test=1, seed=4)["train"]
    long = Sentence(("to", "x" * 1000 + "boston"), ("O", "B-toloc.city_name"))
    batch = vocabulary.batch([*sentences, long], with_labels=False)
    assert batch.chars.shape[-1] == MAX_WORD_CHARS
    # every real word whole, the long one as its first and last MAX_WORD_CHARS // 2
    spellings = [list(s.words) for s in sentences] + [["to", "x" * (MAX_WORD_CHARS - 6) + "boston"]]
    for b, words in enumerate(spellings):
        for t, spelled in enumerate(words):
            chars = batch.chars[b, t]
            assert chars[: len(spelled)].tolist() == vocabulary.chars.encode(list(spelled))
            assert not chars[len(spelled) :].any()
    assert word_characters(long.words[1]) == spellings[-1][1]


# --- options that would exhaust memory or silently mean something else ---------------------------


@pytest.mark.parametrize(
    ("command", "option", "value", "expected"),
    [
        ("tag --model m.pt", "--k", "101", "an integer from 1 to 100"),
        ("tag --model m.pt", "--k", "1000000000", "an integer from 1 to 100"),
        ("train-tagger", "--name", "", "a run folder name"),
        ("train-tagger", "--name", "  ", "a run folder name"),
        ("train-qa", "--name", "", "a run folder name"),
        ("train-asr", "--name", "", "a run folder name"),
        ("train-parser", "--name", " ", "a run folder name"),
    ],
)
def test_options_out_of_their_range_are_refused_naming_them(
    command, option, value, expected, capsys
):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([*command.split(), option, value])
    assert exit_.value.code == 2
    message = f"hybrid {command.split()[0]}: error: argument {option}: expected {expected}, got"
    assert message in capsys.readouterr().err


def test_the_largest_k_and_a_subfolder_name_are_accepted():
    assert cli.build_parser().parse_args(["tag", "--model", "m.pt", "--k", "100"]).k == 100
    assert cli.build_parser().parse_args(["train-tagger", "--name", "a/b"]).name == "a/b"


@pytest.mark.parametrize("device", ["meta", "gpu", "xpu"])
def test_a_device_that_cannot_train_is_refused_by_argparse(device, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["train-tagger", "--device", device])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --device: device: expected a torch device that can train" in err
    assert f"got '{device}'" in err


def test_run_comparison_refuses_a_device_that_cannot_train(monkeypatch, tmp_path):
    splits = airline_splits(train=8, valid=4, test=4, seed=3)
    with pytest.raises(ValueError, match=r"device: expected .* got 'meta'"):
        run_comparison(splits, tmp_path, ["crf"], [0], progress=False, device="meta")
    assert not tmp_path.joinpath("results.json").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    from hybrid.training import resolve_device

    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"'cuda:1' asked for, but only 1 CUDA device"):
        resolve_device("cuda:1")


# --- a resume with another --refit is refused, naming refit ----------------------------------


@pytest.mark.parametrize("interrupted", ["crf", "softmax"])
def test_a_resume_with_another_refit_is_refused_naming_it(interrupted, monkeypatch, tmp_path):
    from hybrid.files import save_atomic

    for figure in ("plot_curves", "plot_label_f1", "plot_confusion"):
        monkeypatch.setattr(f"hybrid.tagging.experiment.{figure}", lambda *_, **__: None)
    splits = airline_splits(train=24, valid=24, test=12, seed=3)
    tagger = TaggerConfig(word_dim=8, hidden=8, char_dim=4, char_out=4)
    training = TaggerTrainConfig(epochs=2, batch_size=12)

    def run(refit: bool) -> dict:
        heads, quiet = ["crf", "softmax"], {"progress": False, "log": lambda _: None}
        return run_comparison(splits, tmp_path, heads, [0], tagger, training, refit=refit, **quiet)

    def interrupt_after_one_epoch(state, path):  # Ctrl-C once the first checkpoint is written
        save_atomic(state, path)
        if Path(path).name == f"{interrupted}-seed0.pt":
            raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr("hybrid.training.engine.save_atomic", interrupt_after_one_epoch)
        with pytest.raises(KeyboardInterrupt):
            run(refit=False)
    # the run folder, claimed before anything trained
    claimed = r"results\.json was trained with other settings \(settings\.refit: False there"
    with pytest.raises(ValueError, match=claimed):
        run(refit=True)
    # without it: a checkpoint (interrupted crf) or a finished run (crf, when softmax was
    # interrupted)
    (tmp_path / "results.json").unlink()
    refused = r"crf-seed0\.(pt|json) was trained with other settings \((run\.)?refit: False there"
    with pytest.raises(ValueError, match=refused):
        run(refit=True)
    (tmp_path / "results.json").unlink()  # claimed by the refused run, for refit=True
    results = run(refit=False)  # the same settings resume
    tested = [(r["system"], r["epochs"]) for r in results["rows"] if r["split"] == "test"]
    assert tested == [("crf", 2), ("softmax", 2)]


# --- held-out speakers who are not in the corpus --------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--tasks", "speakers", "--speakers", "nobody"], ["'nobody'", "spk0", "spk1", "spk2"]),
        (["--tasks", "isolated", "--speakers", "spk0"], ["'speakers' task", "isolated"]),
    ],
)
def test_held_out_speakers_that_choose_no_fold_are_refused(
    options, named, monkeypatch, capsys, tmp_path
):
    def train_systems(*_, **__):
        raise AssertionError("no system trains for a refused choice of speakers")

    monkeypatch.setattr("hybrid.speech.experiment.train_systems", train_systems)
    command = ["train-asr", "--systems", "gmm", "--runs", str(tmp_path), "--quiet", *options]
    assert cli.main(command) == 2
    _one_error_line(capsys, "folds (--speakers)", *named)
    assert not any(tmp_path.iterdir())  # refused before the run folder is made


# --- corpus files without sentences, and a CoNLL-2000 train.txt too small to split -------


@pytest.mark.parametrize("text", ["", "\n  \n\n", "-DOCSTART- -X- O\n\n"])
def test_a_conll_file_without_sentences_is_refused_naming_it(text, capsys, tmp_path):
    folder = tmp_path / "conll2000"
    folder.mkdir()
    (folder / "train.txt").write_text(text)
    (folder / "test.txt").write_text("He PRP B-NP\n")
    command = ["train-tagger", "--corpus", "conll2000", "--data", str(tmp_path)]
    assert cli.main([*command, "--runs", str(tmp_path)]) == 2
    _one_error_line(capsys, f"{folder / 'train.txt'}: no sentence")


def test_an_atis_split_without_utterances_is_refused_naming_it(tmp_path):
    split = tmp_path / "train"
    split.mkdir()
    for name in ("seq.in", "seq.out", "label"):
        (split / name).write_text("\n \n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(split / 'seq.in'))}: no utterance"):
        read_atis(tmp_path, "train")


def test_a_conll_train_file_of_no_more_than_the_dev_split_is_refused(capsys, tmp_path):
    folder = tmp_path / "conll2000"
    folder.mkdir()
    (folder / "train.txt").write_text("He PRP B-NP\nran VBD B-VP\n\nShe PRP B-NP\n")
    (folder / "test.txt").write_text("He PRP B-NP\n")
    command = ["train-tagger", "--corpus", "conll2000", "--data", str(tmp_path)]
    assert cli.main([*command, "--runs", str(tmp_path)]) == 2
    _one_error_line(capsys, f"{folder / 'train.txt'}: 2 sentences", "more than 1000")


# --- a person typing at a terminal gets each answer as the line is typed ----------------------


class _Terminal(_Counted):
    """A terminal as standard input (and output): the lines come one at a time as bytes, as
    a person types them; the lines read by the first output are counted."""

    def isatty(self) -> bool:
        return True

    @property
    def buffer(self) -> Iterator[bytes]:
        return (line.encode() for line in self)


@pytest.fixture(scope="module")
def parser_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("parser") / "attention.pt"
    torch.manual_seed(0)
    trees = synthetic_trees(30, seed=3)
    base = default_settings("synthetic")
    settings = type(base)(**{**vars(base), "model": {**base.model, "hidden": 8, "word_dim": 8}})
    new_parser(ParsingVocabulary.build(trees), settings, False, "attention").save(path)
    return path


@pytest.mark.parametrize(
    ("command", "lines", "first"),
    [
        ("tag", [f"{text}\n" for text in _texts(30)], 1),
        ("parse --decoder greedy", [f"{text}\n" for text in _texts(30)], 1),
        ("answer", ["mary went to the office\n", "where is mary?\n", "\n"] * 10, 3),
    ],
)
def test_a_terminal_gets_each_answer_as_its_line_is_typed(
    command, lines, first, tagger_file, parser_file, reader_file, monkeypatch
):
    model = {"tag": tagger_file, "parse": parser_file, "answer": reader_file}[command.split()[0]]
    terminal = _Terminal(lines)
    monkeypatch.setattr("sys.stdin", terminal)
    monkeypatch.setattr("sys.stdout", terminal)
    assert cli.main([*command.split(), "--model", str(model)]) == 0
    assert terminal.read == len(lines)
    assert terminal.at_first_output == first
