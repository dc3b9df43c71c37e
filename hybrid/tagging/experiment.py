"""The head comparison: one encoder, softmax vs CRF vs SSVM, several seeds, one run folder.

A run folder ``runs/<name>/`` (`hybrid.runs`) receives ``results.json`` (every head, seed
and split), ``results.md`` (mean and standard deviation over seeds), ``checkpoints/``
(resumable, and the record ``<head>-seed<N>.json`` of each finished training), ``models/``
(trained taggers) and PNG plots (training curves, per-label F1, confusion). The table and
the plots are drawn from ``results.json`` alone (`redraw` draws them again).

``results.json`` follows the schema of `hybrid.runs`, with the settings ``{"sizes",
"tagger", "training", "refit"}`` (the encoder's settings without the head, the training's
without the seed) and two rows per head and seed, on the splits ``"test"`` and ``"dev"``
(``system`` the head; no task or decoder):

- ``metrics``: ``precision``, ``recall`` and ``f1`` (strict span scores of chunk tags;
  token scores of plain labels, where each equals the accuracy), ``accuracy`` (of the
  tokens) and, where the corpus has intents, ``intent_accuracy``; fractions in [0, 1];
- ``epochs`` (of the selection pass), ``seconds`` (training, the refit included),
  ``environment`` (where it trained);
- ``refit_epochs`` (``None`` without a refit), ``tokens_per_second`` (training),
  ``history`` (the selection pass's `hybrid.training.History.to_dict`, without the columns
  that are NaN throughout, such as the intent accuracy of data without intents), and
  ``per_label``: ``{label: {"precision", "recall", "f1", "support"}}``;
- test rows also hold ``confusion``: ``{gold tag: {predicted tag: tokens}}`` over the test
  tokens, every tag of the tagger a key in its order, only the pairs that occur.

After a refit the development sentences were trained on: the dev rows hold the scores of
the selection pass.

Finished (head, seed) pairs are read back instead of retrained, so an interrupted
comparison resumes where it stopped. Runs accumulate: the rows of each (head, seed) are
merged into the folder's ``results.json`` under a lock as it finishes (run again, they
replace its rows), and the table and plots are drawn from all of them; a folder made with
other settings (corpus, data, sizes, encoder, training other than the seed) is refused, but
for more epochs: the folder then records the change (``changes`` in ``results.json``), drops
its rows, and the runs trained for fewer train on from their checkpoints when asked for
again.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import torch

from ..files import read_json, write_json_atomic, write_text_atomic
from ..runs import RunFolder, environment
from ..saved import check_same_setup
from ..training import resolve_device
from ..training.distributed import is_main
from .batching import TaggingVocabulary
from .corpus import Sentence
from .model import Tagger, TaggerConfig
from .plots import plot_confusion, plot_curves, plot_label_f1
from .train import (
    TaggerTrainConfig,
    evaluate,
    fit,
    predict_tags,
    score_tags,
)

__all__ = ["PRIMARY", "redraw", "results_table", "run_comparison"]

#: What `hybrid report` compares first: the test F1, higher is better.
PRIMARY = ("f1", True)

#: The settings a run folder may be asked for again with a larger value (to train on).
_RAISABLE = ("training.epochs",)

#: The metrics of a row, by the names `score_tags` gives them.
_METRICS = {
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "accuracy": "token_accuracy",
    "intent_accuracy": "intent_accuracy",
}


def run_comparison(
    splits: dict[str, Sequence[Sentence]],
    run_dir: Path,
    heads: Sequence[str] = ("softmax", "crf", "ssvm"),
    seeds: Sequence[int] = (0, 1, 2),
    tagger: TaggerConfig | None = None,
    training: TaggerTrainConfig | None = None,
    corpus: str = "corpus",
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str | torch.device = "cpu",
    refit: bool = False,
    files: dict[str, list[dict[str, str]]] | None = None,
    save_every: int = 0,
) -> dict:
    """Train and evaluate every head with every seed on the same splits and encoder.

    Args:
        splits: ``"train"``, ``"valid"`` and ``"test"`` sentences.
        run_dir: The run folder (created; reused to resume).
        heads: Heads to compare.
        seeds: Seeds per head.
        tagger: Encoder architecture (its ``head`` is replaced by each of ``heads``).
        training: Optimisation settings (its ``seed`` is replaced by each of ``seeds``).
        corpus: Name recorded in the results.
        progress: Show progress bars.
        log: Where progress lines go.
        device: Where the models train and evaluate (``"cpu"``, ``"cuda"``, ...).
        refit: After choosing the epoch count on the development split, train again from
            the same initial weights on train + development for that many epochs and report
            that model's test scores (the development scores reported are those of the
            selection pass).
        files: The data files read, ``{split: [{"path", "sha256"}]}``
            (`hybrid.tagging.datasets.TaggingData.files`): recorded, and a run folder or
            checkpoint made from files of other contents is refused.
        save_every: Also checkpoint every this many steps within an epoch
            (`hybrid.training.train`).

    Returns:
        The content of ``results.json``: the rows of this call merged with those already in
        the folder (``{}`` on all but the first process under ``torchrun``).

    Raises:
        ValueError: an empty split, an unusable ``device``, or a run folder made with other
            settings (naming the file and each setting; raising the epochs is allowed).
    """
    for split in ("train", "valid", "test"):
        if not splits.get(split):
            raise ValueError(f"splits must contain a non-empty {split!r} split")
    device = resolve_device(device)
    tagger, training = tagger or TaggerConfig(), training or TaggerTrainConfig()
    # what decides the data and the numbering of the labels, beside the two configurations:
    # recorded with every training, so that none resumes or is read back under another
    setup = {"corpus": corpus, "sizes": {k: len(v) for k, v in splits.items()}, "refit": refit}
    if files:
        setup["data"] = {split: [f["sha256"] for f in entries] for split, entries in files.items()}
    settings = {
        "sizes": setup["sizes"],
        "tagger": {k: v for k, v in asdict(tagger).items() if k != "head"},
        "training": {k: v for k, v in asdict(training).items() if k != "seed"},
        "refit": refit,
    }
    folder = RunFolder(run_dir, "tagging", PRIMARY)
    results = folder.claim(corpus, settings, files or None, may_raise=_RAISABLE)
    # a refit trains on the development labels too: they must all be in the label vocabularies
    more_labels = splits["valid"] if refit else ()
    vocabulary = TaggingVocabulary.build(splits["train"], more_labels=more_labels)
    scheme = tagger.scheme
    for head in heads:
        for seed in seeds:
            model_path = folder.models / f"{head}-seed{seed}.pt"
            record_path = folder.checkpoints / f"{head}-seed{seed}.json"
            tagger_run, training_run = replace(tagger, head=head), replace(training, seed=seed)
            finished = None
            if model_path.exists() and record_path.exists():
                finished = _read_back(model_path, record_path, tagger_run, training_run, setup)
            if finished is not None:
                model, vocabulary, record = finished
                model.to(device)
                log(f"{head} seed {seed}: finished earlier, read back")
            else:
                model, record = _train(
                    tagger_run,
                    vocabulary,
                    splits,
                    training_run,
                    folder.checkpoints / f"{head}-seed{seed}",
                    setup,
                    device,
                    progress,
                    log,
                    save_every,
                )
                if is_main():
                    model.save(model_path)
                    write_json_atomic(record_path, record)
            rows = _rows(head, seed, model, vocabulary, splits, record, scheme)
            results = folder.add_rows(rows, partial(_draw, folder.path))
            metric = "F1" if scheme else "accuracy"
            log(f"{head} seed {seed}: test {metric} {100 * rows[0]['metrics']['f1']:.2f}")
    return results


def redraw(run_dir: str | os.PathLike[str]) -> dict:
    """Draw ``results.md`` and the plots of the run folder ``run_dir`` again from its
    ``results.json`` alone (no corpus, model or training), with the rows of every process
    that shares the folder; returns the content of ``results.json``.

    Raises:
        ValueError: naming the file, when ``run_dir`` holds no ``results.json`` of this
            schema (`hybrid.runs.read_results`) or one of another domain than tagging.
    """
    folder = RunFolder(run_dir, "tagging", PRIMARY)

    return folder.redraw(partial(_draw, folder.path))


def _read_back(
    model_path: Path,
    record_path: Path,
    tagger: TaggerConfig,
    training: TaggerTrainConfig,
    setup: dict,
) -> tuple[Tagger, TaggingVocabulary, dict] | None:
    """The finished (head, seed) run of ``model_path`` and its record ``record_path``: its
    tagger, vocabularies and record; ``None`` when it is to train on from its checkpoint
    (for more epochs, or to write a record of this version, which says where it trained).

    Raises:
        ValueError: naming the file, when the run was made with other settings or another
            ``setup`` (data, ``refit``; a record from before it was kept is not compared).
    """
    model = Tagger.load(model_path)
    record = read_json(record_path)
    check_same_setup(model_path, asdict(model.config), asdict(tagger))
    check_same_setup(record_path, record.get("run"), setup)
    raised = check_same_setup(
        record_path, record.get("training"), asdict(training), may_raise=("epochs",)
    )
    return None if raised or "environment" not in record else (model, model.vocabulary, record)


def _train(
    tagger: TaggerConfig,
    vocabulary: TaggingVocabulary,
    splits: dict[str, Sequence[Sentence]],
    training: TaggerTrainConfig,
    checkpoint: Path,
    setup: dict,
    device: torch.device,
    progress: bool,
    log: Callable[[str], None],
    save_every: int = 0,
) -> tuple[Tagger, dict]:
    """One (head, seed) run: the selection pass, then the refit pass if ``setup["refit"]``
    asks for it; ``setup`` is recorded in the checkpoints and the record, and checked on
    resume.

    Returns:
        The trained tagger and its record: ``history`` (of the selection pass),
        ``training``, ``run`` (``setup``), ``train_seconds`` (both passes),
        ``tokens_per_second``, ``environment`` (`hybrid.runs.environment`) and, after a
        refit, ``refit_epochs`` and ``dev`` (the selection pass's development scores, as
        `_scores` gives them).
    """
    torch.manual_seed(training.seed)  # the seed decides the initial weights too
    model = Tagger(tagger, vocabulary).to(device)
    history = fit(
        model,
        vocabulary,
        splits["train"],
        splits["valid"],
        training,
        checkpoint.with_suffix(".pt"),
        progress,
        log,
        setup,
        save_every,
    )
    epoch_seconds = sum(history["seconds"])
    tokens = sum(len(s.words) for s in splits["train"]) * len(history)
    record: dict = {"history": history.to_dict(), "training": asdict(training), "run": setup}
    if setup["refit"]:
        record["dev"] = _scores(evaluate(model, vocabulary, splits["valid"], tagger.scheme))
        record["refit_epochs"] = history.best_epoch
        torch.manual_seed(training.seed)
        model = Tagger(tagger, vocabulary).to(device)
        everything = [*splits["train"], *splits["valid"]]
        again = fit(
            model,
            vocabulary,
            everything,
            None,
            replace(training, epochs=record["refit_epochs"]),
            checkpoint.with_name(checkpoint.name + "-refit.pt"),
            progress,
            log,
            setup,
            save_every,
        )
        epoch_seconds += sum(again["seconds"])
        tokens += sum(len(s.words) for s in everything) * len(again)
    record.update(
        train_seconds=epoch_seconds,
        tokens_per_second=tokens / max(epoch_seconds, 1e-9),
        environment=environment(device),
    )
    return model, record


def _rows(
    head: str,
    seed: int,
    model: Tagger,
    vocabulary: TaggingVocabulary,
    splits: dict[str, Sequence[Sentence]],
    record: dict,
    scheme: str | None,
) -> list[dict]:
    """The test and dev rows of one (head, seed) run (see the module's description)."""
    test = splits["test"]
    predicted, intents = predict_tags(model, vocabulary, test)
    gold = [list(s.tags) for s in test]
    dev = record.get("dev") or _scores(evaluate(model, vocabulary, splits["valid"], scheme))
    trained = {
        "epochs": len(record["history"]["loss"]),
        "seconds": record["train_seconds"],
        "environment": record["environment"],
        "refit_epochs": record.get("refit_epochs"),
        "tokens_per_second": record["tokens_per_second"],
        "history": _without_empty_columns(record["history"]),
    }
    return [
        {
            "system": head,
            "seed": seed,
            "split": "test",
            **_scores(score_tags(test, predicted, intents, scheme)),
            **trained,
            "confusion": _confusion(gold, predicted, vocabulary.tags.tokens),
        },
        {"system": head, "seed": seed, "split": "dev", **dev, **trained},
    ]


def _scores(scores: dict) -> dict:
    """``{"metrics", "per_label"}`` of a row from the scores of `score_tags`."""
    metrics = {name: scores[key] for name, key in _METRICS.items() if key in scores}
    return {"metrics": metrics, "per_label": scores["per_label"]}


def _confusion(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], tags: Sequence[str]
) -> dict[str, dict[str, int]]:
    """``{gold tag: {predicted tag: tokens}}`` of the tokens whose gold tag is one of
    ``tags`` (every one a key, in order; only the pairs that occur)."""
    counts: dict[str, dict[str, int]] = {tag: {} for tag in tags}
    for gold_row, predicted_row in zip(gold, predicted, strict=True):
        for g, p in zip(gold_row, predicted_row, strict=True):
            if g in counts:
                counts[g][p] = counts[g].get(p, 0) + 1
    return counts


def _without_empty_columns(history: dict) -> dict:
    """``history`` (`hybrid.training.History.to_dict`) without the columns that are NaN
    throughout, so that ``results.json`` stays strict JSON."""
    return {
        name: values
        for name, values in history.items()
        if not (
            isinstance(values, list)
            and values
            and all(isinstance(v, float) and math.isnan(v) for v in values)
        )
    }


def _heads(rows: Sequence[dict]) -> list[str]:
    """The heads (systems) of ``rows``, in order of first appearance."""
    return list(dict.fromkeys(r["system"] for r in rows))


def _draw(run_dir: Path, results: dict) -> None:
    """Write ``results.md`` and the plots of ``run_dir`` from ``results`` (its
    ``results.json``) alone; a folder without rows yet gets its table only."""
    write_text_atomic(run_dir / "results.md", results_table(results))
    tests = [r for r in results["rows"] if r["split"] == "test"]
    if tests:
        _plots(run_dir, tests, results["settings"]["tagger"]["scheme"] is not None)


def results_table(results: dict) -> str:
    """The Markdown comparison table of ``results`` (a ``results.json``): per head, the test
    split's mean ± std over seeds in percent (its ``summary``), strict span scores of chunk
    tags or token accuracy of plain labels (``tagger.scheme`` ``None``), with the mean
    training time and speed and the devices trained on."""
    settings = results["settings"]
    if settings["tagger"]["scheme"] is not None:
        scored, columns = "strict span scores", ("f1", "precision", "recall", "accuracy")
        names = "span F1 | precision | recall | token acc."
    else:
        scored, columns, names = "token scores of plain labels", ("accuracy",), "token acc."
    columns += ("intent_accuracy",)
    lines = [
        f"# {results['corpus']}: softmax vs CRF vs structured SVM on one encoder",
        "",
        f"Test split, mean ± std over seeds, {scored} in percent. Sizes: "
        + ", ".join(f"{k} {v}" for k, v in settings["sizes"].items())
        + ".",
        "",
        f"| head | seeds | {names} | intent acc. | train time (s) | tokens/s | trained on |",
        "| --- | ---: | " + "---: | " * len(columns) + "---: | ---: | --- |",
    ]
    summary = {(s["system"], s["metric"]): s for s in results["summary"] if s["split"] == "test"}
    tests = [r for r in results["rows"] if r["split"] == "test"]
    for head in _heads(tests):
        mine = [r for r in tests if r["system"] == head]
        cells = [_mean_std(summary.get((head, metric))) for metric in columns]
        seconds = statistics.fmean(r["seconds"] for r in mine)
        speed = statistics.fmean(r["tokens_per_second"] for r in mine)
        devices = sorted({r["environment"]["device"] for r in mine})
        lines.append(
            f"| {head} | {len(mine)} | " + " | ".join(cells) + f" | {seconds:.0f} | "
            f"{speed:.0f} | {', '.join(devices)} |"
        )
    return "\n".join(lines) + "\n"


def _mean_std(entry: dict | None) -> str:
    """A summary entry as ``mean ± std`` in percent, ``-`` where there is none."""
    if entry is None:
        return "-"
    return f"{100 * entry['mean']:.2f} ± {100 * entry['std']:.2f}"


def _plots(run_dir: Path, tests: list[dict], chunks: bool) -> None:
    """Training curves and per-label F1 of every test row, and the confusion of the first
    CRF seed (else of the first head's first seed); ``chunks``: the tags are chunk tags
    (else plain labels, scored token by token)."""
    heads = _heads(tests)
    histories = {(r["system"], r["seed"]): r["history"] for r in tests}
    plot_curves(histories, run_dir / "training_curves.png", "span F1" if chunks else "accuracy")
    scores, support = {}, {}
    for head in heads:
        labels = {}
        for row in (r for r in tests if r["system"] == head):
            for label, entry in row["per_label"].items():
                labels.setdefault(label, []).append(entry["f1"])
                support[label] = entry["support"]
        scores[head] = {label: statistics.fmean(v) for label, v in labels.items()}
    plot_label_f1(scores, support, run_dir / "label_f1.png", units="spans" if chunks else "tokens")
    best_head = "crf" if "crf" in heads else heads[0]
    best = min((r for r in tests if r["system"] == best_head), key=lambda r: r["seed"])
    plot_confusion(
        best["confusion"],
        run_dir / "confusion.png",
        title=f"{best_head}, seed {best['seed']}, test",
    )
