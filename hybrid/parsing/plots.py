"""Pictures of a parser comparison: development curves, F1 by sentence length and attention
maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402

from ..files import save_figure  # noqa: E402


def plot_training(histories: dict[str, dict], path: Path) -> None:
    """Training and development loss (token cross-entropy per target token of a seq2seq
    parser; tree-CRF or hinge loss per sentence of a chart parser) and development F1
    (greedy decoding; CKY) per epoch, one line per model; ``histories``: each model's
    training history (`hybrid.training.History.to_dict`) by name."""
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, history) in enumerate(sorted(histories.items())):
        epochs = np.arange(1, len(history["loss"]) + 1)
        loss_ax.plot(epochs, history["loss"], color=f"C{i}", label=f"{name} train")
        loss_ax.plot(epochs, history["dev_loss"], color=f"C{i}", linestyle="--", label="dev")
        f1_ax.plot(epochs, history["dev_f1"], color=f"C{i}", label=name)
    loss_ax.set(
        xlabel="epoch",
        ylabel="loss per sentence (seq2seq: per token)",
        title="each parser's own loss (dashed: dev)",
    )
    f1_ax.set(xlabel="epoch", ylabel="bracket F1", title="development F1 (greedy; CKY)")
    loss_ax.legend(fontsize=7)
    f1_ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_attention(
    samples: Sequence[tuple[Tensor, Sequence[str], Sequence[str]]], path: Path, title: str
) -> None:
    """Attention maps: for each ``(weights (T, S), source words, output tokens)`` sample, which
    source word each output token attends to (rows: output tokens, then ``</s>``)."""
    fig, axes = plt.subplots(
        1,
        len(samples),
        figsize=(
            sum(2 + 0.3 * len(w) for _, w, _ in samples),
            0.16 * max(len(o) for *_, o in samples) + 2,
        ),
        squeeze=False,
    )
    for ax, (weights, words, outputs) in zip(axes[0], samples, strict=True):
        ax.imshow(weights.numpy(), aspect="auto", cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks(range(len(words)), words, rotation=90, fontsize=7)
        ax.set_yticks(range(len(outputs) + 1), [*outputs, "</s>"], fontsize=6)
        ax.set_xlabel("input words (reading order)")
    axes[0, 0].set_ylabel("output tokens")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_f1_by_length(rows: Sequence[dict], path: Path, names: dict[str, str]) -> None:
    """Test F1 by sentence length: one panel per input, one line per model and decoder (rows
    of `hybrid.parsing.experiment` with ``f1_by_length``; ``names`` names the models)."""
    rows = [row for row in rows if "f1_by_length" in row]
    if not rows:
        return
    inputs = sorted({row["input"] for row in rows}, key=["words", "tags"].index)
    fig, axes = plt.subplots(1, len(inputs), figsize=(6 * len(inputs), 4), squeeze=False)
    for ax, source in zip(axes[0], inputs, strict=True):
        for row in (r for r in rows if r["input"] == source):
            bins = list(row["f1_by_length"])
            values = [np.nan if v is None else v for v in row["f1_by_length"].values()]
            style = "-" if row["model"].startswith("chart") else "--"
            label = f"{names[row['model']]}, {row['decoder']}"
            ax.plot(bins, values, style, marker="o", markersize=3, label=label)
        ax.set(xlabel="sentence length (words)", ylabel="test bracket F1", title=f"{source} input")
        ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
