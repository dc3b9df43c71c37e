"""The reading-comprehension commands: ``hybrid train-qa`` (compare readers on bAbI or your
own stories) and ``hybrid answer`` (answer questions with a saved reader)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import (
    BABI_TASK,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    engine_options,
    files_name,
    input_window,
    load_model,
    nonempty,
    one_source,
    or_default,
    own_data,
    show_results,
    start_training,
    stdin_lines,
    training_options,
)
from ..nn.memory import TYING
from .model import KINDS, ReaderConfig

# Main-schedule epochs per reader on the embedded synthetic stories (about a minute in all).
SYNTHETIC_EPOCHS = {"memory": 40, "attentive": 40, "lstm": 40}


def _train_qa(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..corpora import checksums, expand_paths
    from ..files import data_root
    from ..training.distributed import is_main
    from .babi import load_files, load_tasks
    from .experiment import default_settings, run_qa
    from .synthetic import SYNTHETIC_NOTICE, generate_stories

    start_training(args)
    synthetic, data = args.train is None and args.corpus in (None, "synthetic"), None
    if args.train is not None:
        one_source(args)
        if args.test is None:
            raise ValueError("--test: expected the bAbI test files that go with --train")
        tasks = load_files(args.train, args.test)
        data = {
            split: checksums(expand_paths(getattr(args, split), f"--{split}"))
            for split in ("train", "test")
        }
    elif synthetic:
        if is_main():
            print(SYNTHETIC_NOTICE)
        tasks = {
            1: {"train": generate_stories(1000, seed=0), "test": generate_stories(500, seed=1)}
        }
    else:
        root = data_root(args.data)
        if root is None:
            raise ValueError("no data folder: pass --data or set HYBRID_DATA")
        tasks = load_tasks(root / "babi" / "en", args.tasks)
    settings = {}  # every reader's, trained now or not: the run folder's settings
    for kind in KINDS:
        reader, training = default_settings(kind, args.joint)
        epochs = or_default(args.epochs, SYNTHETIC_EPOCHS[kind] if synthetic else training.epochs)
        reader = replace(
            reader,
            hops=args.hops,
            tying=args.tying,
            noise=args.noise,
            dim=or_default(args.dim, reader.dim),
            position=not args.no_position,
            temporal=not args.no_temporal,
            attend_empty=not args.no_empty_slots,
        )
        training = replace(training, epochs=epochs, **engine_options(args))
        if kind == "memory" and args.no_linear_start:  # the paper's rate without it
            training = replace(training, linear_start=False, lr=0.01)
        if args.optimizer is not None:
            training = replace(training, optimizer=args.optimizer)
        if args.lr is not None:
            training = replace(training, lr=args.lr)
        settings[kind] = (reader, training)
    seeds = or_default(args.seeds, [0] if synthetic else [0, 1, 2, 3, 4])
    default_name = "babi-synthetic" if synthetic else "babi-joint" if args.joint else "babi"
    if data:
        default_name = f"qa-{files_name(args.train)}"
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
        device=args.device,
        save_every=args.save_every,
        progress=not args.quiet,
        log=print if args.verbose else lambda _: None,
    )
    show_results(run_dir)
    return 0


def _answer(args: argparse.Namespace) -> int:
    from .. import deploy
    from .text import read_stories

    stories = read_stories(stdin_lines())
    window = input_window([])
    if deploy.is_exported(args.model):
        results = deploy.load(args.model, kind="reader").answer_stories(stories, window=window)
    else:
        from .inference import answer_stories
        from .model import Reader

        reader = load_model(Reader.load, args.model)
        results = answer_stories(reader, reader.vocabulary, stories, window=window)
    for result in nonempty(results, "a story on standard input"):
        print(f"answer: {result['answer']} ({result['confidence']:.2f})")
        for hop, (sentence, weight) in enumerate(result["attended"], start=1):
            print(f"  hop {hop}: {sentence} ({weight:.2f})")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train-qa`` and ``answer`` to the ``hybrid`` command's subcommands."""
    qa = commands.add_parser(
        "train-qa", help="compare a memory network, an attentive reader and an LSTM on bAbI"
    )
    qa.add_argument(
        "--corpus",
        choices=("synthetic", "babi"),
        help="a named corpus instead of --train: synthetic (the default when neither is given: "
        "generated task-1 stories, no download) or babi (the 20 tasks under --data)",
    )
    own_data(
        qa, "bAbI-format files or globs; qaN_ in a name gives the task (else task 0)", dev=False
    )
    qa.add_argument("--tasks", nargs="+", type=BABI_TASK, default=list(range(1, 21)))
    qa.add_argument("--models", nargs="+", default=list(KINDS), choices=KINDS)
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
    qa.add_argument("--verbose", action="store_true", help="one line per finished run")
    training_options(
        qa,
        "babi/en/",
        "babi, babi-joint or babi-synthetic",
        None,
        "training seeds, a run each (default 0-4; synthetic: 0)",
    )
    qa.set_defaults(run=_train_qa)

    ans = commands.add_parser(
        "answer",
        help="answer the question of each story read from stdin (one statement per line, the "
        "question last; stories separated by blank lines)",
    )
    ans.add_argument(
        "--model",
        required=True,
        help="a models/<reader>-...pt of a train-qa run, or its export (hybrid export)",
    )
    ans.set_defaults(run=_answer)
