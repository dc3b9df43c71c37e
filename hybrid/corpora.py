"""Corpus files given by path: globs, checksums and a seeded held-out split.

Every training command reads the user's data from files named on its command line. The
pieces they share live here: `expand_paths` turns file names and glob patterns into the
files they name (refusing a pattern that names none), `checksums` records what was read
(a run folder keeps the SHA-256 of each data file, so that a run resumed on other data is
refused), and `hold_out` sets a seeded fraction of a training set aside when no
development or test file was given (as flair's ``ColumnCorpus`` does).
"""

from __future__ import annotations

import glob
import hashlib
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["HELD_OUT_SEED", "checksums", "expand_paths", "hold_out"]

Item = TypeVar("Item")

#: The seed of every held-out split, the same for every seed of a comparison: all of its
#: runs select and score on the same sentences.
HELD_OUT_SEED = 0


def expand_paths(
    patterns: str | os.PathLike[str] | Sequence, what: str, folders: bool = False
) -> list[Path]:
    """The files that ``patterns`` name, in order: each pattern a file, a folder's files are
    not included, a glob (``data/wsj_01*.mrg``, ``**`` for subfolders) its matches, sorted.

    Args:
        patterns: One path or pattern, or several.
        what: What the files are, for the errors (e.g. ``"--train"``).
        folders: Take folders too (a Kaldi data directory is one): a folder given is kept,
            and a glob keeps the folders it matches.

    Raises:
        ValueError: naming ``what`` and the pattern: no pattern given, a pattern that
            matches nothing, a path that does not exist, or (without ``folders``) a path
            that is a folder.
    """
    if isinstance(patterns, str | os.PathLike):
        patterns = [patterns]
    if not patterns:
        raise ValueError(f"{what}: expected at least one file or glob pattern")
    files: list[Path] = []
    for pattern in map(str, patterns):
        pattern = os.path.expanduser(pattern)
        if glob.has_magic(pattern):
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
            matches = [m for m in matches if folders or m.is_file()]
            if not matches:
                found = "nothing" if folders else "no file"
                raise ValueError(f"{what}: {found} matches {pattern!r}")
            files.extend(matches)
        elif folders and Path(pattern).exists():
            files.append(Path(pattern))
        elif Path(pattern).is_dir():
            raise ValueError(
                f"{what}: {pattern!r} is a folder; expected a file or a glob pattern such as "
                f"'{Path(pattern) / '*'}'"
            )
        elif not Path(pattern).is_file():
            raise ValueError(f"{what}: no file{' or folder' if folders else ''} {pattern!r}")
        else:
            files.append(Path(pattern))
    return files


def checksums(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """``[{"path", "sha256"}]`` of each file (a folder: each file in it, by name)."""
    out = []
    for path in map(Path, paths):
        members = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for member in members:
            digest = hashlib.sha256()
            with open(member, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
            out.append({"path": str(member), "sha256": digest.hexdigest()})
    return out


def hold_out(
    items: Sequence[Item], fraction: float, what: str, seed: int = HELD_OUT_SEED
) -> tuple[list[Item], list[Item]]:
    """``items`` less a random ``fraction`` of them, and that fraction (in their order).

    At least one item is held out and one kept; the same ``seed`` holds out the same items.

    Raises:
        ValueError: naming ``what``: a fraction outside (0, 1), or fewer than two items.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"{what}: the held-out fraction must be in (0, 1), got {fraction!r}")
    if len(items) < 2:
        raise ValueError(
            f"{what}: {len(items)} item(s), too few to hold some out; give the split's file"
        )
    count = min(len(items) - 1, max(1, round(fraction * len(items))))
    chosen = set(random.Random(seed).sample(range(len(items)), count))
    kept = [item for i, item in enumerate(items) if i not in chosen]
    held = [item for i, item in enumerate(items) if i in chosen]
    return kept, held
