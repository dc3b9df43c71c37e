"""Word sequences beyond isolated digits: the flat start cuts a recording of several words at
its runs of speech, and networks choose their epoch on a development set given to them."""

from __future__ import annotations

import math

import pytest
import torch

from hybrid.speech.acoustic import AcousticConfig, build
from hybrid.speech.corpus import FeatureConfig, Utterance, extract
from hybrid.speech.gmm import _word_segments, flat_start
from hybrid.speech.topology import Topology
from hybrid.speech.train import AcousticTrainConfig, fit_acoustic

RATE = 8000


def burst(seconds: float, freq: float, generator: torch.Generator) -> torch.Tensor:
    t = torch.arange(round(seconds * RATE), dtype=torch.float64) / RATE
    noise = 0.002 * torch.randn(len(t), generator=generator, dtype=torch.float64)
    return (0.4 * torch.sin(2 * math.pi * freq * t) + noise).float()


def quiet(seconds: float, generator: torch.Generator) -> torch.Tensor:
    return (0.002 * torch.randn(round(seconds * RATE), generator=generator)).float()


def recording(spans: list[tuple[float, float]], seed: int = 0):
    """A recording of tones at ``spans`` (start, end seconds; 300, 700, 1100 Hz, ...) in
    low noise, and the frame spans of the tones (10 ms frames)."""
    generator = torch.Generator().manual_seed(seed)
    pieces, now = [], 0.0
    for i, (start, end) in enumerate(spans):
        pieces += [quiet(start - now, generator), burst(end - start, 300 + 400 * i, generator)]
        now = end
    pieces.append(quiet(0.3, generator))
    frames = [(round(100 * start), round(100 * end)) for start, end in spans]
    return torch.cat(pieces), frames


def test_word_segments_find_the_words_between_silences():
    spans = [(0.3, 0.7), (1.1, 1.3), (1.45, 2.0)]
    waveform, truth = recording(spans)
    utterance = Utterance("u", "s", (0, 1, 2), waveform, RATE)
    features = extract([utterance], FeatureConfig(cmvn="utterance"))[0]
    parts, gaps = _word_segments(features, 3)
    assert len(parts) == 3
    position = 0
    for part, (begin, end) in zip(parts, truth, strict=True):
        start = next(t for t in range(position, len(features)) if torch.equal(features[t], part[0]))
        assert abs(start - begin) <= 3 and abs(start + len(part) - end) <= 3, (start, begin, end)
        position = start + len(part)
    assert sum(map(len, parts)) + sum(map(len, gaps)) == len(features)


def test_word_segments_merge_a_word_split_by_a_pause_and_split_words_run_together():
    spans = [(0.3, 0.5), (0.53, 0.7), (1.2, 1.6)]  # the first "word" has a 30 ms pause
    waveform, _ = recording(spans)
    features = extract(
        [Utterance("u", "s", (0, 1), waveform, RATE)], FeatureConfig(cmvn="utterance")
    )[0]
    parts, _ = _word_segments(features, 2)
    assert [len(p) for p in parts] == pytest.approx([40, 40], abs=4)
    parts, _ = _word_segments(features, 4)  # more words than runs: equal parts
    assert len(parts) == 4 and max(map(len, parts)) - min(map(len, parts)) <= 1
    whole, none = _word_segments(features, 1)
    assert torch.equal(whole[0], features) and none == []


def test_flat_start_takes_words_from_recordings_of_several_words():
    utterances = [
        Utterance(f"u{i}", "s", (0, 1), recording([(0.2, 0.6), (0.9, 1.3)], seed=i)[0], RATE)
        for i in range(4)
    ]
    features = extract(utterances, FeatureConfig(cmvn="utterance"))
    topology = Topology(("low", "high"), word_states=3, silence_states=2)
    emissions, loops = flat_start(topology, features, [u.words for u in utterances], 2, 3)
    assert loops.shape == (topology.num_pdfs,)
    scores = emissions(torch.cat(features)[None])[0]  # (T, P)
    word_of = topology.pdf_words()
    best = word_of[scores.argmax(-1)].view(len(utterances), -1)
    assert (best[:, 30:50] == 0).float().mean() > 0.9  # inside the first tone
    assert (best[:, 100:120] == 1).float().mean() > 0.9  # inside the second
    assert (best[:, 70:80] == -1).float().mean() > 0.9  # silence between them
    with pytest.raises(ValueError, match=r"no recording of the words \['high'\]"):
        flat_start(topology, features[:1], [(0,)], 2, 1)


def test_fit_acoustic_chooses_the_epoch_on_the_development_set_given():
    generator = torch.Generator().manual_seed(0)
    features = [torch.randn(12, 4, generator=generator) for _ in range(24)]
    classes = torch.tensor([i % 3 for i in range(24)])
    for f, c in zip(features, classes, strict=True):
        f[:, c] += 1.5
    config = AcousticConfig(kind="classifier", input_dim=4, num_outputs=3, hidden=8, layers=1)
    model = build(config)
    training = AcousticTrainConfig(epochs=4, batch_size=8)
    history = fit_acoustic(
        model, features[:16], classes[:16], training, valid=(features[16:], classes[16:])
    )
    with torch.no_grad():
        x = torch.stack(features[16:])
        predicted = model(x, torch.full((8,), 12)).argmax(-1)
    accuracy = float((predicted == classes[16:]).float().mean())
    assert accuracy == max(history.valid_accuracy)
    assert history.valid_accuracy[history.best_epoch - 1] == accuracy
    frames = torch.cat(features[:16]).double()  # the normaliser saw the training set only
    torch.testing.assert_close(model.mean, frames.mean(0).to(model.mean.dtype))
    with pytest.raises(ValueError, match="valid must hold as many targets as features"):
        fit_acoustic(build(config), features[:16], classes[:16], training, valid=([], classes))
