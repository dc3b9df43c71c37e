"""Phone alignments against hand labels: the boundary measure of forced aligners, and the
table and picture of a run folder of such a comparison (task `TASK`).

A forced alignment gives every phone of a transcript a span of frames (`phone_segments`);
its start and end become times at the boundary between two frames, halfway between their
centres (25 ms windows every 10 ms: ``10 t + 7.5`` ms before frame ``t``, 0 before the first).
`boundary_errors` compares them with the hand-labelled times of the same phones.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..files import write_text_atomic
from .decoder import FRAME_SHIFT, boundary_time, phone_segments
from .metrics import boundaries_within
from .plots import plot_boundaries
from .topology import PhoneTopology

__all__ = ["TASK", "boundary_errors", "draw"]

#: The task of a run folder's rows that compare alignments with hand labels.
TASK = "alignment"


def boundary_errors(
    paths: Sequence[Tensor],
    topology: PhoneTopology,
    references: Sequence[Sequence[tuple[float, float]]],
    tolerance: float = 0.02,
) -> dict:
    """How close the phone boundaries of forced alignments lie to hand-labelled ones.

    Args:
        paths: Per utterance the ``(T,)`` pdf ids of its forced alignment (`align`) with its
            transcript's phones.
        topology: The phone HMMs.
        references: Per utterance the hand-labelled ``(start, end)`` (s) of the same phones.
        tolerance: A boundary within this many seconds is right.

    Returns:
        ``{"within", "boundaries", "accuracy", "median_error_ms", "predicted"}``: the start
        and end times within ``tolerance``, their number, the share, the median signed error
        (predicted minus hand-labelled) and per utterance the predicted ``(start, end)``.

    Raises:
        ValueError: An alignment whose phones are not as many as its reference's.
    """
    within = total = 0
    signed: list[float] = []
    predicted = []
    for path, reference in zip(paths, references, strict=True):
        spans = [(boundary_time(a), boundary_time(b)) for _, a, b in phone_segments(path, topology)]
        hits, count = boundaries_within(reference, spans, tolerance)
        within, total = within + hits, total + count
        for (start, end), (ref_start, ref_end) in zip(spans, reference, strict=True):
            signed += [start - ref_start, end - ref_end]
        predicted.append(spans)
    return {
        "within": within,
        "boundaries": total,
        "accuracy": within / total,
        "median_error_ms": 1000 * statistics.median(signed),
        "predicted": predicted,
    }


def draw(run_dir: Path, results: dict) -> None:
    """``results.md`` and ``alignment.png`` of a run folder of `TASK` rows, from its
    ``results.json`` (``results``) alone."""
    lines = [
        f"# {results['corpus']}: phone alignment against hand labels",
        "",
        "Aligned to: each phone as a word, silence optional between any two (phones), or the "
        "runs of phones between silences as words (runs between silences). Contexts of tied "
        "triphones: the neighbours inside the word (word-internal) or on either side whatever "
        "the word (cross-word). The phone error rate is the phone loop's, or, for the pure "
        "RNN and CTC, which decode without an HMM, that of their own decoders.",
        "",
        "| system | contexts | aligned to | split | boundaries within 20 ms "
        "| median signed error | phone error rate | S / D / I | train s |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        m = row["metrics"]
        aligned = "- | -"  # a system without an HMM aligns nothing
        if "alignment_accuracy" in m:
            aligned = (
                f"{100 * m['alignment_accuracy']:.1f}% of {m['boundaries']} | "
                f"{m['median_boundary_error_ms']:+.1f} ms"
            )
        recognised = "- | -"
        if "phone_error_rate" in m:
            recognised = (
                f"{100 * m['phone_error_rate']:.1f}% | {m['substitutions']} / "
                f"{m['deletions']} / {m['insertions']} of {m['reference_phones']}"
            )
        lines.append(
            f"| {row['system']} | {row.get('contexts', '-')} | {row.get('decoder') or 'phones'} "
            f"| {row['split']} | {aligned} | {recognised} | {row['seconds']:.0f} |"
        )
    write_text_atomic(run_dir / "results.md", "\n".join(lines) + "\n")
    shown = [row for row in results["rows"] if "plot" in row]
    if shown:
        plot = shown[0]["plot"]
        plot_boundaries(
            torch.tensor(plot["spectrogram"]),
            [tuple(s) for s in plot["reference"]],
            [tuple(s) for s in plot["predicted"]],
            f"{plot['utterance']}: hand-labelled phone boundaries (white, top) and the forced "
            "alignment (cyan, dashed, bottom)",
            run_dir / "alignment.png",
            FRAME_SHIFT,
        )
