"""The parsing commands: ``hybrid train-parser`` (compare seq2seq and chart parsers on one
encoder) and ``hybrid parse`` (parse sentences with a saved or an exported parser)."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path

from .. import deploy
from ..commands import (
    POSITIVE_INT,
    engine_options,
    files_name,
    input_texts,
    input_window,
    load_model,
    nonempty,
    one_source,
    own_data,
    show_results,
    start_training,
    training_options,
)
from .experiment import DECODERS, MODELS
from .text import Parse, words_and_tags


def _train_parser(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..training.distributed import is_main
    from .experiment import (
        default_settings,
        load_corpus,
        load_treebank_files,
        run_parsing,
        treebank_checksums,
    )
    from .synthetic import SYNTHETIC_NOTICE

    start_training(args)
    say = print if is_main() else lambda text: None  # one copy of each note under torchrun
    corpus, data = args.corpus or "synthetic", None
    if args.train is not None:
        one_source(args)
        files = (args.train, args.dev, args.test)
        train, dev, test, notes = load_treebank_files(*files, args.held_out)
        data = treebank_checksums(*files)
        corpus = "files"
        say("\n".join(notes))
    else:
        train, dev, test = load_corpus(corpus, args.data)
    if corpus == "synthetic":
        say(SYNTHETIC_NOTICE)
    if args.train_size is not None:
        if args.train_size < 1:
            raise ValueError(
                f"--train-size must be a positive number of trees, got {args.train_size}"
            )
        train = train[: args.train_size]
    name = f"parse-{files_name(args.train) if data else corpus}"
    run_dir = Path(args.runs) / (args.name or name)
    settings = default_settings("ptb" if data else corpus, args.epochs)
    run_parsing(
        train,
        dev,
        test,
        run_dir,
        inputs=args.inputs,
        models=args.models,
        settings=replace(
            settings,
            training=replace(settings.training, **engine_options(args)),
        ),
        corpus=name.removeprefix("parse-") if data else corpus,
        progress=not args.quiet,
        data=data,
        log=say,
        seeds=args.seeds,
        device=args.device,
        save_every=args.save_every,
    )
    show_results(run_dir)
    return 0


def _parse(args: argparse.Namespace) -> int:
    window = input_window(args.sentences)
    texts = input_texts(args.sentences)
    if deploy.is_exported(args.model):
        parser = deploy.load(args.model, kind="parser")
        if args.decoder not in (None, parser.decoder):
            raise ValueError(
                f"--decoder {args.decoder}: {args.model} is an exported parser, which decodes "
                f"with {parser.decoder} only (--decoder {parser.decoder}); parse with the saved "
                "model for its other decoders"
            )
        trees = parser.parse_named(texts, window=window)
    else:
        trees = (str(parse.tree) for parse in _parses(args, texts, window))
    for tree in nonempty(trees, "sentences, one per line on standard input"):
        print(tree)
    return 0


def _parses(
    args: argparse.Namespace, texts: Iterator[tuple[str, str]], window: int
) -> Iterator[Parse]:
    """The parses of ``texts`` (``(where, text)`` pairs) by the parser saved at
    ``args.model``, with ``args.decoder`` and ``args.beam``."""
    from .parser import BaseParser

    parser = load_model(BaseParser.load, args.model)
    inputs = (words_and_tags(where, text, parser.uses_tags) for where, text in texts)
    if parser.uses_tags:  # one reading of the input, two streams in lockstep
        left, right = itertools.tee(inputs)
        sentences, tags = (words for words, _ in left), (row for _, row in right)
    else:
        sentences, tags = (words for words, _ in inputs), None
    return parser.parse_stream(sentences, tags, mode=args.decoder, beam=args.beam, window=window)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train-parser`` and ``parse`` to the ``hybrid`` command's subcommands."""
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
    own_data(tp, "bracketed treebank files or globs (a tree per line or over several)", dev=True)
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
    training_options(tp, "ptb_sample/", "parse-<corpus>", [0], threads=2)
    tp.set_defaults(run=_train_parser)

    parse = commands.add_parser("parse", help="parse sentences with a saved parser")
    parse.add_argument(
        "--model",
        required=True,
        help="a models/<input>-<model>-seed<seed>.pt of a run, or a parser written by hybrid "
        "export (a seq2seq parser decodes greedily, a chart parser with cky)",
    )
    parse.add_argument(
        "--decoder",
        choices=DECODERS,
        help="a seq2seq parser's greedy, beam or constrained (default: only well-formed trees "
        "over the words; an exported one's only decoder is greedy); a chart parser's cky "
        "(default: the best tree, an exported one's only decoder) or mbr (the tree of the most "
        "probable phrases)",
    )
    parse.add_argument("--beam", type=POSITIVE_INT, default=10)
    parse.add_argument(
        "sentences",
        nargs="*",
        help="tokenised sentences, one per argument (word/TAG tokens for a parser that reads "
        "tags); default: one per line on standard input",
    )
    parse.set_defaults(run=_parse)
