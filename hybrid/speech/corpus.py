"""Spoken-digit utterances and their frame features: isolated digits, connected strings,
a synthetic corpus.

An `Utterance` is a waveform with the digits spoken in it. `isolated_utterances` reads FSDD
recordings (one digit each), `connected_strings` joins isolated utterances of one speaker into
digit strings separated by low-level noise, and `synthetic_recordings` generates a small,
clearly synthetic spoken-digit corpus (sinusoid "phones", no download) on which the speech
recipe runs end to end in about a minute. `frame_features` and `extract` turn utterances into
``(T, D)`` acoustic features as a `FeatureConfig` describes.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .audio import read_wav
from .features import _check_int, cmvn, deltas, fbank, mfcc, speaker_cmvn
from .fsdd import Recording

__all__ = [
    "FeatureConfig",
    "Utterance",
    "connected_strings",
    "extract",
    "frame_features",
    "normalise_features",
    "isolated_utterances",
    "synthetic_recordings",
    "synthetic_split",
    "waveform_features",
]


@dataclass(frozen=True, eq=False)
class Utterance:
    """One utterance: a waveform and the words spoken in it.

    Compared by identity (it holds a tensor).

    Attributes:
        id: A unique name, e.g. ``"7_jackson_32"`` (an FSDD file stem) or ``"s00042_george"``.
        speaker: The speaker's name.
        words: The words spoken, in order, as indices into the corpus's vocabulary (for the
            digit corpora, the digits 0-9 themselves: ``DIGITS[i]`` is digit ``i``'s word).
        waveform: ``(N,)`` float32 samples in [-1, 1].
        sample_rate: Samples per second.

    Raises:
        ValueError: naming the attribute, if ``words`` is empty or holds a value that is not
            a non-negative integer, ``waveform`` is not a 1-D float32 tensor, or
            ``sample_rate`` is not a positive integer.
    """

    id: str
    speaker: str
    words: tuple[int, ...]
    waveform: Tensor
    sample_rate: int

    def __post_init__(self) -> None:
        words = tuple(self.words)
        if not words or not all(isinstance(w, int) and w >= 0 for w in words):
            raise ValueError(
                f"words must be a non-empty sequence of word indices (integers >= 0), got {words!r}"
            )
        object.__setattr__(self, "words", words)
        waveform = self.waveform
        if (
            not isinstance(waveform, Tensor)
            or waveform.dim() != 1
            or waveform.dtype != torch.float32
        ):
            got = (
                f"shape {tuple(waveform.shape)} {waveform.dtype}"
                if isinstance(waveform, Tensor)
                else type(waveform).__name__
            )
            raise ValueError(f"waveform must be a 1-D float32 tensor (N,), got {got}")
        _check_int("sample_rate", self.sample_rate, 1)


def _common_sample_rate(utterances: Sequence[Utterance], name: str) -> int:
    """The sample rate every utterance shares; ``ValueError`` naming ``name`` otherwise."""
    if not utterances:
        raise ValueError(f"{name} must hold at least one utterance, got none")
    first = utterances[0]
    for utterance in utterances:
        if utterance.sample_rate != first.sample_rate:
            raise ValueError(
                f"{name} must share one sample rate: {utterance.id} has "
                f"{utterance.sample_rate} Hz, {first.id} has {first.sample_rate} Hz"
            )
    return first.sample_rate


# --- FSDD -----------------------------------------------------------------------------------


def isolated_utterances(recordings: Sequence[Recording]) -> list[Utterance]:
    """Read FSDD recordings as isolated-digit utterances.

    Args:
        recordings: At least one `Recording`, e.g. the train or test part of `official_split`.

    Returns:
        One `Utterance` per recording, in order: ``id`` is the file stem
        (``"7_jackson_32"``), ``words`` is ``(digit,)``.

    Raises:
        ValueError: if ``recordings`` is empty, the recordings do not share one sample rate,
            or a file is not a mono PCM WAV file (see `read_wav`).
    """
    utterances = []
    for recording in recordings:
        waveform, sample_rate = read_wav(recording.path)
        utterances.append(
            Utterance(
                Path(recording.path).stem,
                recording.speaker,
                (recording.digit,),
                waveform,
                sample_rate,
            )
        )
    _common_sample_rate(utterances, "recordings")
    return utterances


# --- connected digit strings ----------------------------------------------------------------


def _check_silence(silence: object) -> tuple[float, float]:
    """``silence`` as ``(low, high)`` seconds with ``0 <= low <= high``, or a ``ValueError``."""
    if (
        not isinstance(silence, (tuple, list))
        or len(silence) != 2
        or not all(isinstance(s, Real) and math.isfinite(s) for s in silence)
        or not 0 <= silence[0] <= silence[1]
    ):
        raise ValueError(
            f"silence must be a pair (low, high) of seconds with 0 <= low <= high, got {silence!r}"
        )
    return float(silence[0]), float(silence[1])


def _join(
    name: str,
    pieces: Sequence[Utterance],
    gaps: Sequence[int],
    noise: float,
    generator: torch.Generator,
) -> Utterance:
    """The utterance ``gap_0, piece_0, gap_1, ..., piece_{n-1}, gap_n``.

    Gap ``i`` is ``gaps[i]`` samples of Gaussian noise of standard deviation ``noise``;
    ``len(gaps) == len(pieces) + 1``.
    """
    parts = [noise * torch.randn(gaps[0], generator=generator, dtype=torch.float32)]
    for piece, gap in zip(pieces, gaps[1:], strict=True):
        parts.append(piece.waveform)
        parts.append(noise * torch.randn(gap, generator=generator, dtype=torch.float32))
    words = tuple(word for piece in pieces for word in piece.words)
    return Utterance(name, pieces[0].speaker, words, torch.cat(parts), pieces[0].sample_rate)


def connected_strings(
    recordings: Sequence[Utterance],
    count: int,
    seed: int,
    min_digits: int = 2,
    max_digits: int = 6,
    silence: tuple[float, float] = (0.05, 0.4),
    noise: float = 1e-3,
) -> list[Utterance]:
    """Connected digit strings made by joining isolated utterances of one speaker.

    String ``i`` draws a speaker uniformly among the speakers of ``recordings`` (sorted by
    name), a length ``n`` uniformly in ``[min_digits, max_digits]``, and ``n`` utterances of
    that speaker uniformly with replacement; it is a silence, the first utterance, a silence,
    ..., the last utterance, a silence: ``n + 1`` silences, each ``round(s * sample_rate)``
    samples of Gaussian noise of standard deviation ``noise`` with ``s`` uniform in
    ``silence``. The utterances' samples are copied unchanged.

    Strings only reuse the utterances given: pass the train utterances of a split to make
    training strings and its test utterances to make test strings, so that no string mixes
    the two.

    Args:
        recordings: Isolated utterances (e.g. from `isolated_utterances` or
            `synthetic_recordings`) sharing one sample rate.
        count: Number of strings, at least 1.
        seed: Seed of the draws; the same seed and arguments give the same strings.
        min_digits: Fewest utterances in a string, at least 1.
        max_digits: Most utterances in a string, at least ``min_digits``.
        silence: ``(low, high)`` bounds in seconds of each silence, ``0 <= low <= high``.
        noise: Standard deviation of the silence noise, ``>= 0`` (0: exact zeros).

    Returns:
        ``count`` utterances with ids ``"s00000_<speaker>"``, ``"s00001_<speaker>"``, ...,
        the joined utterances' speaker and sample rate, and their words in order.

    Raises:
        ValueError: naming the argument, if ``recordings`` is empty or mixes sample rates,
            ``count < 1``, ``min_digits < 1``, ``max_digits < min_digits``, ``silence`` is
            not a pair with ``0 <= low <= high``, or ``noise`` is negative or not finite.
    """
    _check_int("count", count, 1)
    _check_int("min_digits", min_digits, 1)
    _check_int("max_digits", max_digits, min_digits)
    low, high = _check_silence(silence)
    if not isinstance(noise, Real) or not 0 <= noise < math.inf:
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise!r}")
    sample_rate = _common_sample_rate(recordings, "recordings")
    by_speaker: dict[str, list[Utterance]] = {}
    for utterance in recordings:
        by_speaker.setdefault(utterance.speaker, []).append(utterance)
    speakers = sorted(by_speaker)
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    strings = []
    for index in range(count):
        speaker = rng.choice(speakers)
        pieces = rng.choices(by_speaker[speaker], k=rng.randint(min_digits, max_digits))
        gaps = [round(rng.uniform(low, high) * sample_rate) for _ in range(len(pieces) + 1)]
        strings.append(_join(f"s{index:05d}_{speaker}", pieces, gaps, float(noise), generator))
    return strings


# --- a synthetic spoken-digit corpus --------------------------------------------------------

# The first formants in Hz of each "phone" (vowels near an adult male voice's, consonants
# made up): one sinusoid per formant.
_PHONES: dict[str, tuple[float, ...]] = {
    "iy": (270.0, 2290.0, 3010.0),
    "ih": (390.0, 1990.0, 2550.0),
    "eh": (530.0, 1840.0, 2480.0),
    "ey": (480.0, 2090.0, 2690.0),
    "ah": (640.0, 1190.0, 2390.0),
    "ao": (570.0, 840.0, 2410.0),
    "ow": (500.0, 900.0, 2350.0),
    "uw": (300.0, 870.0, 2240.0),
    "ay": (710.0, 1250.0, 2550.0),
    "w": (300.0, 610.0, 2150.0),
    "r": (420.0, 1300.0, 1600.0),
    "n": (250.0, 1450.0, 2600.0),
    "v": (260.0, 1100.0, 2250.0),
    "z": (320.0, 1800.0, 3300.0),
    "t": (450.0, 1800.0, 3200.0),
    "k": (380.0, 1950.0, 2900.0),
    "s": (2700.0, 3400.0),
    "f": (1400.0, 3100.0),
    "th": (1800.0, 2900.0),
}

# The phones of each digit, index = digit, loosely after its English pronunciation.
_DIGIT_PHONES: tuple[tuple[str, ...], ...] = (
    ("z", "ih", "r", "ow"),
    ("w", "ah", "n"),
    ("t", "uw"),
    ("th", "r", "iy"),
    ("f", "ao", "r"),
    ("f", "ay", "v"),
    ("s", "ih", "k", "s"),
    ("s", "eh", "v", "n"),
    ("ey", "t"),
    ("n", "ay", "n"),
)

_FORMANT_GAINS = (0.13, 0.08, 0.05)  # amplitude of formant 1, 2, 3: at most 0.26 in all
_PHONE_SECONDS = (0.06, 0.16)  # range of each phone's duration in a take
_EDGE_SECONDS = (0.02, 0.06)  # range of the noise before and after the phones
_RAMP_SECONDS = 0.01  # linear fade in and out of each phone
_TAKE_JITTER = 0.02  # each take scales its speaker's frequencies by 1 +- this, uniformly
_TAKE_GAIN = (0.6, 1.0)  # range of each take's loudness factor
_NOISE_STD = 0.01  # standard deviation of the noise added to every sample
_MIN_SAMPLE_RATE = 8000  # keeps every frequency (at most 3400 * 1.1 * 1.02 Hz) below Nyquist

_TEST_TAKES = 5  # takes 0-4 are test, as in FSDD
_SYNTHETIC_ID = re.compile(r"synthetic_[0-9]_spk[0-9]+_([0-9]+)")


def _speaker_factor(speaker: int, speakers: int) -> float:
    """The frequency factor of a speaker: evenly spaced in (0.9, 1.1), increasing."""
    return 0.9 + 0.2 * (speaker + 0.5) / speakers


def _phone(
    formants: Sequence[float], factor: float, samples: int, sample_rate: int, rng: random.Random
) -> Tensor:
    """``(samples,)`` float64: one sinusoid per formant (frequency times ``factor``, random
    phase), faded in and out linearly over `_RAMP_SECONDS`."""
    time = torch.arange(samples, dtype=torch.float64) / sample_rate
    tone = sum(
        gain * torch.sin(2 * math.pi * factor * freq * time + rng.uniform(0, 2 * math.pi))
        for gain, freq in zip(_FORMANT_GAINS, formants, strict=False)
    )
    index = torch.arange(samples, dtype=torch.float64)
    ramp = max(1.0, _RAMP_SECONDS * sample_rate)
    return tone * (torch.minimum(index + 1, samples - index) / ramp).clamp(max=1.0)


def _seconds(bounds: tuple[float, float], sample_rate: int, rng: random.Random) -> int:
    """A duration drawn uniformly in ``bounds`` seconds, in samples."""
    return round(rng.uniform(*bounds) * sample_rate)


def _synthetic_take(
    digit: int, factor: float, sample_rate: int, rng: random.Random, generator: torch.Generator
) -> Tensor:
    """``(N,)`` float32: one take of ``digit`` by the speaker of frequency ``factor``."""
    take_factor = factor * rng.uniform(1 - _TAKE_JITTER, 1 + _TAKE_JITTER)
    phones = [
        _phone(
            _PHONES[name], take_factor, _seconds(_PHONE_SECONDS, sample_rate, rng), sample_rate, rng
        )
        for name in _DIGIT_PHONES[digit]
    ]
    lead, trail = (
        torch.zeros(_seconds(_EDGE_SECONDS, sample_rate, rng), dtype=torch.float64)
        for _ in range(2)
    )
    speech = rng.uniform(*_TAKE_GAIN) * torch.cat([lead, *phones, trail])
    noise = torch.randn(speech.shape, generator=generator, dtype=torch.float64)
    return (speech + _NOISE_STD * noise).float()


def synthetic_recordings(
    speakers: int = 3, takes: int = 20, seed: int = 0, sample_rate: int = 8000
) -> list[Utterance]:
    """A generated spoken-digit corpus: clearly synthetic, no download, fast.

    Each digit is a fixed sequence of 2-4 "phones" (``"six"``: s, ih, k, s; phones are
    shared between digits, e.g. ``"five"`` and ``"nine"`` share ay), each phone a sum of 2-3
    sinusoids at formant-like frequencies between 250 and 3400 Hz with 10 ms linear fades.
    Speaker ``s`` scales every frequency by ``0.9 + 0.2 (s + 1/2) / speakers``; each take
    scales its speaker's frequencies by a further 1 +- 2%, draws each phone's duration in
    60-160 ms, a random phase per sinusoid, a loudness factor in [0.6, 1], 20-60 ms of
    noise before and after the phones, and adds Gaussian noise of standard deviation 0.01
    throughout. An HMM with a few states per digit can learn it; takes of one digit and
    speaker all differ. Its scores do not compare with real speech.

    Args:
        speakers: Number of speakers, at least 1 (named ``"spk0"``, ``"spk1"``, ...).
        takes: Takes of each digit per speaker, at least 1 (takes 0-4 are test, see
            `synthetic_split`).
        seed: Seed of the draws; the same arguments give the same corpus.
        sample_rate: Samples per second, at least 8000.

    Returns:
        ``10 * speakers * takes`` isolated utterances sorted by speaker, digit and take, with
        ids ``"synthetic_<digit>_spk<speaker>_<take>"`` and words ``(digit,)``.

    Raises:
        ValueError: naming the argument, if ``speakers < 1``, ``takes < 1`` or
            ``sample_rate`` is not an integer of at least 8000.
    """
    _check_int("speakers", speakers, 1)
    _check_int("takes", takes, 1)
    _check_int("sample_rate", sample_rate, _MIN_SAMPLE_RATE)
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    utterances = []
    for speaker in range(speakers):
        factor = _speaker_factor(speaker, speakers)
        for digit in range(len(_DIGIT_PHONES)):
            for take in range(takes):
                waveform = _synthetic_take(digit, factor, sample_rate, rng, generator)
                utterances.append(
                    Utterance(
                        f"synthetic_{digit}_spk{speaker}_{take}",
                        f"spk{speaker}",
                        (digit,),
                        waveform,
                        sample_rate,
                    )
                )
    return utterances


def synthetic_split(utterances: Sequence[Utterance]) -> tuple[list[Utterance], list[Utterance]]:
    """Split `synthetic_recordings` as FSDD's official split: takes 0-4 test, the rest train.

    Args:
        utterances: Utterances with ids ``"synthetic_<digit>_spk<speaker>_<take>"``.

    Returns:
        ``(train, test)``, each in the order of ``utterances``.

    Raises:
        ValueError: naming the utterance whose id is not a synthetic one.
    """
    train, test = [], []
    for utterance in utterances:
        match = _SYNTHETIC_ID.fullmatch(utterance.id)
        if match is None:
            raise ValueError(
                f"utterances must have ids synthetic_<digit>_spk<speaker>_<take>, got "
                f"{utterance.id!r}"
            )
        (test if int(match.group(1)) < _TEST_TAKES else train).append(utterance)
    return train, test


# --- frame features -------------------------------------------------------------------------

_KINDS = ("mfcc", "fbank")
_CMVN = ("none", "utterance", "speaker")
_DELTA_ORDER = 2


@dataclass(frozen=True)
class FeatureConfig:
    """Which frame features `extract` computes (Kaldi's defaults otherwise).

    Attributes:
        kind: ``"mfcc"`` (`mfcc`, ``num_ceps`` coefficients with the log energy as ``C0``)
            or ``"fbank"`` (`fbank`, ``num_mel_bins`` log mel energies).
        num_mel_bins: Number of mel bins, at least 3.
        num_ceps: Number of MFCCs, in [1, ``num_mel_bins``]; unused by ``"fbank"``.
        deltas: Append deltas and delta-deltas (`deltas` of order 2, window 2).
        cmvn: Mean normalisation of each dimension with the statistics of the utterance
            (``"utterance"``, `cmvn`), of all the utterances of its speaker (``"speaker"``,
            `speaker_cmvn`, as Kaldi's recipes do), or none (``"none"``).
        cmvn_variance: Also divide each dimension by its standard deviation over the same
            frames.

    Raises:
        ValueError: naming the attribute, for an unknown ``kind`` or ``cmvn``,
            ``num_mel_bins < 3`` or (for ``"mfcc"``) ``num_ceps`` outside
            [1, ``num_mel_bins``].
    """

    kind: str = "mfcc"
    num_mel_bins: int = 23
    num_ceps: int = 13
    deltas: bool = True
    cmvn: str = "speaker"
    cmvn_variance: bool = True

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        if self.cmvn not in _CMVN:
            raise ValueError(f"cmvn must be one of {_CMVN}, got {self.cmvn!r}")
        _check_int("num_mel_bins", self.num_mel_bins, 3)
        if self.kind == "mfcc":
            _check_int("num_ceps", self.num_ceps, 1)
            if self.num_ceps > self.num_mel_bins:
                raise ValueError(
                    f"num_ceps must be <= num_mel_bins ({self.num_mel_bins}), got {self.num_ceps}"
                )

    @property
    def dim(self) -> int:
        """``D``, the number of features per frame."""
        base = self.num_ceps if self.kind == "mfcc" else self.num_mel_bins
        return base * (_DELTA_ORDER + 1 if self.deltas else 1)


def waveform_features(waveform: Tensor, sample_rate: int, config: FeatureConfig) -> Tensor:
    """The frame features of a waveform before normalisation: MFCCs or filterbanks, and
    deltas (`normalise_features` does the rest).

    Frames are 25 ms every 10 ms, Kaldi's defaults (see `fbank`).

    Args:
        waveform: ``(N,)`` samples; at least one 25 ms frame.
        sample_rate: In Hz.
        config: Which features.

    Returns:
        ``(T, config.dim)`` float32 features, ``T = 1 + (N - window) // shift``.

    Raises:
        ValueError: if the waveform is shorter than one frame or holds NaN or infinity.
    """
    if config.kind == "mfcc":
        features = mfcc(
            waveform, sample_rate, num_ceps=config.num_ceps, num_mel_bins=config.num_mel_bins
        )
    else:
        features = fbank(waveform, sample_rate, num_mel_bins=config.num_mel_bins)
    if config.deltas:
        features = deltas(features, order=_DELTA_ORDER)
    return features


def normalise_features(
    features: Sequence[Tensor], speakers: Sequence[str], config: FeatureConfig
) -> list[Tensor]:
    """``config.cmvn`` applied to the `waveform_features` of utterances spoken by ``speakers``
    (used only by ``"speaker"``: each speaker's utterances share their statistics).

    Raises:
        ValueError: if ``features`` and ``speakers`` differ in length, or, with
            ``cmvn_variance``, for a dimension constant over the frames normalised together.
    """
    if len(features) != len(speakers):
        raise ValueError(
            f"features and speakers differ in length: {len(features)} vs {len(speakers)}"
        )
    if config.cmvn == "utterance":
        return [cmvn(f, variance=config.cmvn_variance) for f in features]
    if config.cmvn == "speaker":
        return speaker_cmvn(features, speakers, variance=config.cmvn_variance)
    return list(features)


def extract(
    utterances: Sequence[Utterance], config: FeatureConfig, progress: bool = False
) -> list[Tensor]:
    """The normalised frame features of each utterance, in order (`waveform_features`, then
    `normalise_features` with the utterances' speakers).

    With ``config.cmvn == "speaker"`` the statistics of a speaker are those of its
    utterances among ``utterances``.

    Args:
        utterances: The utterances.
        config: Which features.
        progress: Show a progress bar.

    Returns:
        One ``(T_i, config.dim)`` float32 tensor per utterance.
    """
    raw = [
        waveform_features(utterance.waveform, utterance.sample_rate, config)
        for utterance in tqdm(utterances, desc="features", disable=not progress)
    ]
    return normalise_features(raw, [u.speaker for u in utterances], config)


def frame_features(utterance: Utterance, config: FeatureConfig) -> Tensor:
    """The normalised frame features of one utterance on its own (`extract` of it alone:
    with ``"speaker"`` normalisation, its speaker's statistics are its own)."""
    return extract([utterance], config)[0]
