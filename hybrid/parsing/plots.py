"""Pictures of a parser comparison: development curves and attention maps."""

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
    """Training loss and development F1 (greedy decoding) per epoch, one line per model."""
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, history) in enumerate(sorted(histories.items())):
        epochs = np.arange(1, len(history["loss"]) + 1)
        loss_ax.plot(epochs, history["loss"], color=f"C{i}", label=f"{name} train")
        loss_ax.plot(epochs, history["dev_loss"], color=f"C{i}", linestyle="--", label="dev")
        f1_ax.plot(epochs, history["dev_f1"], color=f"C{i}", label=name)
    loss_ax.set(xlabel="epoch", ylabel="token cross-entropy", title="loss (dashed: dev)")
    f1_ax.set(xlabel="epoch", ylabel="bracket F1", title="development F1, greedy decoding")
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
