"""The head comparison: one encoder, softmax vs CRF vs SSVM, several seeds, one run folder.

A run folder ``runs/<name>/`` receives ``results.json`` (every split, head and seed),
``results.md`` (mean and standard deviation over seeds), ``checkpoints/`` (resumable),
``models/`` (trained taggers) and PNG plots (training curves, per-label F1, confusion).
Finished (head, seed) pairs are read back instead of retrained, so an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..distributed import is_main, world
from ..files import check_same_setup
from .batching import TaggingVocabulary
from .corpus import Sentence
from .model import Tagger, TaggerConfig
from .plots import plot_confusion, plot_curves, plot_label_f1
from .train import TrainConfig, evaluate, fit, load_tagger, predict_tags, save_tagger


def run_comparison(
    splits: dict[str, Sequence[Sentence]],
    run_dir: Path,
    heads: Sequence[str] = ("softmax", "crf", "ssvm"),
    seeds: Sequence[int] = (0, 1, 2),
    tagger: TaggerConfig | None = None,
    training: TrainConfig | None = None,
    corpus: str = "corpus",
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str | torch.device = "cpu",
    refit: bool = False,
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

    Returns:
        The content of ``results.json``.
    """
    for split in ("train", "valid", "test"):
        if not splits.get(split):
            raise ValueError(f"splits must contain a non-empty {split!r} split")
    device = resolve_device(device)
    tagger, training = tagger or TaggerConfig(), training or TrainConfig()
    run_dir.mkdir(parents=True, exist_ok=True)
    # a refit trains on the development labels too: they must all be in the label vocabularies
    more_labels = splits["valid"] if refit else ()
    vocabulary = TaggingVocabulary.build(splits["train"], more_labels=more_labels)
    scheme = tagger.scheme or "BIO"
    runs, histories = [], {}
    for head in heads:
        for seed in seeds:
            model_path = run_dir / "models" / f"{head}-seed{seed}.pt"
            history_path = run_dir / "checkpoints" / f"{head}-seed{seed}.json"
            if model_path.exists() and history_path.exists():
                model, vocabulary = load_tagger(model_path)
                record = json.loads(history_path.read_text())
                requested = asdict(replace(tagger, head=head))
                check_same_setup(model_path, asdict(model.config), requested)
                requested = asdict(replace(training, seed=seed))
                check_same_setup(history_path, record.get("training"), requested)
                model.to(device)
                log(f"{head} seed {seed}: finished earlier, read back")
            else:
                model, record = _train(
                    replace(tagger, head=head),
                    vocabulary,
                    splits,
                    replace(training, seed=seed),
                    run_dir / "checkpoints" / f"{head}-seed{seed}",
                    refit,
                    device,
                    progress,
                    log,
                )
                if is_main():
                    save_tagger(model_path, model, vocabulary)
                    history_path.write_text(json.dumps(record))
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
            histories[(head, seed)] = record["history"]
            log(f"{head} seed {seed}: test F1 {100 * scores['test']['f1']:.2f}")
    if not is_main():
        return {}
    results = {
        "corpus": corpus,
        "sizes": {k: len(v) for k, v in splits.items()},
        "tagger": asdict(tagger),
        "training": asdict(training),
        "refit": refit,
        "device": str(device),
        "runs": runs,
        "summary": _aggregate(runs, heads),
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    (run_dir / "results.md").write_text(results_table(results))
    _plots(run_dir, splits["test"], heads, seeds, histories, runs)
    return results


def _train(
    tagger: TaggerConfig,
    vocabulary: TaggingVocabulary,
    splits: dict[str, Sequence[Sentence]],
    training: TrainConfig,
    checkpoint: Path,
    refit: bool,
    device: torch.device,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[Tagger, dict]:
    """One (head, seed) run: the selection pass, then the refit pass if asked for."""
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
    )
    epoch_seconds = sum(history.seconds)
    tokens = sum(len(s.words) for s in splits["train"]) * len(history.loss)
    record: dict = {"history": asdict(history), "training": asdict(training)}
    if refit:
        record["valid"] = _summary(
            evaluate(model, vocabulary, splits["valid"], tagger.scheme or "BIO")
        )
        record["refit_epochs"] = history.best_epoch()
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
        )
        epoch_seconds += sum(again.seconds)
        tokens += sum(len(s.words) for s in everything) * len(again.loss)
    record.update(
        train_seconds=epoch_seconds,
        tokens_per_second=tokens / max(epoch_seconds, 1e-9),
        processes=world()[1],
        device=str(device),
    )
    return model, record


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a `torch.device`, or a ``ValueError`` saying why it cannot be used."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must name a torch device such as 'cpu' or 'cuda': {error}"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(resolved)!r} asked for, but no CUDA device is visible")
    return resolved


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
    """The Markdown comparison table (test split, mean ± std over seeds, in percent)."""
    lines = [
        f"# {results['corpus']}: softmax vs CRF vs structured SVM on one encoder",
        "",
        "Test split, mean ± std over seeds, strict span scores in percent. Sizes: "
        + ", ".join(f"{k} {v}" for k, v in results["sizes"].items())
        + ".",
        "",
        "| head | seeds | span F1 | precision | recall | token acc. | intent acc. "
        "| train time (s) | tokens/s | trained on |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for head, entry in results["summary"].items():
        cells = [
            _mean_std(entry, key)
            for key in ("f1", "precision", "recall", "token_accuracy", "intent_accuracy")
        ]
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


def _plots(
    run_dir: Path,
    test: Sequence[Sentence],
    heads: Sequence[str],
    seeds: Sequence[int],
    histories: dict,
    runs: list[dict],
) -> None:
    plot_curves(histories, run_dir / "training_curves.png")
    best_head = "crf" if "crf" in heads else heads[0]
    model, vocabulary = load_tagger(run_dir / "models" / f"{best_head}-seed{seeds[0]}.pt")
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
    plot_label_f1(scores, support, run_dir / "label_f1.png")
    plot_confusion(
        gold,
        predicted,
        vocabulary.tags.tokens,
        run_dir / "confusion.png",
        title=f"{best_head}, seed {seeds[0]}, test",
    )
