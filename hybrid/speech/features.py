"""Kaldi-compatible acoustic features in pure PyTorch: filterbanks, MFCCs, deltas, splicing, CMVN.

`fbank` and `mfcc` follow Kaldi's ``compute-fbank-feats`` / ``compute-mfcc-feats`` (and
``torchaudio.compliance.kaldi``) step by step, for one waveform at a time. Each frame of
``frame_length`` ms, taken every ``frame_shift`` ms, goes through

1. dither (Gaussian noise of standard deviation ``dither``, off by default),
2. removal of the frame's mean (``remove_dc_offset``),
3. the raw log energy ``log(max(sum x^2, eps))`` (``raw_energy``),
4. pre-emphasis ``x[i] -= c * x[i - 1]``, with ``x[0] -= c * x[0]`` for the first sample,
5. the analysis window (``povey`` = Hann to the power 0.85, ``hanning``, ``hamming``,
   ``rectangular``; all symmetric, ``2 pi i / (L - 1)``),
6. zero padding to the FFT size (the next power of two by default) and the power spectrum
   ``|X_k|^2`` (or the magnitude ``|X_k|``),
7. ``num_mel_bins`` triangles equally spaced on the mel scale ``1127 ln(1 + f / 700)``
   between ``low_freq`` and ``high_freq``, each rising from its left neighbour's centre to
   its own and falling to its right neighbour's, weighting the FFT bins below Nyquist,
8. ``log(max(energy, eps))`` of each triangle, where ``eps`` is the float32 machine epsilon
   ``2**-23`` whatever the dtype, as in Kaldi;

an MFCC is then Kaldi's orthonormal DCT-II of the log mel energies, keeping ``num_ceps``
coefficients, scaled by the lifter ``1 + Q / 2 sin(pi k / Q)``, with the log energy in place
of ``C0`` when ``use_energy``. Not implemented: VTLN warping, ``htk_compat``, the Blackman
window and ``subtract_mean`` (use `cmvn`).

The defaults are Kaldi's except ``dither``, which is 0.0 here (Kaldi's 1.0 adds random noise)
so features are reproducible. Kaldi's ``energy_floor`` default 0.0 (no floor) is kept; note
that torchaudio's default is 1.0.

All functions work on float32 and float64 tensors on any device; constants (window, mel
triangles, DCT) are computed in float64 and cast to the input's dtype and device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from numbers import Real

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ..structured._inputs import capturing
from .statistics import MIN_VARIANCE

__all__ = ["GlobalCMVN", "cmvn", "deltas", "fbank", "mfcc", "pad_features", "splice"]

# Kaldi floors energies at std::numeric_limits<float>::epsilon() whatever its BaseFloat is.
_FLT_EPSILON = 2.0**-23


# The analysis windows as functions of ``2 pi i / (L - 1)``, i = 0 .. L - 1 (float64).
_WINDOWS: dict[str, Callable[[Tensor], Tensor]] = {
    "povey": lambda x: (0.5 - 0.5 * torch.cos(x)) ** 0.85,
    "hanning": lambda x: 0.5 - 0.5 * torch.cos(x),
    "hamming": lambda x: 0.54 - 0.46 * torch.cos(x),
    "rectangular": torch.ones_like,
}


# --- argument checks ---------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_waveform(waveform: object) -> None:
    """Raise ``ValueError`` unless ``waveform`` is a 1-D float32/float64 tensor of finite values."""
    if (
        not isinstance(waveform, Tensor)
        or waveform.dim() != 1
        or waveform.dtype not in (torch.float32, torch.float64)
    ):
        got = (
            f"shape {tuple(waveform.shape)} {waveform.dtype}"
            if isinstance(waveform, Tensor)
            else type(waveform).__name__
        )
        raise ValueError(f"waveform must be a 1-D float32 or float64 tensor (N,), got {got}")
    # while a graph is recorded (export) the values are not known; the shape is checked
    if not capturing() and not bool(torch.isfinite(waveform).all()):
        raise ValueError("waveform must hold finite samples, got NaN or infinity")


def _check_features(features: object, name: str = "features") -> None:
    """Raise ``ValueError`` unless ``features`` is a ``(T, D)`` float tensor with ``T >= 1``."""
    if (
        not isinstance(features, Tensor)
        or features.dim() != 2
        or not features.is_floating_point()
        or features.shape[0] == 0
    ):
        got = (
            f"shape {tuple(features.shape)} {features.dtype}"
            if isinstance(features, Tensor)
            else type(features).__name__
        )
        raise ValueError(f"{name} must be a 2-D float tensor (T, D) with T >= 1, got {got}")


# --- framing -----------------------------------------------------------------------------------


def _frame_sizes(
    sample_rate: float, frame_length: float, frame_shift: float, round_to_power_of_two: bool
) -> tuple[int, int, int]:
    """``(window_size, window_shift, fft_size)`` in samples, truncated as Kaldi does."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, Real) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    size = int(sample_rate * 0.001 * frame_length)
    shift = int(sample_rate * 0.001 * frame_shift)
    if size < 2:
        raise ValueError(
            f"frame_length must span at least 2 samples, got {frame_length} ms = {size} samples "
            f"at {sample_rate} Hz"
        )
    if shift < 1:
        raise ValueError(
            f"frame_shift must span at least 1 sample, got {frame_shift} ms at {sample_rate} Hz"
        )
    fft_size = 1 << (size - 1).bit_length() if round_to_power_of_two else size
    if fft_size % 2:
        raise ValueError(
            f"frame_length gives an odd window of {size} samples; the FFT needs an even size "
            "(set round_to_power_of_two=True or change frame_length)"
        )
    return size, shift, fft_size


def _frames(waveform: Tensor, size: int, shift: int, snip_edges: bool) -> Tensor:
    """The ``(T, size)`` frames of a ``(N,)`` waveform, as Kaldi extracts them.

    With ``snip_edges`` frame ``t`` starts at ``t * shift`` and only frames that fit are kept:
    ``T = 1 + (N - size) // shift``. Without, ``T = (N + shift // 2) // shift``, frame ``t``
    is centred on ``t * shift + shift // 2`` and samples beyond either end are mirrored
    (``x[-1] = x[0]``, ``x[N] = x[N - 1]``).
    """
    n = waveform.shape[0]
    if snip_edges:
        if n < size:
            raise ValueError(f"waveform of {n} samples is shorter than one frame of {size} samples")
        count, first = 1 + (n - size) // shift, 0
    else:
        count, first = (n + shift // 2) // shift, shift // 2 - size // 2
        if count == 0:
            raise ValueError(
                f"waveform of {n} samples is shorter than one frame: with snip_edges=False "
                f"it needs at least {shift - shift // 2} samples"
            )
    device = waveform.device
    starts = first + shift * torch.arange(count, device=device)
    index = starts[:, None] + torch.arange(size, device=device)
    if not snip_edges:
        index = index % (2 * n)
        index = torch.where(index < n, index, 2 * n - 1 - index)
    return waveform[index]


def _log_energy(frames: Tensor, energy_floor: float) -> Tensor:
    """``(T,)`` log energies ``log(max(sum x^2, eps))`` floored at ``log(energy_floor)`` if > 0."""
    log_energy = frames.square().sum(dim=1).clamp_min(_FLT_EPSILON).log()
    return log_energy.clamp_min(math.log(energy_floor)) if energy_floor > 0 else log_energy


def _window(window_type: str, size: int) -> Tensor:
    """The ``(size,)`` float64 analysis window (symmetric, as Kaldi's)."""
    return _WINDOWS[window_type](2 * math.pi / (size - 1) * torch.arange(size, dtype=torch.float64))


# --- filterbank --------------------------------------------------------------------------------


def _mel(freq: Tensor) -> Tensor:
    """Kaldi's mel scale ``1127 ln(1 + f / 700)`` of frequencies in Hz."""
    return 1127.0 * torch.log1p(freq / 700.0)


def _mel_banks(
    num_mel_bins: int, fft_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> Tensor:
    """``(num_mel_bins, fft_size // 2)`` float64 triangle weights of the FFT bins below Nyquist.

    Bin ``m`` has its left edge, centre and right edge at mels ``lo + (m + j) delta``,
    ``j = 0, 1, 2``, with ``delta = (hi - lo) / (num_mel_bins + 1)``.
    """
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if not 0 <= low_freq < nyquist:
        raise ValueError(f"low_freq must be in [0, {nyquist}) Hz (Nyquist), got {low_freq}")
    if not low_freq < high <= nyquist:
        raise ValueError(
            f"high_freq must give a cut-off in ({low_freq}, {nyquist}] Hz (a value <= 0 is an "
            f"offset from Nyquist), got {high_freq} -> {high} Hz"
        )
    mel_low, mel_high = _mel(torch.tensor([low_freq, high], dtype=torch.float64))
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    left = mel_low + delta * torch.arange(num_mel_bins, dtype=torch.float64)[:, None]
    mel = _mel(sample_rate / fft_size * torch.arange(fft_size // 2, dtype=torch.float64))
    weights = torch.minimum(mel - left, left + 2 * delta - mel).div(delta).clamp_min(0)
    empty = [] if capturing() else (weights.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"num_mel_bins={num_mel_bins} is too many for a {fft_size}-point FFT between "
            f"{low_freq} and {high} Hz: mel bins {empty} contain no FFT bin"
        )
    return weights


def fbank(
    waveform: Tensor,
    sample_rate: float,
    *,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    snip_edges: bool = True,
    dither: float = 0.0,
    generator: torch.Generator | None = None,
    remove_dc_offset: bool = True,
    preemphasis_coefficient: float = 0.97,
    window_type: str = "povey",
    round_to_power_of_two: bool = True,
    num_mel_bins: int = 23,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_energy: bool = False,
    raw_energy: bool = True,
    energy_floor: float = 0.0,
    use_log_fbank: bool = True,
    use_power: bool = True,
) -> Tensor:
    """Mel filterbank energies of one waveform, as Kaldi's ``compute-fbank-feats``.

    Args:
        waveform: ``(N,)`` float32 or float64 samples (any scale: Kaldi reads 16-bit
            integers, `read_wav` returns them divided by 32768, which only shifts log
            features by a constant).
        sample_rate: Samples per second.
        frame_length: Frame length in milliseconds.
        frame_shift: Frame shift in milliseconds.
        snip_edges: Keep only frames that fit in the waveform (``True``), or centre frame
            ``t`` on ``(t + 1/2) * shift`` and mirror the waveform at its ends (``False``).
        dither: Standard deviation of the Gaussian noise added to every frame (0: none).
        generator: Random generator for the dither noise, on the waveform's device, drawn
            as one ``(T, window_size)`` standard-normal tensor; ``None``: torch's default.
        remove_dc_offset: Subtract each frame's mean.
        preemphasis_coefficient: Pre-emphasis coefficient ``c`` in [0, 1].
        window_type: ``"povey"``, ``"hanning"``, ``"hamming"`` or ``"rectangular"``.
        round_to_power_of_two: Zero-pad frames to the next power of two for the FFT;
            otherwise the window size must be even.
        num_mel_bins: Number of triangular mel bins, at least 3.
        low_freq: Low cut-off of the mel bins in Hz.
        high_freq: High cut-off in Hz; a value <= 0 is an offset from Nyquist.
        use_energy: Prepend the log energy as feature 0.
        raw_energy: Measure the energy before pre-emphasis and windowing (else after).
        energy_floor: Floor on the energy (not its log); 0 for none.
        use_log_fbank: Return log energies (floored at ``eps``) rather than linear ones.
        use_power: Weight the power spectrum (``True``) or the magnitude spectrum.

    Returns:
        ``(T, num_mel_bins + use_energy)`` features in the waveform's dtype and device,
        ``T = 1 + (N - window_size) // window_shift`` with ``snip_edges``, else
        ``(N + window_shift // 2) // window_shift``.

    Raises:
        ValueError: naming the argument, for a waveform that is not 1-D float32/float64,
            holds NaN or infinity, or is shorter than one frame, or an option out of range:
            frames under 2 samples or an odd FFT size, pre-emphasis outside [0, 1], a negative
            dither or energy floor, an unknown window, cut-offs outside (0, Nyquist] or in the
            wrong order, fewer than 3 mel bins, or so many that one has no FFT bin.
    """
    _check_waveform(waveform)
    size, shift, fft_size = _frame_sizes(
        sample_rate, frame_length, frame_shift, round_to_power_of_two
    )
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise ValueError(
            f"preemphasis_coefficient must be in [0, 1], got {preemphasis_coefficient}"
        )
    if dither < 0:
        raise ValueError(f"dither must be >= 0, got {dither}")
    if energy_floor < 0:
        raise ValueError(f"energy_floor must be >= 0, got {energy_floor}")
    if window_type not in _WINDOWS:
        raise ValueError(f"window_type must be one of {sorted(_WINDOWS)}, got {window_type!r}")
    _check_int("num_mel_bins", num_mel_bins, 3)
    banks = _mel_banks(num_mel_bins, fft_size, sample_rate, low_freq, high_freq)

    dtype, device = waveform.dtype, waveform.device
    frames = _frames(waveform, size, shift, snip_edges)
    if dither > 0:
        noise = torch.randn(frames.shape, generator=generator, dtype=dtype, device=device)
        frames = frames + dither * noise
    if remove_dc_offset:
        frames = frames - frames.mean(dim=1, keepdim=True)
    if use_energy and raw_energy:
        log_energy = _log_energy(frames, energy_floor)
    previous = torch.cat((frames[:, :1], frames[:, :-1]), dim=1)
    frames = frames - preemphasis_coefficient * previous
    frames = frames * _window(window_type, size).to(dtype=dtype, device=device)
    if use_energy and not raw_energy:
        log_energy = _log_energy(frames, energy_floor)

    spectrum = torch.fft.rfft(frames, n=fft_size).abs()
    if use_power:
        spectrum = spectrum.square()
    energies = spectrum[:, : fft_size // 2] @ banks.T.to(dtype=dtype, device=device)
    if use_log_fbank:
        energies = energies.clamp_min(_FLT_EPSILON).log()
    if use_energy:
        energies = torch.cat((log_energy[:, None], energies), dim=1)
    return energies


def _cepstral_transform(num_ceps: int, num_mel_bins: int, cepstral_lifter: float) -> Tensor:
    """``(num_ceps, num_mel_bins)`` float64: Kaldi's orthonormal DCT-II rows times the lifter.

    Row ``k`` is ``sqrt(2 / M) cos(pi k (n + 1/2) / M)`` (row 0: ``sqrt(1 / M)``), scaled by
    ``1 + Q / 2 sin(pi k / Q)`` when ``Q = cepstral_lifter`` is not 0.
    """
    k = torch.arange(num_ceps, dtype=torch.float64)[:, None]
    n = torch.arange(num_mel_bins, dtype=torch.float64)
    dct = math.sqrt(2.0 / num_mel_bins) * torch.cos(math.pi / num_mel_bins * (n + 0.5) * k)
    dct[0] = math.sqrt(1.0 / num_mel_bins)
    if cepstral_lifter != 0:
        dct *= 1.0 + 0.5 * cepstral_lifter * torch.sin(math.pi * k / cepstral_lifter)
    return dct


def mfcc(
    waveform: Tensor,
    sample_rate: float,
    *,
    num_ceps: int = 13,
    cepstral_lifter: float = 22.0,
    use_energy: bool = True,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    snip_edges: bool = True,
    dither: float = 0.0,
    generator: torch.Generator | None = None,
    remove_dc_offset: bool = True,
    preemphasis_coefficient: float = 0.97,
    window_type: str = "povey",
    round_to_power_of_two: bool = True,
    num_mel_bins: int = 23,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    raw_energy: bool = True,
    energy_floor: float = 0.0,
) -> Tensor:
    """Mel-frequency cepstral coefficients of one waveform, as Kaldi's ``compute-mfcc-feats``.

    The DCT of `fbank`'s log power mel energies (see the module docstring); the arguments
    not listed here are `fbank`'s.

    Args:
        waveform: ``(N,)`` float32 or float64 samples.
        sample_rate: Samples per second.
        num_ceps: Number of coefficients kept, ``C0`` included, at most ``num_mel_bins``.
        cepstral_lifter: Lifter constant ``Q >= 0``; 0 for no liftering.
        use_energy: Replace ``C0`` by the frame's log energy (Kaldi's default).

    Returns:
        ``(T, num_ceps)`` coefficients in the waveform's dtype and device, ``T`` as `fbank`.

    Raises:
        ValueError: naming the argument, for ``num_ceps`` outside [1, ``num_mel_bins``], a
            negative ``cepstral_lifter``, or any input `fbank` refuses.
    """
    _check_int("num_ceps", num_ceps, 1)
    if num_ceps > num_mel_bins:
        raise ValueError(f"num_ceps must be <= num_mel_bins ({num_mel_bins}), got {num_ceps}")
    if cepstral_lifter < 0:
        raise ValueError(f"cepstral_lifter must be >= 0, got {cepstral_lifter}")
    features = fbank(
        waveform,
        sample_rate,
        frame_length=frame_length,
        frame_shift=frame_shift,
        snip_edges=snip_edges,
        dither=dither,
        generator=generator,
        remove_dc_offset=remove_dc_offset,
        preemphasis_coefficient=preemphasis_coefficient,
        window_type=window_type,
        round_to_power_of_two=round_to_power_of_two,
        num_mel_bins=num_mel_bins,
        low_freq=low_freq,
        high_freq=high_freq,
        use_energy=use_energy,
        raw_energy=raw_energy,
        energy_floor=energy_floor,
    )
    transform = _cepstral_transform(num_ceps, num_mel_bins, cepstral_lifter)
    transform = transform.to(dtype=features.dtype, device=features.device)
    ceps = features[:, int(use_energy) :] @ transform.T
    return torch.cat((features[:, :1], ceps[:, 1:]), dim=1) if use_energy else ceps


# --- context -----------------------------------------------------------------------------------


def _replicate_edges(features: Tensor, width: int) -> Tensor:
    """``(T + 2 width, D)``: ``features`` with its end frames repeated ``width`` times each."""
    t = features.shape[0]
    index = torch.arange(-width, t + width, device=features.device).clamp(0, t - 1)
    return features[index]


def _delta_kernels(order: int, window: int) -> list[Tensor]:
    """Kaldi's ``order + 1`` float64 delta filters, each of width ``2 order window + 1``.

    Filter 0 is the identity; filter ``i`` is filter ``i - 1`` convolved with the regression
    filter ``[-window, ..., window] / sum_j j^2``; all are zero-padded to the common width.
    """
    width = order * window
    slope = torch.arange(-window, window + 1, dtype=torch.float64)
    slope = slope / slope.square().sum()
    kernel = torch.ones(1, dtype=torch.float64)
    kernels = [kernel]
    for _ in range(order):
        wider = torch.zeros(kernel.shape[0] + 2 * window, dtype=torch.float64)
        for j, weight in enumerate(slope):
            wider[j : j + kernel.shape[0]] += weight * kernel
        kernel = wider
        kernels.append(kernel)
    return [torch.nn.functional.pad(k, (width - i * window,) * 2) for i, k in enumerate(kernels)]


def deltas(features: Tensor, order: int = 2, window: int = 2) -> Tensor:
    """Append delta features as Kaldi's ``add-deltas``.

    The order-``i`` deltas of frame ``t`` are ``sum_j k_i[j] x[clamp(t + j)]`` over
    ``|j| <= i * window``, where ``k_1[j] = j / sum_{|l| <= window} l^2`` is the regression
    filter, ``k_i`` is ``k_{i-1}`` convolved with ``k_1``, and frames beyond either end repeat
    the first or last frame.

    Args:
        features: ``(T, D)`` float features.
        order: Highest delta order (0 returns a copy of ``features``; 2: deltas and
            delta-deltas).
        window: Half-width of the regression filter, at least 1.

    Returns:
        ``(T, D * (order + 1))``: the features, their deltas, their delta-deltas, ... side by
        side.

    Raises:
        ValueError: naming the argument, for features that are not a 2-D float tensor with
            at least one frame, ``order < 0`` or ``window < 1``.
    """
    _check_features(features)
    _check_int("order", order, 0)
    _check_int("window", window, 1)
    width = order * window
    context = _replicate_edges(features, width).unfold(0, 2 * width + 1, 1)  # (T, D, 2w + 1)
    filters = torch.stack(_delta_kernels(order, window), dim=1)  # (2w + 1, order + 1)
    out = context @ filters.to(dtype=features.dtype, device=features.device)  # (T, D, order + 1)
    return out.transpose(1, 2).flatten(1)


def splice(features: Tensor, context: int) -> Tensor:
    """Stack each frame with its neighbours, as Kaldi's ``splice-feats``.

    Args:
        features: ``(T, D)`` float features.
        context: Frames taken on each side; frames beyond either end repeat the first or
            last frame. 0 returns ``features`` itself.

    Returns:
        ``(T, D * (2 context + 1))``: row ``t`` is frames ``t - context .. t + context``
        concatenated in time order.

    Raises:
        ValueError: naming the argument, for features that are not a 2-D float tensor with
            at least one frame or ``context < 0``.
    """
    _check_features(features)
    _check_int("context", context, 0)
    if context == 0:
        return features
    windows = _replicate_edges(features, context).unfold(0, 2 * context + 1, 1)  # (T, D, 2c + 1)
    return windows.transpose(1, 2).flatten(1)


# --- normalisation and batching ----------------------------------------------------------------


def _normaliser(
    count: Tensor, total: Tensor, total_squares: Tensor, variance: bool
) -> tuple[Tensor, Tensor]:
    """``(mean, scale)`` (float64, ``(D,)``) from the statistics of ``count`` frames.

    ``scale`` is ``1 / std`` (population standard deviation) with ``variance``, else ones.
    """
    mean = total / count
    if not variance:
        return mean, torch.ones_like(mean)
    var = total_squares / count - mean.square()
    flat = [] if capturing() else (var < MIN_VARIANCE).nonzero().flatten().tolist()
    if flat:
        raise ValueError(
            f"variance normalisation is undefined: feature dimensions {flat} are constant "
            f"(variance < {MIN_VARIANCE})"
        )
    return mean, var.rsqrt()


def cmvn(features: Tensor, variance: bool = False) -> Tensor:
    """Per-utterance cepstral mean (and variance) normalisation.

    Args:
        features: ``(T, D)`` float features of one utterance.
        variance: Also divide each dimension by its standard deviation over the utterance.

    Returns:
        ``(T, D)`` features with zero mean (and unit variance) per dimension, in the input's
        dtype; statistics are accumulated in float64.

    Raises:
        ValueError: for features that are not a 2-D float tensor with at least one frame, or,
            with ``variance``, a dimension that is constant over the utterance.
    """
    _check_features(features)
    x = features.double()
    count = torch.tensor(x.shape[0], dtype=torch.float64, device=x.device)
    mean, scale = _normaliser(count, x.sum(dim=0), x.square().sum(dim=0), variance)
    return ((x - mean) * scale).to(features.dtype)


def speaker_cmvn(
    features: Sequence[Tensor], speakers: Sequence[str], variance: bool = False
) -> list[Tensor]:
    """Per-speaker cepstral mean (and variance) normalisation, as Kaldi's ``apply-cmvn
    --utt2spk``: every utterance is normalised with the statistics of all the utterances of
    its speaker (a `GlobalCMVN` fitted on them).

    Args:
        features: Per utterance ``(T_i, D)`` float features.
        speakers: The speaker of each utterance (any hashable names).
        variance: Also divide each dimension by its standard deviation over the speaker.

    Returns:
        Per utterance ``(T_i, D)`` normalised features, in order, in the input's dtype.

    Raises:
        ValueError: if ``features`` and ``speakers`` differ in length, for features that are
            not 2-D float tensors of one ``D``, or, with ``variance``, a dimension that is
            constant over a speaker's utterances (naming the speaker).
    """
    if len(features) != len(speakers):
        raise ValueError(
            f"features and speakers differ in length: {len(features)} vs {len(speakers)}"
        )
    groups: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(index)
    out: list[Tensor] = list(features)
    for speaker, index in groups.items():
        try:
            normalise = GlobalCMVN(variance).fit(features[i] for i in index)
        except ValueError as error:
            raise ValueError(f"speaker {speaker!r}: {error}") from None
        for i in index:
            out[i] = normalise(features[i])
    return out


class GlobalCMVN:
    """Mean (and variance) normalisation with statistics of a whole training set.

    Accumulates the frame count, sum and sum of squares of every dimension in float64 on the
    CPU, one utterance at a time, as Kaldi's ``compute-cmvn-stats``.

    Args:
        variance: Also divide by the standard deviation over the training set.

    Example:
        >>> normalise = GlobalCMVN().fit([torch.ones(3, 2), torch.zeros(1, 2)])
        >>> normalise(torch.ones(1, 2))
        tensor([[0.2500, 0.2500]])
    """

    def __init__(self, variance: bool = False) -> None:
        self.variance = variance
        self._stats: dict[str, Tensor] | None = None
        self._mean_scale: tuple[Tensor, Tensor] | None = None

    def fit(self, utterances: Iterable[Tensor]) -> GlobalCMVN:
        """Replace the statistics by those of ``utterances``, each ``(T_i, D)``; returns self.

        Raises:
            ValueError: naming the utterance that is not a 2-D float tensor with at least one
                frame or whose ``D`` differs from the first one's, when there is none, or
                with ``variance``, when a dimension is constant over all of them.
        """
        count, total, total_squares = 0, None, None
        for i, utterance in enumerate(utterances):
            _check_features(utterance, f"utterances[{i}]")
            x = utterance.detach().to(device="cpu", dtype=torch.float64)
            if total is None:
                total = torch.zeros(x.shape[1], dtype=torch.float64)
                total_squares = torch.zeros_like(total)
            elif x.shape[1] != total.shape[0]:
                raise ValueError(
                    f"utterances[{i}] has {x.shape[1]} dimensions, the first had {total.shape[0]}"
                )
            count += x.shape[0]
            total += x.sum(dim=0)
            total_squares += x.square().sum(dim=0)
        if total is None:
            raise ValueError("utterances must hold at least one (T, D) tensor, got none")
        self.load_state_dict(
            {"count": torch.tensor(count), "sum": total, "sum_squares": total_squares}
        )
        return self

    def __call__(self, features: Tensor) -> Tensor:
        """Normalise ``(T, D)`` features; returns ``(T, D)`` in their dtype and device.

        Raises:
            RuntimeError: before `fit` or `load_state_dict`.
            ValueError: for features that are not a 2-D float tensor with at least one frame,
                or whose ``D`` differs from the fitted one.
        """
        if self._mean_scale is None:
            raise RuntimeError("GlobalCMVN has no statistics yet: call fit or load_state_dict")
        _check_features(features)
        mean, scale = (t.to(features.device) for t in self._mean_scale)
        if features.shape[1] != mean.shape[0]:
            raise ValueError(
                f"features must have {mean.shape[0]} dimensions as fitted, got {features.shape[1]}"
            )
        return ((features.double() - mean) * scale).to(features.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        """The statistics as plain CPU tensors: ``count`` (int64 scalar), ``sum`` and
        ``sum_squares`` (float64 ``(D,)``); saves with `torch.save`, loads with
        ``torch.load(weights_only=True)``.

        Raises:
            RuntimeError: before `fit` or `load_state_dict`.
        """
        if self._stats is None:
            raise RuntimeError("GlobalCMVN has no statistics yet: call fit or load_state_dict")
        return {name: value.clone() for name, value in self._stats.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Set the statistics from a `state_dict`.

        Raises:
            ValueError: if ``state`` lacks a key or has extra ones, ``count`` is not a
                positive integer scalar, ``sum`` and ``sum_squares`` are not float ``(D,)``
                tensors of one size, or (with ``variance``) a dimension is constant.
        """
        keys = {"count", "sum", "sum_squares"}
        if not isinstance(state, dict) or set(state) != keys:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state must be a dict with keys {sorted(keys)}, got {got}")
        count, total, total_squares = state["count"], state["sum"], state["sum_squares"]
        if not isinstance(count, Tensor) or count.shape != () or count.is_floating_point():
            raise ValueError(f"state['count'] must be an integer scalar tensor, got {count!r}")
        if int(count) < 1:
            raise ValueError(f"state['count'] must be positive, got {int(count)}")
        for name, value in (("sum", total), ("sum_squares", total_squares)):
            if not isinstance(value, Tensor) or value.dim() != 1 or not value.is_floating_point():
                raise ValueError(f"state[{name!r}] must be a 1-D float tensor (D,)")
        if total.shape != total_squares.shape:
            raise ValueError(
                f"state['sum'] and state['sum_squares'] must have one size, got "
                f"{tuple(total.shape)} and {tuple(total_squares.shape)}"
            )
        stats = {
            "count": count.detach().to(device="cpu", dtype=torch.int64),
            "sum": total.detach().to(device="cpu", dtype=torch.float64),
            "sum_squares": total_squares.detach().to(device="cpu", dtype=torch.float64),
        }
        self._mean_scale = _normaliser(
            stats["count"].double(), stats["sum"], stats["sum_squares"], self.variance
        )
        self._stats = stats


def pad_features(features: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad utterances with zeros into one batch.

    Args:
        features: ``B >= 1`` tensors ``(T_i, D)`` of one dtype and device.

    Returns:
        ``(padded, lengths)``: ``(B, max T_i, D)`` features, zero beyond each ``T_i``, and the
        ``(B,)`` int64 lengths ``T_i`` on the same device.

    Raises:
        ValueError: naming the element that is not a 2-D float tensor, or whose ``D``, dtype
            or device differs from the first one's, or when ``features`` is empty.
    """
    if not features:
        raise ValueError("features must be a non-empty list of (T_i, D) tensors, got none")
    first = features[0]
    for i, x in enumerate(features):
        if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"features[{i}] must be a 2-D float tensor (T, D), got {got}")
        if (x.shape[1], x.dtype, x.device) != (first.shape[1], first.dtype, first.device):
            raise ValueError(
                f"features[{i}] is (T, {x.shape[1]}) {x.dtype} on {x.device}; features[0] is "
                f"(T, {first.shape[1]}) {first.dtype} on {first.device}"
            )
    lengths = torch.tensor([x.shape[0] for x in features], dtype=torch.int64, device=first.device)
    return pad_sequence(features, batch_first=True), lengths
