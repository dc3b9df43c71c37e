"""The head comparison: one encoder, softmax vs CRF vs SSVM, several seeds, one run folder.

A run folder ``runs/<name>/`` receives ``results.json`` (every split, head and seed),
``results.md`` (mean and standard deviation over seeds), ``checkpoints/`` (resumable),
``models/`` (trained taggers) and PNG plots (training curves, per-label F1, confusion).
Finished (head, seed) pairs are read back instead of retrained, so an interrupted
comparison resumes where it stopped. Runs accumulate: the rows of a comparison are merged
into the folder's ``results.json`` under a lock (a (head, seed) run again replaces its row),
and the summary, table and plots are drawn from all of them; a folder made with other
settings (corpus, data sizes, encoder, training other than the seed) is refused, but for
more epochs: the folder then records the change (``changes`` in ``results.json``), keeps only
the rows trained for as many, and the runs trained for fewer train on from their checkpoints
when asked for again.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..files import read_json, update_json, write_json_atomic, write_text_atomic
from ..saved import check_same_setup, record_changes
from ..training import resolve_device
from ..training.distributed import is_main, world
from .batching import TaggingVocabulary
from .corpus import Sentence
from .model import Tagger, TaggerConfig
from .plots import plot_confusion, plot_curves, plot_label_f1
from .train import TaggerTrainConfig, evaluate, fit, load_tagger, predict_tags, save_tagger

#: The settings a run folder may be asked for again with a larger value (to train on), as
#: `_shared` names them.
_RAISABLE = ("epochs",)


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
        run_dir: Output folder (created; reused to resume).
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
            settings (naming the file and each setting; raising ``epochs`` is allowed).
    """
    for split in ("train", "valid", "test"):
        if not splits.get(split):
            raise ValueError(f"splits must contain a non-empty {split!r} split")
    device = resolve_device(device)
    tagger, training = tagger or TaggerConfig(), training or TaggerTrainConfig()
    # what decides the data and the numbering of the labels, beside the two configurations:
    # recorded with every run, so that none resumes or is read back under another
    setup = {"corpus": corpus, "sizes": {k: len(v) for k, v in splits.items()}, "refit": refit}
    if files:
        setup["data"] = _digests(files)
    header = {
        "corpus": corpus,
        "sizes": setup["sizes"],
        "tagger": asdict(tagger),
        "training": asdict(training),
        "refit": refit,
        **({"data": files} if files else {}),
    }
    results_path = run_dir / "results.json"
    if results_path.exists():  # refused before any training
        saved = _shared(read_json(results_path))
        check_same_setup(results_path, saved, _shared(header), may_raise=_RAISABLE)
    run_dir.mkdir(parents=True, exist_ok=True)
    # a refit trains on the development labels too: they must all be in the label vocabularies
    more_labels = splits["valid"] if refit else ()
    vocabulary = TaggingVocabulary.build(splits["train"], more_labels=more_labels)
    scheme = tagger.scheme
    runs = []
    for head in heads:
        for seed in seeds:
            model_path = run_dir / "models" / f"{head}-seed{seed}.pt"
            history_path = run_dir / "checkpoints" / f"{head}-seed{seed}.json"
            tagger_run, training_run = replace(tagger, head=head), replace(training, seed=seed)
            finished = None
            if model_path.exists() and history_path.exists():
                finished = _read_back(model_path, history_path, tagger_run, training_run, setup)
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
                    run_dir / "checkpoints" / f"{head}-seed{seed}",
                    setup,
                    device,
                    progress,
                    log,
                    save_every,
                )
                if is_main():
                    save_tagger(model_path, model, vocabulary)
                    write_json_atomic(history_path, record)
            scores = {"test": _summary(evaluate(model, vocabulary, splits["test"], scheme))}
            # after a refit the development sentences were trained on: report the selection
            # pass's development scores instead
            scores["valid"] = record.get("valid") or _summary(
                evaluate(model, vocabulary, splits["valid"], scheme)
            )
            runs.append(
                {
                    "head": head,
                    "seed": seed,
                    **scores,
                    "epochs": len(record["history"]["loss"]),
                    "refit_epochs": record.get("refit_epochs"),
                    "processes": record.get("processes", 1),
                    "device": record.get("device", "cpu"),
                    "train_seconds": record["train_seconds"],
                    "tokens_per_second": record["tokens_per_second"],
                }
            )
            metric = "F1" if scheme else "accuracy"
            log(f"{head} seed {seed}: test {metric} {100 * scores['test']['f1']:.2f}")
    if not is_main():
        return {}
    fresh = {(r["head"], r["seed"]) for r in runs}

    def merge(saved: dict) -> dict:
        changes = check_same_setup(
            results_path, _shared(saved) if saved else None, _shared(header), may_raise=_RAISABLE
        )
        # after more epochs, the runs trained for fewer are dropped
        kept = [r for r in saved.get("runs", []) if (r["head"], r["seed"]) not in fresh]
        merged = ([] if changes else kept) + runs
        devices = sorted({r.get("device", "cpu") for r in merged})
        summary = _aggregate(merged, _heads(merged))
        results = {**header, "device": ", ".join(devices), "runs": merged, "summary": summary}
        earlier = {"changes": saved["changes"]} if "changes" in saved else {}
        return record_changes(results | earlier, changes)

    def derived(results: dict) -> None:
        write_text_atomic(run_dir / "results.md", results_table(results))
        _plots(run_dir, splits["test"], results["runs"], scheme is not None)

    return update_json(results_path, merge, derived)


def _shared(results: dict) -> dict:
    """The settings every run of one ``results.json`` shares: all but the head and seed (the
    encoder's and the training's side by side, as `TaggerConfig` and `TaggerTrainConfig` share no
    field name), and the checksums of the data files where recorded."""
    return {
        "corpus": results.get("corpus"),
        "sizes": results.get("sizes"),
        **{k: v for k, v in results.get("tagger", {}).items() if k != "head"},
        **{k: v for k, v in results.get("training", {}).items() if k != "seed"},
        "refit": results.get("refit"),
        **({"data": _digests(results["data"])} if results.get("data") else {}),
    }


def _digests(files: dict[str, list[dict[str, str]]]) -> dict[str, list[str]]:
    """The SHA-256 of each split's files, in order: what must match on a resume (the paths
    may differ, e.g. on another machine)."""
    return {split: [f["sha256"] for f in entries] for split, entries in files.items()}


def _read_back(
    model_path: Path,
    history_path: Path,
    tagger: TaggerConfig,
    training: TaggerTrainConfig,
    setup: dict,
) -> tuple[Tagger, TaggingVocabulary, dict] | None:
    """The finished (head, seed) run of ``model_path`` and its record ``history_path``:
    its tagger, vocabularies and record; ``None`` when it is to train on (for more epochs).

    Raises:
        ValueError: naming the file, when the run was made with other settings or another
            ``setup`` (data, ``refit``; a record from before it was kept is not compared).
    """
    model, vocabulary = load_tagger(model_path)
    record = read_json(history_path)
    check_same_setup(model_path, asdict(model.config), asdict(tagger))
    check_same_setup(history_path, record.get("run"), setup)
    raised = check_same_setup(
        history_path, record.get("training"), asdict(training), may_raise=("epochs",)
    )
    return None if raised else (model, vocabulary, record)


def _heads(runs: Sequence[dict]) -> list[str]:
    """The heads of ``runs``, in order of first appearance."""
    return list(dict.fromkeys(r["head"] for r in runs))


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
    resume."""
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
        record["valid"] = _summary(evaluate(model, vocabulary, splits["valid"], tagger.scheme))
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
        processes=world()[1],
        device=str(device),
    )
    return model, record


def _summary(scores: dict) -> dict:
    keys = ("f1", "precision", "recall", "token_accuracy", "intent_accuracy")
    out = {k: scores[k] for k in keys if k in scores}
    out["per_label"] = scores["per_label"]
    return out


def _aggregate(runs: list[dict], heads: Sequence[str]) -> dict:
    summary = {}
    for head in heads:
        mine = [r for r in runs if r["head"] == head]
        entry = {}
        for key in ("f1", "precision", "recall", "token_accuracy", "intent_accuracy"):
            values = [r["test"][key] for r in mine if key in r["test"]]
            if values:
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                entry[key] = {"mean": statistics.fmean(values), "std": spread}
        entry["train_seconds"] = statistics.fmean(r["train_seconds"] for r in mine)
        entry["tokens_per_second"] = statistics.fmean(r["tokens_per_second"] for r in mine)
        entry["seeds"] = len(mine)
        entry["devices"] = sorted({r.get("device", "cpu") for r in mine})
        summary[head] = entry
    return summary


def results_table(results: dict) -> str:
    """The Markdown comparison table (test split, mean ± std over seeds, in percent): strict
    span scores of chunk tags, token accuracy of plain labels (``tagger.scheme`` ``None``)."""
    chunks = results.get("tagger", {}).get("scheme", "BIO") is not None
    if chunks:
        scored, columns = "strict span scores", ("f1", "precision", "recall", "token_accuracy")
        names = "span F1 | precision | recall | token acc."
    else:
        scored, columns, names = "token scores of plain labels", ("token_accuracy",), "token acc."
    columns += ("intent_accuracy",)
    lines = [
        f"# {results['corpus']}: softmax vs CRF vs structured SVM on one encoder",
        "",
        f"Test split, mean ± std over seeds, {scored} in percent. Sizes: "
        + ", ".join(f"{k} {v}" for k, v in results["sizes"].items())
        + ".",
        "",
        f"| head | seeds | {names} | intent acc. | train time (s) | tokens/s | trained on |",
        "| --- | ---: | " + "---: | " * len(columns) + "---: | ---: | --- |",
    ]
    for head, entry in results["summary"].items():
        cells = [_mean_std(entry, key) for key in columns]
        lines.append(
            f"| {head} | {entry['seeds']} | " + " | ".join(cells) + " | "
            f"{entry['train_seconds']:.0f} | {entry['tokens_per_second']:.0f} | "
            f"{', '.join(entry.get('devices', ['cpu']))} |"
        )
    return "\n".join(lines) + "\n"


def _mean_std(entry: dict, key: str) -> str:
    if key not in entry:
        return "-"
    return f"{100 * entry[key]['mean']:.2f} ± {100 * entry[key]['std']:.2f}"


def _plots(run_dir: Path, test: Sequence[Sentence], runs: list[dict], chunks: bool) -> None:
    """Training curves and per-label F1 of every run of the folder, and the confusion of the
    first CRF run (else of the first head's first seed) on ``test``; ``chunks``: the tags are
    chunk tags (else plain labels, scored token by token)."""
    heads = _heads(runs)
    histories = {
        (r["head"], r["seed"]): read_json(
            run_dir / "checkpoints" / f"{r['head']}-seed{r['seed']}.json"
        )["history"]
        for r in runs
    }
    plot_curves(histories, run_dir / "training_curves.png", "span F1" if chunks else "accuracy")
    best_head = "crf" if "crf" in heads else heads[0]
    seed = min(r["seed"] for r in runs if r["head"] == best_head)
    model, vocabulary = load_tagger(run_dir / "models" / f"{best_head}-seed{seed}.pt")
    predicted, _ = predict_tags(model, vocabulary, test)
    gold = [list(s.tags) for s in test]
    scores, support = {}, {}
    for head in heads:
        labels = {}
        for run in (r for r in runs if r["head"] == head):
            for label, entry in run["test"]["per_label"].items():
                labels.setdefault(label, []).append(entry["f1"])
                support[label] = entry["support"]
        scores[head] = {label: statistics.fmean(v) for label, v in labels.items()}
    plot_label_f1(scores, support, run_dir / "label_f1.png", units="spans" if chunks else "tokens")
    plot_confusion(
        gold,
        predicted,
        vocabulary.tags.tokens,
        run_dir / "confusion.png",
        title=f"{best_head}, seed {seed}, test",
    )
