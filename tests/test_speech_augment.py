"""Speed perturbation: band-limited resampling checked against the analytic signal."""

from __future__ import annotations

import math

import pytest
import torch

from hybrid.speech.augment import SpecAugment, perturb_speed, speed_perturbed
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


# -- SpecAugment ----------------------------------------------------------------------------


def _batch(lengths=(12, 7, 20), dims=9, seed=0):
    """Padded features ``(B, T, D)`` with every value distinct and non-zero padding."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), dims, generator=generator) + 5.0
    return features, torch.tensor(lengths)


def _runs(flags):
    """The ``(start, end)`` runs of true values in a 1-D boolean tensor."""
    runs, start = [], None
    for i, flag in enumerate([*flags.tolist(), False]):
        if flag and start is None:
            start = i
        if not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


@pytest.mark.parametrize("seed", range(5))
def test_spec_augment_masks_are_runs_set_to_the_utterance_mean(seed):
    """Oracle: each utterance's own masks, recovered from where the output differs, checked
    against the definition (runs of frames, bands of dimensions, means of its frames)."""
    augment = SpecAugment(time_masks=1, time_width=4, feature_masks=1, feature_width=3)
    x, lengths = _batch()
    y = augment(x, lengths, torch.Generator().manual_seed(seed))
    assert y.shape == x.shape and y.dtype == x.dtype
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(y[b, n:], x[b, n:])  # padding untouched
        changed = y[b, :n] != x[b, :n]  # (n, D)
        mean = x[b, :n].mean(0)
        assert torch.allclose(y[b, :n][changed], mean.expand(n, -1)[changed])
        rows, columns = changed.all(1), changed.all(0)
        # a changed value lies in a fully masked frame or a fully masked dimension
        assert bool((changed <= (rows[:, None] | columns[None, :])).all())
        assert len(_runs(rows)) <= 1 and len(_runs(columns)) <= 1
        for start, end in _runs(rows):
            assert end - start <= min(4, int(0.2 * n))
        for start, end in _runs(columns):
            assert end - start <= 3


def test_spec_augment_without_masks_is_a_copy_and_is_seeded():
    x, lengths = _batch()
    none = SpecAugment(time_masks=0, feature_masks=0)
    assert torch.equal(none(x, lengths, torch.Generator().manual_seed(0)), x)
    augment = SpecAugment(time_masks=3, time_width=8, feature_masks=3, feature_width=4)
    first = augment(x, lengths, torch.Generator().manual_seed(7))
    assert torch.equal(first, augment(x, lengths, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, augment(x, lengths, torch.Generator().manual_seed(8)))
    assert not torch.equal(first, x)


def test_spec_augment_covers_every_width_and_place_over_many_draws():
    """Property: over many draws every run width in ``0..time_width`` and every start occurs,
    and no run leaves the utterance."""
    augment = SpecAugment(time_masks=1, time_width=3, feature_masks=0, max_time_share=1.0)
    x, lengths = _batch(lengths=(10,), dims=2)
    generator = torch.Generator().manual_seed(0)
    widths, starts = set(), set()
    for _ in range(400):
        runs = _runs((augment(x, lengths, generator) != x)[0].all(1))
        widths.add(runs[0][1] - runs[0][0] if runs else 0)
        starts.update(start for start, _ in runs)
        assert all(end <= 10 for _, end in runs)
    assert widths == {0, 1, 2, 3} and starts == set(range(10))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"time_masks": -1}, "time_masks"),
        ({"time_width": 2.5}, "time_width"),
        ({"feature_masks": True}, "feature_masks"),
        ({"feature_width": -3}, "feature_width"),
        ({"max_time_share": 0.0}, "max_time_share"),
        ({"max_time_share": 1.5}, "max_time_share"),
    ],
)
def test_spec_augment_rejects_bad_settings(options, match):
    with pytest.raises(ValueError, match=match):
        SpecAugment(**options)


def test_fit_acoustic_with_spec_augment_learns_and_resumes_exactly(tmp_path):
    """Training with masks still fits a learnable task, and a run stopped after two epochs
    and resumed ends with the weights of an uninterrupted one (the masks are drawn from the
    training engine's draw generator, whose state is in the checkpoint)."""
    from hybrid.speech.acoustic import AcousticConfig, build
    from hybrid.speech.train import AcousticTrainConfig, fit_acoustic

    generator = torch.Generator().manual_seed(0)
    targets = [torch.randint(0, 3, (n,), generator=generator) for n in (30, 25, 40, 35) * 4]
    features = [torch.nn.functional.one_hot(t, 6).float() * 3 for t in targets]

    def fit(epochs, checkpoint):
        torch.manual_seed(0)
        model = build(AcousticConfig(kind="dnn", input_dim=6, num_outputs=3, hidden=16))
        augment = SpecAugment(time_masks=2, time_width=4, feature_masks=1, feature_width=1)
        config = AcousticTrainConfig(epochs=epochs, batch_size=4, lr=0.02, spec_augment=augment)
        return model, fit_acoustic(model, features, targets, config, checkpoint)

    whole, history = fit(4, tmp_path / "whole.ckpt")
    assert history.valid_accuracy[-1] > 0.9
    fit(2, tmp_path / "parts.ckpt")
    resumed, _ = fit(4, tmp_path / "parts.ckpt")
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_the_masks_of_a_training_batch_come_from_the_generator_of_the_step():
    """`AcousticTask.loss` draws its masks from the generator the training engine gives it
    (one per process, saved in checkpoints), not from torch's global random state."""
    from hybrid.speech.acoustic import AcousticConfig, build
    from hybrid.speech.train import AcousticTask, AcousticTrainConfig

    generator = torch.Generator().manual_seed(1)
    features = [torch.randn(n, 6, generator=generator) for n in (30, 25, 40, 35)]
    targets = [torch.randint(0, 3, (len(f),), generator=generator) for f in features]
    model = build(AcousticConfig(kind="dnn", input_dim=6, num_outputs=3, hidden=16, dropout=0))
    masks = SpecAugment(time_masks=2, time_width=4, feature_masks=1, feature_width=1)
    held_out = (features[:1], targets[:1])

    def loss(spec_augment, seed, global_seed):
        config = AcousticTrainConfig(spec_augment=spec_augment)
        task = AcousticTask(model, features, targets, config, valid=held_out)
        torch.manual_seed(global_seed)
        total, _ = task.loss([0, 1, 2, 3], torch.Generator().manual_seed(seed))
        return float(total.detach())

    masked = loss(masks, 1, global_seed=5)
    assert masked == loss(masks, 1, global_seed=6)  # the same draws, whatever torch's state
    assert masked != loss(masks, 2, global_seed=5)
    assert masked != loss(None, 1, global_seed=5)  # the masks change the batch


def test_a_checkpoint_made_for_other_targets_is_not_resumed(tmp_path):
    """A second pass whose alignment changed (an earlier pass trained on) trains afresh:
    the same weights as a run with no checkpoint, not a resume from the old targets."""
    from hybrid.speech.acoustic import AcousticConfig, build
    from hybrid.speech.train import AcousticTrainConfig, fit_acoustic

    generator = torch.Generator().manual_seed(0)
    targets = [torch.randint(0, 3, (n,), generator=generator) for n in (20, 25, 30, 22) * 3]
    features = [torch.randn(len(t), 4, generator=generator) for t in targets]
    realigned = [(t + 1) % 3 for t in targets]
    config = AcousticTrainConfig(epochs=2, batch_size=4)

    def trained(goal, checkpoint):
        torch.manual_seed(0)
        model = build(AcousticConfig(kind="dnn", input_dim=4, num_outputs=3, hidden=8))
        fit_acoustic(model, features, goal, config, checkpoint)
        return model.state_dict()

    trained(targets, tmp_path / "pass.ckpt")
    afresh = trained(realigned, tmp_path / "pass.ckpt")
    expected = trained(realigned, None)
    for key, value in expected.items():
        assert torch.equal(afresh[key], value), key
