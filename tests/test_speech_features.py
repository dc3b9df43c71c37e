"""Kaldi-compatible features against a float64 per-frame numpy reference, properties, and
torchaudio.compliance.kaldi where torchaudio loads.

The reference below is written from Kaldi's documented algorithm (feature-window.cc,
mel-computations.cc, feature-mfcc.cc, feature-functions.cc), one frame and one sample at a
time, and shares no code with the library.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hybrid.speech import (
    GlobalCMVN,
    cmvn,
    deltas,
    fbank,
    mfcc,
    pad_features,
    speaker_cmvn,
    splice,
)

FLT_EPSILON = float(np.finfo(np.float32).eps)

# Kaldi's options and defaults, except dither (Kaldi: 1.0; 0.0 in the library).
KALDI_FBANK = {
    "frame_length": 25.0,
    "frame_shift": 10.0,
    "snip_edges": True,
    "dither": 0.0,
    "remove_dc_offset": True,
    "preemphasis_coefficient": 0.97,
    "window_type": "povey",
    "round_to_power_of_two": True,
    "num_mel_bins": 23,
    "low_freq": 20.0,
    "high_freq": 0.0,
    "use_energy": False,
    "raw_energy": True,
    "energy_floor": 0.0,
    "use_log_fbank": True,
    "use_power": True,
}
KALDI_MFCC = {"num_ceps": 13, "cepstral_lifter": 22.0, "use_energy": True}


# --- the reference -------------------------------------------------------------------------


def reference_window(window_type: str, size: int) -> np.ndarray:
    a = 2 * math.pi / (size - 1)
    out = np.empty(size)
    for i in range(size):
        hann = 0.5 - 0.5 * math.cos(a * i)
        out[i] = {
            "hanning": hann,
            "povey": hann**0.85,
            "hamming": 0.54 - 0.46 * math.cos(a * i),
            "rectangular": 1.0,
        }[window_type]
    return out


def mel_scale(freq: float) -> float:
    return 1127.0 * math.log(1.0 + freq / 700.0)


def reference_mel_banks(num_bins, fft_size, sample_rate, low_freq, high_freq) -> np.ndarray:
    """(num_bins, fft_size // 2) weights, as MelBanks::MelBanks computes them."""
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    weights = np.zeros((num_bins, fft_size // 2))
    for m in range(num_bins):
        left, centre, right = (mel_low + (m + j) * delta for j in range(3))
        for k in range(fft_size // 2):
            mel = mel_scale(sample_rate / fft_size * k)
            if left < mel < right:
                if mel <= centre:
                    weights[m, k] = (mel - left) / (centre - left)
                else:
                    weights[m, k] = (right - mel) / (right - centre)
    return weights


def reference_sizes(sample_rate, o) -> tuple[int, int, int]:
    size = int(sample_rate * 0.001 * o["frame_length"])
    shift = int(sample_rate * 0.001 * o["frame_shift"])
    fft_size = size
    if o["round_to_power_of_two"]:
        fft_size = 1
        while fft_size < size:
            fft_size *= 2
    return size, shift, fft_size


def reference_frame(x: np.ndarray, t: int, size: int, shift: int, snip_edges: bool):
    """Frame t as ExtractWindow copies it, mirroring samples beyond either end."""
    n = len(x)
    start = t * shift if snip_edges else t * shift + shift // 2 - size // 2
    frame = np.empty(size)
    for j in range(size):
        s = start + j
        while s < 0 or s >= n:
            s = -s - 1 if s < 0 else 2 * n - 1 - s
        frame[j] = x[s]
    return frame


def reference_fbank(x: np.ndarray, sample_rate, noise=None, **options) -> np.ndarray:
    o = {**KALDI_FBANK, **options}
    size, shift, fft_size = reference_sizes(sample_rate, o)
    n = len(x)
    count = 1 + (n - size) // shift if o["snip_edges"] else (n + shift // 2) // shift
    window = reference_window(o["window_type"], size)
    banks = reference_mel_banks(
        o["num_mel_bins"], fft_size, sample_rate, o["low_freq"], o["high_freq"]
    )
    c = o["preemphasis_coefficient"]
    rows = []
    for t in range(count):
        frame = reference_frame(x, t, size, shift, o["snip_edges"])
        if noise is not None:
            frame = frame + o["dither"] * noise[t]
        if o["remove_dc_offset"]:
            frame = frame - frame.mean()
        if o["raw_energy"]:
            energy = math.log(max(float(np.dot(frame, frame)), FLT_EPSILON))
        for i in range(size - 1, 0, -1):
            frame[i] -= c * frame[i - 1]
        frame[0] -= c * frame[0]
        frame = frame * window
        if not o["raw_energy"]:
            energy = math.log(max(float(np.dot(frame, frame)), FLT_EPSILON))
        if o["energy_floor"] > 0:
            energy = max(energy, math.log(o["energy_floor"]))
        padded = np.zeros(fft_size)
        padded[:size] = frame
        spectrum = np.abs(np.fft.rfft(padded)) ** 2
        if not o["use_power"]:
            spectrum = np.sqrt(spectrum)
        energies = banks @ spectrum[: fft_size // 2]
        if o["use_log_fbank"]:
            energies = np.log(np.maximum(energies, FLT_EPSILON))
        rows.append(np.concatenate([[energy], energies]) if o["use_energy"] else energies)
    return np.array(rows)


def reference_mfcc(x: np.ndarray, sample_rate, **options) -> np.ndarray:
    o = {**KALDI_FBANK, **KALDI_MFCC, **options}
    num_ceps, lifter, use_energy = o.pop("num_ceps"), o.pop("cepstral_lifter"), o["use_energy"]
    o.update(use_log_fbank=True, use_power=True)
    bins = o["num_mel_bins"]
    rows = []
    for row in reference_fbank(x, sample_rate, **o):
        log_mel = row[1:] if use_energy else row
        ceps = np.zeros(num_ceps)
        for k in range(num_ceps):
            for j in range(bins):
                scale = math.sqrt(1.0 / bins) if k == 0 else math.sqrt(2.0 / bins)
                ceps[k] += scale * math.cos(math.pi / bins * (j + 0.5) * k) * log_mel[j]
            if lifter != 0:
                ceps[k] *= 1.0 + 0.5 * lifter * math.sin(math.pi * k / lifter)
        if use_energy:
            ceps[0] = row[0]
        rows.append(ceps)
    return np.array(rows)


# --- signals and option sets ----------------------------------------------------------------


def random_signal(sample_rate: int, seconds: float = 0.3) -> np.ndarray:
    return 0.1 * np.random.default_rng(7).standard_normal(int(sample_rate * seconds))


def tone_signal(sample_rate: int, seconds: float = 0.3) -> np.ndarray:
    """A 440 Hz tone with a DC offset, then exact silence (hits the epsilon floors)."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    x = 0.4 * np.sin(2 * math.pi * 440.0 * t) + 0.05
    x[len(x) // 2 :] = 0.0
    return x


SIGNALS = {"random": random_signal, "tone": tone_signal}

FBANK_CASES = {
    "kaldi-defaults-16k": (16000, {}),
    "8k-hamming-energy-floor": (
        8000,
        {
            "window_type": "hamming",
            "round_to_power_of_two": False,
            "use_energy": True,
            "raw_energy": False,
            "energy_floor": 0.5,
        },
    ),
    "hanning-linear-magnitude": (
        16000,
        {
            "window_type": "hanning",
            "remove_dc_offset": False,
            "preemphasis_coefficient": 0.0,
            "use_log_fbank": False,
            "use_power": False,
            "num_mel_bins": 15,
            "low_freq": 100.0,
            "high_freq": -400.0,
        },
    ),
    "rectangular-no-snip": (
        16000,
        {
            "window_type": "rectangular",
            "frame_length": 20.0,
            "frame_shift": 12.5,
            "snip_edges": False,
            "use_energy": True,
            "preemphasis_coefficient": 1.0,
            "num_mel_bins": 40,
            "high_freq": 7000.0,
        },
    ),
    "povey-no-snip-8k": (8000, {"snip_edges": False, "use_energy": True}),
}

MFCC_CASES = {
    "kaldi-defaults-16k": (16000, {}),
    "8k-no-energy-no-lifter-all-ceps": (
        8000,
        {"use_energy": False, "cepstral_lifter": 0.0, "num_ceps": 23},
    ),
    "40-bins-20-ceps-no-snip": (
        16000,
        {
            "num_mel_bins": 40,
            "num_ceps": 20,
            "cepstral_lifter": 30.0,
            "snip_edges": False,
            "raw_energy": False,
            "energy_floor": 0.1,
        },
    ),
    "hamming-8k-high-freq": (8000, {"window_type": "hamming", "high_freq": 3800.0}),
}

# Absolute tolerance on log features, and on linear ones relative to their largest value:
# float64 agrees with the reference to rounding; float32 loses most on the log of the faint
# high bins of a pure tone (observed up to 2e-3).
TOLERANCE = {torch.float64: (1e-9, 1e-12), torch.float32: (5e-3, 1e-5)}


def assert_close(actual: torch.Tensor, expected: np.ndarray, dtype: torch.dtype, log: bool):
    log_tol, linear_tol = TOLERANCE[dtype]
    atol = log_tol if log else linear_tol * float(np.abs(expected).max())
    assert actual.dtype == dtype and tuple(actual.shape) == expected.shape
    np.testing.assert_allclose(actual.double().numpy(), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("case", FBANK_CASES)
def test_fbank_matches_reference(case, signal, dtype):
    sample_rate, options = FBANK_CASES[case]
    x = SIGNALS[signal](sample_rate)
    expected = reference_fbank(x, sample_rate, **options)
    actual = fbank(torch.tensor(x, dtype=dtype), sample_rate, **options)
    assert_close(actual, expected, dtype, log=options.get("use_log_fbank", True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("case", MFCC_CASES)
def test_mfcc_matches_reference(case, signal, dtype):
    sample_rate, options = MFCC_CASES[case]
    x = SIGNALS[signal](sample_rate)
    expected = reference_mfcc(x, sample_rate, **options)
    actual = mfcc(torch.tensor(x, dtype=dtype), sample_rate, **options)
    assert_close(actual, expected, dtype, log=True)


def test_frame_counts_follow_kaldi():
    # 16 kHz: 400-sample frames every 160 samples.
    for n, snipped, centred in [(400, 1, 3), (559, 1, 3), (560, 2, 4), (1000, 4, 6), (80, None, 1)]:
        x = torch.zeros(n, dtype=torch.float64)
        assert fbank(x, 16000, snip_edges=False).shape[0] == centred
        if snipped is None:
            with pytest.raises(ValueError, match="shorter than one frame"):
                fbank(x, 16000)
        else:
            assert fbank(x, 16000).shape[0] == snipped


def test_dither_adds_seeded_gaussian_noise_per_frame():
    x = random_signal(8000, 0.1)
    options = {"dither": 0.3, "use_energy": True}
    noise_draw = torch.Generator().manual_seed(5)
    count, size = 1 + (len(x) - 200) // 80, 200
    noise = torch.randn((count, size), generator=noise_draw, dtype=torch.float64).numpy()
    expected = reference_fbank(x, 8000, noise=noise, **options)
    actual = fbank(torch.tensor(x), 8000, generator=torch.Generator().manual_seed(5), **options)
    assert_close(actual, expected, torch.float64, log=True)
    again = fbank(torch.tensor(x), 8000, generator=torch.Generator().manual_seed(5), **options)
    other = fbank(torch.tensor(x), 8000, generator=torch.Generator().manual_seed(6), **options)
    assert torch.equal(actual, again) and not torch.allclose(actual, other)


@pytest.mark.parametrize("bin_index", [2, 8, 15, 21])
@pytest.mark.parametrize("towards_next", [0.0, 0.3])
def test_pure_tone_peaks_in_the_mel_bin_with_the_nearest_centre(bin_index, towards_next):
    sample_rate, num_bins = 16000, 23
    mel_low, mel_high = mel_scale(20.0), mel_scale(8000.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    centres = [700.0 * (math.exp((mel_low + (m + 1) * delta) / 1127.0) - 1) for m in range(23)]
    freq = centres[bin_index] + towards_next * (centres[bin_index + 1] - centres[bin_index])
    nearest = min(range(num_bins), key=lambda m: abs(centres[m] - freq))
    t = torch.arange(sample_rate // 4, dtype=torch.float64) / sample_rate
    tone = 0.5 * torch.sin(2 * math.pi * freq * t)
    energies = fbank(tone, sample_rate, num_mel_bins=num_bins, use_log_fbank=False)
    assert int(energies.mean(dim=0).argmax()) == nearest == bin_index


def test_log_fbank_and_energy_shift_by_log_gain_squared():
    x = torch.tensor(random_signal(16000))
    base = fbank(x, 16000, use_energy=True)
    louder = fbank(3.0 * x, 16000, use_energy=True)
    torch.testing.assert_close(louder, base + math.log(9.0), rtol=0, atol=1e-9)


def test_float32_and_float64_agree():
    x = torch.tensor(random_signal(8000))
    torch.testing.assert_close(mfcc(x.float(), 8000).double(), mfcc(x, 8000), rtol=1e-4, atol=2e-3)


# --- torchaudio.compliance.kaldi ------------------------------------------------------------


@pytest.fixture(scope="module")
def torchaudio_kaldi():
    try:
        from torchaudio.compliance import kaldi
    except (ImportError, OSError, RuntimeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        pytest.skip(f"torchaudio.compliance.kaldi does not load here: {first_line}")
    return kaldi


@pytest.mark.parametrize("case", FBANK_CASES)
def test_fbank_matches_torchaudio(torchaudio_kaldi, case):
    sample_rate, options = FBANK_CASES[case]
    x = torch.tensor(random_signal(sample_rate, 0.5), dtype=torch.float32)
    o = {**KALDI_FBANK, **options}
    expected = torchaudio_kaldi.fbank(x[None], sample_frequency=sample_rate, **o)
    actual = fbank(x, sample_rate, **o)
    scale = 1.0 if o["use_log_fbank"] else float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("case", MFCC_CASES)
def test_mfcc_matches_torchaudio(torchaudio_kaldi, case):
    sample_rate, options = MFCC_CASES[case]
    x = torch.tensor(random_signal(sample_rate, 0.5), dtype=torch.float32)
    o = {**KALDI_FBANK, **KALDI_MFCC, **options}
    for linear_only in ("use_log_fbank", "use_power"):
        del o[linear_only]
    expected = torchaudio_kaldi.mfcc(x[None], sample_frequency=sample_rate, **o)
    torch.testing.assert_close(mfcc(x, sample_rate, **o), expected, rtol=1e-4, atol=1e-3)


# --- deltas and splicing --------------------------------------------------------------------


def reference_deltas(x: np.ndarray, order: int, window: int) -> np.ndarray:
    """DeltaFeatures as Kaldi's feature-functions.cc builds and applies its scales."""
    scales = [np.array([1.0])]
    for _ in range(order):
        prev = scales[-1]
        prev_offset = (len(prev) - 1) // 2
        cur_offset = prev_offset + window
        cur = np.zeros(len(prev) + 2 * window)
        normalizer = 0.0
        for j in range(-window, window + 1):
            normalizer += j * j
            for k in range(-prev_offset, prev_offset + 1):
                cur[j + k + cur_offset] += j * prev[k + prev_offset]
        scales.append(cur / normalizer)
    frames, dim = x.shape
    out = np.zeros((frames, dim * (order + 1)))
    for t in range(frames):
        for i, scale in enumerate(scales):
            max_offset = (len(scale) - 1) // 2
            for j in range(-max_offset, max_offset + 1):
                source = min(max(t + j, 0), frames - 1)
                out[t, i * dim : (i + 1) * dim] += scale[j + max_offset] * x[source]
    return out


@pytest.mark.parametrize(
    "order, window, frames", [(2, 2, 20), (1, 3, 6), (3, 1, 7), (0, 2, 4), (2, 2, 1), (2, 2, 3)]
)
def test_deltas_match_kaldi_loop(order, window, frames):
    x = torch.randn(frames, 4, dtype=torch.float64)
    expected = reference_deltas(x.numpy(), order, window)
    np.testing.assert_allclose(deltas(x, order, window).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_deltas_regression_formula_and_ramp():
    x = torch.randn(12, 3, dtype=torch.float64)
    d = deltas(x, order=1, window=2)[:, 3:]
    for t in range(2, 10):
        textbook = sum(j * (x[t + j] - x[t - j]) for j in (1, 2)) / (2 * (1 + 4))
        torch.testing.assert_close(d[t], textbook)
    ramp = 0.5 * torch.arange(15, dtype=torch.float64)[:, None] + torch.tensor([1.0, -2.0])
    out = deltas(ramp)  # order 2, window 2: exact away from the edges (4 frames each side)
    torch.testing.assert_close(out[4:-4, 2:4], torch.full((7, 2), 0.5, dtype=torch.float64))
    torch.testing.assert_close(out[4:-4, 4:], torch.zeros(7, 2, dtype=torch.float64))


@pytest.mark.parametrize("context, frames", [(1, 5), (3, 5), (2, 1), (4, 9)])
def test_splice_matches_loop(context, frames):
    x = torch.randn(frames, 3)
    expected = np.stack(
        [
            np.concatenate(
                [x[min(max(t + j, 0), frames - 1)].numpy() for j in range(-context, context + 1)]
            )
            for t in range(frames)
        ]
    )
    np.testing.assert_array_equal(splice(x, context).numpy(), expected)


def test_splice_context_zero_returns_input():
    x = torch.randn(4, 3)
    assert splice(x, 0) is x


# --- normalisation and padding -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("variance", [False, True])
def test_cmvn_matches_numpy(variance, dtype):
    x = (3.0 + 2.0 * torch.randn(50, 6, dtype=torch.float64)).to(dtype)
    a = x.double().numpy()
    expected = a - a.mean(axis=0)
    if variance:
        expected = expected / a.std(axis=0)
    out = cmvn(x, variance=variance)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variance", [False, True])
def test_global_cmvn_matches_concatenation_and_round_trips(tmp_path, variance):
    utterances = [5.0 + 0.5 * i + torch.randn(t, 4) for i, t in enumerate((7, 1, 30))]
    concatenated = torch.cat(utterances).double().numpy()
    mean, std = concatenated.mean(axis=0), concatenated.std(axis=0)
    normalise = GlobalCMVN(variance=variance).fit(u for u in utterances)  # any iterable
    probe = torch.randn(9, 4)
    expected = (probe.double().numpy() - mean) / (std if variance else 1.0)
    np.testing.assert_allclose(normalise(probe).numpy(), expected, rtol=1e-5, atol=1e-5)

    torch.save(normalise.state_dict(), tmp_path / "cmvn.pt")
    loaded = GlobalCMVN(variance=variance)
    loaded.load_state_dict(torch.load(tmp_path / "cmvn.pt", weights_only=True))
    assert torch.equal(loaded(probe), normalise(probe))
    assert loaded.state_dict()["count"] == 38


@pytest.mark.parametrize("variance", [False, True])
def test_speaker_cmvn_normalises_each_speaker_with_its_pooled_statistics(variance):
    """Oracle: numpy statistics of each speaker's frames joined; speakers interleaved."""
    speakers = ["b", "a", "b", "a", "b"]
    utterances = [
        (3.0 if s == "a" else -2.0) + (0.5 if s == "a" else 4.0) * torch.randn(t, 3)
        for s, t in zip(speakers, (6, 1, 9, 12, 4), strict=True)
    ]
    out = speaker_cmvn(utterances, speakers, variance=variance)
    for speaker in "ab":
        index = [i for i, s in enumerate(speakers) if s == speaker]
        frames = torch.cat([utterances[i] for i in index]).double().numpy()
        mean, std = frames.mean(axis=0), frames.std(axis=0)
        for i in index:
            expected = (utterances[i].double().numpy() - mean) / (std if variance else 1.0)
            np.testing.assert_allclose(out[i].numpy(), expected, rtol=1e-5, atol=1e-5)
            assert out[i].dtype == torch.float32
    with pytest.raises(ValueError, match="features and speakers differ in length: 5 vs 4"):
        speaker_cmvn(utterances, speakers[:4])
    with pytest.raises(ValueError, match="speaker 'x': .*constant"):
        speaker_cmvn([torch.ones(3, 2)], ["x"], variance=True)


def test_global_cmvn_refuses_use_before_fit_and_bad_state():
    with pytest.raises(RuntimeError, match="fit"):
        GlobalCMVN()(torch.randn(3, 2))
    with pytest.raises(RuntimeError, match="fit"):
        GlobalCMVN().state_dict()
    with pytest.raises(ValueError, match="keys"):
        GlobalCMVN().load_state_dict({"count": torch.tensor(3)})
    fitted = GlobalCMVN().fit([torch.randn(3, 2)])
    with pytest.raises(ValueError, match="2 dimensions"):
        fitted(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"utterances\[1\] has 3 dimensions"):
        GlobalCMVN().fit([torch.randn(3, 2), torch.randn(3, 3)])
    with pytest.raises(ValueError, match="at least one"):
        GlobalCMVN().fit([])
    with pytest.raises(ValueError, match=r"dimensions \[1\] are constant"):
        GlobalCMVN(variance=True).fit([torch.tensor([[1.0, 2.0], [3.0, 2.0]])])


def test_pad_features():
    utterances = [torch.randn(t, 3) for t in (4, 1, 6)]
    padded, lengths = pad_features(utterances)
    assert padded.shape == (3, 6, 3) and lengths.dtype == torch.int64
    assert lengths.tolist() == [4, 1, 6]
    for i, u in enumerate(utterances):
        assert torch.equal(padded[i, : len(u)], u)
        assert not padded[i, len(u) :].any()


# --- bad input ------------------------------------------------------------------------------

WAVE = torch.zeros(4000)

BAD_INPUTS = {
    "2-D waveform": (lambda: fbank(torch.zeros(2, 4000), 16000), r"waveform .*\(2, 4000\)"),
    "integer waveform": (lambda: fbank(torch.zeros(4000, dtype=torch.int16), 16000), "waveform"),
    "NaN waveform": (lambda: mfcc(torch.full((4000,), math.nan), 16000), "waveform .*NaN"),
    "short waveform": (lambda: fbank(torch.zeros(399), 16000), "399 samples .* shorter"),
    "sample_rate": (lambda: fbank(WAVE, 0), "sample_rate"),
    "frame_length": (lambda: fbank(WAVE, 16000, frame_length=0.05), "frame_length"),
    "frame_shift": (lambda: fbank(WAVE, 16000, frame_shift=0.0), "frame_shift"),
    "odd FFT": (
        lambda: fbank(WAVE, 8000, frame_length=25.125, round_to_power_of_two=False),
        "round_to_power_of_two",
    ),
    "window_type": (lambda: fbank(WAVE, 16000, window_type="blackman"), "window_type"),
    "preemphasis": (
        lambda: fbank(WAVE, 16000, preemphasis_coefficient=1.5),
        "preemphasis_coefficient",
    ),
    "dither": (lambda: fbank(WAVE, 16000, dither=-1.0), "dither"),
    "energy_floor": (lambda: fbank(WAVE, 16000, energy_floor=-1.0), "energy_floor"),
    "few bins": (lambda: fbank(WAVE, 16000, num_mel_bins=2), "num_mel_bins"),
    "empty bins": (lambda: fbank(WAVE, 8000, num_mel_bins=120), "num_mel_bins=120"),
    "low_freq": (lambda: fbank(WAVE, 16000, low_freq=8000.0), "low_freq"),
    "high_freq": (lambda: fbank(WAVE, 16000, low_freq=500.0, high_freq=400.0), "high_freq"),
    "high_freq offset": (lambda: fbank(WAVE, 16000, high_freq=-9000.0), "high_freq"),
    "num_ceps": (lambda: mfcc(WAVE, 16000, num_ceps=24), r"num_ceps .*\(23\)"),
    "cepstral_lifter": (lambda: mfcc(WAVE, 16000, cepstral_lifter=-1.0), "cepstral_lifter"),
    "deltas features": (lambda: deltas(torch.zeros(5)), "features"),
    "deltas empty": (lambda: deltas(torch.zeros(0, 3)), "T >= 1"),
    "deltas order": (lambda: deltas(torch.zeros(5, 2), order=-1), "order"),
    "deltas window": (lambda: deltas(torch.zeros(5, 2), window=0), "window"),
    "splice context": (lambda: splice(torch.zeros(5, 2), -1), "context"),
    "cmvn features": (lambda: cmvn(torch.zeros(5, dtype=torch.long)), "features"),
    "cmvn constant": (lambda: cmvn(torch.ones(5, 2), variance=True), r"\[0, 1\] are constant"),
    "pad empty": (lambda: pad_features([]), "features"),
    "pad dims": (lambda: pad_features([torch.zeros(2, 3), torch.zeros(2, 4)]), r"features\[1\]"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_raises_value_error_naming_it(name):
    call, message = BAD_INPUTS[name]
    with pytest.raises(ValueError, match=message):
        call()


# --- devices --------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x = torch.tensor(random_signal(16000))
    for dtype in (torch.float64, torch.float32):
        cpu = mfcc(x.to(dtype), 16000, snip_edges=False)
        gpu = mfcc(x.to(dtype).cuda(), 16000, snip_edges=False)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
        for out_gpu, out_cpu in [
            (deltas(gpu), deltas(cpu)),
            (splice(gpu, 2), splice(cpu, 2)),
            (cmvn(gpu, variance=True), cmvn(cpu, variance=True)),
            (GlobalCMVN(True).fit([cpu])(gpu), GlobalCMVN(True).fit([cpu])(cpu)),
            (pad_features([gpu, gpu[:3]])[0], pad_features([cpu, cpu[:3]])[0]),
        ]:
            assert out_gpu.device.type == "cuda"
            torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-4, atol=1e-4)
    noise = torch.Generator(device="cuda").manual_seed(0)
    assert torch.isfinite(fbank(x.cuda(), 16000, dither=1.0, generator=noise)).all()
