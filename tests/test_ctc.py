"""CTC loss, greedy decoding, forced alignment and CTC graphs against brute force, PyTorch's
loss, torchaudio's aligner and each other."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from hybrid.ctc.align import forced_align, greedy_decode
from hybrid.ctc.loss import ctc_loss
from hybrid.ctc.topology import ctc_alignment_graph, ctc_lexicon_graph, ctc_topology
from hybrid.structured import graph_log_likelihood, graph_viterbi, native

BLANK = 0


def collapse(frames, blank=BLANK) -> tuple:
    out, previous = [], None
    for x in frames:
        if x != previous and x != blank:
            out.append(x)
        previous = x
    return tuple(out)


def frame_paths(log_probs: torch.Tensor):
    """Every frame labelling of ``(T, V)`` log-probs with its log-probability."""
    steps, vocab = log_probs.shape
    for frames in itertools.product(range(vocab), repeat=steps):
        yield frames, float(sum(log_probs[t, x] for t, x in enumerate(frames)))


def _random(batch, steps, vocab, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, vocab, generator=generator, dtype=torch.float64).log_softmax(
        -1
    )


TARGETS = [(1,), (1, 2), (2, 2), (1, 2, 1), ()]


@pytest.mark.parametrize("target", TARGETS)
def test_loss_and_alignment_against_brute_force(target):
    log_probs = _random(1, 5, 3, seed=len(target))
    paths = [(f, s) for f, s in frame_paths(log_probs[0]) if collapse(f) == target]
    total = math.log(sum(math.exp(s) for _, s in paths))
    padded = torch.tensor([list(target) or [-1]])
    lengths = torch.tensor([len(target)])
    loss = ctc_loss(log_probs, padded, target_lengths=lengths, reduction="none")
    assert loss.item() == pytest.approx(-total, abs=1e-9)
    best_frames, best = max(paths, key=lambda p: p[1])
    alignment = forced_align(log_probs, padded, target_lengths=lengths)
    assert alignment.scores.item() == pytest.approx(best, abs=1e-9)
    assert alignment.labels[0].tolist() == list(best_frames)
    assert alignment.frame_scores[0].sum().item() == pytest.approx(best, abs=1e-9)
    graph = ctc_alignment_graph(target, 3)
    assert graph_log_likelihood(log_probs, graph).item() == pytest.approx(total, abs=1e-9)
    assert graph_viterbi(log_probs, graph).emissions[0].tolist() == list(best_frames)


def test_batched_alignment_equals_one_at_a_time_and_the_graph():
    log_probs = _random(4, 30, 6, seed=7)
    targets = torch.tensor([[1, 2, 2, 5], [3, -1, -1, -1], [4, 4, 4, -1], [1, 2, 3, 4]])
    lengths = torch.tensor([30, 11, 17, 25])
    batch = forced_align(log_probs, targets, lengths)
    losses = ctc_loss(log_probs, targets, lengths, reduction="none")
    expected_losses = F.ctc_loss(
        log_probs.transpose(0, 1),
        targets.clamp_min(0),
        lengths,
        (targets >= 0).sum(1),
        reduction="none",
    )
    torch.testing.assert_close(losses, expected_losses)
    for b in range(4):
        n, target = int(lengths[b]), [x for x in targets[b].tolist() if x >= 0]
        alone = forced_align(log_probs[b : b + 1, :n], torch.tensor([target]))
        assert alone.labels[0].tolist() == batch.labels[b, :n].tolist()
        assert (batch.labels[b, n:] == -1).all() and (batch.states[b, n:] == -1).all()
        torch.testing.assert_close(alone.scores[0], batch.scores[b])
        path = graph_viterbi(log_probs[b : b + 1, :n], ctc_alignment_graph(target, 6))
        assert path.emissions[0].tolist() == batch.labels[b, :n].tolist()
        assert path.labels[0, : path.label_lengths[0]].tolist() == target
        # Spans: symbol i occupies frames [start, stop) and nothing else does.
        for i, symbol in enumerate(target):
            start, stop = batch.spans[b, i].tolist()
            assert (batch.states[b, start:stop] == 2 * i + 1).all()
            assert int((batch.states[b] == 2 * i + 1).sum()) == stop - start
            assert batch.labels[b, start] == symbol
        assert (batch.spans[b, len(target) :] == -1).all()


def test_forced_align_equals_torchaudio():
    try:
        import torchaudio.functional as TAF
    except Exception as error:  # the CPU-only torch build cannot load torchaudio
        pytest.skip(f"torchaudio does not load here: {error}")
    log_probs = _random(5, 40, 8, seed=3).float()
    targets = torch.tensor([[1, 2, 3], [4, 4, -1], [7, 1, 7], [2, -1, -1], [5, 6, 5]])
    lengths = torch.tensor([40, 21, 33, 8, 40])
    ours = forced_align(log_probs, targets, lengths)
    for b in range(5):
        n, target = int(lengths[b]), [x for x in targets[b].tolist() if x >= 0]
        labels, scores = TAF.forced_align(
            log_probs[b : b + 1, :n], torch.tensor([target], dtype=torch.int32), blank=BLANK
        )
        assert labels[0].tolist() == ours.labels[b, :n].tolist()
        torch.testing.assert_close(scores[0], ours.frame_scores[b, :n])


@pytest.mark.compares_engines
def test_fused_alignment_breaks_ties_like_the_tensorized_one():
    # Log-probabilities on a coarse grid: many paths tie, so the tie rule decides.
    log_probs = (_random(6, 30, 4, seed=9) * 2).round() / 2
    targets = torch.tensor([[1, 2, 2], [3, 3, -1], [1, -1, -1], [2, 1, 2], [3, 2, 1], [1, 1, 1]])
    lengths = torch.tensor([30, 12, 5, 30, 7, 9])
    assert native.available(log_probs), "the fused kernels did not build"
    fused = forced_align(log_probs, targets, lengths)
    with native.disabled():
        tensorized = forced_align(log_probs, targets, lengths)
    for got, want in zip(fused, tensorized, strict=True):
        assert torch.equal(got, want)


def test_greedy_equals_the_best_path_of_the_ctc_topology():
    log_probs = _random(6, 25, 7, seed=4)
    lengths = torch.tensor([25, 3, 1, 18, 25, 9])
    labels, counts, starts = greedy_decode(log_probs, lengths)
    path = graph_viterbi(log_probs, ctc_topology(7), lengths)
    assert torch.equal(labels, path.labels) and torch.equal(counts, path.label_lengths)
    frames = log_probs.argmax(-1)
    for b, n in enumerate(lengths.tolist()):
        expected = collapse(frames[b, :n].tolist())
        assert tuple(labels[b, : counts[b]].tolist()) == expected
        for i in range(int(counts[b])):
            t = int(starts[b, i])
            assert frames[b, t] == labels[b, i] and (t == 0 or frames[b, t - 1] != labels[b, i])


def test_lexicon_graph_against_brute_force():
    words = [(1,), (1, 2), (2, 2)]
    log_probs = _random(1, 6, 3, seed=5)
    penalty = -0.3
    best = None
    for frames, score in frame_paths(log_probs[0]):
        for split in _segmentations(collapse(frames), words):
            total = score + penalty * len(split)
            if best is None or total > best[0]:
                best = (total, split)
    graph = ctc_lexicon_graph(words, 3, word_penalty=penalty)
    path = graph_viterbi(log_probs, graph)
    assert path.scores.item() == pytest.approx(best[0], abs=1e-9)
    spelled = [s for w in path.labels[0, : path.label_lengths[0]].tolist() for s in words[w]]
    assert tuple(spelled) == tuple(s for w in best[1] for s in words[w])


def _segmentations(symbols: tuple, words):
    """Every way to write ``symbols`` as a sequence of word indices (possibly none)."""
    if not symbols:
        yield ()
        return
    for w, word in enumerate(words):
        if symbols[: len(word)] == tuple(word):
            for rest in _segmentations(symbols[len(word) :], words):
                yield (w, *rest)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda lp: ctc_loss(lp, torch.tensor([[1, 0]])), "contain the blank symbol 0"),
        (
            lambda lp: ctc_loss(lp, torch.tensor([[1, 1, 1]]), torch.tensor([4])),
            "longer than their frames allow: sequence 0 needs 5 frames",
        ),
        (lambda lp: ctc_loss(lp, torch.tensor([[9]])), r"symbols in \[0, V\) = \[0, 4\)"),
        (
            lambda lp: ctc_loss(lp.float().masked_fill(lp > -1, math.nan), torch.tensor([[1]])),
            "NaN",
        ),
        (lambda lp: ctc_loss(lp, torch.tensor([[1]]), torch.tensor([7])), r"lengths must lie"),
        (lambda lp: ctc_loss(lp, torch.tensor([[1]]), blank=4), r"blank must be a symbol"),
        (lambda lp: ctc_loss(lp, torch.tensor([1])), r"targets must be an integer tensor \(B, S\)"),
        (lambda lp: ctc_loss(lp, torch.tensor([[1]]), reduction="avg"), "reduction must be"),
        (lambda lp: forced_align(lp[0], torch.tensor([[1]])), r"log_probs must be a non-empty"),
        (lambda lp: ctc_alignment_graph([0], 4), "target must hold non-blank symbols"),
        (lambda lp: ctc_lexicon_graph([()], 4), "word 0 must be a non-empty sequence"),
        (lambda lp: ctc_topology(1), "vocab must hold the blank"),
    ],
)
def test_bad_input(call, match):
    log_probs = _random(1, 6, 4, seed=0)
    with pytest.raises(ValueError, match=match):
        call(log_probs)


def test_zero_infinity_follows_pytorch():
    log_probs = _random(2, 4, 4, seed=1).requires_grad_()
    targets = torch.tensor([[1, 1, 1], [2, 3, -1]])
    loss = ctc_loss(log_probs, targets, reduction="none", zero_infinity=True)
    assert loss[0].item() == 0.0 and loss[1].item() > 0
    loss.sum().backward()
    assert torch.isfinite(log_probs.grad).all() and (log_probs.grad[0] == 0).all()
