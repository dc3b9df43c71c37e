"""Saved models and checkpoints: what each file holds, read back with named errors, and the
settings a resumed run must share with the run that wrote its checkpoint.

One convention for every trained system: `system.save(path)`,
`type(system).load(path, device)`; files are stamped with their kind and read with
`torch.load(weights_only=True)`.
``load`` (``device="cpu"`` by default) returns the system in evaluation mode on that device:
`hybrid.tagging.model.Tagger` and `hybrid.qa.model.Reader` (each with its vocabularies as
``vocabulary``), `hybrid.parsing.parser.BaseParser` (either kind of parser) and
`hybrid.speech.recognizer.Recognizer` (its network on ``device``).

- `stamp` and `save_trained` mark each saved dictionary with its kind; `load_saved` reads any
  model or checkpoint back (``torch.load(weights_only=True)``) with an error saying which
  file, what it holds and what was expected;
- `check_same_setup` and `load_checkpoint` refuse to resume with other settings (but for more
  epochs: fewer are refused too), and `record_changes` notes in a run folder the settings a
  resume raised.

Files are written through `hybrid.files.save_atomic`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import save_atomic

__all__ = [
    "KIND_KEY",
    "RESUMABLE_CHANGES",
    "check_same_setup",
    "check_same_shapes",
    "load_checkpoint",
    "load_saved",
    "load_trained",
    "record_changes",
    "save_trained",
    "stamp",
]

#: The key of the stamp saying what a saved file holds (``"kind"`` is a speech system's own).
KIND_KEY = "file_kind"

#: What each kind of saved file holds, and the command that writes it.
_KINDS = {
    "tagger": "a trained tagger (written by `hybrid train-tagger`, read by `hybrid tag`)",
    "reader": "a trained reader (written by `hybrid train-qa`, read by `hybrid answer`)",
    "parser": "a trained parser (written by `hybrid train-parser`, read by `hybrid parse`)",
    "chart parser": (
        "a trained chart parser (written by `hybrid train-parser`, read by `hybrid parse`)"
    ),
    "speech system": (
        "a trained speech system (written by `hybrid train-asr`, read by `hybrid recognize`)"
    ),
    "tagger checkpoint": "a training checkpoint of a tagger (`hybrid train-tagger`)",
    "reader checkpoint": "a training checkpoint of a reader (`hybrid train-qa`)",
    "parser checkpoint": "a training checkpoint of a parser (`hybrid train-parser`)",
    "acoustic checkpoint": "a training checkpoint of an acoustic model (`hybrid train-asr`)",
    "gmm checkpoint": "a training checkpoint of a GMM-HMM (`hybrid train-asr`)",
}

#: The settings a resumed training run may raise (never lower): training on for more epochs.
RESUMABLE_CHANGES = ("training.epochs",)


def _described(kind: str) -> str:
    """What a file of ``kind`` holds, in words."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind]


def stamp(kind: str) -> dict:
    """The entry saying that a saved dictionary holds ``kind`` (one of the saved kinds, such
    as ``"tagger"`` or ``"tagger checkpoint"``); `load_saved` reads it back."""
    _described(kind)
    return {KIND_KEY: kind}


def save_trained(path: str | os.PathLike[str], model: Any, vocabulary: Any, kind: str) -> None:
    """Save a trained model as plain data: its ``kind`` stamp, ``asdict(model.config)``,
    ``vocabulary.to_dict()`` and CPU weights, atomically (read back with `load_saved`)."""
    save_atomic(
        {
            **stamp(kind),
            "config": asdict(model.config),
            "vocabulary": vocabulary.to_dict(),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def load_trained(
    path: str | os.PathLike[str],
    kind: str,
    build: Callable[[dict], nn.Module],
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Read back a model written by `save_trained`: ``build(saved)`` makes it from the
    saved ``config`` and ``vocabulary``, then its weights are loaded; on ``device``, in
    evaluation mode.

    Raises:
        ValueError: naming ``path`` (see `load_saved`).
    """
    saved = load_saved(path, kind, map_location=device)
    model = build(saved).to(device)
    model.load_state_dict(saved["model"])
    return model.eval()


def _unstamped_kind(saved: dict) -> str | None:
    """The kind of a file saved before files were stamped, told by its keys (``None``: not a
    file of this library)."""
    if "optimizer" in saved:  # a training checkpoint: each loop kept its own counters
        for key, kind in (
            ("stale", "tagger checkpoint"),
            ("linear_epochs", "reader checkpoint"),
            ("state", "acoustic checkpoint"),
            ("best", "parser checkpoint"),
        ):
            if key in saved:
                return kind
        return None
    if {"kind", "topology", "grammar", "model"} <= saved.keys():
        return "speech system"
    if {"config", "vocabulary", "model"} <= saved.keys() and isinstance(saved["config"], dict):
        for key, kind in (("head", "tagger"), ("memory_size", "reader"), ("num_source", "parser")):
            if key in saved["config"]:
                return kind
    return None


def _models_folder(path: Path) -> str:
    """Where the trained models of the run holding checkpoint ``path`` are."""
    for folder in path.parents:
        if folder.name == "checkpoints":
            return f"{folder.parent / 'models'}/"
    return "the models/ folder of its run"


def load_saved(
    path: str | os.PathLike[str],
    kind: str | tuple[str, ...],
    map_location: str | torch.device = "cpu",
) -> dict:
    """Read back a file written by this library, checking that it holds ``kind``.

    Files are read with ``torch.load(weights_only=True)``: plain data, never code. Files
    written before files were stamped with their kind are recognised by their keys.

    Args:
        path: The file.
        kind: What it must hold: ``"tagger"``, ``"reader"``, ``"parser"``,
            ``"chart parser"``, ``"speech system"``, or a training checkpoint of one
            (``"tagger checkpoint"``, ``"reader checkpoint"``, ``"parser checkpoint"``,
            ``"acoustic checkpoint"``, ``"gmm checkpoint"``); or a tuple of kinds it may
            hold.
        map_location: Where its tensors go.

    Returns:
        The saved dictionary; its `KIND_KEY` entry says which kind it holds.

    Raises:
        ValueError: naming ``path``: it does not exist or is not a file; it is empty,
            truncated or not a file of this library (for a checkpoint: delete it to restart
            that training run from its beginning); or it holds another kind (what it holds
            and which command wrote it, and for a checkpoint where the trained models are).
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    expected = " or ".join(_described(k) for k in kinds)
    checkpoint = all(k.endswith("checkpoint") for k in kinds)
    path = Path(path)
    if not path.is_file():
        missing = "does not exist" if not path.exists() else "is not a file"
        raise ValueError(f"{path} {missing}; expected {expected}")
    advice = "; delete it to restart that training run from its beginning" if checkpoint else ""
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for bytes that are not its format
        raise ValueError(
            f"{path} is not a file written by hybrid: truncated or another format "
            f"({type(error).__name__}); expected {expected}{advice}"
        ) from error
    found = (saved.get(KIND_KEY) or _unstamped_kind(saved)) if isinstance(saved, dict) else None
    if not isinstance(found, str) or found not in _KINDS:
        raise ValueError(
            f"{path} is not a file written by hybrid: it loads, but holds neither a model "
            f"nor a checkpoint; expected {expected}{advice}"
        )
    if found not in kinds:
        where = ""
        if found.endswith("checkpoint") and not checkpoint:
            where = f"; the trained models of a run are in {_models_folder(path)}"
        raise ValueError(f"{path} holds {_KINDS[found]}; expected {expected}{where}")
    return saved | {KIND_KEY: found}


def _differences(saved: dict, requested: dict, prefix: str = "") -> Iterator[tuple]:
    """``(name, saved value, requested value)`` of each setting of ``requested`` that
    ``saved`` records otherwise; nested settings are named with dots (``training.lr``), and
    a group of settings that ``saved`` lacks (recorded only since) is not compared."""
    for key, value in requested.items():
        name, there = f"{prefix}{key}", saved.get(key, _UNRECORDED)
        if isinstance(value, dict) and isinstance(there, dict):
            yield from _differences(there, value, f"{name}.")
        elif isinstance(value, dict) and key not in saved:
            continue
        elif there != value:
            yield name, there, value


class _Unrecorded:
    """The value of a setting that a file does not record (written before it existed)."""

    def __repr__(self) -> str:
        return "not recorded (an older version of hybrid)"


_UNRECORDED = _Unrecorded()


def check_same_setup(
    path: str | os.PathLike[str],
    saved: dict | None,
    requested: dict,
    may_change: Sequence[str] = (),
    may_raise: Sequence[str] = (),
) -> dict[str, list]:
    """Refuse to read back or resume a run made with other settings than those asked for now.

    Args:
        path: The file that recorded ``saved`` (named in the error).
        saved: The recorded settings; ``None`` for a file written before settings were
            recorded (accepted).
        requested: The settings asked for now; nested dictionaries are compared setting by
            setting, named with dots (``training.lr``).
        may_change: Names of settings that may differ (e.g. ``"training.epochs"``: training
            on for longer).
        may_raise: Names of numeric settings that may be raised, not lowered (e.g. the
            epochs of a run folder whose runs train on).

    Returns:
        The differences allowed, ``{name: [saved value, requested value]}`` (empty when the
        settings are the same), for the caller to record.

    Raises:
        ValueError: naming ``path`` and every other setting that differs.
    """
    if saved is None:
        return {}
    found = list(_differences(saved, requested))
    refused = [
        (k, a, b)
        for k, a, b in found
        if k not in may_change and not (k in may_raise and _raised(a, b))
    ]
    if refused:
        listed = ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, a, b in refused)
        allowed = []
        if may_change:
            allowed.append(f" (only {', '.join(may_change)} may change)")
        if may_raise:
            allowed.append(f" (only {', '.join(may_raise)} may change, and only upward)")
        raise ValueError(
            f"{path} was trained with other settings ({listed}){''.join(allowed)}; "
            "choose another run folder (--name) or remove it"
        )
    return {k: [None if a is _UNRECORDED else a, b] for k, a, b in found}


def _raised(before: object, after: object) -> bool:
    """Whether setting value ``after`` is a number above the number ``before``."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    return numbers and after > before


def record_changes(results: dict, changes: dict[str, list]) -> dict:
    """``results`` (a run folder's ``results.json``) with ``changes`` (as `check_same_setup`
    returns them) appended to its ``"changes"`` list as ``{"changed": {setting: [before,
    after]}, "time": <UTC, ISO 8601>}``; ``results`` itself when ``changes`` is empty."""
    if not changes:
        return results
    time = datetime.now(UTC).isoformat(timespec="seconds")
    return results | {"changes": [*results.get("changes", []), {"changed": changes, "time": time}]}


def check_same_shapes(path: str | os.PathLike[str], weights: dict, module: nn.Module) -> None:
    """Refuse ``weights`` (a state dict read from ``path``) that do not fit ``module``.

    Raises:
        ValueError: naming ``path`` and each weight missing, extra, or of another shape.
    """
    have = {k: tuple(v.shape) for k, v in weights.items()}
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    differ = [
        f"{k}: {have.get(k, 'none')} there, {want.get(k, 'none')} here"
        for k in sorted(have.keys() | want.keys())
        if have.get(k) != want.get(k)
    ]
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        raise ValueError(
            f"{path} holds weights of another model ({shown}): it was made from other data or "
            "settings; choose another run folder (--name) or remove it"
        )


def load_checkpoint(
    path: str | os.PathLike[str], kind: str, settings: dict, module: nn.Module
) -> tuple[dict, dict[str, list]]:
    """Read a training checkpoint to resume from, checking that it continues this run.

    Args:
        path: The checkpoint.
        kind: Its kind, e.g. ``"tagger checkpoint"`` (see `load_saved`).
        settings: The settings of the run now, ``{"model": ..., "training": ...}``; the
            checkpoint must record the same, except that `RESUMABLE_CHANGES` may be raised
            (a run asked for fewer epochs than its checkpoint has is refused: it would
            record the lower number for weights trained longer).
        module: The model the checkpoint's ``"model"`` weights will be loaded into.

    Returns:
        The saved state, and the allowed changes (`check_same_setup`) to record.

    Raises:
        ValueError: naming ``path``: see `load_saved`, `check_same_setup` and
            `check_same_shapes`; raised before any weight is loaded.
    """
    state = load_saved(path, kind)
    recorded = state.get("settings")
    if recorded is None and isinstance(state.get("config"), dict):
        recorded = {"training": state["config"]}  # acoustic checkpoints before the model's
    changes = check_same_setup(path, recorded, settings, may_raise=RESUMABLE_CHANGES)
    check_same_shapes(path, state["model"], module)
    return state, changes
