"""The reader comparison on bAbI: memory network vs attentive reader vs LSTM, per task or joint.

A run folder ``runs/<name>/`` receives ``results.json`` (every reader, task and seed),
``results.md`` (per-task test error: best of seeds and mean ± std, failed tasks, supporting-
fact accuracy), ``checkpoints/`` (resumable), ``models/`` (trained readers) and PNG plots
(per-task errors, validation curves, hop attention over stories). Finished runs are read
back instead of retrained, so an interrupted comparison resumes where it stopped. Runs
accumulate: the rows of a comparison are merged into the folder's ``results.json`` under a
lock (a (reader, task, seed) run again replaces its row), and the summary, tables and plots
are drawn from all of them; a folder made with other settings for a reader or task, another
corpus or mode, is refused, but for more epochs: the folder then records the change
(``changes`` in ``results.json``), keeps only the rows of that reader trained for as many, and
its runs trained for fewer train on from their checkpoints when asked for again.

"Best of seeds" picks, for each task, the seed with the lowest *validation* error (the
validation questions are 10% of the training file, the same for every seed) and reports
its test error; the mean and standard deviation over all seeds stand beside it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..files import read_json, update_json, write_json_atomic, write_text_atomic
from ..saved import check_same_setup, record_changes
from .babi import Question
from .batching import QAVocabulary, collate
from .model import KINDS, Reader, ReaderConfig
from .plots import plot_errors, plot_hop_attention, plot_validation
from .train import QATrainConfig, evaluate, fit, load_reader, save_reader

__all__ = ["FAILED", "default_settings", "hold_out", "results_table", "run_qa", "summarize"]

#: A task counts as failed above this test error (the bAbI convention: 5%).
FAILED = 0.05


def default_settings(kind: str, joint: bool = False) -> tuple[ReaderConfig, QATrainConfig]:
    """The architecture and optimisation used for ``kind`` unless told otherwise.

    The memory network follows the paper and its code: ``d = 20``, 3 hops, adjacent tying,
    position and temporal encoding, 10% noise, 20 epochs of linear start, then a learning
    rate of 0.005 halved every 25 epochs for 100 epochs; trained jointly on all tasks,
    ``d = 50``, 30 epochs of linear start, 60 epochs halved every 15; SGD. The LSTM
    readers use Adam (0.001, mean loss, clipping at 5) for 40 epochs (20 jointly).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "memory":
        reader = ReaderConfig(kind=kind, dim=50 if joint else 20)
        training = (
            QATrainConfig(epochs=60, anneal_every=15, linear_start_epochs=30)
            if joint
            else QATrainConfig()
        )
        return reader, training
    reader = ReaderConfig(kind=kind, dim=64, hidden=64 if kind == "attentive" else 128)
    training = QATrainConfig(
        epochs=20 if joint else 40,
        optimizer="adam",
        reduction="mean",
        lr=1e-3,
        anneal_every=0,
        clip=5.0,
        linear_start=False,
    )
    return reader, training


def hold_out(
    questions: Sequence[Question], share: float = 0.1, seed: int = 0
) -> tuple[list[Question], list[Question]]:
    """Split ``questions`` into (train, validation), ``share`` of them drawn for validation."""
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), got {share!r}")
    if len(questions) < 2:
        raise ValueError("questions must hold at least two questions to hold some out")
    order = torch.randperm(len(questions), generator=torch.Generator().manual_seed(seed))
    count = max(1, round(share * len(questions)))
    held = set(order[:count].tolist())
    train = [q for i, q in enumerate(questions) if i not in held]
    return train, [q for i, q in enumerate(questions) if i in held]


def run_qa(
    tasks: dict[int, dict[str, Sequence[Question]]],
    run_dir: Path,
    kinds: Sequence[str] = KINDS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    joint: bool = False,
    settings: dict[str, tuple[ReaderConfig, QATrainConfig]] | None = None,
    corpus: str = "babi",
    data: dict[str, list[dict[str, str]]] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train and evaluate every reader with every seed, per task or jointly.

    Args:
        tasks: For each task number, its ``"train"`` and ``"test"`` questions.
        run_dir: Output folder (created; reused to resume).
        kinds: Readers to compare (see `KINDS`).
        seeds: Seeds per reader (and task).
        joint: One reader per seed for all tasks together, instead of one per task.
        settings: Architecture and optimisation per kind (default: `default_settings`).
        corpus: Name recorded in the results.
        data: The bAbI files read, ``{split: [{"path", "sha256"}]}``: their checksums are
            recorded, and a run folder made from files of other contents is refused.
        progress: Show progress bars.
        log: Where progress lines go.

    Returns:
        The content of ``results.json``: the rows of this call merged with those already in
        the folder.

    Raises:
        ValueError: no tasks, an empty split, an unknown kind, or a run folder made with
            other settings (naming the file and each setting).
    """
    if not tasks:
        raise ValueError("tasks must not be empty")
    for task, splits in tasks.items():
        for split in ("train", "test"):
            if not splits.get(split):
                raise ValueError(f"task {task} needs a non-empty {split!r} split")
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"kinds must be among {KINDS}, got {kind!r}")
    settings = {k: (settings or {}).get(k) or default_settings(k, joint) for k in kinds}
    held = {task: hold_out(splits["train"]) for task, splits in tasks.items()}
    header = {
        "corpus": corpus,
        "mode": "joint" if joint else "per task",
        "sizes": {
            t: {"train": len(held[t][0]), "valid": len(held[t][1]), "test": len(s["test"])}
            for t, s in sorted(tasks.items())
        },
        "settings": {
            k: {"reader": asdict(r), "training": asdict(t)} for k, (r, t) in settings.items()
        },
    }
    if data:
        header["data"] = {split: [f["sha256"] for f in files] for split, files in data.items()}
    requested = json.loads(json.dumps(header))  # task numbers as JSON keys, as saved
    # the settings that may be raised (to train on), and the reader trained with each
    raisable = {f"settings.{kind}.training.epochs": kind for kind in kinds}
    may_raise = tuple(raisable)
    results_path = run_dir / "results.json"
    if results_path.exists():  # refused before any training
        check_same_setup(results_path, read_json(results_path), requested, may_raise=may_raise)
    run_dir.mkdir(parents=True, exist_ok=True)
    units = ["joint"] if joint else sorted(tasks)
    runs = []
    for kind in kinds:
        reader_config, training = settings[kind]
        for unit in units:
            chosen = sorted(tasks) if unit == "joint" else [unit]
            train = [q for t in chosen for q in held[t][0]]
            valid = [q for t in chosen for q in held[t][1]]
            for seed in seeds:
                name = _run_name(kind, unit, seed)
                reader, vocabulary, record = _trained(
                    run_dir,
                    name,
                    replace(reader_config, kind=kind),
                    replace(training, seed=seed),
                    train,
                    valid,
                    progress,
                    log,
                )
                for task in chosen:
                    size = reader.config.memory_size
                    validation = evaluate(reader, collate(held[task][1], vocabulary, size))
                    test = evaluate(reader, collate(tasks[task]["test"], vocabulary, size))
                    runs.append(
                        {
                            "kind": kind,
                            "task": task,
                            "seed": seed,
                            "valid_error": validation["error"],
                            "test_error": test["error"],
                            "support": test["support"],
                            "epochs": len(record["history"]["loss"]),
                            "linear_epochs": sum(record["history"]["linear"]),
                            "train_seconds": record["train_seconds"],
                        }
                    )
                    log(f"{name} task {task}: test error {100 * test['error']:.1f}%")
    fresh = {(r["kind"], r["task"], r["seed"]) for r in runs}

    def merge(saved: dict) -> dict:
        # written by another process meanwhile, perhaps (``{}``: no file yet)
        changes = check_same_setup(results_path, saved or None, requested, may_raise=may_raise)
        stale = {raisable[setting] for setting in changes}  # readers trained for fewer epochs
        kept = [
            r
            for r in saved.get("runs", [])
            if (r["kind"], r["task"], r["seed"]) not in fresh and r["kind"] not in stale
        ]
        merged = kept + runs
        sizes = {int(t): size for t, size in saved.get("sizes", {}).items()} | header["sizes"]
        results = {
            **header,
            "tasks": sorted({r["task"] for r in merged}),
            "sizes": dict(sorted(sizes.items())),
            "settings": saved.get("settings", {}) | header["settings"],
            "runs": merged,
            "summary": summarize(merged, list(dict.fromkeys(r["kind"] for r in merged))),
        }
        earlier = {"changes": saved["changes"]} if "changes" in saved else {}
        return record_changes(results | earlier, changes)

    def derived(results: dict) -> None:
        write_text_atomic(run_dir / "results.md", results_table(results))
        plot_errors(results["summary"], run_dir / "errors.png")
        plot_validation(
            _histories(run_dir, results["runs"], joint), run_dir / "validation_curves.png"
        )
        if "memory" in results["summary"]:
            _attention_figure(run_dir, tasks, results, joint)

    return update_json(results_path, merge, derived)


def _run_name(kind: str, unit: int | str, seed: int) -> str:
    """The file name (without suffix) of one run: ``memory-task3-seed0``, ``lstm-joint-seed1``."""
    return f"{kind}-{'joint' if unit == 'joint' else f'task{unit}'}-seed{seed}"


def _histories(run_dir: Path, runs: Sequence[dict], joint: bool) -> dict:
    """The training history of each run behind ``runs`` (`hybrid.training.History.to_dict`),
    by ``(kind, unit, seed)`` (``unit``: the task, or ``"joint"``), read from the run records
    of ``run_dir``."""
    histories = {}
    for run in runs:
        unit = "joint" if joint else run["task"]
        name = _run_name(run["kind"], unit, run["seed"])
        record = read_json(run_dir / "checkpoints" / f"{name}.json")
        histories[(run["kind"], unit, run["seed"])] = record["history"]
    return histories


def _trained(
    run_dir: Path,
    name: str,
    reader_config: ReaderConfig,
    training: QATrainConfig,
    train: list[Question],
    valid: list[Question],
    progress: bool,
    log: Callable[[str], None],
) -> tuple[Reader, QAVocabulary, dict]:
    """The reader of one run: read back when finished with the same settings, else trained
    (on from its checkpoint, when finished with fewer epochs)."""
    model_path = run_dir / "models" / f"{name}.pt"
    record_path = run_dir / "checkpoints" / f"{name}.json"
    if reader_config.kind == "memory" and not reader_config.sentence_size:
        longest = max(len(s) for q in train for s in (*q.story, q.question))
        reader_config = replace(reader_config, sentence_size=longest)
    requested = {"reader": asdict(reader_config), "training": asdict(training)}
    if model_path.exists() and record_path.exists():
        record = read_json(record_path)
        check_same_setup(record_path, record.get("reader"), requested["reader"])
        raised = check_same_setup(
            record_path, record.get("training"), requested["training"], may_raise=("epochs",)
        )
        if not raised:
            reader, vocabulary = load_reader(model_path)
            log(f"{name}: finished earlier, read back")
            return reader, vocabulary, record
    vocabulary = QAVocabulary.build(train)
    torch.manual_seed(training.seed)
    reader = Reader(reader_config, vocabulary)
    size = reader_config.memory_size
    history = fit(
        reader,
        collate(train, vocabulary, size),
        collate(valid, vocabulary, size),
        training,
        run_dir / "checkpoints" / f"{name}.pt",
        progress,
        log,
    )
    record = {
        **requested,
        "history": history.to_dict(),
        "train_seconds": sum(history["seconds"]),
    }
    save_reader(model_path, reader, vocabulary)
    write_json_atomic(record_path, record)
    return reader, vocabulary, record


def summarize(runs: list[dict], kinds: Sequence[str]) -> dict:
    """Per reader and task: best-of-seeds (by validation error) and mean ± std test error,
    supporting-fact accuracy per hop (mean over seeds); over tasks: mean errors and the
    number of failed tasks (test error above `FAILED`)."""
    summary: dict = {}
    for kind in kinds:
        mine = [r for r in runs if r["kind"] == kind]
        per_task = {}
        for task in sorted({r["task"] for r in mine}):
            seeds = [r for r in mine if r["task"] == task]
            best = min(seeds, key=lambda r: (r["valid_error"], r["seed"]))
            errors = [r["test_error"] for r in seeds]
            supports = [r["support"] for r in seeds if r["support"] is not None]
            per_task[task] = {
                "best": best["test_error"],
                "best_seed": best["seed"],
                "mean": statistics.fmean(errors),
                "std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
                "seeds": len(errors),
                "support": [statistics.fmean(h) for h in zip(*supports, strict=True)]
                if supports
                else None,
                "train_seconds": statistics.fmean(r["train_seconds"] for r in seeds),
            }
        entries = list(per_task.values())
        summary[kind] = {
            "tasks": per_task,
            "mean_best": statistics.fmean(e["best"] for e in entries),
            "mean_mean": statistics.fmean(e["mean"] for e in entries),
            "failed_best": sum(e["best"] > FAILED for e in entries),
            "failed_mean": sum(e["mean"] > FAILED for e in entries),
        }
    return summary


def results_table(results: dict) -> str:
    """The Markdown tables: per-task test error (%) and supporting-fact accuracy (%)."""
    summary = results["summary"]
    kinds = list(summary)
    seeds = max(e["seeds"] for k in kinds for e in summary[k]["tasks"].values())
    lines = [
        f"# {results['corpus']}: memory network vs attentive reader vs LSTM ({results['mode']})",
        "",
        f"Test error (%) per task over {seeds} seeds: *best* is the seed with the lowest "
        "validation error (10% of the training questions), *mean ± std* is over all seeds. "
        f"A task fails above {100 * FAILED:.0f}% error.",
        "",
        "| task | " + " | ".join(f"{k} best | {k} mean ± std" for k in kinds) + " |",
        "| ---: | " + " | ".join("---: | ---:" for _ in kinds) + " |",
    ]
    for task in results["tasks"]:
        cells = []
        for kind in kinds:
            entry = summary[kind]["tasks"].get(task)
            cells.append(
                "- | -"
                if entry is None
                else f"{100 * entry['best']:.1f} | {100 * entry['mean']:.1f} ± "
                f"{100 * entry['std']:.1f}"
            )
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean** | "
        + " | ".join(
            f"**{100 * summary[k]['mean_best']:.1f}** | **{100 * summary[k]['mean_mean']:.1f}**"
            for k in kinds
        )
        + " |"
    )
    lines.append(
        "| failed (> 5%) | "
        + " | ".join(f"{summary[k]['failed_best']} | {summary[k]['failed_mean']}" for k in kinds)
        + " |"
    )
    seconds = [
        statistics.fmean(e["train_seconds"] for e in summary[k]["tasks"].values()) for k in kinds
    ]
    lines.append(
        "| train time (s, mean per run) | " + " | ".join(f"{t:.0f} | -" for t in seconds) + " |"
    )
    attending = [k for k in kinds if any(e["support"] for e in summary[k]["tasks"].values())]
    if attending:
        lines += [
            "",
            "Supporting-fact accuracy (%, mean over seeds): how often the highest-attention "
            "statement of each hop is a gold supporting fact (hops separated by /; the "
            "attentive reader's word attention is summed per statement).",
            "",
            "| task | " + " | ".join(attending) + " |",
            "| ---: | " + " | ".join("---" for _ in attending) + " |",
        ]
        for task in results["tasks"]:
            cells = []
            for kind in attending:
                support = summary[kind]["tasks"].get(task, {}).get("support")
                cells.append(" / ".join(f"{100 * s:.0f}" for s in support) if support else "-")
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _attention_figure(run_dir: Path, tasks: dict, results: dict, joint: bool) -> None:
    """Hop attention of the memory network over the stories of a few test questions (of the
    tasks of ``tasks`` it was run on)."""
    ran = [t for t in sorted(tasks) if t in results["summary"]["memory"]["tasks"]]
    shown = [t for t in (1, 2, 3, 16) if t in ran] or ran[:2]
    if not shown:
        return
    examples = []
    for task in shown:
        seed = results["summary"]["memory"]["tasks"][task]["best_seed"]
        unit = "joint" if joint else f"task{task}"
        reader, vocabulary = load_reader(run_dir / "models" / f"memory-{unit}-seed{seed}.pt")
        short = [q for q in tasks[task]["test"][:200] if len(q.story) <= 12]
        question = max(
            short or tasks[task]["test"][:1], key=lambda q: (len(q.supporting), len(q.story))
        )
        batch = collate([question], vocabulary, reader.config.memory_size)
        with torch.no_grad():
            logits, attention = reader(batch)
        answer = vocabulary.answers.token(int(logits.argmax(-1)))
        kept = question.story[-reader.config.memory_size :]
        examples.append((task, question, kept, attention[0].numpy(), answer))
    plot_hop_attention(examples, run_dir / "hop_attention.png")
