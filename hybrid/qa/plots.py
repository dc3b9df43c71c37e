"""Pictures of a reader comparison: per-task errors, validation curves, hop attention, each
drawn from plain data (the rows of a run folder's ``results.json``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import save_figure  # noqa: E402


def plot_errors(summary: dict, path: Path) -> None:
    """Test error per task and reader: bars for the best-of-seeds, whiskers for mean ± std.

    Args:
        summary: By reader, its figures per task (`hybrid.qa.experiment.per_task`); a task
            a reader did not run has no bar.
        path: The PNG to write.
    """
    kinds = list(summary)
    tasks = sorted({t for k in kinds for t in summary[k]["tasks"]})
    width = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(min(16, max(6, 0.25 * len(tasks) * len(kinds))), 4.5))
    x = np.arange(len(tasks))
    missing = {"best": np.nan, "mean": np.nan, "std": np.nan}
    for i, kind in enumerate(kinds):
        entries = [summary[kind]["tasks"].get(t, missing) for t in tasks]
        best = [100 * e["best"] for e in entries]
        mean = [100 * e["mean"] for e in entries]
        std = [100 * e["std"] for e in entries]
        offset = x + (i - (len(kinds) - 1) / 2) * width
        ax.bar(offset, best, width, label=f"{kind} (best of seeds)", color=f"C{i}", alpha=0.8)
        ax.errorbar(offset, mean, yerr=std, fmt="k.", markersize=3, linewidth=0.8)
    ax.axhline(5, color="grey", linestyle="--", linewidth=0.8, label="5% (failed above)")
    ax.set(xticks=x, xticklabels=[str(t) for t in tasks], xlabel="task", ylabel="test error (%)")
    ax.set_title(
        "bars: best of seeds by validation error\ndots and whiskers: mean ± std over seeds",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_validation(histories: dict[tuple[str, object, int], dict], path: Path) -> None:
    """Validation error per epoch, one panel per task (or the joint run), one line per reader
    and seed; linear-start epochs are drawn dashed.

    Args:
        histories: By ``(kind, unit, seed)``, a training history as plain data
            (`hybrid.training.History.to_dict`) with the per-epoch columns ``valid_error`` (in
            ``[0, 1]``) and ``linear`` (whether the epoch was one of linear start).
        path: The PNG to write.
    """
    units = sorted(
        {u for _, u, _ in histories}, key=lambda u: (isinstance(u, str), str(u).zfill(3))
    )
    columns = min(5, len(units))
    rows = -(-len(units) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    kinds = sorted({k for k, _, _ in histories})
    for (kind, unit, seed), history in sorted(histories.items(), key=str):
        ax = axes.flat[units.index(unit)]
        colour = f"C{kinds.index(kind)}"
        errors = 100 * np.asarray(history["valid_error"])
        linear = np.asarray(history["linear"], dtype=bool)
        epochs = np.arange(1, len(errors) + 1)
        first = seed == min(s for k, u, s in histories if k == kind and u == unit)
        ax.plot(
            epochs[~linear],
            errors[~linear],
            color=colour,
            alpha=0.6,
            linewidth=0.8,
            label=kind if first and units.index(unit) == 0 else None,
        )
        if linear.any():
            ax.plot(
                epochs[linear],
                errors[linear],
                color=colour,
                alpha=0.6,
                linestyle="--",
                linewidth=0.8,
            )
        ax.set_title(f"task {unit}" if unit != "joint" else "joint", fontsize=9)
    for ax in axes.flat[len(units) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation error (%)")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def plot_hop_attention(examples: Sequence[tuple[int, dict]], path: Path) -> None:
    """Attention of each hop over a story, one panel per ``(task, example)``; gold
    supporting statements are starred.

    Args:
        examples: Per task, the hop attention of a memory network over the story of one
            question, as plain data: ``question``, ``answer`` and ``predicted`` (text),
            ``statements`` (the story kept in memory, oldest first), ``supporting`` (indices
            of the gold ones among them) and ``weights`` (``[hop][statement]``).
        path: The PNG to write.
    """
    heights = [max(2.0, 0.32 * len(e["statements"]) + 1.2) for _, e in examples]
    fig, axes = plt.subplots(
        len(examples),
        1,
        figsize=(8.5, sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, (task, example) in zip(axes[:, 0], examples, strict=True):
        statements = example["statements"]
        shown = np.asarray(example["weights"]).T  # (statements, hops)
        ax.imshow(shown, aspect="auto", cmap="Blues", vmin=0, vmax=max(1e-9, shown.max()))
        labels = [
            ("* " if i in example["supporting"] else "  ") + sentence
            for i, sentence in enumerate(statements)
        ]
        ax.set_yticks(range(len(statements)), labels, fontsize=8)
        ax.set_xticks(range(shown.shape[1]), [f"hop {h + 1}" for h in range(shown.shape[1])])
        for (i, h), value in np.ndenumerate(shown):
            ax.text(
                h,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 * shown.max() else "black",
            )
        ax.set_title(
            f"task {task}: {example['question']}?  answer: {example['answer']}, "
            f"predicted: {example['predicted']}  (* gold support)",
            fontsize=9,
        )
    fig.tight_layout()
    save_figure(fig, path)
