"""TIMIT-layout corpora: read speech with hand-labelled phone boundaries.

A corpus folder holds one folder per speaker, ``<dialect region>-<speaker>/`` (``dr1-fvmh0``;
or ``<region>/<speaker>/`` as in the LDC release), with ``<utterance>.wav`` (RIFF audio) and
``<utterance>.phn``: one ``start end phone`` line per phone, in samples, in TIMIT's 61-phone
set (``h#`` the silence at either end). `read_timit` reads them; `fold` maps the 61 phones to
the 39 classes every TIMIT result is scored on (Lee and Hon 1989: the closures, pauses and
``h#`` become ``sil``, the glottal stop ``q`` is dropped, and 18 phones join a neighbour
class) and merges the segments that become one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..files import read_lines

__all__ = [
    "FOLD_39",
    "PhoneSegment",
    "TimitUtterance",
    "fold",
    "phone_sequence",
    "read_timit",
    "spoken_runs",
]

#: TIMIT's 61 phones to the 39 scoring classes (Lee and Hon 1989); ``None``: dropped.
FOLD_39: dict[str, str | None] = {
    **{p: p for p in "ae aw ay b ch d dh dx eh ey f g iy jh k oy ow p r s t th uh v w y z".split()},
    **{p: "aa" for p in ("aa", "ao")},
    **{p: "ah" for p in ("ah", "ax", "ax-h")},
    **{p: "er" for p in ("er", "axr")},
    **{p: "hh" for p in ("hh", "hv")},
    **{p: "ih" for p in ("ih", "ix")},
    **{p: "l" for p in ("l", "el")},
    **{p: "m" for p in ("m", "em")},
    **{p: "n" for p in ("n", "en", "nx")},
    **{p: "ng" for p in ("ng", "eng")},
    **{p: "sh" for p in ("sh", "zh")},
    **{p: "uw" for p in ("uw", "ux")},
    **{p: "sil" for p in ("pcl", "tcl", "kcl", "bcl", "dcl", "gcl", "h#", "pau", "epi")},
    "q": None,
}

#: The silence class of the 39.
SILENCE_CLASS = "sil"


@dataclass(frozen=True)
class PhoneSegment:
    """One labelled phone: ``[start, end)`` in seconds."""

    phone: str
    start: float
    end: float


@dataclass(frozen=True)
class TimitUtterance:
    """One utterance of a TIMIT-layout corpus.

    Attributes:
        id: ``<speaker folder>/<utterance>`` (``dr1-fvmh0/sa1``).
        speaker: The speaker folder's name.
        audio: The ``.wav`` file.
        phones: The hand-labelled phones of the ``.phn`` file, in order.
    """

    id: str
    speaker: str
    audio: Path
    phones: tuple[PhoneSegment, ...]


def read_timit(root: str | os.PathLike[str], sample_rate: int = 16000) -> list[TimitUtterance]:
    """The utterances of a TIMIT-layout folder, sorted by id (the audio is not opened).

    Args:
        root: The corpus folder.
        sample_rate: The rate of the sample numbers in the ``.phn`` files (TIMIT's 16 kHz).

    Raises:
        ValueError: No ``.phn`` file under ``root``; a ``.phn`` without its ``.wav``; or,
            naming ``file:line``, a line that is not ``start end phone`` with
            ``0 <= start < end``, a phone outside the 61 (`FOLD_39`), or a segment that
            starts before the previous one ends.
    """
    root = Path(root)
    labels = sorted(root.rglob("*.phn"))
    if not labels:
        raise ValueError(f"{root}: no .phn file; expected a TIMIT-layout corpus folder")
    utterances = []
    for path in labels:
        audio = path.with_suffix(".wav")
        if not audio.is_file():
            raise ValueError(f"{path}: no {audio.name} beside it")
        speaker = path.parent.relative_to(root).as_posix()
        utterances.append(
            TimitUtterance(
                f"{speaker}/{path.stem}", speaker, audio, _read_phones(path, sample_rate)
            )
        )
    return utterances


def _read_phones(path: Path, sample_rate: int) -> tuple[PhoneSegment, ...]:
    segments: list[PhoneSegment] = []
    previous_end = 0
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != 3 or not (fields[0].isdigit() and fields[1].isdigit()):
            raise ValueError(f"{where}: expected 'start end phone' in samples, got {line!r}")
        start, end, phone = int(fields[0]), int(fields[1]), fields[2]
        if start >= end:
            raise ValueError(f"{where}: the segment ends at {end}, not after its start {start}")
        if phone not in FOLD_39:
            raise ValueError(f"{where}: {phone!r} is not one of TIMIT's 61 phones")
        if start < previous_end:
            raise ValueError(f"{where}: the segment starts before the previous one ends")
        segments.append(PhoneSegment(phone, start / sample_rate, end / sample_rate))
        previous_end = end
    return tuple(segments)


def fold(segments: tuple[PhoneSegment, ...]) -> tuple[PhoneSegment, ...]:
    """``segments`` in the 39 classes: ``q`` dropped, and neighbours that fall in one class
    merged (a closure and the pause after it become one ``sil``)."""
    folded: list[PhoneSegment] = []
    for segment in segments:
        phone = FOLD_39[segment.phone]
        if phone is None:
            continue
        if folded and folded[-1].phone == phone and phone == SILENCE_CLASS:
            folded[-1] = PhoneSegment(phone, folded[-1].start, segment.end)
        else:
            folded.append(PhoneSegment(phone, segment.start, segment.end))
    return tuple(folded)


def phone_sequence(segments: tuple[PhoneSegment, ...]) -> tuple[PhoneSegment, ...]:
    """The folded segments without silence: the phones a transcript spells, in order."""
    return tuple(s for s in fold(segments) if s.phone != SILENCE_CLASS)


def spoken_runs(segments: tuple[PhoneSegment, ...]) -> list[tuple[str, ...]]:
    """The folded phones in the runs between silences (``sil``: pauses and stop closures),
    in order: the stretches a forced aligner may take as words, so that each phone's
    neighbours inside its run are its context."""
    runs: list[list[str]] = [[]]
    for segment in fold(segments):
        if segment.phone == SILENCE_CLASS:
            runs.append([])
        else:
            runs[-1].append(segment.phone)
    return [tuple(run) for run in runs if run]
