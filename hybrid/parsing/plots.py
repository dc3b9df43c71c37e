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
from .tree import Tree  # noqa: E402


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


def _layout(tree: Tree) -> tuple[list[tuple], list[tuple]]:
    """Where each node of ``tree`` is drawn: ``(x, depth, label, is_word)`` per node and
    ``(x0, depth0, x1, depth1)`` per edge; words sit one unit apart at the bottom, a phrase
    above the middle of its children."""
    nodes, edges = [], []
    bottom = tree.height()
    leaves = iter(range(len(tree.leaves())))

    def place(node: Tree | str, depth: int) -> float:
        if isinstance(node, str):
            x = float(next(leaves))
            nodes.append((x, bottom, node, True))
            return x
        xs = [place(child, depth + 1) for child in node.children]
        x = (xs[0] + xs[-1]) / 2
        for child_x, child in zip(xs, node.children, strict=True):
            child_depth = bottom if isinstance(child, str) else depth + 1
            edges.append((x, depth, child_x, child_depth))
        nodes.append((x, depth, node.label, False))
        return x

    place(tree, 0)
    return nodes, edges


def plot_trees(trees: Sequence[Tree], titles: Sequence[str], path: Path) -> None:
    """Draw constituency ``trees`` one above the other (e.g. the gold tree and a parse of the
    same sentence), words at the bottom, each with its title."""
    widths = [len(tree.leaves()) for tree in trees]
    fig, axes = plt.subplots(
        len(trees), 1, figsize=(max(6.0, 0.75 * max(widths)), 3.2 * len(trees)), squeeze=False
    )
    for ax, tree, title in zip(axes[:, 0], trees, titles, strict=True):
        nodes, edges = _layout(tree)
        for x0, y0, x1, y1 in edges:
            ax.plot([x0, x1], [-y0, -y1], color="0.6", linewidth=0.8, zorder=1)
        for x, y, label, word in nodes:
            ax.text(
                x,
                -y,
                label,
                ha="center",
                va="center",
                fontsize=8,
                style="italic" if word else "normal",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"},
                zorder=2,
            )
        ax.set(title=title, xlim=(-0.7, len(tree.leaves()) - 0.3), ylim=(-tree.height() - 0.6, 0.6))
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)
