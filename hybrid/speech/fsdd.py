"""The Free Spoken Digit Dataset (FSDD): 8 kHz recordings of the digits 0-9 in English.

The corpus folder holds ``recordings/{digit}_{speaker}_{take}.wav`` (mono 16-bit PCM at
8 kHz; e.g. ``7_jackson_32.wav``), 50 takes of each digit per speaker. Its documented split
puts takes 0-4 of every speaker and digit in the test set and takes 5-49 in training.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DIGITS", "Recording", "official_split", "read_fsdd", "speaker_split"]

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The spoken word of each digit label: ``DIGITS[7] == "seven"``."""

# Takes below this number form the official test set.
_TEST_TAKES = 5

_FILE_NAME = re.compile(r"([0-9])_([A-Za-z]+)_([0-9]+)\.wav")


@dataclass(frozen=True)
class Recording:
    """One FSDD recording.

    Attributes:
        path: The ``.wav`` file.
        digit: The digit spoken, 0-9 (its word is ``DIGITS[digit]``).
        speaker: The speaker's name, e.g. ``"jackson"``.
        take: The take number, 0-49 in the released corpus.
    """

    path: Path
    digit: int
    speaker: str
    take: int


def _parse(path: Path) -> Recording:
    """The `Recording` named by ``{digit}_{speaker}_{take}.wav``, or a ``ValueError``."""
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(
            f"{path} is not named {{digit}}_{{speaker}}_{{take}}.wav (e.g. 7_jackson_32.wav)"
        )
    digit, speaker, take = match.groups()
    return Recording(path, int(digit), speaker, int(take))


def read_fsdd(root: str | os.PathLike[str]) -> list[Recording]:
    """List the recordings of an FSDD folder (the files are not opened).

    Args:
        root: The corpus folder, holding ``recordings/*.wav``.

    Returns:
        One `Recording` per ``.wav`` file, sorted by speaker, digit and take.

    Raises:
        ValueError: naming the folder when ``root/recordings`` does not exist or holds no
            ``.wav`` file, or naming the file whose name does not parse.
    """
    folder = Path(root) / "recordings"
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; root must be the FSDD corpus folder")
    recordings = [_parse(path) for path in folder.glob("*.wav")]
    if not recordings:
        raise ValueError(f"{folder} holds no .wav file")
    return sorted(recordings, key=lambda r: (r.speaker, r.digit, r.take))


def official_split(recordings: Sequence[Recording]) -> tuple[list[Recording], list[Recording]]:
    """The dataset's documented split: takes 0-4 are test, takes 5 and above train.

    Args:
        recordings: Recordings as `read_fsdd` returns them.

    Returns:
        ``(train, test)``, each in the order of ``recordings``.
    """
    train = [r for r in recordings if r.take >= _TEST_TAKES]
    test = [r for r in recordings if r.take < _TEST_TAKES]
    return train, test


def speaker_split(
    recordings: Sequence[Recording], test_speaker: str
) -> tuple[list[Recording], list[Recording]]:
    """Leave one speaker out: that speaker's recordings are test, the others' train.

    Args:
        recordings: Recordings as `read_fsdd` returns them.
        test_speaker: The held-out speaker, e.g. ``"jackson"``.

    Returns:
        ``(train, test)``, each in the order of ``recordings``.

    Raises:
        ValueError: listing the speakers when ``test_speaker`` is not one of them.
    """
    speakers = sorted({r.speaker for r in recordings})
    if test_speaker not in speakers:
        raise ValueError(f"test_speaker must be one of {speakers}, got {test_speaker!r}")
    train = [r for r in recordings if r.speaker != test_speaker]
    test = [r for r in recordings if r.speaker == test_speaker]
    return train, test
