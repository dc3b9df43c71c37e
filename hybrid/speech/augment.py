"""Training-data augmentation for speech: speed perturbation and SpecAugment masks.

Speed perturbation (Ko et al., 2015; Kaldi's ``perturb_data_dir_speed.sh``, sox ``speed``)
plays a recording ``factor`` times faster: it lasts ``1 / factor`` as long and every
frequency, pitch and formants alike, is multiplied by ``factor``, as if a speaker with a
shorter (``factor > 1``) or longer vocal tract had said it. Copies at 0.9 and 1.1 beside the
originals are the usual recipe; each copy counts as a speaker of its own.

SpecAugment (Park et al., 2019) hides, in every training batch afresh, a few random runs of
frames and a few random bands of feature dimensions, so that a network cannot lean on any one
stretch of a recording or any one coefficient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .audio import resample
from .corpus import Utterance

__all__ = ["SpecAugment", "perturb_speed", "speed_perturbed"]


def perturb_speed(waveform: Tensor, factor: float) -> Tensor:
    """``waveform`` played ``factor`` times faster, by band-limited resampling.

    The samples are taken as recorded at ``factor`` times their rate and resampled to it
    (`hybrid.speech.audio.resample`): output sample ``j`` is the input interpolated at time
    ``j * factor`` (in input samples) with a Hann-windowed sinc of ``16`` zero crossings each
    side. Its cut-off is the lower of the input's and the output's Nyquist frequency, so
    speeding up (``factor > 1``) first removes what would fold back (aliasing) above the new
    Nyquist frequency.

    Args:
        waveform: ``(N,)`` float32 or float64 samples, ``N >= 1``.
        factor: Speed factor, in [0.5, 2]: 1.1 is 10% faster and 10% higher.

    Returns:
        ``(1 + (N - 1) // factor,)`` samples in the input's dtype and device.

    Raises:
        ValueError: for a waveform that is not a non-empty 1-D float tensor, or a factor
            outside [0.5, 2].
    """
    if not (isinstance(factor, (int, float)) and 0.5 <= factor <= 2.0):
        raise ValueError(f"factor must be a number in [0.5, 2], got {factor!r}")
    return resample(waveform, factor, 1)


def speed_perturbed(utterances: Sequence[Utterance], factors: Sequence[float]) -> list[Utterance]:
    """``utterances`` followed by a copy of all of them at each of ``factors``.

    A copy at factor ``f`` has id ``"sp<f>-<id>"`` and speaker ``"sp<f>-<speaker>"`` (Kaldi's
    naming), so per-speaker normalisation treats it as a speaker of its own.

    Raises:
        ValueError: for a factor outside [0.5, 2] or equal to 1 (the originals are kept), or
            given twice.
    """
    if len(set(factors)) != len(factors) or any(f == 1 for f in factors):
        raise ValueError(f"factors must be distinct and differ from 1, got {tuple(factors)}")
    out = list(utterances)
    for factor in factors:
        out += [
            Utterance(
                f"sp{factor}-{u.id}",
                f"sp{factor}-{u.speaker}",
                u.words,
                perturb_speed(u.waveform, factor),
                u.sample_rate,
            )
            for u in utterances
        ]
    return out


@dataclass(frozen=True)
class SpecAugment:
    """Time and feature masks on a padded batch of features (SpecAugment without warping).

    Each utterance gets its own masks: ``time_masks`` runs of ``w ~ U{0..time_width}``
    consecutive frames (at most ``max_time_share`` of its frames each) and ``feature_masks``
    bands of ``w ~ U{0..feature_width}`` consecutive dimensions, each placed uniformly where
    it fits. A masked value becomes the utterance's mean of that dimension over its frames,
    so the mask carries no information and does not move the input's statistics.

    Attributes:
        time_masks: Runs of frames masked per utterance.
        time_width: Longest run, in frames.
        feature_masks: Bands of dimensions masked per utterance.
        feature_width: Widest band, in dimensions.
        max_time_share: Largest share of an utterance's frames one run may cover.

    Raises:
        ValueError: naming the attribute, for a negative count or width, or a share outside
            (0, 1].
    """

    time_masks: int = 2
    time_width: int = 10
    feature_masks: int = 2
    feature_width: int = 5
    max_time_share: float = 0.2

    def __post_init__(self) -> None:
        for name in ("time_masks", "time_width", "feature_masks", "feature_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        share = self.max_time_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ValueError(f"max_time_share must be a number in (0, 1], got {share!r}")

    def __call__(self, features: Tensor, lengths: Tensor, generator: torch.Generator) -> Tensor:
        """A masked copy of ``features``.

        Args:
            features: ``(B, T, D)`` padded features.
            lengths: ``(B,)`` frames of each utterance, in [1, ``T``].
            generator: Draws the masks (CPU).

        Returns:
            ``(B, T, D)``: ``features`` with the masks applied; padding is left as it was.
        """
        batch, frames, dims = features.shape
        lengths = lengths.to("cpu")
        valid = torch.arange(frames)[None, :] < lengths[:, None]  # (B, T)
        mean = (features * valid[..., None].to(features)).sum(1) / lengths[:, None].to(features)
        widest = torch.clamp(
            (self.max_time_share * lengths).floor().long(), max=self.time_width
        )  # (B,)
        hidden = torch.zeros(batch, frames, dims, dtype=torch.bool)
        for _ in range(self.time_masks):
            runs = _spans(widest, lengths, generator)  # (B, T)
            hidden |= runs[..., None]
        full = torch.full((batch,), dims)
        for _ in range(self.feature_masks):
            bands = _spans(torch.clamp(full, max=self.feature_width), full, generator)  # (B, D)
            hidden |= bands[:, None, :]
        hidden &= valid[..., None]
        hidden = hidden.to(features.device)
        return torch.where(hidden, mean[:, None, :].to(features.device), features)


def _spans(widest: Tensor, sizes: Tensor, generator: torch.Generator) -> Tensor:
    """Per row, a mask ``(B, max(sizes))`` of one span of ``w ~ U{0..widest}`` consecutive
    positions starting uniformly in ``[0, size - w]``."""
    draw = torch.rand(2, len(sizes), generator=generator)
    width = (draw[0] * (widest + 1)).floor().long()
    start = (draw[1] * (sizes - width + 1)).floor().long()
    position = torch.arange(int(sizes.max()))[None, :]
    return (position >= start[:, None]) & (position < (start + width)[:, None])
