"""Spoken-digit utterances: connected strings taken apart again, the synthetic corpus checked
by its own properties and a nearest-class-mean classifier, frame features against the
feature functions called by hand, and the real FSDD corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from realdata import real_corpus

from hybrid.speech import (
    cmvn,
    deltas,
    fbank,
    mfcc,
    official_split,
    read_fsdd,
    read_wav,
    write_wav,
)
from hybrid.speech.corpus import (
    FeatureConfig,
    Utterance,
    connected_strings,
    extract,
    frame_features,
    isolated_utterances,
    normalise_features,
    synthetic_recordings,
    synthetic_split,
)
from hybrid.speech.fsdd import Recording

RATE = 1000  # sample rate of the hand-made pieces: silences of 0.05-0.2 s are 50-200 samples
SPEAKERS = ("ann", "bob", "cy")


def parse_string(waveform: torch.Tensor, candidates: list[Utterance]):
    """Take a string apart: the candidates found in it, left to right, and the gaps between.

    A candidate is found where the waveform holds its samples exactly; everything else is a
    gap. Returns ``(found, gaps)``: candidate indices, and ``(start, end)`` sample ranges,
    one before each found candidate and one after the last.
    """
    w = waveform.numpy()
    samples = [c.waveform.numpy() for c in candidates]
    starts = sorted({int(p) for s in samples for p in np.flatnonzero(w == s[0])})
    found, gaps, position = [], [], 0
    for start in starts:
        if start < position:
            continue
        for i, s in enumerate(samples):
            if np.array_equal(w[start : start + len(s)], s):
                found.append(i)
                gaps.append((position, start))
                position = start + len(s)
                break
    gaps.append((position, len(w)))
    return found, gaps


def check_string(string: Utterance, candidates, silence, noise, digits_range):
    """Assert ``string`` is candidates of its speaker joined by noise gaps within bounds."""
    found, gaps = parse_string(string.waveform, candidates)
    pieces = [candidates[i] for i in found]
    low, high = digits_range
    assert low <= len(pieces) <= high
    assert all(p.speaker == string.speaker for p in pieces)
    assert string.words == tuple(p.words[0] for p in pieces)
    assert string.sample_rate == pieces[0].sample_rate
    assert len(gaps) == len(pieces) + 1
    rate = string.sample_rate
    for start, end in gaps:
        assert silence[0] * rate - 0.5 <= end - start <= silence[1] * rate + 0.5
    gap_samples = torch.cat([string.waveform[start:end] for start, end in gaps])
    assert float(gap_samples.abs().max()) < 10 * noise  # low-level noise ...
    assert int((gap_samples == 0).sum()) == 0  # ... not exact zeros
    assert sum(p.waveform.numel() for p in pieces) + gap_samples.numel() == string.waveform.numel()
    return pieces, gap_samples


@pytest.fixture(scope="module")
def pieces() -> list[Utterance]:
    """Isolated "utterances" of random loud samples, four per speaker, all lengths distinct."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for s, speaker in enumerate(SPEAKERS):
        for digit in range(4):
            n = 40 + 9 * (4 * s + digit)
            sign = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
            magnitude = 0.2 + 0.8 * torch.rand(n, generator=generator)
            waveform = (sign * magnitude).float()
            out.append(Utterance(f"{digit}_{speaker}", speaker, (digit,), waveform, RATE))
    return out


# --- Utterance ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "waveform", "rate", "match"),
    [
        ((), torch.zeros(5), 8000, "words"),
        ((3, -1), torch.zeros(5), 8000, "words"),
        ((3, 1.0), torch.zeros(5), 8000, "words"),
        ((3,), torch.zeros(5, dtype=torch.float64), 8000, "waveform"),
        ((3,), torch.zeros(2, 5), 8000, "waveform"),
        ((3,), torch.zeros(5), 0, "sample_rate"),
    ],
)
def test_utterance_rejects_bad_fields(words, waveform, rate, match):
    with pytest.raises(ValueError, match=match):
        Utterance("u", "s", words, waveform, rate)


# --- isolated_utterances --------------------------------------------------------------------


def test_isolated_utterances_read_each_file_with_its_digit(tmp_path):
    recordings = []
    for digit, speaker, take in [(3, "ann", 0), (7, "bob", 12)]:
        path = tmp_path / f"{digit}_{speaker}_{take}.wav"
        write_wav(path, torch.linspace(-0.5, 0.5, 100 + digit), 8000)
        recordings.append(Recording(path, digit, speaker, take))
    utterances = isolated_utterances(recordings)
    assert [u.id for u in utterances] == ["3_ann_0", "7_bob_12"]
    assert [u.speaker for u in utterances] == ["ann", "bob"]
    assert [u.words for u in utterances] == [(3,), (7,)]
    assert all(u.sample_rate == 8000 for u in utterances)
    for u, r in zip(utterances, recordings, strict=True):
        assert torch.equal(u.waveform, read_wav(r.path)[0])


def test_isolated_utterances_reject_mixed_sample_rates(tmp_path):
    recordings = []
    for digit, rate in [(1, 8000), (2, 16000)]:
        path = tmp_path / f"{digit}_ann_0.wav"
        write_wav(path, torch.zeros(100), rate)
        recordings.append(Recording(path, digit, "ann", 0))
    with pytest.raises(ValueError, match="one sample rate"):
        isolated_utterances(recordings)


# --- connected_strings ----------------------------------------------------------------------


def test_connected_strings_join_pieces_of_one_speaker_with_noise_gaps(pieces):
    silence, noise = (0.05, 0.2), 1e-3
    strings = connected_strings(pieces, 60, seed=3, min_digits=1, max_digits=4, silence=silence)
    lengths, speakers, gaps = set(), set(), []
    for index, string in enumerate(strings):
        found, gap_samples = check_string(string, pieces, silence, noise, (1, 4))
        assert string.id == f"s{index:05d}_{string.speaker}"
        lengths.add(len(found))
        speakers.add(string.speaker)
        gaps.append(gap_samples)
    assert lengths == {1, 2, 3, 4}
    assert speakers == set(SPEAKERS)
    assert 0.8 * noise < float(torch.cat(gaps).std()) < 1.2 * noise


def test_connected_strings_with_zero_noise_have_silent_gaps(pieces):
    string = connected_strings(pieces, 1, seed=0, silence=(0.1, 0.1), noise=0.0)[0]
    found, gaps = parse_string(string.waveform, pieces)
    assert len(found) >= 2
    assert all(end - start == 100 for start, end in gaps)
    assert all(not string.waveform[start:end].any() for start, end in gaps)


def test_connected_strings_are_deterministic_for_a_seed(pieces):
    a, b, c = (connected_strings(pieces, 8, seed=s) for s in (5, 5, 6))
    assert [u.id for u in a] == [u.id for u in b]
    assert [u.words for u in a] == [u.words for u in b]
    assert all(torch.equal(x.waveform, y.waveform) for x, y in zip(a, b, strict=True))
    assert [(u.id, u.words) for u in a] != [(u.id, u.words) for u in c]


def test_connected_strings_reject_mixed_sample_rates(pieces):
    other = Utterance("x", "ann", (1,), torch.ones(50), 2 * RATE)
    with pytest.raises(ValueError, match="recordings must share one sample rate"):
        connected_strings([*pieces, other], 1, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"count": 0}, "count"),
        ({"min_digits": 0}, "min_digits"),
        ({"min_digits": 3, "max_digits": 2}, "max_digits"),
        ({"silence": (0.3, 0.1)}, "silence"),
        ({"silence": (-0.1, 0.1)}, "silence"),
        ({"silence": 0.1}, "silence"),
        ({"noise": -1e-3}, "noise"),
        ({"noise": math.inf}, "noise"),
        ({"recordings": []}, "recordings"),
    ],
)
def test_connected_strings_reject_bad_arguments(pieces, kwargs, match):
    arguments = {"recordings": pieces, "count": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        connected_strings(**arguments)


# --- synthetic_recordings -------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> list[Utterance]:
    return synthetic_recordings()


def test_synthetic_recordings_count_and_name_every_take():
    utterances = synthetic_recordings(speakers=2, takes=3, seed=1)
    expected = [
        (f"synthetic_{d}_spk{s}_{t}", f"spk{s}", (d,))
        for s in range(2)
        for d in range(10)
        for t in range(3)
    ]
    assert [(u.id, u.speaker, u.words) for u in utterances] == expected
    assert all(u.sample_rate == 8000 and u.waveform.dtype == torch.float32 for u in utterances)
    assert all(float(u.waveform.abs().max()) < 1 for u in utterances)


def test_synthetic_recordings_are_deterministic_and_seeded():
    a, b, c = (synthetic_recordings(speakers=1, takes=2, seed=s) for s in (4, 4, 5))
    assert all(torch.equal(x.waveform, y.waveform) for x, y in zip(a, b, strict=True))
    assert not any(torch.equal(x.waveform, y.waveform) for x, y in zip(a, c, strict=True))


def test_synthetic_takes_of_one_digit_differ(synthetic):
    sevens = [u.waveform for u in synthetic if u.speaker == "spk0" and u.words == (7,)]
    assert len({w.numel() for w in sevens}) > len(sevens) // 2  # durations vary
    assert not any(torch.equal(x, y) for i, x in enumerate(sevens) for y in sevens[i + 1 :])


def spectral_centroid(waveform: torch.Tensor, rate: int) -> float:
    """The power-weighted mean frequency of a waveform in Hz."""
    power = torch.fft.rfft(waveform.double()).abs().square()
    freqs = torch.fft.rfftfreq(waveform.numel(), d=1 / rate, dtype=torch.float64)
    return float((power * freqs).sum() / power.sum())


def test_synthetic_speakers_shift_frequencies_upwards(synthetic):
    centroid = {
        s: np.mean([spectral_centroid(u.waveform, 8000) for u in synthetic if u.speaker == s])
        for s in ("spk0", "spk1", "spk2")
    }
    assert centroid["spk0"] < centroid["spk1"] < centroid["spk2"]
    assert centroid["spk2"] / centroid["spk0"] > 1.05


def test_synthetic_digits_are_learnable_by_nearest_class_mean(synthetic):
    """Time-averaged MFCCs of the training takes, one mean per digit: the nearest mean names
    the digit of most test takes (chance: 10%)."""
    train, test = synthetic_split(synthetic)
    config = FeatureConfig(deltas=False, cmvn="none")

    def averages(utterances):
        x = torch.stack([f.mean(dim=0) for f in extract(utterances, config)])
        return x, torch.tensor([u.words[0] for u in utterances])

    x_train, y_train = averages(train)
    x_test, y_test = averages(test)
    means = torch.stack([x_train[y_train == d].mean(dim=0) for d in range(10)])
    accuracy = float((torch.cdist(x_test, means).argmin(dim=1) == y_test).double().mean())
    assert accuracy > 0.5


def test_synthetic_split_holds_out_takes_0_to_4(synthetic):
    train, test = synthetic_split(synthetic)
    assert (len(train), len(test)) == (3 * 10 * 15, 3 * 10 * 5)
    assert all(int(u.id.rsplit("_", 1)[1]) < 5 for u in test)
    assert all(int(u.id.rsplit("_", 1)[1]) >= 5 for u in train)


def test_synthetic_split_rejects_other_ids(pieces):
    with pytest.raises(ValueError, match="utterances must have ids synthetic_"):
        synthetic_split(pieces)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"speakers": 0}, "speakers"),
        ({"takes": 0}, "takes"),
        ({"sample_rate": 4000}, "sample_rate"),
    ],
)
def test_synthetic_recordings_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_recordings(**kwargs)


# --- frame features -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def utterance(synthetic) -> Utterance:
    return synthetic[37]


def test_frame_features_default_is_mfcc_deltas_and_mean_variance_normalisation(utterance):
    """Alone, an utterance is its speaker: zero mean, unit (population) variance."""
    features = frame_features(utterance, FeatureConfig())
    n = utterance.waveform.numel()
    assert features.shape == (1 + (n - 200) // 80, 39)  # 25 ms frames every 10 ms at 8 kHz
    assert features.dtype == torch.float32
    assert float(features.double().mean(dim=0).abs().max()) < 1e-5
    by_hand = deltas(mfcc(utterance.waveform, 8000), order=2, window=2).double()
    by_hand = (by_hand - by_hand.mean(dim=0)) / by_hand.std(dim=0, correction=0)
    torch.testing.assert_close(features, by_hand.float(), rtol=0, atol=1e-4)
    mean_only = frame_features(utterance, FeatureConfig(cmvn="utterance", cmvn_variance=False))
    raw = deltas(mfcc(utterance.waveform, 8000), order=2, window=2)
    torch.testing.assert_close(mean_only, raw - raw.mean(dim=0), rtol=0, atol=1e-5)


def test_frame_features_without_deltas_or_cmvn_are_the_raw_features(utterance):
    config = FeatureConfig(num_mel_bins=30, num_ceps=20, deltas=False, cmvn="none")
    raw = mfcc(utterance.waveform, 8000, num_ceps=20, num_mel_bins=30)
    assert torch.equal(frame_features(utterance, config), raw)
    config = FeatureConfig(kind="fbank", num_mel_bins=40, deltas=False, cmvn="none")
    assert torch.equal(
        frame_features(utterance, config), fbank(utterance.waveform, 8000, num_mel_bins=40)
    )


@pytest.mark.parametrize(
    ("config", "dim"),
    [
        (FeatureConfig(), 39),
        (FeatureConfig(kind="fbank"), 69),
        (FeatureConfig(kind="fbank", num_mel_bins=40, num_ceps=99), 120),
        (FeatureConfig(num_ceps=10, deltas=False), 10),
        (FeatureConfig(kind="fbank", num_mel_bins=30, deltas=False, cmvn="none"), 30),
    ],
)
def test_feature_config_dim_is_the_feature_width(utterance, config, dim):
    assert config.dim == dim
    assert frame_features(utterance, config).shape[1] == dim


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "plp"}, "kind"),
        ({"num_mel_bins": 2}, "num_mel_bins"),
        ({"num_ceps": 0}, "num_ceps"),
        ({"num_ceps": 24}, "num_ceps"),
        ({"cmvn": True}, "cmvn"),
        ({"cmvn": "global"}, "cmvn"),
    ],
)
def test_feature_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureConfig(**kwargs)


def test_extract_is_frame_features_of_each_utterance_under_utterance_cmvn(synthetic):
    config = FeatureConfig(kind="fbank", cmvn="utterance")
    utterances = synthetic[:3]
    features = extract(utterances, config, progress=True)
    assert len(features) == 3
    for u, f in zip(utterances, features, strict=True):
        assert torch.equal(f, frame_features(u, config))


@pytest.mark.parametrize("variance", [False, True])
def test_extract_normalises_each_speaker_with_the_statistics_of_all_its_utterances(
    synthetic, variance
):
    """Oracle: per-utterance CMVN of each speaker's utterances joined end to end, cut back
    into utterances; the result does not depend on the order or the other speakers."""
    config = FeatureConfig(cmvn="speaker", cmvn_variance=variance)
    raw_config = FeatureConfig(cmvn="none")
    utterances = synthetic[::17]  # all three speakers, several digits each
    assert len({u.speaker for u in utterances}) == 3
    features = extract(utterances, config)
    for speaker in {u.speaker for u in utterances}:
        index = [i for i, u in enumerate(utterances) if u.speaker == speaker]
        raw = [frame_features(utterances[i], raw_config) for i in index]
        joined = cmvn(torch.cat(raw).double(), variance=variance)
        expected = joined.split([len(r) for r in raw])
        for i, e in zip(index, expected, strict=True):
            torch.testing.assert_close(features[i], e.float(), rtol=0, atol=1e-4)
    reordered = extract(utterances[::-1], config)[::-1]
    for f, g in zip(features, reordered, strict=True):
        torch.testing.assert_close(f, g, rtol=0, atol=1e-6)
    alone = extract([u for u in utterances if u.speaker == "spk1"], config)
    torch.testing.assert_close(
        alone,
        [f for f, u in zip(features, utterances, strict=True) if u.speaker == "spk1"],
        rtol=0,
        atol=0,
    )


def test_normalise_features_checks_its_arguments(synthetic):
    raw = extract(synthetic[:2], FeatureConfig(cmvn="none"))
    with pytest.raises(ValueError, match="features and speakers differ in length: 2 vs 1"):
        normalise_features(raw, ["a"], FeatureConfig())
    with pytest.raises(ValueError, match="speaker 'a'.*constant"):
        normalise_features([torch.ones(4, 3), torch.ones(2, 3)], ["a", "a"], FeatureConfig())
    assert normalise_features(raw, ["a", "b"], FeatureConfig(cmvn="none")) == raw


# --- the real FSDD corpus -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fsdd_test() -> list[Utterance]:
    """The official test split of FSDD, read as isolated utterances."""
    _, test = official_split(read_fsdd(real_corpus("fsdd")))
    return isolated_utterances(test)


def test_fsdd_isolated_test_split_has_250_digits_named_by_their_files(fsdd_test):
    assert len(fsdd_test) == 250
    assert len({u.id for u in fsdd_test}) == 250
    for u in fsdd_test:
        digit, speaker, take = u.id.split("_")
        assert u.words == (int(digit),) and u.speaker == speaker and int(take) < 5
        assert u.sample_rate == 8000 and u.waveform.numel() > 0


def test_fsdd_connected_test_strings_use_test_speakers(fsdd_test):
    speakers = {u.speaker for u in fsdd_test}
    strings = connected_strings(fsdd_test, 20, seed=0)
    for string in strings:
        assert string.speaker in speakers and string.id.endswith(f"_{string.speaker}")
        assert 2 <= len(string.words) <= 6
        assert string.sample_rate == 8000


def test_fsdd_string_of_one_speaker_is_made_of_that_speakers_recordings(fsdd_test):
    speaker = sorted({u.speaker for u in fsdd_test})[0]
    subset = [u for u in fsdd_test if u.speaker == speaker]
    for string in connected_strings(subset, 3, seed=1):
        check_string(string, subset, (0.05, 0.4), 1e-3, (2, 6))
