"""The parsing comparison: seq2seq without attention, with it, with it and the word pointer,
and the chart parser trained as a tree CRF or a structured SVM, all on one encoder.

For each input (``words``; ``tags``: words and the treebank's POS tags) and each model
(``none``: the encoder-decoder without attention; ``attention``; ``pointer``: attention and
the word pointer; ``chart-crf`` and ``chart-ssvm``: span scores from the same encoder and
CKY, see `new_parser`), one parser is trained on the training trees and selected by
development F1. Each parses the test sentences with every decoder it has (greedy, beam and
constrained; CKY and minimum Bayes risk); a row records EVALB precision, recall and F1
(after repair), F1 by sentence length, exact match, the share of outputs that were trees
before repair, and the speed.

The run folder receives ``results.json`` (every row, with training histories), ``results.md``,
``models/<input>-<model>.pt`` (for ``hybrid parse``), ``checkpoints/`` (resumable training),
``training.png``, ``f1-by-length.png``, ``attention.png`` and ``pointer-attention.png``. A
rerun reads the finished parsers back and trains only the missing ones (scoring, from its
saved model, a finished parser's decoders that have no row yet); other settings in
the same folder are refused, but for more epochs: the folder then records the change
(``changes`` in ``results.json``), and its parsers, trained for fewer, train on from their
checkpoints when asked for again.
``results.json`` is read, changed and written back under a lock (`hybrid.files.update_json`),
so that separate processes can train different parsers into one folder and lose no rows.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import torch

from ..corpora import HELD_OUT_SEED, checksums, expand_paths, hold_out
from ..files import data_root, file_lock, read_json, update_json, write_text_atomic
from ..nn.seq2seq import Seq2Seq, Seq2SeqConfig
from ..nn.span_scorer import SpanScorer, SpanScorerConfig
from ..saved import check_same_setup, record_changes
from .chart import CHART_MODES, ChartParser
from .data import ParsingVocabulary
from .evalb import evalb
from .linearize import WORD
from .parser import MODES, BaseParser, Parser
from .plots import plot_attention, plot_f1_by_length, plot_training
from .synthetic import synthetic_trees
from .train import ParserTrainConfig, fit, gold_tagged, inputs_of
from .tree import Tree
from .treebank import normalize, ptb_split, read_trees

__all__ = [
    "DECODERS",
    "INPUTS",
    "LENGTH_BINS",
    "MODELS",
    "ParsingSettings",
    "default_settings",
    "load_corpus",
    "load_treebank_files",
    "new_parser",
    "run_parsing",
    "seeds_table",
    "treebank_checksums",
]

INPUTS = ("words", "tags")
#: The settings a run folder may be asked for again with a larger value (to train on).
_RAISABLE = ("training.epochs",)
MODELS = ("none", "attention", "pointer", "chart-crf", "chart-ssvm")
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


def default_settings(corpus: str, epochs: int | None = None, seed: int = 0) -> ParsingSettings:
    """The recipe's settings: small and quick on the synthetic treebank, larger on the PTB."""
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
            training=ParserTrainConfig(epochs=epochs or 15, batch_size=32, lr=3e-3, seed=seed),
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
        training=ParserTrainConfig(epochs=epochs or 30, batch_size=32, lr=1e-3, seed=seed),
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
    sentences, tags = inputs_of(test)
    begin = time.perf_counter()
    parses = parser.parse(sentences, tags if parser.uses_tags else None, mode=mode, beam=beam)
    seconds = time.perf_counter() - begin
    parsed = gold_tagged(parses, tags)
    result = evalb(list(test), parsed)
    return {
        "decoder": mode,
        "precision": 100 * result.precision,
        "recall": 100 * result.recall,
        "f1": 100 * result.f1,
        "f1_by_length": _f1_by_length(test, parsed),
        "exact": 100 * result.exact_match,
        "evalb_errors": len(result.errors) + len(result.skipped),
        "well_formed": 100.0 * sum(p.well_formed for p in parses) / len(parses),
        "sentences": len(parses),
        "sentences_per_second": len(parses) / seconds,
        "outputs": [" ".join(p.tokens) for p in parses],
    }


def _f1_by_length(gold: Sequence[Tree], parsed: Sequence[Tree]) -> dict[str, float | None]:
    """EVALB F1 (%) of the test sentences in each of `LENGTH_BINS` (``None``: no sentence),
    keyed ``"1-10"``, ..., ``"41+"``."""
    scores = {}
    for first, last in LENGTH_BINS:
        name = f"{first}-{last}" if last else f"{first}+"
        chosen = [
            k
            for k, tree in enumerate(gold)
            if first <= len(tree.leaves()) and (last is None or len(tree.leaves()) <= last)
        ]
        picked = ([gold[k] for k in chosen], [parsed[k] for k in chosen])
        scores[name] = 100 * evalb(*picked).f1 if chosen else None
    return scores


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
) -> dict:
    """Train and evaluate every (input, model) pair; write the run folder; return its results.

    ``data``: the treebank files read, ``{split: [{"path", "sha256"}]}``
    (`treebank_checksums`): their checksums are recorded, and a run folder made from files
    of other contents is refused. ``log``: where each parser's training writes one line per
    epoch (also kept beside its checkpoint, ``checkpoints/<input>-<model>.log``).

    Raises:
        ValueError: Unknown inputs or models, empty splits, or a run folder made with other
            settings.
    """
    settings = settings or ParsingSettings()
    for name, given, known in (("inputs", inputs, INPUTS), ("models", models, MODELS)):
        if set(given) - set(known):
            raise ValueError(f"{name} must be among {known}, got {sorted(set(given) - set(known))}")
    if not train or not dev or not test:
        raise ValueError("train, dev and test must all hold trees")
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.json"
    requested = {"corpus": corpus, "train_trees": len(train), **asdict(settings)}
    if data:
        requested["data"] = {split: [f["sha256"] for f in files] for split, files in data.items()}
    requested = json.loads(json.dumps(requested))

    # a rerun with other settings is refused from here on
    claimed = update_json(path, partial(_claim, path, requested))
    histories = claimed["histories"]
    vocabulary = ParsingVocabulary.build(train, settings.labelled_closing, settings.reverse)
    for source in inputs:
        for model in models:
            key = f"{source}-{model}"
            if key in histories:
                _score_new_decoders(claimed, run_dir, source, model, test, settings.beam)
                continue
            torch.manual_seed(settings.training.seed)  # the same start whatever ran before
            parser = new_parser(vocabulary, settings, source == "tags", model)
            history = fit(
                parser,
                train,
                dev,
                settings.training,
                run_dir / "checkpoints" / f"{key}.pt",
                progress,
                log,
            )
            train_seconds = sum(history.seconds)  # all epochs, also those before a resume
            parser.save(run_dir / "models" / f"{key}.pt")
            fresh = [
                {"input": source, "model": model, "train_seconds": train_seconds, **row}
                for row in (_score(parser, test, mode, settings.beam) for mode in parser.modes)
            ]
            update_json(path, partial(_add_rows, key, fresh, history.to_dict()))
    with file_lock(path):  # with the parsers other processes finished
        results = read_json(path)
        write_text_atomic(run_dir / "results.md", results_table(results, corpus))
        plot_training(results["histories"], run_dir / "training.png")
        plot_f1_by_length(results["rows"], run_dir / "f1-by-length.png", _MODEL_NAMES)
        _plot_attention_samples(run_dir, test, inputs, settings.beam)
    return results


def _claim(path: Path, requested: dict, saved: dict) -> dict:
    """``saved``, the ``results.json`` at ``path``, taken over by a run of the ``requested``
    settings. Other settings are refused, but for more epochs (`_RAISABLE`): the change is
    recorded, and the rows and histories of the parsers, trained for fewer, are dropped."""
    changes = check_same_setup(path, saved.get("settings"), requested, may_raise=_RAISABLE)
    claimed = {"rows": [], "histories": {}} | saved | {"settings": requested}
    if changes:  # every parser trains on, from its checkpoint
        claimed |= {"rows": [], "histories": {}}
    return record_changes(claimed, changes)


def _score_new_decoders(
    results: dict, run_dir: Path, source: str, model: str, test: Sequence[Tree], beam: int
) -> None:
    """Score a parser that finished before it had some of its decoders (its saved model read
    back), adding their rows to ``results.json``."""
    key = f"{source}-{model}"
    scored = {r["decoder"] for r in results["rows"] if (r["input"], r["model"]) == (source, model)}
    parser = BaseParser.load(run_dir / "models" / f"{key}.pt")
    missing = [mode for mode in parser.modes if mode not in scored]
    if not missing:
        return
    history = results["histories"][key]
    seconds = sum(history["seconds"])
    fresh = [
        {"input": source, "model": model, "train_seconds": seconds, **row}
        for row in (_score(parser, test, mode, beam) for mode in missing)
    ]
    update_json(run_dir / "results.json", partial(_add_rows, key, fresh, history))


def _add_rows(key: str, fresh: list[dict], history: dict, saved: dict) -> dict:
    """``saved`` (a ``results.json``) with the ``fresh`` rows and the history of parser
    ``key`` (``<input>-<model>``), replacing the rows of the same decoders."""
    replaced = {(r["input"], r["model"], r["decoder"]) for r in fresh}
    rows = [r for r in saved["rows"] if (r["input"], r["model"], r["decoder"]) not in replaced]
    return saved | {"rows": rows + fresh, "histories": saved["histories"] | {key: history}}


def _plot_attention_samples(
    run_dir: Path, test: Sequence[Tree], inputs: Sequence[str], beam: int
) -> None:
    """Attention maps of the attention parsers (``attention.png``, ``pointer-attention.png``)
    on the two shortest test sentences of 6+ words."""
    source = "words" if "words" in inputs else inputs[0]
    chosen = sorted((t for t in test if len(t.leaves()) >= 6), key=lambda t: len(t.leaves()))[:2]
    for model, name in (("attention", "attention.png"), ("pointer", "pointer-attention.png")):
        path = run_dir / "models" / f"{source}-{model}.pt"
        if not path.exists():
            continue
        parser = Parser.load(path)
        samples = []
        for tree in chosen or test[:1]:
            sentence, tags = tree.leaves(), [tag for tag, _ in tree.preterminals()]
            tags = tags if parser.uses_tags else None
            parse = parser.parse([sentence], None if tags is None else [tags], beam=beam)[0]
            weights = parser.attention(sentence, parse.tokens, tags)
            shown = sentence[::-1] if parser.vocabulary.reverse else sentence
            samples.append((weights, shown, parse.tokens))
        title = f"{_MODEL_NAMES[model]}, {source} input, constrained beam output"
        plot_attention(samples, run_dir / name, title)


def results_table(results: dict, corpus: str) -> str:
    """``results.md``: one row per model and decoder, one column group per input."""
    rows = results["rows"]
    inputs = [i for i in INPUTS if any(r["input"] == i for r in rows)]
    lines = [
        f"# Parsing: sequence-to-sequence and chart parsers ({corpus})",
        "",
        "Test set, EVALB (COLLINS.prm) labelled bracket F1 after repair, exact match (%), "
        "outputs that were trees before repair (%), sentences parsed per second.",
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
                row = next(
                    (
                        r
                        for r in rows
                        if (r["input"], r["model"], r["decoder"]) == (source, model, mode)
                    ),
                    None,
                )
                if row is None:
                    cells += ["-"] * 4
                    continue
                found = True
                cells += [
                    f"{row['f1']:.2f}",
                    f"{row['exact']:.1f}",
                    f"{row['well_formed']:.1f}",
                    f"{row['sentences_per_second']:.1f}",
                ]
            if found:
                lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_length_table(rows, inputs)]
    lines += ["", "Training (seconds, epochs, best epoch by development F1):", ""]
    for key, history in results["histories"].items():
        best = max(range(len(history["dev_f1"])), key=history["dev_f1"].__getitem__)
        seconds = sum(history["seconds"])
        lines.append(
            f"- {key}: {seconds:.0f} s, {len(history['loss'])} epochs, best epoch {best + 1} "
            f"(dev F1 {history['dev_f1'][best]:.2f})"
        )
    return "\n".join(lines) + "\n"


def _length_table(rows: list[dict], inputs: list[str]) -> list[str]:
    """The lines of the F1-by-length table: one row per (input, model, decoder), one column
    per `LENGTH_BINS` bin (rows of runs made before it are left out)."""
    rows = [r for r in rows if "f1_by_length" in r]
    if not rows:
        return []
    bins = list(rows[0]["f1_by_length"])
    lines = [
        "Test F1 by sentence length (words):",
        "",
        "| input | model | decoder | " + " | ".join(bins) + " |",
        "| --- | --- | --- |" + " ---: |" * len(bins),
    ]
    order = {(m, d): k for k, (m, d) in enumerate((m, d) for m in MODELS for d in DECODERS)}
    for row in sorted(
        rows, key=lambda r: (inputs.index(r["input"]), order[r["model"], r["decoder"]])
    ):
        cells = ["-" if v is None else f"{v:.1f}" for v in row["f1_by_length"].values()]
        lines.append(
            f"| {row['input']} | {_MODEL_NAMES[row['model']]} | {row['decoder']} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def seeds_table(runs: dict[int, dict], corpus: str) -> str:
    """The comparison over seeds: ``runs`` maps each seed to the ``results.json`` of its run
    folder (`run_parsing` with that ``training.seed``); one row per (input, model, decoder)
    with the mean ± standard deviation over the seeds that trained it of the test F1, exact
    match and F1 by sentence length, and the mean speed."""
    keys = {
        (r["input"], r["model"], r["decoder"]) for results in runs.values() for r in results["rows"]
    }
    order = {(m, d): k for k, (m, d) in enumerate((m, d) for m in MODELS for d in DECODERS)}
    bins = [f"{a}-{b}" if b else f"{a}+" for a, b in LENGTH_BINS]
    lines = [
        f"# Parsing over seeds ({corpus})",
        "",
        f"Test set, EVALB (COLLINS.prm) labelled bracket F1 and exact match (%), mean ± std over "
        f"the seeds that trained each parser (seeds {sorted(runs)}); F1 by sentence length "
        "(words), mean over seeds; sentences parsed per second, mean.",
        "",
        "| input | model | decoder | seeds | F1 | exact | " + " | ".join(bins) + " | sent/s |",
        "| --- | --- | --- | ---: | ---: | ---: |" + " ---: |" * (len(bins) + 1),
    ]
    for source, model, decoder in sorted(
        keys, key=lambda k: (INPUTS.index(k[0]), order[k[1], k[2]])
    ):
        mine = [
            row
            for results in runs.values()
            for row in results["rows"]
            if (row["input"], row["model"], row["decoder"]) == (source, model, decoder)
        ]
        by_length = [
            _mean([row["f1_by_length"][name] for row in mine if "f1_by_length" in row])
            for name in bins
        ]
        cells = [
            _INPUT_NAMES[source],
            _MODEL_NAMES[model],
            decoder,
            str(len(mine)),
            _mean_std([row["f1"] for row in mine]),
            _mean_std([row["exact"] for row in mine]),
            *("-" if v is None else f"{v:.1f}" for v in by_length),
            f"{statistics.fmean(row['sentences_per_second'] for row in mine):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"
