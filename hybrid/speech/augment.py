"""Training-data augmentation for speech: speed perturbation.

Speed perturbation (Ko et al., 2015; Kaldi's ``perturb_data_dir_speed.sh``, sox ``speed``)
plays a recording ``factor`` times faster: it lasts ``1 / factor`` as long and every
frequency, pitch and formants alike, is multiplied by ``factor``, as if a speaker with a
shorter (``factor > 1``) or longer vocal tract had said it. Copies at 0.9 and 1.1 beside the
originals are the usual recipe; each copy counts as a speaker of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from .audio import resample
from .corpus import Utterance

__all__ = ["perturb_speed", "speed_perturbed"]


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
