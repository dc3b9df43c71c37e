"""Figures of the speech recipe: a forced alignment over its spectrogram, a confusion matrix,
training curves, the error table as bars and a CTC model's posteriors. Each is a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..files import save_figure
from ..training import History
from .topology import Topology

__all__ = [
    "plot_alignment",
    "plot_boundaries",
    "plot_confusion",
    "plot_ctc",
    "plot_errors",
    "plot_training",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_alignment(
    spectrogram: Tensor, alignment: Tensor, topology: Topology, title: str, path: Path
) -> None:
    """Log mel filterbank energies ``(T, F)`` with the aligned HMM states drawn over them.

    The state (pdf) of every frame is the white line (right axis); word boundaries are dashed
    lines labelled with the word, silence is shaded.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.imshow(spectrogram.T.numpy(), origin="lower", aspect="auto", cmap="magma")
    ax.set_xlabel("frame (10 ms)")
    ax.set_ylabel("mel filter")
    states = ax.twinx()
    states.plot(alignment.numpy(), color="white", linewidth=1.2)
    states.set_ylabel("HMM state (pdf)")
    states.set_ylim(-1, topology.num_pdfs)
    words = topology.pdf_words()[alignment]
    starts = [0] + [t for t in range(1, len(words)) if words[t] != words[t - 1]]
    for begin, end in zip(starts, starts[1:] + [len(words)], strict=True):
        word = int(words[begin])
        if word < 0:
            ax.axvspan(begin - 0.5, end - 0.5, color="white", alpha=0.15)
            continue
        ax.axvline(begin - 0.5, color="cyan", linestyle="--", linewidth=1)
        ax.text(
            (begin + end) / 2,
            spectrogram.shape[1] * 0.92,
            topology.words[word],
            color="cyan",
            ha="center",
            fontsize=11,
        )
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_boundaries(
    spectrogram: Tensor,
    reference: Sequence[tuple[str, float, float]],
    predicted: Sequence[tuple[str, float, float]],
    title: str,
    path: Path,
    frame_shift: float = 0.01,
) -> None:
    """Log mel filterbank energies ``(T, F)`` with two phone segmentations over them:
    ``reference`` (``(phone, start, end)`` in seconds, the hand labels) as solid lines and
    labels at the top, ``predicted`` (a forced alignment) as dashed lines and labels at the
    bottom."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(14, 4))
    seconds = spectrogram.shape[0] * frame_shift
    extent = (0.0, seconds, 0, spectrogram.shape[1])
    ax.imshow(spectrogram.T.numpy(), origin="lower", aspect="auto", cmap="magma", extent=extent)
    height = spectrogram.shape[1]
    for segments, style, color, y in (
        (reference, "-", "white", 0.93),
        (predicted, "--", "cyan", 0.03),
    ):
        for phone, start, end in segments:
            ax.axvline(start, color=color, linestyle=style, linewidth=0.9)
            ax.axvline(end, color=color, linestyle=style, linewidth=0.9)
            ax.text((start + end) / 2, height * y, phone, color=color, ha="center", fontsize=8)
    ax.set_xlim(0, seconds)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel filter")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(
    references: Sequence[int],
    hypotheses: Sequence[int],
    words: Sequence[str],
    title: str,
    path: Path,
) -> None:
    """Counts of (spoken, recognised) word pairs for isolated words."""
    plt = _pyplot()
    counts = torch.zeros(len(words), len(words), dtype=torch.long)
    for r, h in zip(references, hypotheses, strict=True):
        counts[r, h] += 1
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(counts.numpy(), cmap="Blues")
    for i in range(len(words)):
        for j in range(len(words)):
            if counts[i, j]:
                color = "white" if counts[i, j] > counts.max() / 2 else "black"
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", color=color)
    ax.set_xticks(range(len(words)), words, rotation=45)
    ax.set_yticks(range(len(words)), words)
    ax.set_xlabel("recognised")
    ax.set_ylabel("spoken")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_training(histories: dict[str, History], title: str, path: Path) -> None:
    """Training loss and held-out accuracy per epoch of each network pass (a pass without
    held-out data, or with no epoch, draws no accuracy, or nothing)."""
    plt = _pyplot()
    fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, history in histories.items():
        epochs = range(1, len(history) + 1)
        loss.plot(epochs, history.columns.get("loss", []), label=name)
        if "valid_accuracy" in history.columns:
            accuracy.plot(epochs, history.valid_accuracy, label=name)
    loss.set_xlabel("epoch")
    loss.set_ylabel("training loss per frame or utterance")
    accuracy.set_xlabel("epoch")
    accuracy.set_ylabel("held-out accuracy (frames or utterances)")
    if accuracy.lines:
        accuracy.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_errors(rows: dict[str, dict[str, float]], path: Path) -> None:
    """Error rate (%) per task, one bar per system: ``rows[task][system]``."""
    plt = _pyplot()
    tasks = list(rows)
    systems = sorted({s for task in rows.values() for s in task}, key=str)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / max(len(systems), 1)
    for k, system in enumerate(systems):
        values = [rows[task].get(system, float("nan")) for task in tasks]
        ax.bar([i + k * width for i in range(len(tasks))], values, width, label=system)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set_ylabel("error rate (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_ctc(
    spectrogram: Tensor,
    log_probs: Tensor,
    spans: Tensor,
    words: Sequence[str],
    blank: int,
    title: str,
    path: Path,
) -> None:
    """A CTC model on one utterance: the filterbank spectrogram with the forced-aligned
    symbols, and the per-frame posteriors (the blank dashed): the spiky picture of CTC.

    Args:
        spectrogram: ``(T, F)`` log filterbank energies.
        log_probs: ``(T, V)`` the model's log-posteriors.
        spans: ``(L, 2)`` first frame and one past the last frame of each target symbol.
        words: The name of every non-blank symbol, by symbol id.
        blank: The blank symbol.
        title: Figure title.
        path: PNG to write.
    """
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    top.imshow(spectrogram.T.numpy(), origin="lower", aspect="auto", cmap="magma")
    top.set_ylabel("mel filter")
    top.set_title(title)
    probs = log_probs.exp()
    bottom.plot(probs[:, blank].numpy(), "k--", linewidth=1, label="blank")
    for symbol in range(probs.shape[1]):
        if symbol != blank and probs[:, symbol].max() > 0.2:
            bottom.plot(probs[:, symbol].numpy(), linewidth=1.5, label=words[symbol])
    for start, stop in spans.tolist():
        if start >= 0:
            top.axvspan(start - 0.5, stop - 0.5, color="cyan", alpha=0.35)
    bottom.set_xlabel("frame (10 ms)")
    bottom.set_ylabel("posterior")
    bottom.legend(fontsize=8, ncol=6, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)
