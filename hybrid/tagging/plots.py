"""Pictures of a tagging comparison: training curves, per-label F1, tag confusion."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import save_figure  # noqa: E402


def plot_curves(
    histories: dict[tuple[str, int], dict], path: Path, metric: str = "span F1"
) -> None:
    """Training loss, development ``metric`` (span F1, or token accuracy for plain labels)
    and (where the data has intents) development intent accuracy per epoch, one line per
    (head, seed)."""
    panels = [
        ("loss", "training loss (per sentence)", 1.0),
        ("dev_f1", f"development {metric} (%)", 100.0),
    ]
    if any(not np.isnan(a) for h in histories.values() for a in h.get("dev_intent_accuracy", [])):
        panels.append(("dev_intent_accuracy", "development intent accuracy (%)", 100.0))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    colours = {}
    for (head, seed), history in sorted(histories.items()):
        colour = colours.setdefault(head, f"C{len(colours)}")
        epochs = range(1, len(history["loss"]) + 1)
        label = head if seed == min(s for h, s in histories if h == head) else None
        for ax, (key, _, scale) in zip(axes, panels, strict=True):
            values = [scale * v for v in history[key]]
            ax.plot(epochs, values, color=colour, alpha=0.8, label=label)
    for ax, (key, title, _) in zip(axes, panels, strict=True):
        ax.set(xlabel="epoch", ylabel=title, yscale="log" if key == "loss" else "linear")
    axes[-1].legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_label_f1(
    scores: dict[str, dict[str, float]],
    support: dict[str, int],
    path: Path,
    top: int = 30,
    units: str = "spans",
) -> None:
    """Per-label test F1 of each head (mean over seeds) for the ``top`` labels by support
    (gold ``units``: chunks are ``"spans"``, plain labels ``"tokens"``)."""
    labels = sorted(support, key=lambda label: -support[label])[:top]
    fig, ax = plt.subplots(figsize=(0.45 * len(labels) + 2.5, 4.5))
    width = 0.8 / max(len(scores), 1)
    for i, (head, per) in enumerate(scores.items()):
        xs = np.arange(len(labels)) + i * width
        ax.bar(xs, [100 * per.get(label, 0.0) for label in labels], width=width, label=head)
    names = [f"{label} ({support[label]})" for label in labels]
    ax.set_xticks(
        np.arange(len(labels)) + 0.4 - width / 2, names, rotation=70, ha="right", fontsize=7
    )
    ax.set(
        ylabel=f"test {'span' if units == 'spans' else 'token'} F1 (%)",
        ylim=(0, 100),
        title=f"per-label test F1, mean over seeds (gold {units} in brackets)",
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)


def confusion_matrix(
    counts: dict[str, dict[str, int]], top: int = 25
) -> tuple[list[str], np.ndarray]:
    """The ``top`` tags most frequent in gold (tags equally frequent keep the order of the
    keys) and their ``(top, top)`` confusion, gold rows and predicted columns, each row a
    share of all that gold tag's tokens: a row sums to less than 1 by what went to tags not
    shown. ``counts``: ``{gold tag: {predicted tag: tokens}}`` with every tag a key."""
    gold = {tag: sum(row.values()) for tag, row in counts.items()}
    shown = sorted(counts, key=lambda tag: -gold[tag])[:top]
    index = {tag: i for i, tag in enumerate(shown)}
    matrix = np.zeros((len(shown), len(shown)))
    for g in shown:
        for p, n in counts[g].items():
            if p in index:
                matrix[index[g], index[p]] += n
        matrix[index[g]] /= max(gold[g], 1)
    return shown, matrix


def plot_confusion(
    counts: dict[str, dict[str, int]], path: Path, title: str = "", top: int = 25
) -> None:
    """Draw `confusion_matrix` of ``counts`` (its ``top`` most frequent gold tags)."""
    shown, matrix = confusion_matrix(counts, top)
    fig, ax = plt.subplots(figsize=(0.3 * len(shown) + 3, 0.3 * len(shown) + 2.5))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(shown)), shown, rotation=80, fontsize=6)
    ax.set_yticks(range(len(shown)), shown, fontsize=6)
    ax.set(xlabel="predicted", ylabel="gold", title=title)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    save_figure(fig, path)
