"""Run folders: one layout and one ``results.json`` schema for every domain.

A run folder (``runs/<name>/``) holds::

    results.json    what was run and what it scored (below), the one source of the rest
    results.md      the domain's table, drawn from results.json alone
    *.png           plots, drawn from results.json alone
    models/         the trained systems, read back by the domain's command
    checkpoints/    resumable training state, with one .log per training

``results.json``::

    {
      "format": 1,
      "domain": "tagging",                  # tagging, parsing, qa, speech
      "corpus": "atis",
      "primary": {"metric": "f1", "higher": true, "split": "test"},  # what `hybrid report`
                                            # compares by default
      "settings": {...},                    # what every row shares; a rerun must match
      "data": {"train": [{"path", "sha256"}], ...},  # the files read, where given
      "rows": [{"task", "system", "decoder", "seed", "split",   # the key (None: n/a)
                "metrics": {...}, "epochs", "seconds", "environment": {...}, ...}],
      "summary": [{"task", "system", "decoder", "split", "metric", "mean", "std", "seeds"}],
      "changes": [{"changed": {setting: [before, after]}, "time"}]
    }

A row is one system trained with one seed, evaluated on one split (``test``, ``dev``, or a
fold's held-out speaker); ``environment`` says where it ran (versions, device, threads,
processes, commit). Processes that share a run folder (two ``hybrid`` commands, or the
folds of one task) merge their rows under a lock: none is lost, a row with the same key is
replaced. Only the first process of a ``torchrun`` group writes.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .files import file_lock, read_json, update_json
from .saved import check_same_setup, record_changes
from .training.distributed import is_main, world

__all__ = [
    "FORMAT",
    "ROW_KEY",
    "RunFolder",
    "environment",
    "read_results",
    "row_key",
    "summarise",
]

#: The version of the ``results.json`` schema.
FORMAT = 1

#: The fields that tell rows apart (absent ones count as ``None``).
ROW_KEY = ("task", "system", "decoder", "seed", "split")


def row_key(row: dict) -> tuple:
    """The values of `ROW_KEY` in ``row``."""
    return tuple(row.get(field) for field in ROW_KEY)


@cache
def _commit() -> str | None:
    """The git commit of the checkout this package runs from, or ``None`` (an installed
    wheel, no git)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        found = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where a row was computed: hybrid, torch, Python and platform versions, the device,
    torch's threads, the number of processes and the git commit (``None`` outside a
    checkout)."""
    return {
        "hybrid": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "processes": world()[1],
        "commit": _commit(),
    }


def summarise(rows: Iterable[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of every numeric metric of ``rows``, per
    task, system, decoder and split: ``[{"task", "system", "decoder", "split", "metric",
    "mean", "std", "seeds"}]`` (``std`` is the sample deviation, 0 for one seed; values
    that are ``None`` or NaN are left out)."""
    groups: dict[tuple, dict[str, list[float]]] = {}
    for row in rows:
        task, system, decoder, _, split = row_key(row)
        metrics = groups.setdefault((task, system, decoder, split), {})
        for name, value in row.get("metrics", {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                if not math.isnan(value):
                    metrics.setdefault(name, []).append(float(value))
    summary = []
    for (task, system, decoder, split), metrics in groups.items():
        for name, values in metrics.items():
            summary.append(
                {
                    "task": task,
                    "system": system,
                    "decoder": decoder,
                    "split": split,
                    "metric": name,
                    "mean": statistics.fmean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "seeds": len(values),
                }
            )
    return summary


def read_results(path: str | os.PathLike[str], domain: str | None = None) -> dict:
    """The ``results.json`` of a run folder (give the folder or the file), of ``domain``
    when one is given.

    Raises:
        ValueError: naming the file, when it is missing, not JSON, not in this schema
            (written by an older version: run the command again into a new folder), or of
            another domain.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: expected the results.json of a run folder")
    return _checked(path, read_json(path), domain)


def _checked(path: Path, results: Any, domain: str | None = None) -> dict:
    """``results``, read from ``path``, if it is in this schema (and of ``domain``)."""
    if not isinstance(results, dict) or results.get("format") != FORMAT:
        found = results.get("format") if isinstance(results, dict) else None
        raise ValueError(
            f"{path} is not a run folder's results.json of format {FORMAT} (found "
            f"{found!r}): written by an older version of hybrid or another program; "
            "choose another run folder (--name) or remove it"
        )
    if domain is not None and results.get("domain") != domain:
        raise ValueError(
            f"{path} holds a {results.get('domain')} run, not a {domain} run: choose another "
            "run folder (--name), or redraw it with `hybrid redraw`"
        )
    return results


def _every_row(row: dict, changes: dict[str, list]) -> bool:
    """The default of `RunFolder.claim`'s ``stale``: every row trains on after a change."""
    return True


def _digests(data: dict) -> dict[str, list[str]]:
    """The SHA-256 of each split's files, in order: what a rerun must match (the paths may
    differ, on another machine)."""
    return {split: [f["sha256"] for f in files] for split, files in data.items()}


class RunFolder:
    """A run folder and its ``results.json`` (see the module's description).

    Args:
        path: The folder (created on the first write).
        domain: ``"tagging"``, ``"parsing"``, ``"qa"`` or ``"speech"``.
        primary: The metric `hybrid report` compares first, and whether higher is better.
        split: The split `hybrid report` compares by default (``"test"``; speech: the
            ``"official"`` fold).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        domain: str,
        primary: tuple[str, bool],
        split: str = "test",
    ):
        self.path, self.domain, self.primary, self.split = Path(path), domain, primary, split

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def claim(
        self,
        corpus: str,
        settings: dict,
        data: dict | None = None,
        may_raise: Sequence[str] = (),
        stale: Callable[[dict, dict[str, list]], bool] = _every_row,
    ) -> dict:
        """Take the folder for a run of ``settings``, before anything trains.

        A new folder gets its ``results.json``; an existing one must hold the same corpus,
        settings and data, but for the settings ``may_raise`` names (dotted, such as
        ``"training.epochs"``), which may be raised: the change is recorded under
        ``"changes"``, and the rows it makes ``stale`` (by default every row: their systems
        train on) are dropped.

        Returns:
            The content of ``results.json`` after the claim.

        Raises:
            ValueError: naming ``results.json`` and each setting that differs.
        """
        requested = {"corpus": corpus, "settings": settings}
        if data is not None:
            requested["data"] = _digests(data)
        prefixed = tuple(f"settings.{name}" for name in may_raise)

        def change(saved: dict) -> dict:
            recorded = None
            if saved:
                _checked(self.results_path, saved, self.domain)
                recorded = {"corpus": saved["corpus"], "settings": saved["settings"]}
                if "data" in saved:
                    recorded["data"] = _digests(saved["data"])
            changes = check_same_setup(self.results_path, recorded, requested, may_raise=prefixed)
            changes = {k.removeprefix("settings."): v for k, v in changes.items()}
            rows = saved.get("rows", [])
            if changes:
                rows = [r for r in rows if not stale(r, changes)]
            claimed = {
                "format": FORMAT,
                "domain": self.domain,
                "corpus": corpus,
                "primary": {
                    "metric": self.primary[0],
                    "higher": self.primary[1],
                    "split": self.split,
                },
                "settings": settings,
                **({"data": data} if data is not None else {}),
                "rows": rows,
                "summary": summarise(rows),
                **({"changes": saved["changes"]} if "changes" in saved else {}),
            }
            return record_changes(claimed, changes)

        if not is_main():
            return change(read_json(self.results_path) if self.results_path.exists() else {})
        return update_json(self.results_path, change)

    def add_rows(self, rows: Sequence[dict], draw: Callable[[dict], None] | None = None) -> dict:
        """Merge ``rows`` into ``results.json`` under the lock (a row replaces the row of the
        same key), recompute the summary, and ``draw`` the tables and plots from the merged
        content while the lock is held.

        Returns:
            The merged content (``{}`` on all but the first process under ``torchrun``).

        Raises:
            ValueError: a row without ``system``, ``seed``, ``split`` or ``metrics``.
        """
        for row in rows:
            missing = [k for k in ("system", "seed", "split", "metrics") if k not in row]
            if missing:
                raise ValueError(f"rows must have {missing}: got a row with {sorted(row)}")
        if not is_main():
            return {}
        fresh = {row_key(r) for r in rows}

        def change(saved: dict) -> dict:
            _checked(self.results_path, saved, self.domain)
            merged = [r for r in saved["rows"] if row_key(r) not in fresh] + list(rows)
            return saved | {"rows": merged, "summary": summarise(merged)}

        return update_json(self.results_path, change, draw)

    def redraw(self, draw: Callable[[dict], None]) -> dict:
        """``draw`` the tables and plots again from ``results.json`` alone, under the lock
        (with the rows of every process that shares the folder); on all but the first
        process under ``torchrun``, only read it.

        Raises:
            ValueError: naming the file, when it is missing, not in this schema, or of
                another domain.
        """
        if not is_main():
            return read_results(self.results_path, self.domain)
        with file_lock(self.results_path):
            results = read_results(self.results_path, self.domain)
            draw(results)
        return results
