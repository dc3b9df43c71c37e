"""Side-by-side comparison of run folders (``hybrid report RUN [RUN ...]``), from their
``results.json`` alone (`hybrid.runs`).

For every run, every system (its task, system and decoder) gets the mean ± standard
deviation over seeds of the run's primary metric on a split (``test`` by default), as a
percentage: softmax vs CRF vs SSVM across ATIS and CoNLL-2000, GMM-HMM vs DNN-HMM vs CTC
across corpora, in one table and one plot.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .files import save_figure, write_text_atomic
from .runs import read_results

__all__ = ["comparison", "plot_comparison", "write_report"]


def _system(entry: dict) -> str:
    """A system's name from the key fields of a summary entry (``task / system / decoder``)."""
    parts = [entry.get("task"), entry.get("system"), entry.get("decoder")]
    return " / ".join(str(p) for p in parts if p is not None)


def _column(run: Path, results: dict) -> str:
    """A run's column: its corpus and its folder's name."""
    folder = run.parent if run.name == "results.json" else run
    return f"{results['corpus']} ({folder.name})"


def comparison(
    runs: Sequence[str | os.PathLike[str]], split: str | None = None, metric: str | None = None
) -> tuple[list[str], dict[str, dict[str, tuple[float, float, int]]], str, bool, str]:
    """The compared values: ``(columns, {system: {column: (mean, std, seeds)}}, metric,
    higher is better, split)``, means and deviations in percent.

    Args:
        runs: Run folders (or their ``results.json``).
        split: The split compared (default: the first run's primary split, ``test`` for
            most domains).
        metric: The metric compared (default: the first run's primary metric).

    Raises:
        ValueError: naming the file, for a folder that is not a run folder; when the runs
            share no metric name, or none has rows of ``split`` and ``metric``.
    """
    loaded = [(Path(r), read_results(r)) for r in runs]
    if not loaded:
        raise ValueError("runs: expected at least one run folder")
    primary = loaded[0][1]["primary"]
    metric = metric or primary["metric"]
    split = split or primary.get("split", "test")
    columns, table = [], {}
    for run, results in loaded:
        column = _column(run, results)
        columns.append(column)
        for entry in results["summary"]:
            if entry["split"] == split and entry["metric"] == metric:
                table.setdefault(_system(entry), {})[column] = (
                    100 * entry["mean"],
                    100 * entry["std"],
                    entry["seeds"],
                )
    if not table:
        named = ", ".join(str(r) for r, _ in loaded)
        raise ValueError(f"{named}: no rows of split {split!r} with metric {metric!r}")
    return columns, table, metric, primary["higher"], split


def _markdown(columns, table, metric, higher, split) -> str:
    better = "higher" if higher else "lower"
    lines = [
        f"# {metric} on {split} (%, mean ± std over seeds; {better} is better)",
        "",
        "| system | " + " | ".join(columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for system, cells in table.items():
        shown = [
            f"{cells[c][0]:.2f} ± {cells[c][1]:.2f} ({cells[c][2]})" if c in cells else "-"
            for c in columns
        ]
        lines.append(f"| {system} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(columns, table, metric: str, path: Path) -> None:
    """Grouped bars: one group per run, one bar per system, the standard deviation as an
    error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    systems = list(table)
    width = 0.8 / max(len(systems), 1)
    figure, axes = plt.subplots(figsize=(max(5.0, 1.6 * len(columns) + 2), 4))
    x = np.arange(len(columns))
    for i, system in enumerate(systems):
        means = [table[system].get(c, (np.nan, 0, 0))[0] for c in columns]
        stds = [table[system].get(c, (np.nan, 0, 0))[1] for c in columns]
        axes.bar(x + (i - (len(systems) - 1) / 2) * width, means, width, yerr=stds, label=system)
    values = [v[0] for cells in table.values() for v in cells.values()]
    low, high = min(values), max(values)
    margin = max(1.0, (high - low) * 0.3)
    axes.set(
        xticks=x, xticklabels=columns, ylabel=f"{metric} (%)", ylim=(low - margin, high + margin)
    )
    axes.legend(fontsize="small")
    figure.tight_layout()
    save_figure(figure, path)


def write_report(
    runs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    split: str | None = None,
    metric: str | None = None,
) -> str:
    """Write ``report.md`` and ``report.png`` comparing ``runs`` into ``out``; returns the
    Markdown table (see `comparison`)."""
    columns, table, metric, higher, split = comparison(runs, split, metric)
    text = _markdown(columns, table, metric, higher, split)
    out = Path(out)
    write_text_atomic(out / "report.md", text)
    plot_comparison(columns, table, metric, out / "report.png")
    return text
