"""Speed perturbation: band-limited resampling checked against the analytic signal."""

from __future__ import annotations

import math

import pytest
import torch

from hybrid.speech.augment import perturb_speed, speed_perturbed
from hybrid.speech.corpus import Utterance

RATE = 8000


def _tones(frequencies, count, times=None):
    """``sum_k sin(2 pi f_k t + k)`` at sample times ``times`` (default ``0 .. count - 1``)."""
    t = torch.arange(count, dtype=torch.float64) if times is None else times
    return sum(torch.sin(2 * math.pi * f * t / RATE + k) for k, f in enumerate(frequencies))


@pytest.mark.parametrize("factor", [0.5, 0.9, 1.1, 1.5, 2.0])
def test_perturbed_tones_are_the_signal_at_scaled_times(factor):
    """Oracle: the continuous signal the samples came from, evaluated at ``j * factor``
    (tones below the output's Nyquist frequency pass unchanged), away from the edges."""
    nyquist = RATE / 2 / max(1.0, factor)  # the output's, in input frequencies
    frequencies = [f for f in (180.0, 700.0, 1300.0, 2500.0) if f < 0.8 * nyquist]
    x = _tones(frequencies, 4000)
    y = perturb_speed(x, factor)
    assert y.shape == (1 + math.floor(3999 / factor),) and y.dtype == torch.float64
    expected = _tones(frequencies, 0, torch.arange(len(y), dtype=torch.float64) * factor)
    inner = slice(int(200 / factor), len(y) - int(200 / factor))
    error = (y[inner] - expected[inner]).abs().max()
    assert error < 0.02 * len(frequencies)


@pytest.mark.parametrize(("factor", "tone"), [(0.9, 440.0), (1.1, 1000.0), (1.1, 3000.0)])
def test_every_frequency_is_multiplied_by_the_factor(factor, tone):
    y = perturb_speed(_tones([tone], 4000).float(), factor)
    assert y.dtype == torch.float32
    spectrum = torch.fft.rfft(y.double() * torch.hann_window(len(y), dtype=torch.float64)).abs()
    peak = spectrum.argmax().item() * RATE / len(y)
    assert abs(peak - tone * factor) <= RATE / len(y)


def test_speeding_up_removes_what_would_fold_back():
    """A 3,950 Hz tone sped up by 1.1 lies above the new Nyquist frequency (4,345 Hz would
    alias to 3,655 Hz): it is removed, where linear interpolation keeps most of it."""
    x = _tones([3950.0], 4000)
    y = perturb_speed(x, 1.1)[300:-300]
    times = torch.arange(len(perturb_speed(x, 1.1)), dtype=torch.float64) * 1.1
    low = times.floor().long().clamp(max=len(x) - 2)
    linear = (x[low] + (times - low) * (x[low + 1] - x[low]))[300:-300]
    rms = x.square().mean().sqrt()
    assert y.square().mean().sqrt() < 0.05 * rms
    assert linear.square().mean().sqrt() > 0.3 * rms


def test_factor_one_is_a_copy_and_short_waveforms_work():
    x = torch.randn(50)
    y = perturb_speed(x, 1.0)
    assert torch.equal(x, y) and y is not x
    assert perturb_speed(torch.ones(1), 1.1).shape == (1,)


@pytest.mark.parametrize(
    ("waveform", "factor", "match"),
    [
        (torch.ones(2, 3), 1.1, "waveform must be a 1-D float tensor"),
        (torch.ones(5, dtype=torch.long), 1.1, "waveform must be a 1-D float tensor"),
        (torch.ones(0), 1.1, "at least one sample"),
        (torch.ones(5), 0.4, "factor must be a number in"),
        (torch.ones(5), float("nan"), "factor must be a number in"),
        (torch.ones(5), "fast", "factor must be a number in"),
    ],
)
def test_perturb_speed_rejects_bad_input(waveform, factor, match):
    with pytest.raises(ValueError, match=match):
        perturb_speed(waveform, factor)


def test_speed_perturbed_copies_are_new_speakers():
    utterances = [
        Utterance(f"u{i}", f"s{i % 2}", (i,), torch.randn(800 + 10 * i), RATE) for i in range(3)
    ]
    out = speed_perturbed(utterances, (0.9, 1.1))
    assert out[:3] == utterances
    assert [u.id for u in out[3:]] == [f"sp{f}-u{i}" for f in (0.9, 1.1) for i in range(3)]
    assert [u.speaker for u in out[3:6]] == ["sp0.9-s0", "sp0.9-s1", "sp0.9-s0"]
    for copy, original in zip(out[6:], utterances, strict=True):
        assert copy.words == original.words and copy.sample_rate == RATE
        assert torch.equal(copy.waveform, perturb_speed(original.waveform, 1.1))
    assert speed_perturbed(utterances, ()) == utterances
    for factors in ((0.9, 0.9), (1.0,), (3.0,)):
        with pytest.raises(ValueError, match="factor"):
            speed_perturbed(utterances, factors)
