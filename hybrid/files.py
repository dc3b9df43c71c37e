"""Where the real corpora are, and how checkpoints are written."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["data_root", "save_atomic"]

# ``../shared/data`` next to the repository (the folder above the ``hybrid`` package).
_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_root(given: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding the real corpora (``atis/``, ``conll2000/``, ...).

    Args:
        given: An explicit folder; returned as a `Path` when not ``None``.

    Returns:
        ``given``; else the environment variable ``HYBRID_DATA`` when set and non-empty;
        else ``../shared/data`` beside the repository (the folder above the ``hybrid``
        package) when it exists; else ``None``. Only the last one is checked for existence.
    """
    if given is not None:
        return Path(given).expanduser()
    env = os.environ.get("HYBRID_DATA", "")
    if env:
        return Path(env).expanduser()
    return _DEFAULT_DATA if _DEFAULT_DATA.is_dir() else None


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)
