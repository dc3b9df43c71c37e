"""The ``hybrid`` command: argument parsing only; the work happens in the library."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from .batching import WINDOW
from .files import decode_lines
from .nn.memory import TYING
from .parsing.experiment import DECODERS, MODELS
from .qa.model import KINDS, ReaderConfig
from .speech.datasets import PRESETS as SPEECH_PRESETS
from .speech.experiment import TASKS
from .speech.systems import SYSTEMS
from .tagging.datasets import CORPORA as TAGGING_CORPORA
from .tagging.datasets import FORMATS as TAGGING_FORMATS
from .tagging.model import HEADS, INTENT_POOLING, TaggerConfig
from .tagging.train import TaggerTrainConfig

# Sizes per corpus where the command line leaves them out: the embedded synthetic corpus runs
# the whole comparison in about a minute on two cores; the real ones train to convergence.
# CoNLL-2000 adds the auxiliary next/previous-word loss (+0.45 test F1 for the CRF, 3 seeds);
# ATIS adds it too and weighs the intent loss 3x (CRF intent accuracy 96.5 -> 97.2, 3 seeds).
_REAL = {"hidden": 200, "word_dim": 100, "batch_size": 32, "lr": 1e-3}
CORPUS_DEFAULTS = {
    "synthetic": {
        "epochs": 8,
        "hidden": 64,
        "word_dim": 50,
        "batch_size": 16,
        "lr": 5e-3,
    },
    "atis": {**_REAL, "epochs": 30, "lm_weight": 0.1, "lm_words": 2000, "intent_weight": 3.0},
    "conll2000": {**_REAL, "epochs": 40, "lm_weight": 0.1, "lm_words": 2000},
    "files": {**_REAL, "epochs": 30},  # the user's own files (--train)
}


# Main-schedule epochs per reader on the embedded synthetic stories (about a minute in all).
SYNTHETIC_EPOCHS = {"memory": 40, "attentive": 40, "lstm": 40}

Value = TypeVar("Value")


def _bounded(
    convert: Callable[[str], float], accept: Callable[[float], bool], expected: str
) -> Callable[[str], float]:
    """An argparse ``type=``: ``convert`` the text and keep values that ``accept``; otherwise
    argparse prints ``argument --x: expected <expected>, got <text>`` and exits with 2."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}") from None
        if not accept(value):  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected
    return parse


POSITIVE_INT = _bounded(int, lambda v: v >= 1, "a positive integer")
NON_NEGATIVE_INT = _bounded(int, lambda v: v >= 0, "a non-negative integer")
POSITIVE_FLOAT = _bounded(float, lambda v: 0 < v < math.inf, "a positive number")
NON_NEGATIVE_FLOAT = _bounded(float, lambda v: 0 <= v < math.inf, "a non-negative number")
PROBABILITY = _bounded(float, lambda v: 0 <= v < 1, "a probability in [0, 1)")
BABI_TASK = _bounded(int, lambda v: 1 <= v <= 20, "a bAbI task number from 1 to 20")

# Most taggings ``hybrid tag --k`` prints: the k-best decoder holds k x tags x tags scores
# per word, so that k = 100 000 takes gigabytes on a tagger of 120 tags.
MAX_K = 100
K_BEST = _bounded(int, lambda v: 1 <= v <= MAX_K, f"an integer from 1 to {MAX_K}")


def _run_name(text: str) -> str:
    """An argparse ``type=`` for ``--name``: a folder name under ``--runs`` (``a/b`` names a
    subfolder); an empty or blank name, which would silently mean the default, is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a run folder name, got {text!r}")
    return text


def _device(text: str) -> str:
    """An argparse ``type=`` for ``--device``: a device a model can train on (see
    `hybrid.tagging.experiment.resolve_device`), checked before any data is read."""
    from .tagging.experiment import resolve_device

    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _given(value: Value | None, default: Value) -> Value:
    """``value`` where the option was given, else ``default`` (a given 0 stays 0)."""
    return default if value is None else value


def _load(loader: Callable[[Path], Value], path: str) -> Value:
    """``loader(path)``, a last resort behind the loaders' own checks: what ``torch.load``
    raises for a file that is no saved model (random bytes, an empty or truncated file) or
    ``load_state_dict`` for weights of other shapes becomes a ValueError naming the file."""
    try:
        return loader(Path(path))
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"{path}: not a model of this command ({reason})") from error


def _stdin_lines() -> Iterator[str]:
    """The lines of standard input without their line ends, read and decoded one at a time as
    UTF-8 whatever the locale (`hybrid.files.decode_lines`: a byte-order mark dropped, bytes
    that are not UTF-8 refused naming ``standard input`` and the line). A standard input
    replaced by a text stream with no bytes beneath it (``io.StringIO``, IDLE's) is read as
    the text it holds."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:
        return (line.removesuffix("\n").removesuffix("\r") for line in sys.stdin)
    return decode_lines(binary, "standard input")


def _window(arguments: list[str]) -> int:
    """How many inputs are read before any is answered: one at a time when they come from a
    terminal, where a person waits for each answer; else `hybrid.batching.WINDOW`, sorted
    together into batches."""
    return 1 if not arguments and sys.stdin.isatty() else WINDOW


def _inputs(arguments: list[str]) -> Iterator[tuple[str, str]]:
    """``(where, text)`` of each input: the command-line ``arguments`` or, without any, the
    non-blank lines of standard input (``where`` names the argument or the line)."""
    if arguments:
        yield from ((f"argument {i}", text) for i, text in enumerate(arguments, start=1))
        return
    for number, line in enumerate(_stdin_lines(), start=1):
        if line.strip():
            yield f"standard input, line {number}", line.strip()


def _nonempty(results: Iterable[Value], what: str) -> Iterator[Value]:
    """``results``, lazily; an input that held none is refused once it is read."""
    empty = True
    for result in results:
        empty = False
        yield result
    if empty:
        raise ValueError(f"no input: expected {what}")


def _train_tagger(args: argparse.Namespace) -> int:
    from .tagging.datasets import SYNTHETIC_NOTICE, load_splits, load_tagging, preset_files
    from .tagging.experiment import run_comparison
    from .training.distributed import init_from_environment, is_main

    init_from_environment()  # under torchrun: one process group over all ranks
    corpus, scheme, files = args.corpus, TaggerConfig.scheme, None
    if args.train is not None:
        data = load_tagging(_tagging_files(args))
        splits, scheme, files, corpus = data.splits, data.scheme, data.files, "files"
        if is_main():
            print("\n".join(data.notes))
    elif corpus in (None, "synthetic"):
        corpus, splits = "synthetic", load_splits("synthetic")
        if is_main():
            print(SYNTHETIC_NOTICE)
    else:
        data = load_tagging(preset_files(corpus, args.data))
        splits, scheme, files = data.splits, data.scheme, data.files
        if is_main():
            print("\n".join(data.notes))
    if args.limit is not None:
        splits = {name: sentences[: args.limit] for name, sentences in splits.items()}
    defaults = CORPUS_DEFAULTS[corpus]
    tagger = TaggerConfig(
        scheme=scheme,
        hidden=_given(args.hidden, defaults["hidden"]),
        layers=args.layers,
        rnn=args.rnn,
        dropout=args.dropout,
        word_dim=_given(args.word_dim, defaults["word_dim"]),
        char_encoder=None if args.char_encoder == "none" else args.char_encoder,
        word_dropout=args.word_dropout,
        intent_pooling=args.intent_pooling,
        intent_weight=_given(
            args.intent_weight, defaults.get("intent_weight", TaggerConfig.intent_weight)
        ),
        lm_weight=_given(args.lm_weight, defaults.get("lm_weight", 0.0)),
        lm_words=_given(args.lm_words, defaults.get("lm_words", TaggerConfig.lm_words)),
    )
    training = TaggerTrainConfig(
        epochs=_given(args.epochs, defaults["epochs"]),
        batch_size=_given(args.batch_size, defaults["batch_size"]),
        lr=_given(args.lr, defaults["lr"]),
        patience=args.patience,
        average=args.average,
    )
    name = _files_name(args.train) if args.train else corpus
    run_dir = Path(args.runs) / (args.name or name)
    results = run_comparison(
        splits,
        run_dir,
        args.heads,
        args.seeds,
        tagger,
        training,
        corpus=name,
        files=files,
        progress=not args.quiet,
        device=args.device,
        refit=args.refit,
    )
    if not is_main():
        return 0
    print((run_dir / "results.md").read_text())
    print(f"results, models and plots in {run_dir}")
    return 0 if results["runs"] else 1


def _tagging_files(args: argparse.Namespace):
    """The `TaggingFiles` of ``--train`` and the reading options (``--corpus`` refused: a
    preset names its own files)."""
    from .tagging.datasets import TaggingFiles

    _one_source(args)
    return TaggingFiles(
        args.train,
        args.dev or (),
        args.test or (),
        format=args.format,
        word_column=args.word_column,
        tag_column=args.tag_column,
        feature_column=args.feature_column,
        comment=args.comment,
        tag_field=args.tag_field,
        feature_field=args.feature_field,
        scheme=args.scheme,
        dev_last=args.dev_last,
        held_out=args.held_out,
    )


def _own_data(
    command: argparse.ArgumentParser, what: str, dev: bool, held_out: str | None = None
) -> argparse._ArgumentGroup:
    """The options that give a command the user's own files: ``--train`` and ``--test``
    (and ``--dev`` with the fraction held out of train for a split not given, or what
    ``held_out`` says, where 0 is allowed); the group, for a command's reading options."""
    group = command.add_argument_group("your own data", what)
    group.add_argument("--train", nargs="+", metavar="FILE", help="training files")
    if dev:
        group.add_argument(
            "--dev", nargs="+", metavar="FILE", help="development files (default: from train)"
        )
        group.add_argument(
            "--held-out",
            type=_bounded(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
            if held_out is None
            else _bounded(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
            default=0.1 if held_out is None else None,
            help=held_out
            or "fraction of train held out for a split not given (default 0.1, seed 0)",
        )
    default = " (default: from train)" if dev else ""
    group.add_argument("--test", nargs="+", metavar="FILE", help=f"test files{default}")
    return group


def _one_source(args: argparse.Namespace) -> None:
    """Refuse ``--corpus`` beside ``--train``: both name the data."""
    if args.corpus is not None:
        raise ValueError(f"--corpus {args.corpus} and --train both name the data: give one of them")


def _files_name(paths: list[str]) -> str:
    """A run folder name from the first training path: its name without suffix, or the
    folder above for a generic one (``ner`` for ``data/ner/train.conll``), or ``data``."""
    first = Path(paths[0]).expanduser().absolute()
    stem = first.stem.replace("*", "")
    if stem.lower() in ("", "train", "training", "manifest"):
        return first.parent.name or "data"
    return stem


def _tag(args: argparse.Namespace) -> int:
    from .tagging.inference import tag_stream
    from .tagging.train import load_tagger

    model, vocabulary = _load(load_tagger, args.model)
    texts = (text for _, text in _inputs(args.text))
    results = tag_stream(model, vocabulary, texts, args.k, window=_window(args.text))
    for result in _nonempty(results, "sentences, one per line on standard input"):
        if args.json:
            print(json.dumps(result))
            continue
        print(_tagged(result["words"], result["tags"]))
        for span in result["spans"]:
            print(f"  {span['label']}: {span['text']}")
        if "intent" in result:
            print(f"  intent: {result['intent']} ({result['intent_confidence']:.2f})")
        for rank, tagging in enumerate(result.get("nbest", ()), start=1):
            print(f"  {rank}. ({tagging['score']:.2f}) {_tagged(result['words'], tagging['tags'])}")
    return 0


def _tagged(words: list[str], tags: list[str]) -> str:
    """``word/TAG`` tokens separated by spaces."""
    return " ".join(f"{w}/{t}" for w, t in zip(words, tags, strict=True))


def _train_qa(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .corpora import checksums, expand_paths
    from .files import data_root
    from .qa.babi import load_files, load_tasks
    from .qa.experiment import default_settings, run_qa
    from .qa.synthetic import SYNTHETIC_NOTICE, generate_stories

    synthetic, data = args.train is None and args.corpus in (None, "synthetic"), None
    if args.train is not None:
        _one_source(args)
        if args.test is None:
            raise ValueError("--test: expected the bAbI test files that go with --train")
        tasks = load_files(args.train, args.test)
        data = {
            split: checksums(expand_paths(getattr(args, split), f"--{split}"))
            for split in ("train", "test")
        }
    elif synthetic:
        print(SYNTHETIC_NOTICE)
        tasks = {
            1: {"train": generate_stories(1000, seed=0), "test": generate_stories(500, seed=1)}
        }
    else:
        root = data_root(args.data)
        if root is None:
            raise ValueError("no data folder: pass --data or set HYBRID_DATA")
        tasks = load_tasks(root / "babi" / "en", args.tasks)
    settings = {}
    for kind in args.models:
        reader, training = default_settings(kind, args.joint)
        epochs = _given(args.epochs, SYNTHETIC_EPOCHS[kind] if synthetic else training.epochs)
        reader = replace(
            reader,
            hops=args.hops,
            tying=args.tying,
            noise=args.noise,
            dim=_given(args.dim, reader.dim),
            position=not args.no_position,
            temporal=not args.no_temporal,
            attend_empty=not args.no_empty_slots,
        )
        training = replace(training, epochs=epochs)
        if kind == "memory" and args.no_linear_start:  # the paper's rate without it
            training = replace(training, linear_start=False, lr=0.01)
        if args.optimizer is not None:
            training = replace(training, optimizer=args.optimizer)
        if args.lr is not None:
            training = replace(training, lr=args.lr)
        settings[kind] = (reader, training)
    seeds = _given(args.seeds, [0] if synthetic else [0, 1, 2, 3, 4])
    default_name = "babi-synthetic" if synthetic else "babi-joint" if args.joint else "babi"
    if data:
        default_name = f"qa-{_files_name(args.train)}"
    run_dir = Path(args.runs) / (args.name or default_name)
    run_qa(
        tasks,
        run_dir,
        args.models,
        seeds,
        joint=args.joint,
        settings=settings,
        corpus="synthetic task-1 stories"
        if synthetic
        else default_name.removeprefix("qa-")
        if data
        else "bAbI 1k (en)",
        data=data,
        progress=not args.quiet,
        log=print if args.verbose else lambda _: None,
    )
    print((run_dir / "results.md").read_text())
    print(f"results, models and plots in {run_dir}")
    return 0


def _answer(args: argparse.Namespace) -> int:
    from .qa.inference import answer_stories, read_stories
    from .qa.train import load_reader

    reader, vocabulary = _load(load_reader, args.model)
    stories = read_stories(_stdin_lines())
    results = answer_stories(reader, vocabulary, stories, window=_window([]))
    for result in _nonempty(results, "a story on standard input"):
        print(f"answer: {result['answer']} ({result['confidence']:.2f})")
        for hop, (sentence, weight) in enumerate(result["attended"], start=1):
            print(f"  hop {hop}: {sentence} ({weight:.2f})")
    return 0


def _train_asr(args: argparse.Namespace) -> int:
    import torch

    from .speech.experiment import SYNTHETIC_NOTICE, default_settings, load_corpus, run_speech

    torch.set_num_threads(args.threads)
    options = {"folds": args.speakers, "progress": not args.quiet}
    if args.train is not None or args.corpus in SPEECH_PRESETS:
        data = _speech_files(args)
        print("\n".join(data.notes))
        corpus = args.corpus or _files_name(args.train)
        train, test, words = data.train, data.test, data.words
        options |= {"dev": data.dev, "grammar": data.grammar, "data": data.files}
        tasks = _given(args.tasks, ("isolated",) if data.grammar == "isolated" else ("continuous",))
        preset = args.corpus or "files"  # a preset's defaults, else those of any corpus by path
        settings = default_settings(preset, args.epochs, args.speed_factors, args.spec_augment)
    else:
        corpus = args.corpus or "synthetic"
        named = [o for o in _SPEECH_FILE_OPTIONS if _option(args, o) is not None]
        given = [f"--{o.replace('_', '-')}" for o in named]
        if given:
            raise ValueError(f"{', '.join(given)}: read a corpus by path; give --train too")
        train, test, words = load_corpus(corpus, args.data)
        if corpus == "synthetic":
            print(SYNTHETIC_NOTICE)
        tasks = _given(args.tasks, ("isolated", "strings") if corpus == "synthetic" else None)
        settings = default_settings(corpus, args.epochs, args.speed_factors, args.spec_augment)
    run_dir = Path(args.runs) / (args.name or f"asr-{corpus}")
    run_speech(
        train,
        test,
        run_dir,
        tasks=tasks,
        systems=args.systems,
        settings=settings,
        corpus=corpus,
        words=words,
        **options,
    )
    print((run_dir / "results.md").read_text())
    print(f"results, models and plots in {run_dir}")
    return 0


def _speech_files(args: argparse.Namespace):
    """The speech corpus that ``train-asr``'s own-data options name (over its preset's files
    for ``--corpus speech_commands``), read."""
    from dataclasses import replace

    from .files import data_root
    from .speech.datasets import SpeechFiles, load_speech, preset_files

    if args.train is None:
        files = preset_files(args.corpus, data_root(args.data))
    else:
        _one_source(args)
        files = SpeechFiles(train=tuple(args.train))
    given = {o: _option(args, o) for o in _SPEECH_FILE_OPTIONS if _option(args, o) is not None}
    if given.get("speaker_column") == "":
        given["speaker_column"] = None  # none: each utterance its own speaker
    return load_speech(replace(files, **given), progress=not args.quiet)


#: train-asr's options that read a corpus by path (not the fsdd and synthetic corpora).
_SPEECH_FILE_OPTIONS = (
    "dev",
    "test",
    "test_speakers",
    "held_out",
    "sample_rate",
    "words",
    "grammar",
    "lm",
    "path_column",
    "transcript_column",
    "speaker_column",
)


def _option(args: argparse.Namespace, name: str):
    """The value of ``--name`` as `SpeechFiles` takes it (a tuple for a list); ``None`` when
    the option was not given."""
    value = getattr(args, name)
    return tuple(value) if isinstance(value, list) else value


def _recognize(args: argparse.Namespace) -> int:
    from .speech.audio import read_audio
    from .speech.recognizer import Recognizer

    recognizer = _load(Recognizer.load, args.model)

    def mono(path: str):
        samples, rate = read_audio(path)
        if samples.shape[0] > 1:
            print(f"{path}: {samples.shape[0]} channels averaged to one", file=sys.stderr)
        return samples.mean(0), rate

    waveforms = (mono(path) for path in args.files)
    for path, words in zip(args.files, recognizer.recognize_stream(waveforms), strict=True):
        print(f"{path}\t{' '.join(words)}")
    return 0


def _train_parser(args: argparse.Namespace) -> int:
    import torch

    from .parsing.experiment import (
        default_settings,
        load_corpus,
        load_treebank_files,
        run_parsing,
        treebank_checksums,
    )
    from .parsing.synthetic import SYNTHETIC_NOTICE

    torch.set_num_threads(args.threads)
    corpus, data = args.corpus or "synthetic", None
    if args.train is not None:
        _one_source(args)
        files = (args.train, args.dev, args.test)
        train, dev, test, notes = load_treebank_files(*files, args.held_out)
        data = treebank_checksums(*files)
        corpus = "files"
        print("\n".join(notes))
    else:
        train, dev, test = load_corpus(corpus, args.data)
    if corpus == "synthetic":
        print(SYNTHETIC_NOTICE)
    if args.train_size is not None:
        if args.train_size < 1:
            raise ValueError(
                f"--train-size must be a positive number of trees, got {args.train_size}"
            )
        train = train[: args.train_size]
    name = f"parse-{_files_name(args.train) if data else corpus}"
    run_dir = Path(args.runs) / (args.name or name)
    run_parsing(
        train,
        dev,
        test,
        run_dir,
        inputs=args.inputs,
        models=args.models,
        settings=default_settings("ptb" if data else corpus, args.epochs, args.seed),
        corpus=name.removeprefix("parse-") if data else corpus,
        progress=not args.quiet,
        data=data,
    )
    print((run_dir / "results.md").read_text())
    print(f"results, models and plots in {run_dir}")
    return 0


def _parse(args: argparse.Namespace) -> int:
    from .parsing.parser import BaseParser

    parser = _load(BaseParser.load, args.model)
    inputs = (
        _words_and_tags(where, text, parser.uses_tags) for where, text in _inputs(args.sentences)
    )
    if parser.uses_tags:  # one reading of the input, two streams in lockstep
        left, right = itertools.tee(inputs)
        sentences, tags = (words for words, _ in left), (row for _, row in right)
    else:
        sentences, tags = (words for words, _ in inputs), None
    window = _window(args.sentences)
    parses = parser.parse_stream(sentences, tags, mode=args.decoder, beam=args.beam, window=window)
    for parse in _nonempty(parses, "sentences, one per line on standard input"):
        print(parse.tree)
    return 0


def _words_and_tags(where: str, text: str, with_tags: bool) -> tuple[list[str], list[str]]:
    """The words of a tokenised sentence and, ``with_tags``, the tags of its ``word/TAG``
    tokens (else an empty list).

    Raises:
        ValueError: naming ``where`` (the argument or line), for a text without words or a
            token without its tag.
    """
    tokens = text.split()
    if not tokens:
        raise ValueError(f"{where}: expected a sentence of at least one word, got {text!r}")
    if not with_tags:
        return tokens, []
    pairs = [token.rpartition("/") for token in tokens]
    bad = [
        token
        for token, (word, sep, tag) in zip(tokens, pairs, strict=True)
        if not (word and sep and tag)
    ]
    if bad:
        raise ValueError(
            f"{where}: this parser reads POS tags: give each word as word/TAG, got {bad[:5]}"
        )
    return [word for word, _, _ in pairs], [tag for _, _, tag in pairs]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hybrid`` command."""
    parser = argparse.ArgumentParser(prog="hybrid", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train-tagger", help="compare softmax, CRF and SSVM heads on one BiLSTM encoder"
    )
    train.add_argument(
        "--corpus",
        choices=TAGGING_CORPORA,
        help="a named corpus instead of --train: synthetic (the default when neither is given: "
        "generated, no download), or a preset: atis, conll2000 (their files under --data)",
    )
    train.add_argument(
        "--data", help="folder holding <corpus>/ (default $HYBRID_DATA or ../shared/data)"
    )
    own = _own_data(
        train, "CoNLL, CoNLL-U, JSON lines or slot folders (docs/own-data.md); files or globs", True
    )
    own.add_argument(
        "--format",
        choices=TAGGING_FORMATS,
        help="conll (columns), conllu, jsonl, slots (an ATIS/SNIPS folder: seq.in, seq.out, "
        "label); default: from the first --train path",
    )
    own.add_argument("--word-column", type=int, default=0, help="conll: column of the words")
    own.add_argument(
        "--tag-column", type=int, default=-1, help="conll: column of the tags (-1: the last)"
    )
    own.add_argument(
        "--feature-column", type=int, help="conll: a column read as a feature (e.g. 1 for POS)"
    )
    own.add_argument("--comment", help="conll: lines starting with this are comments (e.g. '#')")
    own.add_argument(
        "--tag-field", default="upos", help="conllu: upos (default), xpos, ... or misc:KEY"
    )
    own.add_argument("--feature-field", help="conllu: a field read as a feature (e.g. xpos)")
    own.add_argument(
        "--scheme",
        default="auto",
        choices=("auto", "BIO", "BIOES", "IOB1", "none"),
        help="the tags' chunk scheme; auto (default) detects it; none: plain labels (POS ...)",
    )
    own.add_argument(
        "--dev-last",
        type=POSITIVE_INT,
        metavar="N",
        help="without --dev: the last N training sentences are the development split "
        "(CoNLL-2000's convention) instead of a random 10%%",
    )
    train.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    train.add_argument("--seeds", nargs="+", type=NON_NEGATIVE_INT, default=[0, 1, 2])
    train.add_argument("--epochs", type=POSITIVE_INT, help="default depends on the corpus")
    train.add_argument("--patience", type=POSITIVE_INT, default=TaggerTrainConfig.patience)
    train.add_argument(
        "--average",
        type=PROBABILITY,
        default=TaggerTrainConfig.average,
        help="decay of a moving average of the weights, evaluated and kept (0: off)",
    )
    train.add_argument("--batch-size", type=POSITIVE_INT, help="default depends on the corpus")
    train.add_argument("--lr", type=POSITIVE_FLOAT, help="default depends on the corpus")
    train.add_argument("--hidden", type=POSITIVE_INT, help="default depends on the corpus")
    train.add_argument("--layers", type=POSITIVE_INT, default=TaggerConfig.layers)
    train.add_argument("--word-dim", type=POSITIVE_INT, help="default depends on the corpus")
    train.add_argument("--rnn", default=TaggerConfig.rnn, choices=("lstm", "gru", "rnn"))
    train.add_argument("--char-encoder", default="cnn", choices=("cnn", "lstm", "none"))
    train.add_argument("--dropout", type=PROBABILITY, default=TaggerConfig.dropout)
    train.add_argument(
        "--word-dropout",
        type=PROBABILITY,
        default=TaggerConfig.word_dropout,
        help="probability of replacing a training word by <unk>",
    )
    train.add_argument(
        "--intent-pooling", default=TaggerConfig.intent_pooling, choices=INTENT_POOLING
    )
    train.add_argument(
        "--intent-weight",
        type=NON_NEGATIVE_FLOAT,
        help="weight of the intent loss; default depends on the corpus",
    )
    train.add_argument(
        "--lm-weight",
        type=NON_NEGATIVE_FLOAT,
        help="weight of an auxiliary next/previous-word loss (0: off; 1-layer encoders); "
        "default depends on the corpus",
    )
    train.add_argument(
        "--lm-words",
        type=POSITIVE_INT,
        help="words the auxiliary loss predicts (the most frequent ones); default depends "
        "on the corpus",
    )
    train.add_argument(
        "--device", type=_device, default="cpu", help="cpu (default), cuda, cuda:1, ..."
    )
    train.add_argument(
        "--refit",
        action="store_true",
        help="after choosing the epoch count on dev, retrain on train + dev for that many",
    )
    train.add_argument(
        "--limit",
        type=POSITIVE_INT,
        help="use only the first N sentences of each split (smoke runs; default: all)",
    )
    train.add_argument("--runs", default="runs", help="parent folder of run folders")
    train.add_argument("--name", type=_run_name, help="run folder name (default: the corpus)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=_train_tagger)

    tag = commands.add_parser("tag", help="tag text with a saved tagger")
    tag.add_argument("--model", required=True, help="a models/<head>-seed<N>.pt of a run")
    tag.add_argument(
        "--k",
        type=K_BEST,
        help=f"also print the k best taggings (1 to {MAX_K}), best first, with scores",
    )
    tag.add_argument("--json", action="store_true", help="one JSON object per sentence")
    tag.add_argument(
        "text",
        nargs="*",
        help="sentences (default: one per line on stdin); word/POS tokens for a tagger "
        "trained with POS tags (CoNLL-2000)",
    )
    tag.set_defaults(run=_tag)

    qa = commands.add_parser(
        "train-qa", help="compare a memory network, an attentive reader and an LSTM on bAbI"
    )
    qa.add_argument(
        "--corpus",
        choices=("synthetic", "babi"),
        help="a named corpus instead of --train: synthetic (the default when neither is given: "
        "generated task-1 stories, no download) or babi (the 20 tasks under --data)",
    )
    qa.add_argument(
        "--data", help="folder holding babi/en/ (default $HYBRID_DATA or ../shared/data)"
    )
    _own_data(
        qa, "bAbI-format files or globs; qaN_ in a name gives the task (else task 0)", dev=False
    )
    qa.add_argument("--tasks", nargs="+", type=BABI_TASK, default=list(range(1, 21)))
    qa.add_argument("--models", nargs="+", default=list(KINDS), choices=KINDS)
    qa.add_argument("--seeds", nargs="+", type=NON_NEGATIVE_INT, help="default 0-4 (synthetic: 0)")
    qa.add_argument("--joint", action="store_true", help="one reader for all tasks together")
    qa.add_argument("--epochs", type=POSITIVE_INT, help="main-schedule epochs (default per reader)")
    qa.add_argument("--optimizer", choices=("sgd", "adam"), help="default per reader")
    qa.add_argument(
        "--lr", type=POSITIVE_FLOAT, help="main-schedule learning rate (default per reader)"
    )
    qa.add_argument("--hops", type=POSITIVE_INT, default=ReaderConfig.hops)
    qa.add_argument("--dim", type=POSITIVE_INT, help="embedding size (default per reader)")
    qa.add_argument("--tying", default=ReaderConfig.tying, choices=TYING)
    qa.add_argument("--noise", type=PROBABILITY, default=ReaderConfig.noise)
    qa.add_argument("--no-position", action="store_true", help="bag of words, no position encoding")
    qa.add_argument("--no-temporal", action="store_true", help="no temporal encoding")
    qa.add_argument("--no-linear-start", action="store_true")
    qa.add_argument(
        "--no-empty-slots",
        action="store_true",
        help="hops attend to the statements only, not to the empty memory slots",
    )
    qa.add_argument("--runs", default="runs", help="parent folder of run folders")
    qa.add_argument(
        "--name",
        type=_run_name,
        help="run folder name (default babi, babi-joint or babi-synthetic)",
    )
    qa.add_argument("--quiet", action="store_true", help="no progress bars")
    qa.add_argument("--verbose", action="store_true", help="one line per finished run")
    qa.set_defaults(run=_train_qa)

    ans = commands.add_parser(
        "answer",
        help="answer the question of each story read from stdin (one statement per line, the "
        "question last; stories separated by blank lines)",
    )
    ans.add_argument("--model", required=True, help="a models/<reader>-...pt of a train-qa run")
    ans.set_defaults(run=_answer)

    asr = commands.add_parser(
        "train-asr",
        help="compare GMM-HMM, hybrid DNN-HMM and BiLSTM-HMM, a pure RNN and CTC on speech",
    )
    asr.add_argument(
        "--corpus",
        choices=("synthetic", "fsdd", *SPEECH_PRESETS),
        help="synthetic (default without --train: generated digits, no download), fsdd, or "
        "speech_commands (a preset over its manifest)",
    )
    asr.add_argument(
        "--data",
        help="folder holding fsdd/ and speech_commands/ (default $HYBRID_DATA or ../shared/data)",
    )
    own = _own_data(
        asr,
        "Kaldi data directories (wav.scp, text, utt2spk, optional segments) or CSV/TSV "
        "manifests (docs/own-data.md)",
        True,
        held_out="share of the speakers held out for a split not given (default 0.1, seed 0; "
        "of the utterances with one speaker); 0: no development set",
    )
    own.add_argument("--path-column", help="manifest column of the audio files (default path)")
    own.add_argument(
        "--transcript-column", help="manifest column of the transcripts (default transcript)"
    )
    own.add_argument(
        "--speaker-column",
        help="manifest column of the speakers (default speaker; '' for none: each utterance "
        "its own speaker)",
    )
    own.add_argument(
        "--test-speakers", nargs="+", metavar="SPEAKER", help="without --test: the test speakers"
    )
    own.add_argument(
        "--sample-rate",
        type=POSITIVE_INT,
        help="resample every recording to this rate (Hz; default: that of most training ones)",
    )
    own.add_argument(
        "--words", metavar="FILE", help="vocabulary: a word per line, or Kaldi's words.txt"
    )
    own.add_argument(
        "--grammar", metavar="FILE", help="decode one of these phrases (a phrase per line)"
    )
    own.add_argument(
        "--lm", metavar="FILE", help="decode a word loop weighed by this ARPA unigram model"
    )
    asr.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        help="default: isolated, speakers and strings on fsdd; isolated and strings on "
        "synthetic; isolated or continuous on your own data (one word per recording or more)",
    )
    asr.add_argument(
        "--systems",
        nargs="+",
        default=list(SYSTEMS),
        choices=SYSTEMS,
        help="GMM-HMM, hybrid DNN-HMM, hybrid BiLSTM-HMM, pure RNN, CTC (default: all)",
    )
    asr.add_argument(
        "--epochs", type=POSITIVE_INT, help="epochs of every network (default per corpus)"
    )
    asr.add_argument(
        "--speed-factors",
        nargs="*",
        type=POSITIVE_FLOAT,
        metavar="F",
        help="speed perturbation: also train on copies of the training audio at these speeds "
        "(default 0.9 1.1, none on synthetic; give the flag alone for none)",
    )
    asr.add_argument(
        "--spec-augment",
        action=argparse.BooleanOptionalAction,
        help="mask random runs of frames and bands of features in every training batch "
        "(default: on for speech_commands, off otherwise)",
    )
    asr.add_argument(
        "--threads",
        type=POSITIVE_INT,
        default=1,
        help="torch threads (default 1: these small networks gain nothing from more, and "
        "several runs can share the cores)",
    )
    asr.add_argument(
        "--speakers",
        nargs="+",
        help="run only these folds of the leave-one-speaker-out task (to share the folds of "
        "one run folder between processes)",
    )
    asr.add_argument("--runs", default="runs", help="parent folder of run folders")
    asr.add_argument("--name", type=_run_name, help="run folder name (default asr-<corpus>)")
    asr.add_argument("--quiet", action="store_true", help="no progress bars")
    asr.set_defaults(run=_train_asr)

    rec = commands.add_parser("recognize", help="transcribe WAV files with a saved system")
    rec.add_argument("--model", required=True, help="a models/<task>-<system>.pt of a run")
    rec.add_argument(
        "files",
        nargs="+",
        help="WAV files (PCM or float; several channels are averaged), taken as one "
        "speaker's (a system trained with per-speaker normalisation pools their statistics)",
    )
    rec.set_defaults(run=_recognize)

    tp = commands.add_parser(
        "train-parser",
        help="compare seq2seq parsers (no attention, attention, attention + word pointer) under "
        "greedy, beam and constrained decoding with chart parsers (tree CRF, structured SVM) "
        "under CKY, on one encoder",
    )
    tp.add_argument(
        "--corpus",
        choices=("synthetic", "ptb"),
        help="a named corpus instead of --train: synthetic (the default when neither is given: "
        "generated from a small grammar, no download) or ptb (the Penn Treebank sample)",
    )
    tp.add_argument(
        "--data", help="folder holding ptb_sample/ (default $HYBRID_DATA or ../shared/data)"
    )
    _own_data(tp, "bracketed treebank files or globs (a tree per line or over several)", dev=True)
    tp.add_argument(
        "--inputs",
        nargs="+",
        default=["words", "tags"],
        choices=("words", "tags"),
        help="words only, and/or words with the treebank's POS tags (default: both)",
    )
    tp.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=MODELS,
        help="the encoder-decoder without attention, with attention, and with attention and "
        "the word pointer; the chart parser trained as a tree CRF or a structured SVM "
        "(default: all five)",
    )
    tp.add_argument("--epochs", type=POSITIVE_INT, help="training epochs (default per corpus)")
    tp.add_argument(
        "--train-size",
        type=int,
        help="train on the first N training trees only (for learning curves)",
    )
    tp.add_argument(
        "--seed", type=NON_NEGATIVE_INT, default=0, help="initialisation and shuffling seed"
    )
    tp.add_argument("--threads", type=POSITIVE_INT, default=2, help="torch threads (default 2)")
    tp.add_argument("--runs", default="runs", help="parent folder of run folders")
    tp.add_argument("--name", type=_run_name, help="run folder name (default parse-<corpus>)")
    tp.add_argument("--quiet", action="store_true", help="no progress bars")
    tp.set_defaults(run=_train_parser)

    parse = commands.add_parser("parse", help="parse sentences with a saved parser")
    parse.add_argument("--model", required=True, help="a models/<input>-<model>.pt of a run")
    parse.add_argument(
        "--decoder",
        choices=DECODERS,
        help="a seq2seq parser's greedy, beam or constrained (default: only well-formed trees "
        "over the words); a chart parser's cky (default: the best tree) or mbr (the tree of "
        "the most probable phrases)",
    )
    parse.add_argument("--beam", type=POSITIVE_INT, default=10)
    parse.add_argument(
        "sentences",
        nargs="*",
        help="tokenised sentences, one per argument (word/TAG tokens for a parser that reads "
        "tags); default: one per line on standard input",
    )
    parse.set_defaults(run=_parse)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hybrid`` command.

    A bad input (an option argparse refuses, a missing or unreadable file, a file that is no
    model, text that does not decode, a malformed sentence or story) ends as one line
    ``hybrid: error: ...`` on standard error and exit status 2; an interrupt (Ctrl-C) as
    ``hybrid: interrupted`` and 130. Any other exception is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("hybrid: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output stopped early (``| head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, OSError) as error:  # UnicodeDecodeError is a ValueError
        print(f"hybrid: error: {_message(error)}", file=sys.stderr)
        return 2


def _message(error: Exception) -> str:
    """One line for ``error``: an OSError as ``<path>: <reason>``."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    raise SystemExit(main())
