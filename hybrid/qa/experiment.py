"""The reader comparison on bAbI: memory network vs attentive reader vs LSTM, per task or joint.

A run folder ``runs/<name>/`` (`hybrid.runs.RunFolder`, domain ``"qa"``, primary metric the
test ``error``, lower is better) receives ``results.json``, ``checkpoints/`` (resumable),
``models/`` (trained readers), and, drawn from ``results.json`` alone (`redraw`),
``results.md`` (per-task test error: best of seeds and mean ± std, failed tasks, supporting-
fact accuracy) and the plots ``errors.png`` (per-task errors), ``validation_curves.png`` and
``hop_attention.png`` (the memory network's hops over a story).

``results.json`` has one row per reader (``system``: ``memory``, ``attentive``, ``lstm``),
bAbI task (``task``; 0 for files without a ``qaN_`` name), ``seed`` and ``split`` (``test``,
and ``valid``: the 10% of the training questions held out, the same for every seed), with:

- ``metrics``: ``error`` (in ``[0, 1]``), ``loss`` (mean cross-entropy per question whose
  answer was seen in training; ``None`` without one) and, for the readers that attend,
  ``support_hop1``, ``support_hop2``, ...: the share of questions whose highest-attention
  statement at that hop is a gold supporting fact;
- ``epochs`` (trained, linear start included), ``seconds`` (training time), ``environment``
  (where the reader trained);
- ``unit``: what the reader was trained on (its task, or ``"joint"``: one reader per seed for
  all the run's tasks), ``linear_epochs``, ``train_questions``, ``questions`` (evaluated);
- ``history`` (``valid`` rows): the training history (`hybrid.training.History.to_dict`);
- ``attention`` (``test`` rows of the memory network): its hop attention over the story of
  one test question, ``{"question", "answer", "predicted", "statements", "supporting",
  "weights"}`` with ``weights[hop][statement]`` over the statements kept in memory and
  ``supporting`` the indices of the gold ones among them.

The settings (``settings``: the mode, the tasks of a joint run, and the architecture and
optimisation of every reader) are those of the whole comparison, so runs of other readers or
tasks accumulate in one folder: the rows of each finished run are merged under a lock (a
(reader, task, seed, split) run again replaces its row). Finished runs are read back instead
of retrained, so an interrupted comparison resumes where it stopped. A folder made with other
settings, another corpus or other data files is refused, but for more epochs of a reader:
the folder then records the change (``changes``), drops that reader's rows, and its runs
train on from their checkpoints when asked for again.

"Best of seeds" picks, for each task, the seed with the lowest *validation* error and reports
its test error; the mean and standard deviation over all seeds stand beside it.
"""

from __future__ import annotations

import math
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
from .babi import Question
from .batching import QAVocabulary, collate
from .model import KINDS, Reader, ReaderConfig
from .plots import plot_errors, plot_hop_attention, plot_validation
from .train import QATrainConfig, evaluate, fit

__all__ = [
    "FAILED",
    "PRIMARY",
    "default_settings",
    "hold_out",
    "per_task",
    "redraw",
    "results_table",
    "run_qa",
]

#: A task counts as failed above this test error (the bAbI convention: 5%).
FAILED = 0.05

#: What `hybrid report` compares: the test error, lower is better.
PRIMARY = ("error", False)


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
    device: str | torch.device = "cpu",
    save_every: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train and evaluate every reader of ``kinds`` with every seed, per task or jointly.

    The rows of each finished run are merged into ``results.json`` at once; ``results.md``
    and the plots are drawn again when a reader has finished every seed of a task (or of
    its joint run). Under ``torchrun`` every process trains; only the first saves readers,
    writes the run folder and logs.

    Args:
        tasks: For each task number, its ``"train"`` and ``"test"`` questions.
        run_dir: Output folder (created; reused to resume, see the module's description).
        kinds: Readers to train now (see `KINDS`).
        seeds: Seeds per reader (and task).
        joint: One reader per seed for all tasks together, instead of one per task.
        settings: Architecture and optimisation per kind (default: `default_settings`);
            those of every kind, trained now or not, are the folder's settings.
        corpus: Name recorded in the results.
        data: The bAbI files read, ``{split: [{"path", "sha256"}]}``: recorded, and a run
            folder made from files of other contents is refused.
        device: Where the readers train and are evaluated (``"cpu"``, ``"cuda"``, ...).
        save_every: Also checkpoint every this many steps within an epoch (0: after each
            epoch only; `hybrid.training.train`).
        progress: Show progress bars.
        log: Where progress lines go.

    Returns:
        The content of ``results.json``: the rows of this call merged with those already in
        the folder (``{}`` on all but the first process under ``torchrun``).

    Raises:
        ValueError: no tasks, an empty split, an unknown kind, an unusable ``device``, or a
            run folder made with other settings (naming the file and each setting).
    """
    if not tasks:
        raise ValueError("tasks must not be empty")
    for task, splits in tasks.items():
        for split in ("train", "test"):
            if not splits.get(split):
                raise ValueError(f"task {task} needs a non-empty {split!r} split")
    if not kinds:
        raise ValueError("kinds must name at least one reader")
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"kinds must be among {KINDS}, got {kind!r}")
    device = resolve_device(device)
    if not is_main():
        log = lambda _: None  # noqa: E731
    settings = {k: (settings or {}).get(k) or default_settings(k, joint) for k in KINDS}
    folder = RunFolder(run_dir, "qa", PRIMARY)
    results = folder.claim(  # refused before any training
        corpus,
        _folder_settings(settings, joint, tasks),
        data,
        may_raise=[f"readers.{kind}.training.epochs" for kind in KINDS],
        # the rows of a reader whose epochs were raised: it trains on
        stale=lambda row, changes: f"readers.{row['system']}.training.epochs" in changes,
    )
    draw = partial(_draw, Path(run_dir))
    held = {task: hold_out(splits["train"]) for task, splits in tasks.items()}
    for kind in kinds:
        reader_config, training = settings[kind]
        for unit in ["joint"] if joint else sorted(tasks):
            chosen = sorted(tasks) if unit == "joint" else [unit]
            train = [q for t in chosen for q in held[t][0]]
            valid = [q for t in chosen for q in held[t][1]]
            for seed in seeds:
                name = _run_name(kind, unit, seed)
                reader, vocabulary, record = _trained(
                    Path(run_dir),
                    name,
                    replace(reader_config, kind=kind),
                    replace(training, seed=seed),
                    (train, valid),
                    device,
                    save_every,
                    progress,
                    log,
                )
                history = record["history"]
                trained = {
                    "epochs": len(history["loss"]),
                    "seconds": record["train_seconds"],
                    "environment": record["environment"],
                    "unit": unit,
                    "linear_epochs": sum(history["linear"]),
                    "train_questions": len(train),
                }
                rows = []
                for task in chosen:
                    key = {"task": task, "system": kind, "seed": seed}
                    splits = {"valid": held[task][1], "test": tasks[task]["test"]}
                    for split, questions in splits.items():
                        size = reader.config.memory_size
                        scores = evaluate(reader, collate(questions, vocabulary, size))
                        row = {**key, "split": split, "metrics": _metrics(scores), **trained}
                        row["questions"] = len(questions)
                        if split == "valid":
                            row["history"] = history
                        elif kind == "memory":
                            row["attention"] = _attention(reader, vocabulary, questions)
                        rows.append(row)
                    log(f"{name} task {task}: test error {100 * scores['error']:.1f}%")
                # drawn once a reader has every seed of its task (or its joint run)
                results = folder.add_rows(rows, draw if seed == seeds[-1] else None)
    return results


def redraw(run_dir: str | Path) -> dict:
    """Draw ``results.md`` and the plots of a run folder again from its ``results.json``
    alone (no training, no corpus); returns the content of ``results.json``.

    Raises:
        ValueError: naming the file, when ``run_dir`` holds no ``results.json`` of this schema.
    """
    return RunFolder(run_dir, "qa", PRIMARY).redraw(partial(_draw, Path(run_dir)))


def _folder_settings(
    settings: dict[str, tuple[ReaderConfig, QATrainConfig]], joint: bool, tasks: dict
) -> dict:
    """What every row of a run folder shares: the mode, the tasks a joint reader trains on,
    and each reader's architecture and optimisation (``readers.<kind>.reader``,
    ``readers.<kind>.training``)."""
    shared: dict = {"mode": "joint" if joint else "per task"}
    if joint:
        shared["tasks"] = sorted(tasks)
    shared["readers"] = {
        kind: {"reader": asdict(reader), "training": asdict(training)}
        for kind, (reader, training) in settings.items()
    }
    return shared


def _metrics(scores: dict) -> dict[str, float | None]:
    """The row metrics of `hybrid.qa.train.evaluate` ``scores``: ``error``, ``loss`` (``None``
    for NaN: no question with a known answer) and ``support_hop<h>`` per hop."""
    metrics = {
        "error": scores["error"],
        "loss": None if math.isnan(scores["loss"]) else scores["loss"],
    }
    for hop, share in enumerate(scores["support"] or (), start=1):
        metrics[f"support_hop{hop}"] = share
    return metrics


def _support(metrics: dict) -> list[float]:
    """The ``support_hop<h>`` values of ``metrics`` (or of a summary), in hop order."""
    hops = 0
    while f"support_hop{hops + 1}" in metrics:
        hops += 1
    return [metrics[f"support_hop{h}"] for h in range(1, hops + 1)]


@torch.no_grad()
def _attention(reader: Reader, vocabulary: QAVocabulary, questions: Sequence[Question]) -> dict:
    """The hop attention of ``reader`` over the story of one of ``questions`` (among the first
    200 with at most 12 statements, the one with the most supporting facts, then the longest
    story), as plain data (the module's description names the fields)."""
    short = [q for q in questions[:200] if len(q.story) <= 12]
    question = max(short or questions[:1], key=lambda q: (len(q.supporting), len(q.story)))
    size = reader.config.memory_size
    device = next(reader.parameters()).device
    logits, attention = reader.eval()(collate([question], vocabulary, size).to(device))
    kept = question.story[-size:]
    dropped = len(question.story) - len(kept)
    return {
        "question": " ".join(question.question),
        "answer": question.answer_text,
        "predicted": vocabulary.answers.token(int(logits.argmax(-1))),
        "statements": [" ".join(sentence) for sentence in kept],
        "supporting": [i - dropped for i in question.supporting if i >= dropped],
        "weights": [[round(w, 4) for w in hop] for hop in attention[0, :, : len(kept)].tolist()],
    }


def _run_name(kind: str, unit: int | str, seed: int) -> str:
    """The file name (without suffix) of one run: ``memory-task3-seed0``, ``lstm-joint-seed1``."""
    return f"{kind}-{'joint' if unit == 'joint' else f'task{unit}'}-seed{seed}"


def _trained(
    run_dir: Path,
    name: str,
    reader_config: ReaderConfig,
    training: QATrainConfig,
    data: tuple[list[Question], list[Question]],
    device: torch.device,
    save_every: int,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[Reader, QAVocabulary, dict]:
    """The reader of one run on ``device``, with its record (``reader``, ``training``,
    ``history``, ``train_seconds``, ``environment``): read back when finished with the same
    settings, else trained on the ``(train, valid)`` questions of ``data`` (on from its
    checkpoint, when finished with fewer epochs); only the first process saves it."""
    model_path = run_dir / "models" / f"{name}.pt"
    record_path = run_dir / "checkpoints" / f"{name}.json"
    train, valid = data
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
            reader = Reader.load(model_path, device)
            log(f"{name}: finished earlier, read back")
            record.setdefault("environment", environment(device))  # an older version's record
            return reader, reader.vocabulary, record
    vocabulary = QAVocabulary.build(train)
    torch.manual_seed(training.seed)
    reader = Reader(reader_config, vocabulary).to(device)
    size = reader_config.memory_size
    history = fit(
        reader,
        collate(train, vocabulary, size),
        collate(valid, vocabulary, size),
        training,
        run_dir / "checkpoints" / f"{name}.pt",
        progress,
        log,
        save_every,
    )
    record = {
        **requested,
        "history": history.to_dict(),
        "train_seconds": sum(history["seconds"]),
        "environment": environment(device),
    }
    if is_main():
        reader.save(model_path)
        write_json_atomic(record_path, record)
    return reader, vocabulary, record


def per_task(results: dict) -> dict:
    """The per-task figures of a run folder's ``results.json`` content, by reader (in the
    order the rows first name them) and task.

    Returns:
        ``{kind: {"tasks": {task: entry}, "mean_best", "mean_mean", "failed_best",
        "failed_mean"}}``; an entry holds ``best`` (the test error of ``best_seed``, the seed
        with the lowest validation error, the lowest seed among ties), ``mean``, ``std`` and
        ``seeds`` (the test error over seeds, from the ``summary``), ``support`` (mean
        supporting-fact accuracy per hop over seeds; ``None`` for a reader without
        attention) and ``train_seconds`` (mean over seeds). Over tasks: the mean of the best
        and of the mean errors, and how many tasks fail (error above `FAILED`).
    """
    rows = results["rows"]
    valid = {
        (r["system"], r["task"], r["seed"]): r["metrics"]["error"]
        for r in rows
        if r["split"] == "valid"
    }
    summary: dict[tuple, dict] = {}
    for entry in results["summary"]:
        if entry["split"] == "test":
            summary.setdefault((entry["system"], entry["task"]), {})[entry["metric"]] = entry
    figures: dict = {}
    for kind in dict.fromkeys(r["system"] for r in rows):
        tests = [r for r in rows if r["system"] == kind and r["split"] == "test"]
        entries = {}
        for task in sorted({r["task"] for r in tests}):
            seeds = [r for r in tests if r["task"] == task]
            best = min(seeds, key=lambda r: (valid[kind, task, r["seed"]], r["seed"]))
            means = summary[kind, task]
            support = _support({metric: entry["mean"] for metric, entry in means.items()})
            entries[task] = {
                "best": best["metrics"]["error"],
                "best_seed": best["seed"],
                "mean": means["error"]["mean"],
                "std": means["error"]["std"],
                "seeds": means["error"]["seeds"],
                "support": support or None,
                "train_seconds": statistics.fmean(r["seconds"] for r in seeds),
            }
        figures[kind] = {
            "tasks": entries,
            "mean_best": statistics.fmean(e["best"] for e in entries.values()),
            "mean_mean": statistics.fmean(e["mean"] for e in entries.values()),
            "failed_best": sum(e["best"] > FAILED for e in entries.values()),
            "failed_mean": sum(e["mean"] > FAILED for e in entries.values()),
        }
    return figures


def results_table(results: dict) -> str:
    """The Markdown tables of a run folder's ``results.json`` content: per-task test error (%)
    and supporting-fact accuracy (%)."""
    summary = per_task(results)
    kinds = list(summary)
    tasks = sorted({task for kind in kinds for task in summary[kind]["tasks"]})
    seeds = max(e["seeds"] for k in kinds for e in summary[k]["tasks"].values())
    lines = [
        f"# {results['corpus']}: memory network vs attentive reader vs LSTM "
        f"({results['settings']['mode']})",
        "",
        f"Test error (%) per task over {seeds} seeds: *best* is the seed with the lowest "
        "validation error (10% of the training questions), *mean ± std* is over all seeds. "
        f"A task fails above {100 * FAILED:.0f}% error.",
        "",
        "| task | " + " | ".join(f"{k} best | {k} mean ± std" for k in kinds) + " |",
        "| ---: | " + " | ".join("---: | ---:" for _ in kinds) + " |",
    ]
    for task in tasks:
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
        for task in tasks:
            cells = []
            for kind in attending:
                support = summary[kind]["tasks"].get(task, {}).get("support")
                cells.append(" / ".join(f"{100 * s:.0f}" for s in support) if support else "-")
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _draw(run_dir: Path, results: dict) -> None:
    """``results.md`` and the plots of ``run_dir`` from its ``results.json`` content (none
    before the first rows)."""
    if not results["rows"]:
        return
    write_text_atomic(run_dir / "results.md", results_table(results))
    summary = per_task(results)
    plot_errors(summary, run_dir / "errors.png")
    histories = {
        (r["system"], r["unit"], r["seed"]): r["history"]
        for r in results["rows"]
        if r["split"] == "valid"
    }
    plot_validation(histories, run_dir / "validation_curves.png")
    if "memory" in summary:  # the best seed's attention on tasks 1, 2, 3 and 16, or two others
        best = {task: entry["best_seed"] for task, entry in summary["memory"]["tasks"].items()}
        shown = [t for t in (1, 2, 3, 16) if t in best] or sorted(best)[:2]
        examples = {
            r["task"]: r["attention"]
            for r in results["rows"]
            if r["system"] == "memory" and r["split"] == "test" and best[r["task"]] == r["seed"]
        }
        plot_hop_attention([(t, examples[t]) for t in shown], run_dir / "hop_attention.png")
