"""Speech corpora given by path: Kaldi data directories and CSV/TSV manifests.

Both readers list utterances (`Entry`: id, audio file, speaker, words, optional segment
times) without reading any audio. They check what can be checked from the text alone, and
that each audio file exists, so that a bad corpus is refused before training starts; every
error names the file and line (``"data/train/text:3: ..."``) and what was expected there.

- `read_kaldi_dir`: a Kaldi data directory (``wav.scp``, ``text``, ``utt2spk`` and, for
  recordings cut into utterances, ``segments``).
- `read_manifest`: a CSV or TSV file with a header row, one utterance per row, naming its
  audio file, its transcript and (optionally) its speaker.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..files import read_lines, read_text

__all__ = ["Entry", "read_kaldi_dir", "read_manifest"]

#: A Kaldi extended filename that reads from an archive at a byte offset: ``foo.ark:123``.
_ARCHIVE_OFFSET = re.compile(r":\d+$")


@dataclass(frozen=True)
class Entry:
    """One utterance listed by a data directory or manifest (audio not read).

    Attributes:
        id: The utterance id, unique within its corpus.
        path: The audio file, absolute (a relative path is resolved when the corpus is read,
            so a later change of the working directory does not matter).
        speaker: The speaker's id (for per-speaker normalisation).
        words: The transcript, split on whitespace; never empty.
        start: Seconds into the file where the utterance starts, or ``None`` for the whole
            file.
        end: Seconds into the file where the utterance ends, or ``None`` for the end of the
            file.
        where: ``"file:line"`` of the transcript, for later errors; not compared.
    """

    id: str
    path: Path
    speaker: str
    words: tuple[str, ...]
    start: float | None = None
    end: float | None = None
    where: str = field(default="", compare=False)


def _error(path: Path, number: int, message: str) -> ValueError:
    """A ValueError about line ``number`` of ``path``: ``"<path>:<number>: <message>"``."""
    return ValueError(f"{path}:{number}: {message}")


# -- Kaldi data directories ----------------------------------------------------------------


def read_kaldi_dir(folder: str | os.PathLike[str]) -> list[Entry]:
    """Read a Kaldi data directory: the utterances that ``text`` lists, in its order.

    The files, one entry per line, fields separated by runs of whitespace:

    - ``wav.scp``: ``<recording-id> <path>``, the path being the rest of the line (so it may
      hold spaces). A relative path is read from the working directory when the file is
      there (Kaldi's convention: paths relative to the recipe folder), else from the data
      directory. Commands (``sox x.flac -t wav - |``) and archive offsets (``foo.ark:123``)
      are refused: convert the audio to WAV files first.
    - ``text``: ``<utt-id> <words...>``; the transcript may not be empty (Kaldi allows it,
      but training needs words).
    - ``utt2spk``: ``<utt-id> <speaker>``.
    - ``segments`` (optional): ``<utt-id> <recording-id> <start> <end>`` in seconds, ``end``
      ``-1`` meaning the end of the recording (`Entry.end` ``None``). Without it each
      utterance is a whole recording, with the recording's id.

    Files are UTF-8 (a byte-order mark and CRLF line ends are allowed); blank lines and
    trailing whitespace are ignored. Entries of ``wav.scp``, ``utt2spk`` and ``segments``
    that no ``text`` line uses are ignored, as Kaldi does; their audio files are not checked.

    Returns:
        One `Entry` per ``text`` line, ``where`` naming that line (``"<folder>/text:3"``).

    Raises:
        ValueError: naming the folder when it is not a directory or lacks ``wav.scp``,
            ``text`` or ``utt2spk``; naming ``text`` when it lists no utterance; naming the
            file and line, for a line with too few fields (or too many, in ``utt2spk`` and
            ``segments``), an id listed twice in one file, a command or archive offset in
            ``wav.scp``, an audio file that does not exist, a segment whose recording is not
            in ``wav.scp`` or whose times are not numbers with ``0 <= start < end`` (or
            ``end == -1``), an empty transcript, or a ``text`` utterance absent from
            ``utt2spk`` or from ``wav.scp`` (``segments`` when there is one).
    """
    base = Path(folder)
    if not base.is_dir():
        raise ValueError(
            f"{base}: not a directory; expected a Kaldi data directory holding wav.scp, text "
            "and utt2spk"
        )
    missing = [name for name in ("wav.scp", "text", "utt2spk") if not (base / name).is_file()]
    if missing:
        raise ValueError(
            f"{base}: no {', '.join(missing)}; a Kaldi data directory holds wav.scp, text and "
            "utt2spk (and optionally segments)"
        )
    recordings = _read_wav_scp(base / "wav.scp")
    speakers = _table(base / "utt2spk", "<utt-id> <speaker>", 1)
    segments = None
    if (base / "segments").is_file():
        segments = _read_segments(base / "segments", recordings)
    texts = _table(base / "text", "<utt-id> <words...>", None)
    if not texts:
        raise ValueError(f"{base / 'text'}: no utterance; expected lines '<utt-id> <words...>'")
    audio: dict[str, Path] = {}  # recording id -> file, resolved once each
    entries = []
    for utterance, (number, transcript) in texts.items():
        where = f"{base / 'text'}:{number}"
        words = tuple(transcript.split())
        if not words:
            raise ValueError(
                f"{where}: utterance {utterance!r} has an empty transcript; expected "
                "'<utt-id> <words...>' (remove the utterance, or give its words)"
            )
        if utterance not in speakers:
            raise ValueError(f"{where}: utterance {utterance!r} is not in {base / 'utt2spk'}")
        recording, start, end = _segment_of(base, utterance, where, segments, recordings)
        if recording not in audio:
            audio[recording] = _audio_path(base, *recordings[recording])
        entries.append(
            Entry(utterance, audio[recording], speakers[utterance][1], words, start, end, where)
        )
    return entries


def _table(path: Path, form: str, count: int | None) -> dict[str, tuple[int, str]]:
    """The non-blank lines of the Kaldi table file ``path`` by their first field (the id):
    each line's number and the rest of the line, stripped, in file order.

    Args:
        form: The expected line, for errors (``"<utt-id> <speaker>"``).
        count: How many fields the rest of a line holds, or ``None`` for any number (even
            none).

    Raises:
        ValueError: naming the file and line: a line with another number of fields, or an
            id already listed.
    """
    table: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split(maxsplit=1)
        if not fields:
            continue
        key, rest = fields[0], fields[1].strip() if len(fields) == 2 else ""
        if count is not None and len(rest.split()) != count:
            raise _error(path, number, f"expected '{form}', got {line.strip()!r}")
        if key in table:
            raise _error(path, number, f"id {key!r} is listed twice (also on line {table[key][0]})")
        table[key] = (number, rest)
    return table


def _read_wav_scp(path: Path) -> dict[str, tuple[Path, int, str]]:
    """The recordings of ``wav.scp`` by id: the file, line number and (unresolved) audio path.

    Raises:
        ValueError: naming the file and line: as `_table`, a line without a path, or a
            command or archive offset instead of a path.
    """
    recordings = {}
    for recording, (number, rest) in _table(path, "<recording-id> <path>", None).items():
        if not rest:
            raise _error(path, number, f"expected '<recording-id> <path>', got {recording!r}")
        if rest.endswith("|") or _ARCHIVE_OFFSET.search(rest):
            kind = "a command (pipe)" if rest.endswith("|") else "an archive offset"
            raise _error(
                path,
                number,
                f"{rest!r} is {kind}; commands and archives are not run or read here: give the "
                "path of an audio file (convert the audio to WAV files first)",
            )
        recordings[recording] = (path, number, rest)
    return recordings


def _read_segments(
    path: Path, recordings: dict[str, tuple[Path, int, str]]
) -> dict[str, tuple[str, float, float | None]]:
    """The utterances of ``segments`` by id: recording id, start and end (``None`` for
    Kaldi's ``-1``, the end of the recording).

    Raises:
        ValueError: naming the file and line: as `_table`, a recording not in ``wav.scp``,
            or times that are not numbers with ``0 <= start < end`` (or ``end == -1``).
    """
    segments = {}
    form = "<utt-id> <recording-id> <start> <end>"
    for utterance, (number, rest) in _table(path, form, 3).items():
        recording, start, end = rest.split()
        if recording not in recordings:
            raise _error(path, number, f"recording {recording!r} is not in wav.scp")
        segments[utterance] = (recording, *_times(path, number, start, end))
    return segments


def _times(path: Path, number: int, start: str, end: str) -> tuple[float, float | None]:
    """A segment's start and end in seconds, end ``-1`` read as ``None``.

    Raises:
        ValueError: naming the file and line: not finite numbers, ``start < 0``, or
            ``end <= start`` with ``end != -1``.
    """
    try:
        begin, finish = float(start), float(end)
    except ValueError:
        begin = finish = math.nan
    if not (math.isfinite(begin) and math.isfinite(finish)):
        raise _error(path, number, f"start {start!r} and end {end!r} must be numbers (seconds)")
    if begin < 0:
        raise _error(path, number, f"start {start} is negative; expected seconds >= 0")
    if finish == -1:
        return begin, None
    if finish <= begin:
        raise _error(
            path, number, f"end {end} is not after start {start} (-1 means the end of the file)"
        )
    return begin, finish


def _segment_of(
    base: Path,
    utterance: str,
    where: str,
    segments: dict[str, tuple[str, float, float | None]] | None,
    recordings: dict[str, tuple[Path, int, str]],
) -> tuple[str, float | None, float | None]:
    """The recording, start and end of ``utterance``, read on the ``text`` line ``where``:
    its segment, or without ``segments`` the whole recording of the same id.

    Raises:
        ValueError: naming ``where``: the utterance is not in ``segments`` (or ``wav.scp``).
    """
    if segments is None:
        if utterance not in recordings:
            raise ValueError(
                f"{where}: utterance {utterance!r} is not in {base / 'wav.scp'} (without a "
                "segments file each utterance is the recording of the same id)"
            )
        return utterance, None, None
    if utterance not in segments:
        raise ValueError(f"{where}: utterance {utterance!r} is not in {base / 'segments'}")
    return segments[utterance]


def _audio_path(base: Path, wav_scp: Path, number: int, given: str) -> Path:
    """The audio file that line ``number`` of ``wav_scp`` names, absolute: a relative path
    read from the working directory when the file is there, else from the data directory
    ``base``.

    Raises:
        ValueError: naming the line and the places looked, when there is no such file.
    """
    path = Path(given)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, base.absolute() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " or ".join(str(candidate) for candidate in candidates)
    raise _error(wav_scp, number, f"no audio file {given!r} (looked for {looked})")


# -- CSV and TSV manifests -----------------------------------------------------------------


def read_manifest(
    path: str | os.PathLike[str],
    path_column: str = "path",
    transcript_column: str = "transcript",
    speaker_column: str | None = "speaker",
    id_root: str | os.PathLike[str] | None = None,
) -> list[Entry]:
    """Read a CSV or TSV manifest: a header row naming the columns, then one utterance a row.

    The file is tab-separated when its name ends in ``.tsv``, or when its header line holds
    a tab and no comma; otherwise it is comma-separated, with CSV quoting (``"a, b"`` is one
    field). In a tab-separated file quotes are ordinary characters, as in Common Voice's
    files. The file is UTF-8 (a byte-order mark and CRLF line ends are allowed); blank lines
    are skipped, and line numbers count the header as line 1.

    A relative audio path is read from the manifest's folder. The utterance id is the audio
    path relative to that folder (or to ``id_root``) without its suffix, with ``/``
    separators: ``yes/0a7c2a8d_nohash_0.wav`` gives ``yes/0a7c2a8d_nohash_0``.

    Args:
        path: The manifest.
        path_column: The column of the audio paths.
        transcript_column: The column of the transcripts (split on whitespace).
        speaker_column: The column of the speakers' ids, or ``None`` when the corpus does not
            name them: then each utterance is its own speaker (its id), so no per-speaker
            normalisation is possible.
        id_root: The folder the utterance ids are relative to (default: the manifest's), such
            as the common folder of several manifests joined, so that the same relative path
            in two of them gives two ids.

    Returns:
        One `Entry` per row, in file order, ``where`` naming its line (``"train.csv:2"``).

    Raises:
        ValueError: naming the file when it holds no header or no row, or a column is
            missing (listing the header's columns); naming the file and line for malformed
            CSV, a row with another number of fields than the header, an empty path,
            transcript or speaker, an audio file that does not exist, or an utterance id
            that an earlier row already has (naming both lines).
    """
    path = Path(path)
    rows = _csv_rows(path)
    if not rows:
        raise ValueError(f"{path}: empty; expected a header row naming the columns")
    header = [name.strip() for name in rows[0][1]]
    wanted = [path_column, transcript_column] + (
        [speaker_column] if speaker_column is not None else []
    )
    absent = [name for name in wanted if name not in header]
    if absent:
        raise ValueError(
            f"{path}: no column {', '.join(map(repr, absent))}; the header has columns "
            f"{', '.join(map(repr, header))}"
        )
    columns = [header.index(name) for name in wanted]
    root = path.parent.absolute() if id_root is None else Path(id_root).absolute()
    lines: dict[str, int] = {}  # utterance id -> its line
    entries = []
    for number, row in rows[1:]:
        entry = _manifest_entry(path, number, row, header, columns, root)
        if entry.id in lines:
            raise _error(
                path,
                number,
                f"utterance {entry.id!r} (audio {entry.path}) is also on line {lines[entry.id]}",
            )
        lines[entry.id] = number
        entries.append(entry)
    if not entries:
        raise ValueError(f"{path}: no utterance; expected one row per utterance below the header")
    return entries


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of the manifest ``path``, each with the number of the line it
    starts on (a quoted field may span lines).

    Raises:
        ValueError: naming the file and line of malformed CSV (e.g. text after a closing
            quote).
    """
    text = read_text(path)
    first = next((line for line in text.split("\n") if line.strip()), "")
    if path.suffix.lower() == ".tsv" or ("\t" in first and "," not in first):
        reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text), strict=True)
    rows, start = [], 1
    try:
        for row in reader:
            if any(value.strip() for value in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as error:
        raise _error(path, reader.line_num, f"not valid CSV ({error})") from None
    return rows


def _manifest_entry(
    path: Path, number: int, row: list[str], header: list[str], columns: list[int], root: Path
) -> Entry:
    """The utterance of the row on line ``number`` of the manifest ``path``; ``columns``
    are the indices of its audio path, transcript and (when given) speaker; its id is the
    audio path relative to ``root``.

    Raises:
        ValueError: naming the file and line: a row with another number of fields than the
            header, an empty value, or an audio file that does not exist.
    """
    if len(row) != len(header):
        raise _error(path, number, f"{len(row)} fields, but the header has {len(header)}")
    values = [row[column].strip() for column in columns]
    for name, value in zip((header[column] for column in columns), values, strict=True):
        if not value:
            raise _error(path, number, f"the {name!r} column is empty")
    given, transcript = values[:2]
    audio = path.parent.absolute() / given
    if not audio.is_file():
        raise _error(path, number, f"no audio file {given!r} (looked for {audio})")
    utterance = Path(os.path.relpath(audio, root)).with_suffix("").as_posix()
    speaker = values[2] if len(values) == 3 else utterance
    return Entry(utterance, audio, speaker, tuple(transcript.split()), where=f"{path}:{number}")
