"""Files: where the real corpora are, atomic writes, locks and corpus text.

The one place where the library touches files it writes or reads back:

- `write_atomic` and its text, JSON, torch and figure forms: a file appears whole or not at
  all, through a temporary file with a unique name beside it, so that concurrent writers of
  one file never trip over each other's temporaries;
- `file_lock` and `update_json`: a read-modify-write of a shared file (a run folder's
  ``results.json``) under an exclusive lock, so that concurrent runs lose no rows;
- `read_text`, `read_lines`, `iter_lines` and `decode_lines`: UTF-8 text (corpus files,
  standard input) without a byte-order mark, with an error naming the file or stream, the
  line and the bytes that are not UTF-8.
"""

from __future__ import annotations

import codecs
import json
import os
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any

__all__ = [
    "data_root",
    "decode_lines",
    "file_lock",
    "iter_lines",
    "read_json",
    "read_lines",
    "read_text",
    "save_atomic",
    "save_figure",
    "update_json",
    "write_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

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
    import torch

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
    to hold in memory (word vectors). The same lines as `read_lines` (see `decode_lines`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming ``path``, the line and the bytes that are not UTF-8 (once the
            lines before it have been given).
    """
    with open(path, "rb") as stream:
        yield from decode_lines(stream, path)


def decode_lines(stream: Iterable[bytes], name: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a binary ``stream`` of UTF-8 text (an open file, ``sys.stdin.buffer``)
    without their line ends, decoded one at a time as they are read: a byte-order mark
    before the first line is dropped, and ``\\r\\n``, ``\\n`` and a lone ``\\r`` each end a
    line (as `read_text` reads a file).

    Args:
        stream: Yields the bytes of the text a line at a time, each up to and with its
            ``b"\\n"`` (as binary files and ``sys.stdin.buffer`` do).
        name: What the stream is, for errors: a path, or ``"standard input"``.

    Raises:
        ValueError: naming ``name``, the line and the bytes that are not UTF-8 (once the
            lines before it have been given).
    """
    number = 1  # of the line that the next piece read starts
    for piece in stream:
        if number == 1:
            piece = piece.removeprefix(codecs.BOM_UTF8)
            if not piece:  # the text holds only the mark
                return
        text = _decoded(name, piece, number).removesuffix("\n").removesuffix("\r")
        for line in text.split("\r"):  # a lone "\r" ends a line too
            yield line
            number += 1


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a UTF-8 file (see `read_text`) without their line ends; line ``i``
    (1-based) is item ``i - 1``."""
    return list(iter_lines(path))


def _decoded(name: str | os.PathLike[str], data: bytes, first_line: int) -> str:
    """``data``, which starts on line ``first_line`` of the file or stream ``name``, decoded
    as UTF-8.

    Raises:
        ValueError: naming ``name``, the line and the bytes that are not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = first_line + before.count(b"\n")
        raise ValueError(
            f"{name}, line {line}: bytes "
            f"{data[error.start : error.end]!r} are not UTF-8 ({error.reason}); "
            "expected UTF-8 text (save it as UTF-8)"
        ) from None
