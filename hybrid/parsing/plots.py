"""Pictures of a parser comparison: development curves, F1 by sentence length and attention
maps, each drawn from what ``results.json`` holds (`hybrid.parsing.experiment`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import save_figure  # noqa: E402


def plot_training(histories: dict[str, dict], path: Path) -> None:
    """Training and development loss (token cross-entropy per target token of a seq2seq
    parser; tree-CRF or hinge loss per sentence of a chart parser) and development F1
    (greedy decoding; CKY; a fraction, drawn in percent) per epoch, one line per parser;
    ``histories``: each parser's training history (`hybrid.training.History.to_dict`) by
    name."""
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, history) in enumerate(sorted(histories.items())):
        epochs = np.arange(1, len(history["loss"]) + 1)
        loss_ax.plot(epochs, history["loss"], color=f"C{i}", label=f"{name} train")
        loss_ax.plot(epochs, history["dev_loss"], color=f"C{i}", linestyle="--", label="dev")
        f1_ax.plot(epochs, 100 * np.asarray(history["dev_f1"]), color=f"C{i}", label=name)
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


def plot_attention(samples: Sequence[dict], path: Path, title: str) -> None:
    """Attention maps: for each ``{"words", "outputs", "weights"}`` sample (the source words,
    the output tokens, and the ``(T, S)`` weights of each output token then ``</s>`` over
    the words, nested lists), which source word each output token attends to."""
    fig, axes = plt.subplots(
        1,
        len(samples),
        figsize=(
            sum(2 + 0.3 * len(s["words"]) for s in samples),
            0.16 * max(len(s["outputs"]) for s in samples) + 2,
        ),
        squeeze=False,
    )
    for ax, sample in zip(axes[0], samples, strict=True):
        words, outputs = sample["words"], sample["outputs"]
        ax.imshow(np.asarray(sample["weights"]), aspect="auto", cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks(range(len(words)), words, rotation=90, fontsize=7)
        ax.set_yticks(range(len(outputs) + 1), [*outputs, "</s>"], fontsize=6)
        ax.set_xlabel("input words (reading order)")
    axes[0, 0].set_ylabel("output tokens")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_f1_by_length(lines: Sequence[dict], path: Path, names: dict[str, str]) -> None:
    """Test F1 by sentence length, in percent: one panel per input, one line per model and
    decoder; ``lines``: ``{"task" (the input), "system" (the model), "decoder",
    "f1_by_length": {bin: F1, a fraction, or None}}``; ``names`` names the models. Nothing
    is drawn without lines."""
    if not lines:
        return
    inputs = sorted({line["task"] for line in lines}, key=["words", "tags"].index)
    fig, axes = plt.subplots(1, len(inputs), figsize=(6 * len(inputs), 4), squeeze=False)
    for ax, source in zip(axes[0], inputs, strict=True):
        for line in (entry for entry in lines if entry["task"] == source):
            bins = list(line["f1_by_length"])
            values = [np.nan if v is None else 100 * v for v in line["f1_by_length"].values()]
            style = "-" if line["system"].startswith("chart") else "--"
            label = f"{names[line['system']]}, {line['decoder']}"
            ax.plot(bins, values, style, marker="o", markersize=3, label=label)
        ax.set(xlabel="sentence length (words)", ylabel="test bracket F1", title=f"{source} input")
        ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
