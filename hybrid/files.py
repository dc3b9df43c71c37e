"""Where the real corpora are, and how checkpoints are written."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_same_setup", "data_root", "save_atomic", "save_trained", "write_json_atomic"]

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


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to a temporary file, then rename it to ``path``."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)


def save_trained(path: Path, model: Any, vocabulary: Any) -> None:
    """Save a trained model as plain data: ``asdict(model.config)``, ``vocabulary.to_dict()``
    and CPU weights, atomically (loads with ``torch.load(weights_only=True)``)."""
    save_atomic(
        {
            "config": asdict(model.config),
            "vocabulary": vocabulary.to_dict(),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        Path(path),
    )


def check_same_setup(path: Path, saved: dict | None, requested: dict) -> None:
    """Refuse to read back a run trained with other settings than those asked for now.

    Raises:
        ValueError: naming ``path`` and every setting that differs (``saved`` ``None``:
            written before settings were recorded, accepted).
    """
    if saved is None:
        return
    differ = {k: (saved.get(k), v) for k, v in requested.items() if saved.get(k) != v}
    if differ:
        listed = ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in differ.items())
        raise ValueError(
            f"{path} was trained with other settings ({listed}); "
            "choose another run folder (--name) or remove it"
        )
