"""Files: where the real corpora are, atomic writes, locks, saved models and corpus text.

The one place where the library touches files it writes or reads back:

- `write_atomic` and its text, JSON, torch and figure forms: a file appears whole or not at
  all, through a temporary file with a unique name beside it, so that concurrent writers of
  one file never trip over each other's temporaries;
- `file_lock` and `update_json`: a read-modify-write of a shared file (a run folder's
  ``results.json``) under an exclusive lock, so that concurrent runs lose no rows;
- `load_saved`: every model and checkpoint file is read back through it, with an error
  saying which file, what it holds and what was expected; `check_same_setup` and
  `load_checkpoint` refuse to resume with other settings (but for more epochs), and
  `record_changes` notes in a run folder the settings a resume raised;
- `read_text`, `read_lines` and `iter_lines`: UTF-8 corpus text without a byte-order mark,
  with an error naming the file, line and bytes that are not UTF-8.
"""

from __future__ import annotations

import codecs
import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

__all__ = [
    "RESUMABLE_CHANGES",
    "check_same_setup",
    "check_same_shapes",
    "data_root",
    "file_lock",
    "iter_lines",
    "load_checkpoint",
    "load_saved",
    "read_json",
    "read_lines",
    "read_text",
    "record_changes",
    "save_atomic",
    "save_figure",
    "save_trained",
    "stamp",
    "update_json",
    "write_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

# ``../shared/data`` next to the repository (the folder above the ``hybrid`` package).
_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: The key of the stamp saying what a saved file holds (``"kind"`` is a speech system's own).
_KIND_KEY = "file_kind"

#: What each kind of saved file holds, and the command that writes it.
_KINDS = {
    "tagger": "a trained tagger (written by `hybrid train-tagger`, read by `hybrid tag`)",
    "reader": "a trained reader (written by `hybrid train-qa`, read by `hybrid answer`)",
    "parser": "a trained parser (written by `hybrid train-parser`, read by `hybrid parse`)",
    "speech system": (
        "a trained speech system (written by `hybrid train-asr`, read by `hybrid recognize`)"
    ),
    "tagger checkpoint": "a training checkpoint of a tagger (`hybrid train-tagger`)",
    "reader checkpoint": "a training checkpoint of a reader (`hybrid train-qa`)",
    "parser checkpoint": "a training checkpoint of a parser (`hybrid train-parser`)",
    "acoustic checkpoint": "a training checkpoint of an acoustic model (`hybrid train-asr`)",
}

#: The settings a resumed training run may change: training on for more epochs.
RESUMABLE_CHANGES = ("training.epochs",)


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


# -- writing --------------------------------------------------------------------------------


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """A new, empty file ``.<name>.<random>.tmp`` in ``path``'s folder, opened for writing
    (its descriptor and path). The name is unique to this call, and the file gets the
    permissions of any new file (``0o666`` less the umask), as ``path`` would."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], fsync: bool = False
) -> None:
    """Write ``path`` whole or not at all: ``write`` fills a temporary file beside it, which
    then replaces ``path`` (`os.replace`).

    Each call writes its own temporary file, so concurrent writers of one path never clash:
    the last rename wins and every reader sees one whole version. On any error the temporary
    file is removed and ``path`` is left as it was. Missing parent folders are created.

    Args:
        path: The file to write; an existing file is replaced.
        write: Called with the temporary file, open for binary writing.
        fsync: Flush the file to the disk before the rename, and the folder after it, so
            that the new version also survives a power cut.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _temporary_beside(path)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if fsync:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically (`write_atomic`)."""
    data = text.encode("utf-8")
    write_atomic(path, lambda stream: stream.write(data))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON to ``path``, atomically (`write_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1))


def save_atomic(obj: dict, path: str | os.PathLike[str]) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically and durably (`write_atomic` with fsync):
    a crash never leaves half a checkpoint or model."""
    write_atomic(path, lambda stream: torch.save(obj, stream), fsync=True)


def save_figure(figure: Any, path: str | os.PathLike[str], dpi: int = 110) -> None:
    """Save a matplotlib ``figure`` to ``path`` atomically (`write_atomic`), in the format
    its suffix names (``.png``, ``.pdf``, ``.svg``), then close it (also on an error)."""
    import matplotlib.pyplot as plt  # only where a figure exists: matplotlib is loaded

    path = Path(path)
    try:
        write_atomic(
            path, lambda stream: figure.savefig(stream, format=path.suffix[1:] or None, dpi=dpi)
        )
    finally:
        plt.close(figure)


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (on ``<path>.lock`` beside it, created when missing
    and kept) while the ``with`` block runs.

    Every process that reads, changes and writes back ``path`` under this lock sees the
    others' changes. The lock is not re-entrant: do not take it again inside the block. It is
    ``fcntl.flock`` on POSIX systems and ``msvcrt.locking`` on Windows; where neither exists
    the block runs unlocked, after a warning (once per process).
    """
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        release = _lock(handle)
        try:
            yield
        finally:
            release()


def _lock(handle: IO[bytes]) -> Callable[[], None]:
    """Take an exclusive lock on the open file ``handle``, waiting for it; returns the
    function that releases it."""
    try:
        import fcntl  # POSIX
    except ImportError:
        pass
    else:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return lambda: fcntl.flock(handle, fcntl.LOCK_UN)
    try:
        import msvcrt  # Windows
    except ImportError:
        _warn_unlocked()
        return lambda: None
    # the first byte of the file stands for the whole (a lock may lie past its end)
    handle.seek(0)
    while True:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # gives up after 10 s
            break
        except OSError:
            continue

    def release() -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

    return release


@cache
def _warn_unlocked() -> None:
    """Say (once per process) that files are written back without a lock."""
    warnings.warn(
        "hybrid.files.file_lock: this system has neither fcntl nor msvcrt, so run folders "
        "are written without a lock; do not run two processes into one run folder",
        RuntimeWarning,
        stacklevel=2,
    )


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON content of ``path`` (UTF-8, see `read_text`).

    Raises:
        ValueError: naming ``path`` and the line, when it is not valid JSON.
    """
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}, line {error.lineno}: not valid JSON ({error.msg}); "
            "it was not written by hybrid, or changed since"
        ) from error


def update_json(
    path: str | os.PathLike[str],
    change: Callable[[dict], dict],
    after: Callable[[dict], object] | None = None,
) -> dict:
    """Read ``path``, change it and write it back, all under `file_lock`.

    Args:
        path: A JSON file holding an object; missing, it reads as ``{}``.
        change: Given the current content, returns the content to write (it may raise to
            write nothing, e.g. when the file was made with other settings).
        after: Called with the written content while the lock is still held: for files
            derived from it (tables, plots), so that they follow the same version.

    Returns:
        The content written.
    """
    path = Path(path)
    with file_lock(path):
        current = read_json(path) if path.exists() else {}
        if not isinstance(current, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(current).__name__}")
        updated = change(current)
        write_json_atomic(path, updated)
        if after is not None:
            after(updated)
    return updated


# -- saved models and checkpoints ----------------------------------------------------------


def _described(kind: str) -> str:
    """What a file of ``kind`` holds, in words."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind]


def stamp(kind: str) -> dict:
    """The entry saying that a saved dictionary holds ``kind`` (one of the saved kinds, such
    as ``"tagger"`` or ``"tagger checkpoint"``); `load_saved` reads it back."""
    _described(kind)
    return {_KIND_KEY: kind}


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
    path: str | os.PathLike[str], kind: str, map_location: str | torch.device = "cpu"
) -> dict:
    """Read back a file written by this library, checking that it holds ``kind``.

    Files are read with ``torch.load(weights_only=True)``: plain data, never code. Files
    written before files were stamped with their kind are recognised by their keys.

    Args:
        path: The file.
        kind: What it must hold: ``"tagger"``, ``"reader"``, ``"parser"``,
            ``"speech system"``, or a training checkpoint of one (``"tagger checkpoint"``,
            ``"reader checkpoint"``, ``"parser checkpoint"``, ``"acoustic checkpoint"``).
        map_location: Where its tensors go.

    Returns:
        The saved dictionary.

    Raises:
        ValueError: naming ``path``: it does not exist or is not a file; it is empty,
            truncated or not a file of this library (for a checkpoint: delete it to restart
            that training run from its beginning); or it holds another kind (what it holds
            and which command wrote it, and for a checkpoint where the trained models are).
    """
    expected = _described(kind)
    path = Path(path)
    if not path.is_file():
        missing = "does not exist" if not path.exists() else "is not a file"
        raise ValueError(f"{path} {missing}; expected {expected}")
    advice = (
        "; delete it to restart that training run from its beginning"
        if kind.endswith("checkpoint")
        else ""
    )
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for bytes that are not its format
        raise ValueError(
            f"{path} is not a file written by hybrid: truncated or another format "
            f"({type(error).__name__}); expected {expected}{advice}"
        ) from error
    found = (saved.get(_KIND_KEY) or _unstamped_kind(saved)) if isinstance(saved, dict) else None
    if not isinstance(found, str) or found not in _KINDS:
        raise ValueError(
            f"{path} is not a file written by hybrid: it loads, but holds neither a model "
            f"nor a checkpoint; expected {expected}{advice}"
        )
    if found != kind:
        where = ""
        if found.endswith("checkpoint") and not kind.endswith("checkpoint"):
            where = f"; the trained models of a run are in {_models_folder(path)}"
        raise ValueError(f"{path} holds {_KINDS[found]}; expected {expected}{where}")
    return saved


def _differences(saved: dict, requested: dict, prefix: str = "") -> Iterator[tuple]:
    """``(name, saved value, requested value)`` of each setting of ``requested`` that
    ``saved`` records otherwise; nested settings are named with dots (``training.lr``), and
    a group of settings that ``saved`` lacks (recorded only since) is not compared."""
    for key, value in requested.items():
        name, there = f"{prefix}{key}", saved.get(key)
        if isinstance(value, dict) and isinstance(there, dict):
            yield from _differences(there, value, f"{name}.")
        elif isinstance(value, dict) and key not in saved:
            continue
        elif there != value:
            yield name, there, value


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
    return {k: [a, b] for k, a, b in found}


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
            checkpoint must record the same, except that `RESUMABLE_CHANGES` may differ.
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
    changes = check_same_setup(path, recorded, settings, RESUMABLE_CHANGES)
    check_same_shapes(path, state["model"], module)
    return state, changes


# -- reading corpus text -------------------------------------------------------------------


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a UTF-8 file: a leading byte-order mark removed, line ends ``\\r\\n`` and
    ``\\r`` read as ``\\n`` (as `open` reads text).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming ``path``, the line and the bytes that are not UTF-8.
    """
    data = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)
    return _decoded(path, data, 1).replace("\r\n", "\n").replace("\r", "\n")


def iter_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a UTF-8 file without their line ends, one at a time: for files too large
    to hold in memory (word vectors). The same lines as `read_lines`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming ``path``, the line and the bytes that are not UTF-8 (once the
            lines before it have been given).
    """
    number = 1  # of the line that the next piece read starts
    with open(path, "rb") as stream:
        for piece in stream:  # up to and with a b"\n"
            if number == 1:
                piece = piece.removeprefix(codecs.BOM_UTF8)
                if not piece:  # the file holds only the mark
                    return
            text = _decoded(path, piece, number).removesuffix("\n").removesuffix("\r")
            for line in text.split("\r"):  # a lone "\r" ends a line too
                yield line
                number += 1


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a UTF-8 file (see `read_text`) without their line ends; line ``i``
    (1-based) is item ``i - 1``."""
    return list(iter_lines(path))


def _decoded(path: str | os.PathLike[str], data: bytes, first_line: int) -> str:
    """``data``, which starts on line ``first_line`` of ``path``, decoded as UTF-8.

    Raises:
        ValueError: naming ``path``, the line and the bytes that are not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = first_line + before.count(b"\n")
        raise ValueError(
            f"{path}, line {line}: bytes "
            f"{data[error.start : error.end]!r} are not UTF-8 ({error.reason}); "
            "expected a UTF-8 text file (save it as UTF-8)"
        ) from None
