"""Reliability of speech input and the HMM layer (issue 21): audio at another sample rate than a
system's, damaged WAV files, and bad input or parameters of the HMM layer, each a named error or
a documented conversion, never a traceback or a silent wrong answer."""

from __future__ import annotations

import math
import os
import random
import struct
import subprocess
import sys
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from hybrid.nn import HMM, CategoricalEmissions, GaussianEmissions, GMMEmissions
from hybrid.speech.acoustic import AcousticConfig, build
from hybrid.speech.audio import read_wav, resample, write_wav
from hybrid.speech.corpus import FeatureConfig, extract, synthetic_recordings, synthetic_split
from hybrid.speech.fsdd import DIGITS
from hybrid.speech.gmm import flat_start
from hybrid.speech.recognizer import Recognizer, system_dict
from hybrid.speech.topology import Topology

NATIVE = 8000

# --- a small system trained at 8 kHz -------------------------------------------------------


def _takes(sample_rate: int) -> list:
    """The synthetic corpus's first test take of every digit, synthesised at ``sample_rate``:
    the same draws (durations, formants, phases) whatever the rate, so the same words."""
    recordings = synthetic_recordings(speakers=1, takes=7, seed=1, sample_rate=sample_rate)
    return [u for u in synthetic_split(recordings)[1] if u.id.endswith("_0")]


@pytest.fixture(scope="module")
def saved_system() -> dict:
    """A GMM-HMM digit recogniser trained on the synthetic corpus at 8 kHz, as saved data
    (with its feature settings, without a recorded rate: as systems saved before it was)."""
    config = FeatureConfig()
    train, _ = synthetic_split(synthetic_recordings(speakers=1, takes=7, seed=1))
    topology = Topology(DIGITS, word_states=3, silence_states=1)
    emissions, loops = flat_start(
        topology, extract(train, config), [u.words for u in train], mixtures=1, iterations=3
    )
    scales = {"acoustic_scale": 1.0, "prior_scale": 1.0, "word_penalty": 0.0}
    model = {"emissions": emissions.state_dict(), "self_loop": loops}
    system = system_dict("gmm", topology, "isolated", scales, model)
    system.pop("sample_rate", None)
    return {**system, "features": asdict(config)}


def _recognize(recognizer: Recognizer, utterances) -> tuple[list, list[str]]:
    """The words of ``utterances`` (one speaker's) and the warnings said meanwhile."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        words = recognizer.recognize([(u.waveform, u.sample_rate) for u in utterances])
    return words, [str(w.message) for w in said]


@pytest.mark.parametrize("rate", [16000, 44100])
def test_audio_at_another_rate_is_resampled_to_the_systems_and_says_so(saved_system, rate):
    """The same takes at 8 kHz and at ``rate`` give the same words, said once: features
    computed at the input's rate (other frames, other mel bins) fall to chance."""
    recognizer = Recognizer({**saved_system, "sample_rate": NATIVE})
    native, quiet = _recognize(recognizer, _takes(NATIVE))
    truth = [(DIGITS[u.words[0]],) for u in _takes(NATIVE)]
    assert quiet == [] and sum(w == t for w, t in zip(native, truth, strict=True)) >= 9
    words, said = _recognize(recognizer, _takes(rate))
    assert words == native
    assert said == [f"resampled audio at {rate} Hz to 8000 Hz, the rate this system was trained at"]


def test_systems_saved_without_a_rate_read_as_8_khz(saved_system):
    recognizer = Recognizer(saved_system)
    assert recognizer.sample_rate == NATIVE
    words, said = _recognize(recognizer, _takes(16000))
    assert words == _recognize(recognizer, _takes(NATIVE))[0] and len(said) == 1


def test_a_saved_system_records_the_rate(saved_system, tmp_path):
    system = {k: v for k, v in saved_system.items() if k != "features"}
    recordings = {"features": asdict(FeatureConfig()), "sample_rate": 16000}
    Recognizer({**system, **recordings}).save(tmp_path / "s.pt")
    recognizer = Recognizer.load(tmp_path / "s.pt")
    assert recognizer.sample_rate == 16000
    _, said = _recognize(recognizer, _takes(NATIVE)[:1])  # upsampled: the band above 4 kHz is empty
    assert said == [
        "resampled audio at 8000 Hz to 16000 Hz, the rate this system was trained at; "
        "the audio has nothing above 4000 Hz: expect more errors"
    ]
    with pytest.raises(ValueError, match="sample_rate: expected a positive integer"):
        Recognizer({**system, **recordings, "sample_rate": 0}).save(tmp_path / "t.pt")
    assert not (tmp_path / "t.pt").exists()


def test_a_recognizer_saves_itself_and_loads_back_in_evaluation_mode(tmp_path):
    config = AcousticConfig(kind="classifier", input_dim=4, num_outputs=2, hidden=4, layers=1)
    torch.manual_seed(0)
    model = {"config": asdict(config), "weights": build(config).state_dict()}
    scales = {"acoustic_scale": 1.0, "prior_scale": 1.0, "word_penalty": 0.0}
    system = system_dict("rnn", Topology(("no", "yes")), "isolated", scales, model)
    recordings = {"features": asdict(FeatureConfig()), "sample_rate": NATIVE}
    recognizer = Recognizer({**system, **recordings})
    path = tmp_path / "system.pt"
    recognizer.save(path)
    saved = torch.load(path, weights_only=True)
    assert list(saved) == [*system, "file_kind"] and saved["file_kind"] == "speech system"
    assert {k: saved[k] for k in recordings} == recordings
    loaded = Recognizer.load(path, device="cpu")
    assert loaded.kind == "rnn" and loaded.topology == recognizer.topology
    assert (loaded.features, loaded.sample_rate) == (FeatureConfig(), NATIVE)
    assert not any(m.training for m in loaded.network.modules())
    assert all(p.device.type == "cpu" for p in loaded.network.parameters())
    weights, loaded_weights = recognizer.network.state_dict(), loaded.network.state_dict()
    assert weights.keys() == loaded_weights.keys()
    assert all(torch.equal(weights[k], loaded_weights[k]) for k in weights)
    # a system without the feature settings and rate it was trained with cannot be saved
    with pytest.raises(ValueError, match="no feature settings and rate"):
        Recognizer(system).save(tmp_path / "bare.pt")
    assert not (tmp_path / "bare.pt").exists()


@pytest.mark.parametrize(
    ("waveform", "rate", "match"),
    [
        (torch.zeros(10), NATIVE, r"waveforms\[1\] \(8000 Hz\): waveform of 10 samples"),
        (None, 0, r"waveforms\[1\] \(0 Hz\): sample_rate: expected a positive integer"),
        (None, 8000.5, r"waveforms\[1\] \(8000.5 Hz\): sample_rate: expected a positive"),
        (torch.zeros(2, 400), NATIVE, r"waveforms\[1\] \(8000 Hz\): waveform must be a 1-D"),
    ],
)
def test_recognize_names_the_bad_waveform(saved_system, waveform, rate, match):
    good = _takes(NATIVE)[0]
    waveform = good.waveform if waveform is None else waveform
    with pytest.raises(ValueError, match=match):
        Recognizer(saved_system).recognize([(good.waveform, NATIVE), (waveform, rate)])


def test_resample_keeps_the_tones_below_the_new_nyquist_and_removes_those_above():
    """Oracle: the analytic tones at the new rate (a 44.1 kHz second -> 8 kHz spans several
    blocks of output); a 6 kHz tone lies above the new 4 kHz Nyquist frequency."""

    def tones(frequencies, rate, count):
        t = torch.arange(count, dtype=torch.float64) / rate
        return sum(torch.sin(2 * math.pi * f * t + k) for k, f in enumerate(frequencies))

    kept = [300.0, 1100.0, 2900.0]
    y = resample(tones(kept, 44100, 44100), 44100, 8000)
    assert y.shape == (1 + 44099 * 8000 // 44100,) and y.dtype == torch.float64
    inner = slice(100, -100)
    assert (y - tones(kept, 8000, len(y)))[inner].abs().max() < 0.02 * len(kept)
    removed = resample(tones([6000.0], 44100, 44100).float(), 44100, 8000)
    assert removed.dtype == torch.float32 and removed[inner].abs().max() < 0.05
    with pytest.raises(ValueError, match="new_rate must be a positive number of Hz"):
        resample(y, 8000, 0)


# --- damaged WAV files ---------------------------------------------------------------------


def _wav(channels: int = 1, rate: int = NATIVE, bits: int = 16, data: bytes = b"\0\0" * 8):
    """A PCM WAV file's bytes, header fields as given."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_wav(rate=0), "SampleRate field of its header is 0; expected a positive number"),
        (_wav(channels=0), "NumChannels field of its header is 0; expected 1"),
        (_wav(bits=0), "BitsPerSample field of its header is 0"),
        (b"", "ends early"),
        (_wav()[:30], "ends early"),
        (_wav()[:12] + b"fmt " + struct.pack("<I", 4000) + _wav()[20:], "ends early"),
    ],
    ids=["rate-0", "channels-0", "bits-0", "empty", "header-cut", "chunk-past-the-end"],
)
def test_read_wav_names_the_file_and_the_header_field(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"bad\.wav is not a readable PCM WAV file: .*{match}"):
        read_wav(path)


def test_read_wav_of_a_folder_names_it(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder; expected a \.wav file"):
        read_wav(tmp_path)


def test_read_wav_of_any_cut_or_corrupted_header_is_a_named_error_or_a_sound(tmp_path):
    """Every prefix of a WAV file, and 200 random corruptions of its header bytes: a
    ``ValueError`` naming the file, or a waveform with a positive rate."""
    source = tmp_path / "source.wav"
    write_wav(source, torch.linspace(-0.5, 0.5, 50), NATIVE)
    content = source.read_bytes()
    rng = random.Random(0)
    damaged = [content[:n] for n in range(len(content))]
    for _ in range(200):
        header = bytearray(content)
        for _ in range(rng.randint(1, 3)):
            header[rng.randrange(44)] = rng.randrange(256)
        damaged.append(bytes(header))
    path = tmp_path / "damaged.wav"
    for content in damaged:
        path.write_bytes(content)
        try:
            waveform, rate = read_wav(path)
        except ValueError as error:
            assert str(error).startswith(str(path)), error
        else:
            assert waveform.dim() == 1 and rate > 0


# --- the HMM layer -------------------------------------------------------------------------


def _gaussian_hmm(dtype=torch.float64, seed: int = 0) -> HMM:
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(3, 2, generator=generator, dtype=torch.float64) * 2
    return HMM(GaussianEmissions(means.to(dtype), torch.ones(3, 2, dtype=dtype)))


def _observations(seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2


@pytest.mark.parametrize("call", ["forward", "posteriors", "viterbi", "fit"])
@pytest.mark.parametrize("shape", [(0, 5, 2), (2, 0, 2)], ids=["no-sequence", "no-step"])
def test_hmm_refuses_an_empty_batch_by_name(call, shape):
    with pytest.raises(
        ValueError, match=r"observations must be a tensor \(B, T, \.\.\.\) of B >= 1"
    ):
        getattr(_gaussian_hmm(), call)(torch.zeros(shape, dtype=torch.float64))


def test_hmm_scores_observations_of_another_dtype_in_the_wider_one():
    """Oracle: the same parameters and observations, both in float64."""
    x = _observations()
    model = _gaussian_hmm()
    torch.testing.assert_close(model(x.float()), model(x.float().double()), rtol=0, atol=0)
    narrow = _gaussian_hmm(torch.float32)
    emissions = narrow.emissions
    widened = HMM(GaussianEmissions(emissions.means.double(), emissions.covars.double()))
    scores = narrow(x)
    assert scores.dtype == torch.float64
    torch.testing.assert_close(scores, widened(x), rtol=0, atol=0)
    history = model.fit(x.float(), iterations=3)
    assert history == _gaussian_hmm().fit(x.float().double(), iterations=3)


def test_hmm_fit_takes_a_mask_as_the_lengths_it_stands_for():
    x = _observations()
    lengths = torch.tensor([6, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    by_mask, by_lengths = _gaussian_hmm(), _gaussian_hmm()
    assert by_mask.fit(x, mask, iterations=3) == by_lengths.fit(x, lengths, iterations=3)
    torch.testing.assert_close(by_mask.emissions.means, by_lengths.emissions.means)
    holes = mask.clone()
    holes[0, 2] = False
    with pytest.raises(ValueError, match="lengths given as a mask must be True on a prefix"):
        _gaussian_hmm().fit(x, holes)
    with pytest.raises(ValueError, match="lengths must be a torch.Tensor, got list"):
        _gaussian_hmm().fit(x, [6, 4])


def test_hmm_names_nan_observations_inside_the_lengths_only():
    x = _observations()
    x[1, 5] = math.nan
    with pytest.raises(ValueError, match=r"observations contain NaN .*batch 1, step 5"):
        _gaussian_hmm()(x)
    padded = x.nan_to_num(0.0)  # what lies past a length does not matter
    lengths = torch.tensor([6, 5])
    torch.testing.assert_close(_gaussian_hmm()(x, lengths), _gaussian_hmm()(padded, lengths))


@pytest.mark.parametrize("variance", [0.0, -1.0, math.nan], ids=["zero", "negative", "nan"])
def test_variances_must_be_positive_and_the_error_names_covars(variance):
    covars = torch.ones(3, 2, dtype=torch.float64)
    covars[1, 0] = variance
    match = r"covars must hold positive finite variances \(covariance='diag'\), got covars\[1, 0\]"
    with pytest.raises(ValueError, match=match):
        GaussianEmissions(torch.zeros(3, 2, dtype=torch.float64), covars)
    mixture = torch.ones(3, 2, 2, dtype=torch.float64)
    mixture[1, 1, 0] = variance
    with pytest.raises(ValueError, match=r"got covars\[1, 1, 0\]"):
        GMMEmissions(torch.full((3, 2), 0.5), torch.zeros(3, 2, 2), mixture)
    model = _gaussian_hmm()  # a variance broken after construction (a gradient step, say)
    with torch.no_grad():
        model.emissions.covars[1, 0] = variance
    with pytest.raises(ValueError, match=match):
        model(_observations())


@pytest.mark.parametrize(
    ("matrix", "problem"),
    [
        ([[1.0, 2.0], [2.0, 1.0]], "is not positive-definite"),
        ([[1.0, 0.5], [-0.5, 1.0]], "is not symmetric"),
    ],
    ids=["indefinite", "asymmetric"],
)
def test_full_covariances_must_be_symmetric_positive_definite(matrix, problem):
    covars = torch.eye(2, dtype=torch.float64).repeat(3, 1, 1)
    covars[2] = torch.tensor(matrix, dtype=torch.float64)
    match = rf"covars must hold symmetric positive-definite matrices .*covars\[2\] {problem}"
    with pytest.raises(ValueError, match=match):
        GaussianEmissions(torch.zeros(3, 2, dtype=torch.float64), covars, "full")
    with pytest.raises(ValueError, match=rf"covars\[2, 0\] {problem}"):
        GMMEmissions(
            torch.ones(3, 1, dtype=torch.float64),
            torch.zeros(3, 1, 2, dtype=torch.float64),
            covars[:, None],
            "full",
        )


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (
            lambda: GMMEmissions(
                torch.full((2, 2), 0.7), torch.zeros(2, 2, 1), torch.ones(2, 2, 1)
            ),
            "weights",
        ),
        (
            lambda: GMMEmissions(
                torch.tensor([[1.5, -0.5]] * 2), torch.zeros(2, 2, 1), torch.ones(2, 2, 1)
            ),
            "weights",
        ),
        (lambda: CategoricalEmissions(torch.tensor([[0.5, 0.6]])), "probabilities"),
    ],
    ids=["weights-sum", "weights-negative", "categorical"],
)
def test_mixture_weights_and_symbol_probabilities_must_be_distributions(build, name):
    with pytest.raises(ValueError, match=rf"{name} must hold probabilities that sum to 1"):
        build()


def test_flat_start_of_a_word_whose_states_get_one_frame_each():
    """A word with one training recording as long as its HMM: each state's segment is one
    frame, whose variance is undefined; the state starts from the variance floor."""
    generator = torch.Generator().manual_seed(2)
    topology = Topology(("short", "long"), word_states=3, silence_states=1)
    features = [torch.randn(t, 4, generator=generator) for t in (3, 20, 25)]
    emissions, _ = flat_start(topology, features, [(0,), (1,), (1,)], mixtures=1, iterations=2)
    assert torch.isfinite(emissions.covars).all() and (emissions.covars > 0).all()


# --- found by an independent tester: meta tensors, sample rates that are not speech, and
# --- resampling memory across a large ratio of rates ---------------------------------------


def _meta_hmm(part: str) -> HMM:
    """The Gaussian HMM with ``part`` (``"all"`` or ``"emissions"``) moved to the meta device."""
    hmm = _gaussian_hmm()
    (hmm if part == "all" else hmm.emissions).to("meta")
    return hmm


def _built_on_meta() -> HMM:
    with torch.device("meta"):
        return _gaussian_hmm()


HMM_META_CALLS = {
    **{
        f"{call}-observations": (
            "observations",
            lambda call=call: getattr(_gaussian_hmm(), call)(_observations().to("meta")),
        )
        for call in ("forward", "posteriors", "viterbi", "fit")
    },
    "forward-lengths": (
        "lengths",
        lambda: _gaussian_hmm()(_observations(), torch.tensor([6, 4], device="meta")),
    ),
    "forward-parameters": ("start_logits", lambda: _meta_hmm("all")(_observations())),
    "fit-parameters": ("start_logits", lambda: _meta_hmm("all").fit(_observations())),
    "viterbi-emission-parameters": (
        "emissions.means",
        lambda: _meta_hmm("emissions").viterbi(_observations()),
    ),
    "sparse-viterbi-parameters": (
        "start_logits",
        lambda: (
            HMM.left_to_right(GaussianEmissions(torch.zeros(12, 2), torch.ones(12, 2)))
            .to("meta")
            .viterbi(_observations())
        ),
    ),
    "built-on-meta": ("covars", _built_on_meta),
    "gaussian-parameters": (
        "means",
        lambda: GaussianEmissions(torch.zeros(3, 2), torch.ones(3, 2)).to("meta")(_observations()),
    ),
    "categorical-observations": (
        "observations",
        lambda: HMM(CategoricalEmissions(torch.full((3, 4), 0.25)))(
            torch.zeros(2, 5, dtype=torch.long, device="meta")
        ),
    ),
}


@pytest.mark.parametrize(("name", "call"), HMM_META_CALLS.values(), ids=HMM_META_CALLS.keys())
def test_hmm_names_a_meta_tensor_with_the_chain_engines_error(name, call):
    from test_reliability_ctc import meta_error

    with pytest.raises(ValueError) as raised:
        call()
    assert str(raised.value) == meta_error(name)


@pytest.mark.parametrize("rate", [1, 999])
def test_audio_below_the_speech_floor_is_refused_not_resampled(saved_system, rate):
    """A header of 1 Hz on a 200 KB file would resample it to 800 M samples at 8 kHz (over
    7.5 GB); one second at ``rate`` is enough to show that it is refused instead."""
    good = _takes(NATIVE)[0]
    second = torch.linspace(-0.5, 0.5, rate + 1)
    refused = (
        rf"^waveforms\[1\] \({rate} Hz\): a sample rate below 1000 Hz is not speech audio; "
        r"expected audio at 1000 Hz or more \(this system's is 8000 Hz\)"
    )
    with pytest.raises(ValueError, match=refused):
        Recognizer(saved_system).recognize([(good.waveform, NATIVE), (second, rate)])
    at_floor = replace(good, waveform=torch.linspace(-0.5, 0.5, 1001), sample_rate=1000)
    _, said = _recognize(Recognizer(saved_system), [at_floor])
    assert said == [
        "resampled audio at 1000 Hz to 8000 Hz, the rate this system was trained at; "
        "the audio has nothing above 500 Hz: expect more errors"
    ]


_RESAMPLE_IN_LIMITED_MEMORY = """
import os, resource, torch
from hybrid.speech.audio import resample
x = torch.randn(192000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
pages = int(open("/proc/self/statm").read().split()[0])
limit = pages * os.sysconf("SC_PAGE_SIZE") + {extra}
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
for rate in (768000, 2**32 - 1):
    assert resample(x, rate, 8000).shape == (1 + 191999 * 8000 // rate,)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="limits the address space through /proc")
def test_resampling_across_a_large_ratio_of_rates_stays_in_bounded_memory():
    """0.25 s at 768 kHz (the highest audio rate) and at the largest rate a WAV header holds
    (2**32 - 1 Hz), down to 8 kHz, in a child whose address space may grow by 256 MiB only:
    interpolated all at once, 3073 and 17 million taps per output sample take gigabytes."""
    root = Path(__file__).resolve().parents[1]
    code = f"import sys; sys.path.insert(0, {str(root)!r})\n" + _RESAMPLE_IN_LIMITED_MEMORY
    code = code.replace("{extra}", str(256 << 20))
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert child.returncode == 0, child.stderr[-2000:]


def _tones(frequencies: list[float], rate: int, count: int) -> torch.Tensor:
    """``count`` float64 samples at ``rate`` of the sum of unit sines at ``frequencies``."""
    t = torch.arange(count, dtype=torch.float64) / rate
    return sum(torch.sin(2 * math.pi * f * t) for f in frequencies)


def test_resampling_across_a_large_ratio_keeps_the_tones_below_the_new_nyquist():
    """Oracle: the analytic tones at 8 kHz, from 768 kHz (3073 taps per output sample, weighed
    a block at a time); a 6 kHz tone lies above the new 4 kHz Nyquist frequency."""
    kept = [300.0, 1700.0, 3500.0]
    y = resample(_tones(kept, 768000, 192000), 768000, 8000)
    inner = slice(100, -100)
    assert (y - _tones(kept, 8000, len(y)))[inner].abs().max() < 0.02 * len(kept)
    assert resample(_tones([6000.0], 768000, 192000), 768000, 8000)[inner].abs().max() < 0.05
