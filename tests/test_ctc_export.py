"""The portable CTC prefix beam search gives `hybrid.ctc.prefix_beam_search`'s hypotheses.

`PrefixBeamCTCDecoder` runs eagerly, scripted with ``torch.jit.script`` and exported with
``torch.onnx.export`` (dynamic batch and time, once per dtype) then run by ONNX Runtime, on
random log-softmax batches of 1 to 64 ragged sequences of 1 to 40 frames: peaked, flat and
middling distributions, and frame paths with runs of a symbol, some split by a blank (a repeat
without a blank between merges into one label, with one it gives two); and on two sequences of
200 frames, whose log-probabilities fall below float32's range (-103) for an unshifted sum.
Labels and label lengths must be identical to the public search's (its CPU kernel), scores
equal to 1e-4 relative.

The flat inputs are float64: in float32, distinct prefixes of a near-uniform distribution
often score exactly the same after rounding, and the CPU kernel breaks such ties at the edge of
the beam differently from the tensor search (both keep a hypothesis of the same score).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from hybrid.ctc import PrefixBeamCTCDecoder, prefix_beam_search
from hybrid.nn.decoders import to_onnx

# TorchScript is deprecated upstream (torch >= 2.10) but still what C++ and mobile load
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
# (B, T): single items and single frames, ragged batches, a batch of 64
SHAPES = [(1, 1), (1, 9), (2, 1), (7, 2), (5, 17), (64, 40)]
SCORES = {"rtol": 1e-4, "atol": 1e-5}
KINDS = ["middling", "peaked", "flat", "runs"]
LONG = (2, 200)
# (vocab, blank, beam, nbest): beams 1, 4 and 10, nbest 1 and 3, the blank first and last
SETTINGS = [
    (2, 0, 1, 1),
    (2, 1, 4, 3),
    (30, 0, 10, 3),
    (30, 29, 10, 1),
    (30, 29, 4, 3),
    (30, 0, 1, 1),
]


def _logits(kind: str, batch: int, steps: int, vocab: int, blank: int, generator) -> torch.Tensor:
    noise = torch.randn(batch, steps, vocab, generator=generator)
    if kind == "middling":
        return 2 * noise
    if kind == "flat":
        return 0.1 * noise
    if kind == "peaked":
        top = torch.randint(vocab, (batch, steps), generator=generator)
    else:  # runs of three frames of a symbol, a third of the frames blank
        symbols = torch.tensor([s for s in range(vocab) if s != blank][:2])
        offset = torch.randint(len(symbols), (batch, 1), generator=generator)
        top = symbols[(torch.arange(steps) // 3 + offset) % len(symbols)]
        top = top.masked_fill(torch.rand(batch, steps, generator=generator) < 1 / 3, blank)
    return noise + 6 * torch.nn.functional.one_hot(top, vocab)


@functools.cache
def _cases(vocab: int, blank: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(kind, log_probs, lengths)`` of every kind and shape and the `LONG` middling batch,
    ragged, the first sequence of each batch as long as the batch."""
    generator = torch.Generator().manual_seed(vocab * 100 + blank)
    cases = []
    for kind, (batch, steps) in [*((k, s) for k in KINDS for s in SHAPES), ("middling", LONG)]:
        logits = _logits(kind, batch, steps, vocab, blank, generator)
        dtype = torch.float64 if kind == "flat" else torch.float32
        lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
        lengths[0] = steps
        cases.append((kind, logits.to(dtype).log_softmax(-1), lengths))
    return cases


@functools.cache
def _expected(vocab: int, blank: int, beam: int, nbest: int) -> list[tuple[torch.Tensor, ...]]:
    """`prefix_beam_search` on `_cases`, its labels padded with ``-1`` to ``T``."""
    expected = []
    for _, log_probs, lengths in _cases(vocab, blank):
        found = prefix_beam_search(log_probs, lengths, beam=beam, blank=blank, nbest=nbest)
        labels = torch.full((*found.labels.shape[:2], log_probs.shape[1]), -1)
        labels[..., : found.labels.shape[2]] = found.labels
        expected.append((labels, found.label_lengths, found.scores))
    return expected


def _onnx(module: PrefixBeamCTCDecoder, vocab: int):
    """``module`` in ONNX Runtime, exported with dynamic batch and time once for each dtype of
    the inputs it is given."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
    pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript (dev extra)")

    @functools.cache
    def session(dtype: torch.dtype):
        example = (torch.randn(3, 5, vocab, dtype=dtype).log_softmax(-1), torch.tensor([5, 2, 1]))
        return ort.InferenceSession(to_onnx(module, example, module.dynamic_shapes()))

    def run(log_probs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        exported = session(log_probs.dtype)
        names = [i.name for i in exported.get_inputs()]
        feed = dict(zip(names, (log_probs.numpy(), lengths.numpy()), strict=True))
        return tuple(torch.from_numpy(np.asarray(x)) for x in exported.run(None, feed))

    return run


def _assert_matches(decode, vocab: int, blank: int, beam: int, nbest: int) -> None:
    cases = _cases(vocab, blank)
    for (kind, log_probs, lengths), expected in zip(
        cases, _expected(vocab, blank, beam, nbest), strict=True
    ):
        labels, label_lengths, scores = decode(log_probs, lengths)
        where = f"{kind} inputs of shape {tuple(log_probs.shape)}"
        assert torch.equal(labels, expected[0]), where
        assert torch.equal(label_lengths, expected[1]), where
        torch.testing.assert_close(scores, expected[2], **SCORES, msg=where)


@pytest.mark.parametrize("fmt", ["eager", "script"])
@pytest.mark.parametrize(("vocab", "blank", "beam", "nbest"), SETTINGS)
def test_decoder_gives_the_hypotheses_of_prefix_beam_search(fmt, vocab, blank, beam, nbest):
    module = PrefixBeamCTCDecoder(beam=beam, blank=blank, nbest=nbest)
    decode = module if fmt == "eager" else torch.jit.script(module)
    _assert_matches(decode, vocab, blank, beam, nbest)


def test_onnx_export_gives_the_hypotheses_of_prefix_beam_search():
    vocab, blank, beam, nbest = 30, 29, 10, 3
    module = PrefixBeamCTCDecoder(beam=beam, blank=blank, nbest=nbest)
    _assert_matches(_onnx(module, vocab), vocab, blank, beam, nbest)


@pytest.mark.parametrize("blank", [0, 1])
def test_runs_give_repeated_labels_only_across_a_blank(blank):
    """The `runs` inputs exercise both sides of the repeat rule: the searched labels hold
    adjacent repeats (split by a blank frame), and fewer labels than frames whose most likely
    symbol is not the blank (the frames of a run merge)."""
    _, log_probs, lengths = _cases(2, blank)[KINDS.index("runs") * len(SHAPES) + 5]  # (64, 40)
    labels, label_lengths, _ = PrefixBeamCTCDecoder(beam=4, blank=blank)(log_probs, lengths)
    best = [row[:n].tolist() for row, n in zip(labels[:, 0], label_lengths[:, 0], strict=True)]
    assert any(a == b for row in best for a, b in zip(row, row[1:], strict=False))
    frames = log_probs.argmax(-1)
    emitting = [(row[:n] != blank).sum().item() for row, n in zip(frames, lengths, strict=True)]
    assert sum(map(len, best)) < sum(emitting)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam": 0}, "beam must be an int >= 1"),
        ({"beam": True}, "beam must be an int >= 1"),
        ({"beam": 3, "nbest": 4}, r"nbest must be an int in \[1, beam\]"),
        ({"nbest": 0}, r"nbest must be an int in \[1, beam\]"),
        ({"blank": -1}, "blank must be a non-negative int"),
        ({"blank": 1.0}, "blank must be a non-negative int"),
    ],
)
def test_bad_arguments_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        PrefixBeamCTCDecoder(**options)


@pytest.mark.parametrize("fmt", ["eager", "script"])
@pytest.mark.parametrize("blank", [0, 2])
def test_a_beam_wider_than_every_prefix_finds_the_most_probable_strings(fmt, blank):
    """With a beam that keeps every prefix (``2 ** (T + 1) - 1`` over two symbols), the
    search is exact: its n-best strings and scores are those of brute force over every
    string of at most ``T`` symbols, each scored by torch's CTC loss (all its alignments)."""
    generator = torch.Generator().manual_seed(7)
    steps, vocab, nbest = 5, 3, 4
    lengths = torch.tensor([5, 3, 2, 4])  # each with at least 4 possible strings
    log_probs = torch.randn(4, steps, vocab, generator=generator, dtype=torch.float64)
    log_probs = log_probs.log_softmax(-1)
    decoder = PrefixBeamCTCDecoder(beam=2 ** (steps + 1), blank=blank, nbest=nbest)
    if fmt == "script":
        decoder = torch.jit.script(decoder)
    labels, label_lengths, scores = decoder(log_probs, lengths)
    symbols = [s for s in range(vocab) if s != blank]
    for b, length in enumerate(lengths.tolist()):
        strings = [()] + [
            tuple(symbols[(code >> i) & 1] for i in range(size))
            for size in range(1, length + 1)
            for code in range(2**size)
        ]
        frames = log_probs[b, :length].unsqueeze(1).expand(length, len(strings), vocab)
        targets = torch.tensor([list(s) + [0] * (length - len(s)) for s in strings])
        if not targets.numel():
            targets = torch.zeros(len(strings), 1, dtype=torch.long)
        loss = torch.nn.functional.ctc_loss(
            frames,
            targets,
            torch.full((len(strings),), length),
            torch.tensor([len(s) for s in strings]),
            blank=blank,
            reduction="none",
        )
        best = (-loss).topk(nbest)
        expected = [strings[i] for i in best.indices.tolist()]
        got = [tuple(labels[b, n, : label_lengths[b, n]].tolist()) for n in range(nbest)]
        assert got == expected
        torch.testing.assert_close(scores[b], best.values, rtol=1e-9, atol=1e-9)
