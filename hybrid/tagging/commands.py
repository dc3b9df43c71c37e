"""The tagging commands: ``hybrid train-tagger`` (compare heads on one encoder) and
``hybrid tag`` (tag text with a saved tagger)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import deploy
from ..commands import (
    NON_NEGATIVE_FLOAT,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    bounded,
    engine_options,
    files_name,
    input_texts,
    input_window,
    load_model,
    nonempty,
    one_source,
    or_default,
    own_data,
    show_results,
    start_training,
    training_options,
)
from .datasets import CORPORA, FORMATS
from .model import HEADS, INTENT_POOLING, TaggerConfig
from .train import TaggerTrainConfig

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


# Most taggings ``hybrid tag --k`` prints: the k-best decoder holds k x tags x tags scores
# per word, so that k = 100 000 takes gigabytes on a tagger of 120 tags.
MAX_K = 100
K_BEST = bounded(int, lambda v: 1 <= v <= MAX_K, f"an integer from 1 to {MAX_K}")


def _train_tagger(args: argparse.Namespace) -> int:
    from ..training.distributed import is_main
    from .datasets import SYNTHETIC_NOTICE, load_splits, load_tagging, preset_files
    from .experiment import run_comparison

    start_training(args)  # under torchrun: one process group over all ranks
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
        hidden=or_default(args.hidden, defaults["hidden"]),
        layers=args.layers,
        rnn=args.rnn,
        dropout=args.dropout,
        word_dim=or_default(args.word_dim, defaults["word_dim"]),
        char_encoder=None if args.char_encoder == "none" else args.char_encoder,
        word_dropout=args.word_dropout,
        intent_pooling=args.intent_pooling,
        intent_weight=or_default(
            args.intent_weight, defaults.get("intent_weight", TaggerConfig.intent_weight)
        ),
        lm_weight=or_default(args.lm_weight, defaults.get("lm_weight", 0.0)),
        lm_words=or_default(args.lm_words, defaults.get("lm_words", TaggerConfig.lm_words)),
    )
    training = TaggerTrainConfig(
        epochs=or_default(args.epochs, defaults["epochs"]),
        batch_size=or_default(args.batch_size, defaults["batch_size"]),
        lr=or_default(args.lr, defaults["lr"]),
        patience=args.patience,
        **engine_options(args),
    )
    name = files_name(args.train) if args.train else corpus
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
        save_every=args.save_every,
    )
    show_results(run_dir)
    return 0 if not is_main() or results["rows"] else 1


def _tagging_files(args: argparse.Namespace):
    """The `TaggingFiles` of ``--train`` and the reading options (``--corpus`` refused: a
    preset names its own files)."""
    from .datasets import TaggingFiles

    one_source(args)
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


def _tag(args: argparse.Namespace) -> int:
    texts = (text for _, text in input_texts(args.text))
    window = input_window(args.text)
    if deploy.is_exported(args.model):
        tagger = deploy.load(args.model, kind="tagger")
        results = tagger.tag_stream(texts, args.k, window=window)
    else:
        from .inference import tag_stream
        from .model import Tagger

        model = load_model(Tagger.load, args.model)
        results = tag_stream(model, model.vocabulary, texts, args.k, window=window)
    for result in nonempty(results, "sentences, one per line on standard input"):
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


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train-tagger`` and ``tag`` to the ``hybrid`` command's subcommands."""
    train = commands.add_parser(
        "train-tagger", help="compare softmax, CRF and SSVM heads on one BiLSTM encoder"
    )
    train.add_argument(
        "--corpus",
        choices=CORPORA,
        help="a named corpus instead of --train: synthetic (the default when neither is given: "
        "generated, no download), or a preset: atis, conll2000 (their files under --data)",
    )
    own = own_data(
        train, "CoNLL, CoNLL-U, JSON lines or slot folders (docs/own-data.md); files or globs", True
    )
    own.add_argument(
        "--format",
        choices=FORMATS,
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
    train.add_argument("--epochs", type=POSITIVE_INT, help="default depends on the corpus")
    train.add_argument(
        "--patience",
        type=NON_NEGATIVE_INT,
        default=TaggerTrainConfig.patience,
        help="stop after this many epochs without a better development score (0: never; default 8)",
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
        "--refit",
        action="store_true",
        help="after choosing the epoch count on dev, retrain on train + dev for that many",
    )
    train.add_argument(
        "--limit",
        type=POSITIVE_INT,
        help="use only the first N sentences of each split (smoke runs; default: all)",
    )
    training_options(train, "atis/ and conll2000/", "the corpus", [0, 1, 2])
    train.set_defaults(run=_train_tagger)

    tag = commands.add_parser("tag", help="tag text with a saved tagger")
    tag.add_argument(
        "--model",
        required=True,
        help="a models/<head>-seed<N>.pt of a run, or a tagger written by hybrid export",
    )
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
