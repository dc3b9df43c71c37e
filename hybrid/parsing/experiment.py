"""The parsing comparison: seq2seq without attention, with it, with it and the word pointer,
and the chart parser trained as a tree CRF or a structured SVM, all on one encoder.

For each input (``words``; ``tags``: words and the treebank's POS tags), each model
(``none``: the encoder-decoder without attention; ``attention``; ``pointer``: attention and
the word pointer; ``chart-crf`` and ``chart-ssvm``: span scores from the same encoder and
CKY, see `new_parser`) and each seed, one parser is trained on the training trees and
selected by development F1. Each parses the test sentences with every decoder it has
(greedy, beam and constrained; CKY and minimum Bayes risk).

The run folder (`hybrid.runs`) receives ``results.json``, ``results.md``,
``models/<input>-<model>-seed<seed>.pt`` (for ``hybrid parse``), ``checkpoints/``
(resumable training), ``training.png``, ``f1-by-length.png``, ``attention.png``,
``pointer-attention.png`` and ``tree.png``. ``results.json`` has one row per parser
(``task``: the input, ``system``: the model, ``seed``) and decoder on the ``test`` split:
``metrics`` (EVALB precision, recall and F1 after repair, exact match, the share of outputs
that were trees before repair, all fractions; the sentences EVALB left out; sentences parsed
per second),
``sentences``, ``f1_by_length``, ``outputs``, ``example`` (the gold and parsed trees of one
test sentence) and, for the constrained decoder of a parser with attention, the
``attention`` maps' data; and one row per parser on the ``dev`` split (its quickest
decoder): the F1 and loss of its best epoch, with its training ``history``. The table and
every plot are drawn from ``results.json`` alone (`redraw`), with the mean and standard
deviation over seeds where there are several.

A rerun reads the finished parsers back and trains only the missing ones (scoring, from its
saved model, a finished parser's decoders that have no row yet); other settings in the same
folder are refused, but for more epochs: the folder then records the change (``changes`` in
``results.json``), and its parsers, trained for fewer, train on from their checkpoints when
asked for again. Rows are merged under a lock (`hybrid.runs.RunFolder`), so that separate
processes can train different parsers or seeds into one folder and lose no rows.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path

import torch

from ..corpora import HELD_OUT_SEED, checksums, expand_paths, hold_out
from ..files import data_root, write_text_atomic
from ..nn.seq2seq import Seq2Seq, Seq2SeqConfig
from ..nn.span_scorer import SpanScorer, SpanScorerConfig
from ..runs import RunFolder, environment
from ..training import distributed, resolve_device
from ..training.distributed import is_main
from .chart import CHART_MODES, ChartParser
from .data import ParsingVocabulary
from .evalb import evalb
from .linearize import WORD
from .parser import MODES, BaseParser, Parse, Parser
from .plots import plot_attention, plot_f1_by_length, plot_training, plot_trees
from .synthetic import synthetic_trees
from .train import ParserTrainConfig, fit, gold_tagged, inputs_of
from .tree import Tree
from .treebank import normalize, ptb_split, read_trees

__all__ = [
    "DECODERS",
    "INPUTS",
    "LENGTH_BINS",
    "MODELS",
    "PRIMARY",
    "ParsingSettings",
    "default_settings",
    "load_corpus",
    "load_treebank_files",
    "new_parser",
    "redraw",
    "results_table",
    "run_parsing",
    "treebank_checksums",
]

INPUTS = ("words", "tags")
#: The settings a run folder may be asked for again with a larger value (to train on).
_RAISABLE = ("training.epochs",)
MODELS = ("none", "attention", "pointer", "chart-crf", "chart-ssvm")
#: What `hybrid report` compares first: test F1, higher is better.
PRIMARY = ("f1", True)
#: Every parser's decoders: the seq2seq parsers' (`MODES`), then the chart parsers'.
DECODERS = (*MODES, *CHART_MODES)
#: Sentence-length bins of the F1-by-length breakdown: ``(first, last)`` words.
LENGTH_BINS = ((1, 10), (11, 20), (21, 30), (31, 40), (41, None))
_INPUT_NAMES = {"words": "words", "tags": "words + POS tags"}
_MODEL_NAMES = {
    "none": "seq2seq, no attention",
    "attention": "seq2seq + attention",
    "pointer": "seq2seq + attention + word pointer",
    "chart-crf": "chart, tree CRF",
    "chart-ssvm": "chart, structured SVM",
}


@dataclass(frozen=True)
class ParsingSettings:
    """Model sizes, training and decoding of a comparison.

    Attributes:
        model: `Seq2SeqConfig` fields other than the vocabulary sizes and ``attention``; the
            chart parsers take those of the encoder.
        attention: The attention of the ``attention`` model (``dot``, ``general``,
            ``additive``).
        training: Optimisation settings.
        beam: Beam size of ``beam`` and ``constrained`` decoding.
        labelled_closing: ``)NP`` rather than ``)`` as closing tokens.
        reverse: Read the source backwards.
        chars: Give the encoder the characters of each word.
        span_hidden: Hidden units of the chart parsers' label scorer.
    """

    model: dict = field(default_factory=dict)
    attention: str = "general"
    training: ParserTrainConfig = ParserTrainConfig()
    beam: int = 10
    labelled_closing: bool = True
    reverse: bool = False
    chars: bool = True
    span_hidden: int = 250


def default_settings(corpus: str, epochs: int | None = None) -> ParsingSettings:
    """The recipe's settings: small and quick on the synthetic treebank, larger on the PTB
    (training seed 0: `run_parsing` takes the seeds)."""
    if corpus == "synthetic":
        return ParsingSettings(
            model={
                "hidden": 64,
                "word_dim": 48,
                "target_dim": 32,
                "encoder_layers": 1,
                "decoder_layers": 1,
                "dropout": 0.2,
            },
            training=ParserTrainConfig(epochs=epochs or 15, batch_size=32, lr=3e-3),
            beam=5,
            span_hidden=64,
        )
    return ParsingSettings(
        model={
            "hidden": 256,
            "word_dim": 128,
            "target_dim": 64,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "dropout": 0.3,
            "word_dropout": 0.1,
        },
        training=ParserTrainConfig(epochs=epochs or 30, batch_size=32, lr=1e-3),
    )


def load_corpus(corpus: str, data: str | None) -> tuple[list[Tree], list[Tree], list[Tree]]:
    """Normalised train, development and test trees of ``corpus``.

    ``ptb``: the Penn Treebank sample under ``data`` (`ptb_split`: wsj_0001-0149, 0150-0159,
    0160-0169), function tags and empty elements removed, root collapsed. ``synthetic``:
    2,000 / 200 / 300 trees of `synthetic_trees`. Other treebank files: `load_treebank_files`.

    Raises:
        ValueError: An unknown corpus, or no ``ptb_sample/`` under the data folder.
    """
    if corpus == "synthetic":
        trees = synthetic_trees(2500, seed=0)
        return trees[:2000], trees[2000:2200], trees[2200:]
    if corpus != "ptb":
        raise ValueError(f"corpus must be 'ptb' or 'synthetic', got {corpus!r}")
    root = data_root(data)
    if root is None or not (root / "ptb_sample").is_dir():
        raise ValueError(f"no ptb_sample/ folder under {root} (give --data or set HYBRID_DATA)")
    train, dev, test = (_normalised(split) for split in ptb_split(root / "ptb_sample"))
    return train, dev, test


def _normalised(trees: Sequence[Tree]) -> list[Tree]:
    """``trees`` as the parsers see them (`normalize`), less those that were only empty
    elements; the same for the ``ptb`` corpus and for files given by path."""
    return [tree for tree in map(normalize, trees) if tree is not None]


#: A treebank split given by path: a file, a glob pattern, or several of them.
Patterns = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
_SPLIT_OPTIONS = {"train": "--train", "dev": "--dev", "test": "--test"}
_HELD_OUT_FOR = {"dev": "development", "test": "testing"}


def load_treebank_files(
    train: Patterns,
    dev: Patterns | None = None,
    test: Patterns | None = None,
    dev_fraction: float = 0.1,
) -> tuple[list[Tree], list[Tree], list[Tree], list[str]]:
    """Normalised train, development and test trees read from treebank files given by path.

    Every file is read by `read_trees` (UTF-8, a byte-order mark dropped, ``\\r\\n`` or
    ``\\n`` line ends, trees one per line or each over several lines, blank lines anywhere)
    and every tree normalised as in `load_corpus` (`normalize`: function tags and empty
    elements removed, a unary ``""``/``ROOT``/``TOP`` root collapsed); a tree that was only
    empty elements is dropped. A split that is not given is held out of the training trees
    (`hybrid.corpora.hold_out`, seed `HELD_OUT_SEED`): first the development trees, then the
    test trees out of those left, each a ``dev_fraction`` (rounded, at least one tree) of
    what it is taken from, the trees keeping their order. Files are read, and every error
    raised, before anything trains.

    The files read are not returned: `treebank_checksums` of the same arguments records
    them (the held-out splits follow from the training files, ``dev_fraction`` and the seed).

    Args:
        train: The training trees' files: a path, a glob pattern (``data/wsj_01*.mrg``;
            ``**`` reaches into subfolders; its matches sorted by name), or a list of them,
            read in the order given.
        dev: The development trees' files, the same way; ``None``: held out of ``train``.
        test: The test trees' files, the same way; ``None``: held out of ``train`` (after
            ``dev``).
        dev_fraction: The share of the training trees each missing split takes, in (0, 1).

    Returns:
        ``(train, dev, test, notes)``: the three splits' normalised trees, each in the order
        of its files and of the trees within a file, no tree in two splits; and the notes a
        user should read, one sentence each: a split held out (``"no --dev: 10 of 100
        training trees (10%, seed 0) held out for development"``), trees dropped as empty.

    Raises:
        ValueError: naming the option (``--train``, ``--dev``, ``--test``) and the pattern:
            no pattern, a pattern matching no file, a folder (`expand_paths`); naming the
            file and the option: a file given for two splits, a file without trees; naming
            the file and the line (`read_trees`): unbalanced brackets, text outside the
            trees, a malformed tree, bytes that are not UTF-8; naming the split: a split
            with no tree left after normalisation, too few training trees to hold a split
            out of, or a ``dev_fraction`` outside (0, 1) when a split is held out.
    """
    given = {"train": train, "dev": dev, "test": test}
    files = {
        split: expand_paths(patterns, _SPLIT_OPTIONS[split])
        for split, patterns in given.items()
        if patterns is not None
    }
    _refuse_shared_files(files)
    notes: list[str] = []
    splits: dict[str, list[Tree]] = {}
    for split, paths in files.items():
        raw = []
        for path in paths:
            trees = read_trees(path)
            if not trees:
                raise ValueError(f"{_SPLIT_OPTIONS[split]}: no tree in {str(path)!r}")
            raw.extend(trees)
        splits[split] = _normalised(raw)
        dropped = len(raw) - len(splits[split])
        if not splits[split]:
            raise ValueError(
                f"{_SPLIT_OPTIONS[split]}: no tree left after normalisation: each of the "
                f"{len(raw)} trees of {_shown(paths)} is only empty elements (-NONE-)"
            )
        if dropped:
            notes.append(
                f"{_SPLIT_OPTIONS[split]}: {dropped} of {len(raw)} trees dropped, only empty "
                "elements (-NONE-)"
            )
    for split in ("dev", "test"):
        if split in splits:
            continue
        pool = splits["train"]
        left = " left" if split == "test" and dev is None else ""  # after the dev trees
        what = f"no {_SPLIT_OPTIONS[split]}: holding trees out of --train"
        splits["train"], splits[split] = hold_out(pool, dev_fraction, what)
        notes.append(
            f"no {_SPLIT_OPTIONS[split]}: {len(splits[split])} of {len(pool)} training trees"
            f"{left} ({100 * dev_fraction:g}%, seed {HELD_OUT_SEED}) held out for "
            f"{_HELD_OUT_FOR[split]}"
        )
    return splits["train"], splits["dev"], splits["test"], notes


def treebank_checksums(
    train: Patterns, dev: Patterns | None = None, test: Patterns | None = None
) -> dict[str, list[dict[str, str]]]:
    """What `load_treebank_files` reads for the same arguments: ``{"train": [{"path",
    "sha256"}, ...], "dev": ..., "test": ...}`` (`hybrid.corpora.checksums`), a split that
    is ``None`` left out (it is held out of ``train``), each file in reading order.

    Raises:
        ValueError: as `hybrid.corpora.expand_paths`, naming the option and the pattern.
    """
    given = {"train": train, "dev": dev, "test": test}
    return {
        split: checksums(expand_paths(patterns, _SPLIT_OPTIONS[split]))
        for split, patterns in given.items()
        if patterns is not None
    }


def _refuse_shared_files(files: dict[str, list[Path]]) -> None:
    """Raise a ValueError naming a file that two splits (or one split twice) name."""
    seen: dict[Path, str] = {}
    for split, paths in files.items():
        for path in paths:
            key = path.resolve()
            if key in seen:
                first, second = _SPLIT_OPTIONS[seen[key]], _SPLIT_OPTIONS[split]
                where = f"both {first} and {second}" if first != second else f"{first} twice"
                raise ValueError(f"{str(path)!r} is given for {where}; each file may be read once")
            seen[key] = split


def _shown(paths: Sequence[Path]) -> str:
    """The first few of ``paths``, for a message."""
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return ", ".join(map(str, paths[:3])) + more


def new_parser(
    vocabulary: ParsingVocabulary, settings: ParsingSettings, uses_tags: bool, model: str
) -> BaseParser:
    """An untrained parser of ``vocabulary``'s sizes, reading POS tags if ``uses_tags``:

    - ``"none"``: the encoder-decoder without attention;
    - ``"attention"``: with ``settings.attention``;
    - ``"pointer"``: with it and the word pointer (the decoder also reads the encoder state
      of the next word to place, see `hybrid.nn.seq2seq`);
    - ``"chart-crf"``, ``"chart-ssvm"``: a `ChartParser` over the same encoder settings,
      trained as a tree CRF or a structured SVM.

    Raises:
        ValueError: An unknown model, or ``"pointer"`` or a chart parser with a reversed
            source (they read it left to right).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model == "pointer" and vocabulary.reverse:
        raise ValueError("the pointer model reads the source left to right: reverse must be False")
    sizes = {
        "num_features": len(vocabulary.tags) if uses_tags else 0,
        "num_chars": len(vocabulary.chars) if settings.chars else 0,
    }
    if model.startswith("chart-"):
        encoder = {k: v for k, v in settings.model.items() if k in _SPAN_SCORER_FIELDS}
        config = SpanScorerConfig(
            num_words=len(vocabulary.words),
            num_labels=len(vocabulary.labels),
            span_hidden=settings.span_hidden,
            objective=model.removeprefix("chart-"),
            **sizes,
            **encoder,
        )
        return ChartParser(SpanScorer(config), vocabulary)
    config = Seq2SeqConfig(
        num_source=len(vocabulary.words),
        num_target=len(vocabulary.targets),
        attention="none" if model == "none" else settings.attention,
        pointer_token=vocabulary.targets.index(WORD) if model == "pointer" else None,
        **sizes,
        **settings.model,
    )
    return Parser(Seq2Seq(config), vocabulary)


#: The `SpanScorerConfig` fields a chart parser takes from `ParsingSettings.model`.
_SPAN_SCORER_FIELDS = {
    f.name for f in fields(SpanScorerConfig) if f.name not in ("num_words", "num_labels")
}


def _score(parser: BaseParser, test: Sequence[Tree], mode: str, beam: int) -> dict:
    """What a test row records of ``parser`` decoding the ``test`` sentences with ``mode``:
    ``metrics`` (EVALB ``precision``, ``recall``, ``f1`` and ``exact`` match after repair,
    and ``well_formed``, the share of outputs that were trees before repair, all fractions;
    ``evalb_errors``, the sentences EVALB left out; ``sentences_per_second``),
    ``sentences``, ``f1_by_length`` (`_f1_by_length`), ``outputs`` (each sentence's output
    tokens, space-separated), ``example`` (`_example`: the gold and parsed trees of one
    sentence, bracketed) and, for the constrained decoder of a parser with attention,
    ``attention`` (`_attention_samples`)."""
    sentences, tags = inputs_of(test)
    begin = time.perf_counter()
    parses = parser.parse(sentences, tags if parser.uses_tags else None, mode=mode, beam=beam)
    seconds = time.perf_counter() - begin
    parsed = gold_tagged(parses, tags)
    result = evalb(list(test), parsed)
    scored = {
        "metrics": {
            "f1": result.f1,
            "precision": result.precision,
            "recall": result.recall,
            "exact": result.exact_match,
            "well_formed": sum(p.well_formed for p in parses) / len(parses),
            "evalb_errors": len(result.errors) + len(result.skipped),
            "sentences_per_second": len(parses) / seconds,
        },
        "sentences": len(parses),
        "f1_by_length": _f1_by_length(test, parsed),
        "outputs": [" ".join(p.tokens) for p in parses],
        "example": _example(test, parsed),
    }
    if mode == "constrained":
        samples = _attention_samples(parser, test, parses)
        if samples:
            scored["attention"] = samples
    return scored


def _example(gold: Sequence[Tree], parsed: Sequence[Tree]) -> dict[str, str]:
    """The gold and parsed trees, bracketed, of the shortest test sentence of 8 to 15 words
    (else the first): ``{"gold", "parsed"}``, the same sentence for every parser."""
    lengths = [len(tree.leaves()) for tree in gold]
    fitting = [k for k, length in enumerate(lengths) if 8 <= length <= 15]
    k = min(fitting, key=lambda k: (lengths[k], k)) if fitting else 0
    return {"gold": str(gold[k]), "parsed": str(parsed[k])}


def _f1_by_length(gold: Sequence[Tree], parsed: Sequence[Tree]) -> dict[str, float | None]:
    """EVALB F1 (a fraction) of the test sentences in each of `LENGTH_BINS` (``None``: no
    sentence), keyed ``"1-10"``, ..., ``"41+"``."""
    scores = {}
    for first, last in LENGTH_BINS:
        name = f"{first}-{last}" if last else f"{first}+"
        chosen = [
            k
            for k, tree in enumerate(gold)
            if first <= len(tree.leaves()) and (last is None or len(tree.leaves()) <= last)
        ]
        picked = ([gold[k] for k in chosen], [parsed[k] for k in chosen])
        scores[name] = evalb(*picked).f1 if chosen else None
    return scores


def _attention_samples(parser: Parser, test: Sequence[Tree], parses: Sequence[Parse]) -> list:
    """What the attention maps show of a sequence-to-sequence parser with attention, on the
    two shortest test sentences of 6+ words (else the first): ``[{"words", "outputs",
    "weights"}]``, the words in the encoder's reading order (reversed for a parser reading
    backwards), the output tokens of ``parses``, and the ``(T + 1, S)`` attention weights of
    each output token and ``</s>`` over the words, to 4 decimals; ``[]`` without
    attention."""
    lengths = [len(tree.leaves()) for tree in test]
    longer = [k for k, length in enumerate(lengths) if length >= 6]
    samples = []
    for k in sorted(longer, key=lengths.__getitem__)[:2] or [0]:
        sentence = test[k].leaves()
        tags = [tag for tag, _ in test[k].preterminals()] if parser.uses_tags else None
        weights = parser.attention(sentence, parses[k].tokens, tags)
        if weights is None:
            return []
        samples.append(
            {
                "words": sentence[::-1] if parser.vocabulary.reverse else list(sentence),
                "outputs": list(parses[k].tokens),
                "weights": [[round(w, 4) for w in row] for row in weights.tolist()],
            }
        )
    return samples


def run_parsing(
    train: Sequence[Tree],
    dev: Sequence[Tree],
    test: Sequence[Tree],
    run_dir: Path,
    inputs: Sequence[str] = INPUTS,
    models: Sequence[str] = MODELS,
    settings: ParsingSettings | None = None,
    corpus: str = "ptb",
    progress: bool = False,
    data: dict[str, list[dict[str, str]]] | None = None,
    log: Callable[[str], None] = print,
    seeds: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    save_every: int = 0,
) -> dict:
    """Train and evaluate every (input, model) pair with every seed; write the run folder.

    Args:
        train: Normalised training trees.
        dev: Normalised development trees (selection by F1).
        test: Normalised test trees.
        run_dir: The run folder (created; reused to resume and to add parsers).
        inputs: Among `INPUTS`.
        models: Among `MODELS`.
        settings: Sizes, training and decoding (default `ParsingSettings()`); the
            ``training.seed`` is replaced by each of ``seeds``.
        corpus: The corpus name recorded.
        progress: Show a progress bar over each epoch's batches.
        data: The treebank files read, ``{split: [{"path", "sha256"}]}``
            (`treebank_checksums`): recorded, and a run folder made from files of other
            contents is refused.
        log: Where each parser's training writes one line per epoch (also kept beside its
            checkpoint, ``checkpoints/<input>-<model>-seed<seed>.log``).
        seeds: The training seeds: one parser of each pair per seed, its initial weights and
            batch order drawn from it (default: ``settings.training.seed`` alone; a seed
            given twice trains once).
        device: Where the parsers train and parse (`hybrid.training.resolve_device`).
        save_every: Also checkpoint every this many steps within an epoch
            (`hybrid.training.train`).

    Returns:
        The content of ``results.json`` (`hybrid.runs`), with the rows of the other
        processes that share the folder.

    Raises:
        ValueError: Unknown inputs or models, no seed, an empty split, a device that cannot
            train, or a run folder made with other settings (naming ``results.json`` and each
            setting; only ``training.epochs`` may be raised).
    """
    settings = settings or ParsingSettings()
    seeds = [settings.training.seed] if seeds is None else list(dict.fromkeys(seeds))
    for name, given, known in (("inputs", inputs, INPUTS), ("models", models, MODELS)):
        if set(given) - set(known):
            raise ValueError(f"{name} must be among {known}, got {sorted(set(given) - set(known))}")
    if not seeds:
        raise ValueError("seeds: expected at least one training seed")
    if not train or not dev or not test:
        raise ValueError("train, dev and test must all hold trees")
    device = resolve_device(device)
    # every seed checked (`ParserTrainConfig`) before anything trains
    trainings = {seed: replace(settings.training, seed=seed) for seed in seeds}
    folder = RunFolder(run_dir, "parsing", PRIMARY)
    recorded = {"train_trees": len(train), **asdict(settings)}
    del recorded["training"]["seed"]  # a row's key
    recorded = json.loads(json.dumps(recorded))  # as read back from results.json
    claimed = folder.claim(corpus, recorded, data, may_raise=_RAISABLE)
    # every process of a torchrun group goes by what the first one found
    finished = distributed.all_gather(_finished(claimed["rows"], folder.models))[0]
    draw = partial(_draw, Path(run_dir))
    vocabulary = ParsingVocabulary.build(train, settings.labelled_closing, settings.reverse)
    results: dict = {}
    for seed in seeds:
        for source in inputs:
            for model in models:
                name = _file_name(source, model, seed)
                if (source, model, seed) in finished:
                    if not is_main():
                        continue
                    parser = BaseParser.load(folder.models / f"{name}.pt", device)
                    mine = _rows_of(claimed["rows"], source, model, seed)
                    history = next(r for r in mine if r["split"] == "dev")["history"]
                    scored = {r["decoder"] for r in mine if r["split"] == "test"}
                    modes = [mode for mode in parser.modes if mode not in scored]
                    fresh = []
                else:
                    torch.manual_seed(seed)  # the same start whatever ran before
                    parser = new_parser(vocabulary, settings, source == "tags", model)
                    parser.model.to(device)
                    checkpoint = folder.checkpoints / f"{name}.pt"
                    trained = fit(
                        parser, train, dev, trainings[seed], checkpoint, progress, log, save_every
                    )
                    if not is_main():
                        continue
                    parser.save(folder.models / f"{name}.pt")
                    history, modes = trained.to_dict(), parser.modes
                    fresh = [_dev_row(source, model, seed, parser.modes[0], history, device)]
                for mode in modes:
                    row = _row(source, model, mode, seed, "test", history, device)
                    fresh.append(row | _score(parser, test, mode, settings.beam))
                if fresh:
                    results = folder.add_rows(fresh, draw)
    return results or folder.redraw(draw)


def _file_name(source: str, model: str, seed: int) -> str:
    """The name of a parser's model and checkpoint files (``words-pointer-seed0``)."""
    return f"{source}-{model}-seed{seed}"


def _rows_of(rows: Sequence[dict], source: str, model: str, seed: int) -> list[dict]:
    """The rows of the parser of ``source``, ``model`` and ``seed``."""
    return [r for r in rows if (r["task"], r["system"], r["seed"]) == (source, model, seed)]


def _finished(rows: Sequence[dict], models: Path) -> set[tuple[str, str, int]]:
    """The ``(input, model, seed)`` of the parsers that finished training: those with their
    development row (written with their test rows) and their saved model."""
    keys = {(r["task"], r["system"], r["seed"]) for r in rows if r["split"] == "dev"}
    return {key for key in keys if (models / f"{_file_name(*key)}.pt").exists()}


def _row(
    source: str,
    model: str,
    decoder: str,
    seed: int,
    split: str,
    history: dict,
    device: torch.device,
) -> dict:
    """The key and the training of a row: ``task`` (the input), ``system`` (the model),
    ``decoder``, ``seed``, ``split``; ``epochs`` trained, ``seconds`` of training (both
    over every resume) and the ``environment`` (`hybrid.runs.environment`)."""
    return {
        "task": source,
        "system": model,
        "decoder": decoder,
        "seed": seed,
        "split": split,
        "epochs": len(history["loss"]),
        "seconds": sum(history["seconds"]),
        "environment": environment(device),
    }


def _dev_row(
    source: str, model: str, seed: int, decoder: str, history: dict, device: torch.device
) -> dict:
    """The development row of a parser: the ``f1`` (a fraction) and ``loss`` of its best
    epoch, scored with its quickest ``decoder`` during training (`dev_scores`), that
    ``best_epoch`` and the whole training ``history`` (`hybrid.training.History.to_dict`)."""
    best = history["best_epoch"]
    metrics = {"f1": history["dev_f1"][best - 1], "loss": history["dev_loss"][best - 1]}
    return _row(source, model, decoder, seed, "dev", history, device) | {
        "metrics": metrics,
        "best_epoch": best,
        "history": history,
    }


def redraw(run_dir: str | os.PathLike[str]) -> dict:
    """Draw ``results.md`` and every plot of a parsing run folder again from its
    ``results.json`` alone (no corpus read, no parser loaded); returns its content.

    Raises:
        ValueError: naming ``results.json``, when it is missing, of another schema, or of
            another domain's run.
    """
    run_dir = Path(run_dir)
    return RunFolder(run_dir, "parsing", PRIMARY).redraw(partial(_draw, run_dir))


def _draw(run_dir: Path, results: dict) -> None:
    """Write ``results.md`` (`results_table`), ``training.png``, ``f1-by-length.png``,
    ``attention.png``, ``pointer-attention.png`` and ``tree.png`` (`_plot_example`) of
    ``run_dir`` from ``results``, the content of its ``results.json``."""
    rows = results["rows"]
    write_text_atomic(run_dir / "results.md", results_table(results))
    several = len({r["seed"] for r in rows}) > 1
    histories = {
        f"{r['task']}-{r['system']}" + (f" seed {r['seed']}" if several else ""): r["history"]
        for r in _ordered(rows, "dev")
    }
    if histories:
        plot_training(histories, run_dir / "training.png")
    plot_f1_by_length(_by_length(rows), run_dir / "f1-by-length.png", _MODEL_NAMES)
    _plot_attention_samples(rows, run_dir)
    _plot_example(rows, run_dir / "tree.png")


def _plot_example(rows: Sequence[dict], path: Path) -> None:
    """Draw the gold tree of the example sentence above the parse of the test row with the
    highest F1 (the first of ties, lowest seed), when a row holds an example."""
    shown = [r for r in _ordered(rows, "test") if "example" in r]
    if not shown:
        return
    best = max(shown, key=lambda r: r["metrics"]["f1"])
    name = f"{_MODEL_NAMES[best['system']]}, {best['decoder']}, {best['task']}"
    trees = [Tree.from_string(best["example"][k]) for k in ("gold", "parsed")]
    titles = ["gold tree", f"{name} (test F1 {100 * best['metrics']['f1']:.1f})"]
    plot_trees(trees, titles, path)


def _ordered(rows: Sequence[dict], split: str) -> list[dict]:
    """The rows of ``split`` by input, model, decoder and seed."""
    return sorted(
        (r for r in rows if r["split"] == split),
        key=lambda r: (
            INPUTS.index(r["task"]),
            MODELS.index(r["system"]),
            DECODERS.index(r["decoder"]),
            r["seed"],
        ),
    )


def _by_length(rows: Sequence[dict]) -> list[dict]:
    """Test F1 by sentence length of every input, model and decoder: ``[{"task", "system",
    "decoder", "f1_by_length": {bin: mean over seeds, a fraction, or None}}]``."""
    seeds: dict[tuple, list[dict]] = {}
    for row in _ordered(rows, "test"):
        seeds.setdefault((row["task"], row["system"], row["decoder"]), []).append(row)
    lines = []
    for (source, model, decoder), mine in seeds.items():
        means = {
            name: _mean([row["f1_by_length"][name] for row in mine])
            for name in mine[0]["f1_by_length"]
        }
        lines.append({"task": source, "system": model, "decoder": decoder, "f1_by_length": means})
    return lines


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not ``None`` (``None`` if none is)."""
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def _plot_attention_samples(rows: Sequence[dict], run_dir: Path) -> None:
    """Attention maps of the attention parsers (``attention.png``, ``pointer-attention.png``)
    from the ``attention`` of their constrained test rows: the input ``words`` where the
    folder has it, the lowest seed."""
    drawn = [r for r in _ordered(rows, "test") if "attention" in r]
    if not drawn:
        return
    source = "words" if any(r["task"] == "words" for r in drawn) else drawn[0]["task"]
    for model, name in (("attention", "attention.png"), ("pointer", "pointer-attention.png")):
        mine = [r for r in drawn if (r["task"], r["system"]) == (source, model)]
        if mine:
            row = min(mine, key=lambda r: r["seed"])
            title = f"{_MODEL_NAMES[model]}, {source} input, constrained beam output"
            plot_attention(row["attention"], run_dir / name, title)


#: The test metrics of the main table of ``results.md``.
_TABLE_METRICS = ("f1", "exact", "well_formed", "sentences_per_second")


def results_table(results: dict) -> str:
    """``results.md`` from the content of ``results.json``: one row per model and decoder,
    one column group per input (test F1 and exact match, the outputs that were trees
    before repair and the speed; where the folder holds several seeds, F1 and exact match
    as mean ± standard deviation over seeds with their number in brackets, the rest as
    means); then test F1 by sentence length (mean over seeds) and each parser's
    training."""
    rows = results["rows"]
    seeds = sorted({r["seed"] for r in rows})
    several = len(seeds) > 1
    summary = {
        (s["task"], s["system"], s["decoder"], s["metric"]): s
        for s in results["summary"]
        if s["split"] == "test"
    }
    inputs = [i for i in INPUTS if any(r["task"] == i and r["split"] == "test" for r in rows)]
    over = ""
    if several:
        listed = ", ".join(map(str, seeds))
        over = f"; mean ± std over seeds {listed} (how many trained it), means of the rest"
    lines = [
        f"# Parsing: sequence-to-sequence and chart parsers ({results['corpus']})",
        "",
        "Test set, EVALB (COLLINS.prm) labelled bracket F1 after repair, exact match (%), "
        f"outputs that were trees before repair (%), sentences parsed per second{over}.",
        "",
    ]
    header = "| model | decoder |"
    rule = "| --- | --- |"
    for source in inputs:
        header += f" F1 ({_INPUT_NAMES[source]}) | exact | trees | sent/s |"
        rule += " ---: | ---: | ---: | ---: |"
    lines += [header, rule]
    for model in MODELS:
        for mode in DECODERS:
            cells = [_MODEL_NAMES[model], mode]
            found = False
            for source in inputs:
                if (source, model, mode, "f1") not in summary:
                    cells += ["-"] * 4
                    continue
                found = True
                metrics = {m: summary[source, model, mode, m] for m in _TABLE_METRICS}
                cells += [
                    _percent(metrics["f1"], 2, several),
                    _percent(metrics["exact"], 1, several),
                    f"{100 * metrics['well_formed']['mean']:.1f}",
                    f"{metrics['sentences_per_second']['mean']:.1f}",
                ]
            if found:
                lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_length_table(rows, several)]
    lines += ["", "Training (seconds, epochs, best epoch by development F1):", ""]
    for row in _ordered(rows, "dev"):
        lines.append(
            f"- {row['task']}-{row['system']} (seed {row['seed']}): {row['seconds']:.0f} s, "
            f"{row['epochs']} epochs, best epoch {row['best_epoch']} "
            f"(dev F1 {100 * row['metrics']['f1']:.2f})"
        )
    return "\n".join(lines) + "\n"


def _percent(entry: dict, digits: int, spread: bool) -> str:
    """A summary entry (`hybrid.runs.summarise`) in percent: the mean, and with ``spread``
    the standard deviation and the number of seeds."""
    shown = f"{100 * entry['mean']:.{digits}f}"
    if spread:
        shown += f" ± {100 * entry['std']:.{digits}f} ({entry['seeds']})"
    return shown


def _length_table(rows: Sequence[dict], several: bool) -> list[str]:
    """The lines of the F1-by-length table: one row per (input, model, decoder), one column
    per `LENGTH_BINS` bin, in percent (``several``: means over seeds)."""
    lines = _by_length(rows)
    if not lines:
        return []
    bins = list(lines[0]["f1_by_length"])
    table = [
        "Test F1 by sentence length (words)" + (", mean over seeds:" if several else ":"),
        "",
        "| input | model | decoder | " + " | ".join(bins) + " |",
        "| --- | --- | --- |" + " ---: |" * len(bins),
    ]
    for line in lines:
        cells = ["-" if v is None else f"{100 * v:.1f}" for v in line["f1_by_length"].values()]
        table.append(
            f"| {line['task']} | {_MODEL_NAMES[line['system']]} | {line['decoder']} | "
            + " | ".join(cells)
            + " |"
        )
    return table
