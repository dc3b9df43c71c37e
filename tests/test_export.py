"""Decoders under TorchScript and ONNX Runtime give the public decoders' outputs.

The oracle is the public decoder on the same scores (`hybrid.structured.viterbi`, `kbest`,
`marginals`, `log_partition`, `graph_viterbi`, `cky`, `hybrid.ctc.greedy_decode`), itself tested
against brute force and the peers. Every decoder runs three ways: eagerly, scripted with
``torch.jit.script``, and exported once with ``torch.onnx.export`` (dynamic batch and time)
then run by ONNX Runtime on batches of 1 to 64 ragged sequences of 1 to 40 steps: paths,
labels and arcs must be identical, scores equal to 1e-4 relative.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from hybrid.ctc import GreedyCTCDecoder, greedy_decode
from hybrid.nn import (
    CRF,
    CKYDecoder,
    GraphDecoder,
    KBestDecoder,
    MarginalDecoder,
    ViterbiDecoder,
)
from hybrid.nn.decoders import to_onnx
from hybrid.structured import (
    Graph,
    cky,
    graph_viterbi,
    kbest,
    log_partition,
    marginals,
    viterbi,
)
from hybrid.tagging.schemes import allowed_transitions

FORMATS = ["eager", "script", "onnx"]
# TorchScript is deprecated upstream (torch >= 2.10) but still what C++ and mobile load
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
# (B, T): single items and single steps, ragged batches, a batch of 64
SHAPES = [(1, 1), (1, 9), (2, 1), (7, 2), (5, 17), (64, 40)]
SCORES = {"rtol": 1e-4, "atol": 1e-5}
NUM_TAGS = 6


def _ragged(batch: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps  # the longest fills the padded time axis
    return lengths


def _inputs(width: int, seed: int):
    """Score batches of every shape in `SHAPES`, with ragged lengths."""
    generator = torch.Generator().manual_seed(seed)
    for batch, steps in SHAPES:
        scores = 3 * torch.randn(batch, steps, width, generator=generator)
        yield scores, _ragged(batch, steps, generator)


def _export(module: torch.nn.Module, width: int):
    """An ONNX Runtime session of ``module`` exported once with dynamic batch and time."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
    pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript (dev extra)")
    example = (torch.randn(3, 5, width), torch.tensor([5, 2, 1]))
    session = ort.InferenceSession(to_onnx(module, example, module.dynamic_shapes()))
    names = [i.name for i in session.get_inputs()]

    def run(scores: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = dict(zip(names, (scores.numpy(), lengths.numpy()), strict=True))
        return tuple(torch.from_numpy(np.asarray(x)) for x in session.run(None, feed))

    return run


def _runner(module: torch.nn.Module, fmt: str, width: int):
    if fmt == "eager":
        return module
    if fmt == "script":
        return torch.jit.script(module)
    return _export(module, width)


def _assert_same(got: tuple[torch.Tensor, ...], expected: tuple[torch.Tensor, ...]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        if e.dtype.is_floating_point:
            torch.testing.assert_close(g, e, **SCORES)
        else:
            assert torch.equal(g, e)


@functools.cache
def _chain() -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    transitions = torch.randn(NUM_TAGS, NUM_TAGS, generator=generator)
    start, end = torch.randn(2, NUM_TAGS, generator=generator)
    allowed = torch.rand(NUM_TAGS, NUM_TAGS, generator=generator) > 0.3
    allowed[:, 0] = True  # every tag may go on to tag 0: every length has a path
    return transitions, start, end, allowed


def _marginals_and_partition(*args):
    return marginals(*args), log_partition(*args)


CHAIN_DECODERS = {  # module, its options, the public decoder (same positional arguments)
    "viterbi": (ViterbiDecoder, {}, viterbi),
    "kbest": (KBestDecoder, {"k": 4}, functools.partial(kbest, k=4)),
    "marginals": (MarginalDecoder, {}, _marginals_and_partition),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(CHAIN_DECODERS))
def test_chain_decoders_match_the_public_decoders(name, fmt):
    cls, options, oracle = CHAIN_DECODERS[name]
    chain = _chain()
    decode = _runner(cls(*chain, **options), fmt, NUM_TAGS)
    for emissions, lengths in _inputs(NUM_TAGS, seed=1):
        transitions, start, end, allowed = chain
        expected = oracle(emissions, transitions, start, end, lengths, allowed)
        _assert_same(decode(emissions, lengths), expected)


def test_kbest_pads_missing_ranks_like_the_public_decoder():
    # 2 tags and 2 steps allow 4 paths: ranks 5 and 6 are missing
    transitions = torch.zeros(2, 2)
    emissions = torch.randn(3, 2, 2)
    lengths = torch.tensor([2, 1, 2])
    got = KBestDecoder(transitions, k=6)(emissions, lengths)
    expected = kbest(emissions, transitions, lengths=lengths, k=6)
    _assert_same(got, expected)
    assert torch.isneginf(got[1][0, 4:]).all() and (got[0][0, 4:] == -1).all()


@pytest.mark.parametrize("fmt", ["script", "onnx"])
def test_exported_bio_tagger_never_breaks_the_scheme(fmt):
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    crf = CRF(len(labels), constraints=allowed_transitions("BIO", labels))
    with torch.no_grad():  # trained scores that like I- tags after anything
        crf.transitions.uniform_(-1, 1)
        crf.transitions[:, [2, 4]] += 20.0
        crf.start_transitions[[2, 4]] += 20.0
    decode = _runner(ViterbiDecoder.from_chain(crf), fmt, len(labels))
    generator = torch.Generator().manual_seed(2)
    emissions = torch.randn(64, 30, len(labels), generator=generator)
    emissions[..., [2, 4]] += 50.0  # adversarial: I- tags win every token on their own
    lengths = _ragged(64, 30, generator)
    paths, _ = decode(emissions, lengths)
    assert torch.equal(paths, crf.decode(emissions, lengths)[0])
    for row, length in zip(paths.tolist(), lengths.tolist(), strict=True):
        tags = [labels[i] for i in row[:length]]
        for previous, tag in zip(["O", *tags], tags, strict=False):
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:], f"{previous} -> {tag} in {tags}"


def _left_to_right(states: int) -> Graph:
    """An HMM-like graph: a self-loop and a step on to the next state, labels on the steps;
    a sequence shorter than ``states`` frames has no path."""
    src = [s for s in range(states) for _ in range(2)][:-1]
    dst = [d for s in range(states) for d in (s, s + 1)][:-1]
    generator = torch.Generator().manual_seed(3)
    start = torch.full((states,), float("-inf"))
    start[0] = 0.0
    final = torch.full((states,), float("-inf"))
    final[-1] = 0.0
    return Graph.build(
        src,
        dst,
        emission=[s % 5 for s in src],
        start=start,
        final=final,
        weight=torch.randn(len(src), generator=generator),
        label=[d if d != s else -1 for s, d in zip(src, dst, strict=True)],
        num_emissions=5,
    )


def _graph_oracle(graph: Graph, scores: torch.Tensor, lengths: torch.Tensor):
    """`graph_viterbi` on the items with a path; ``-inf`` and no arcs for the others."""
    batch, steps, _ = scores.shape
    arcs = torch.full((batch, steps), -1)
    labels = torch.full((batch, steps), -1)
    label_lengths = torch.zeros(batch, dtype=torch.long)
    best = torch.full((batch,), float("-inf"))
    ok = lengths >= graph.num_states
    if ok.any():
        path = graph_viterbi(scores[ok], graph, lengths[ok])
        arcs[ok] = path.arcs
        labels[ok, : path.labels.shape[1]] = path.labels
        label_lengths[ok] = path.label_lengths
        best[ok] = path.scores
    return arcs, labels, label_lengths, best


@pytest.mark.parametrize("fmt", FORMATS)
def test_graph_decoder_matches_graph_viterbi(fmt):
    graph = _left_to_right(4)
    decode = _runner(GraphDecoder(graph), fmt, 5)
    for scores, lengths in _inputs(5, seed=4):
        _assert_same(decode(scores, lengths), _graph_oracle(graph, scores, lengths))


@pytest.mark.parametrize("fmt", FORMATS)
def test_greedy_ctc_decoder_matches_greedy_decode(fmt):
    decode = _runner(GreedyCTCDecoder(blank=2), fmt, 4)
    for scores, lengths in _inputs(4, seed=5):
        labels, counts, starts = decode(scores, lengths)
        expected = greedy_decode(scores.log_softmax(-1), lengths, blank=2)
        width = expected[0].shape[1]
        assert (labels[:, width:] == -1).all() and (starts[:, width:] == -1).all()
        _assert_same((labels[:, :width], counts, starts[:, :width]), expected)


def test_decoder_from_a_crf_layer_decodes_like_the_layer():
    crf = CRF(NUM_TAGS, constraints=_chain()[3])
    for emissions, lengths in _inputs(NUM_TAGS, seed=6):
        _assert_same(
            ViterbiDecoder.from_chain(crf)(emissions, lengths), crf.decode(emissions, lengths)
        )
        _assert_same(
            KBestDecoder.from_chain(crf, k=3)(emissions, lengths),
            crf.decode(emissions, lengths, k=3),
        )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: KBestDecoder(torch.zeros(3, 3), k=0), "k must be an integer >= 1"),
        (lambda: ViterbiDecoder(torch.zeros(3)), "transitions must be a"),
        (lambda: ViterbiDecoder(torch.zeros(3, 3), constraints=torch.ones(2, 2).bool()), "shape"),
        (lambda: GraphDecoder("graph"), "graph must be a compiled"),
        (lambda: GreedyCTCDecoder(blank=-1), "blank must be a non-negative int"),
    ],
)
def test_bad_decoder_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("fmt", ["eager", "onnx"])
def test_marginals_with_impossible_emissions_and_wide_gaps(fmt):
    """-inf emissions give zero marginals (not NaN); a path far below the best into the
    same state still counts (float32 inputs are summed in float64); a sequence with no
    allowed path gets zero marginals and a log-partition of -inf."""
    transitions = torch.zeros(3, 3)
    transitions[0, 2] = float("-inf")
    decode = _runner(MarginalDecoder(transitions), fmt, 3)
    emissions = torch.tensor(
        [
            [[0.0, -110.0, -1e4], [-300.0, -300.0, 0.0], [1.0, 2.0, 3.0]],
            [[0.5, float("-inf"), 1.0], [2.0, 0.0, float("-inf")], [0.0, 0.0, 0.0]],
        ]
    )
    lengths = torch.tensor([2, 3])
    got, log_z = decode(emissions, lengths)
    expected = marginals(emissions, transitions, lengths=lengths)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(log_z, log_partition(emissions, transitions, lengths=lengths))
    blocked = torch.full((1, 2, 3), float("-inf"))  # nothing is allowed anywhere
    got, log_z = decode(torch.cat([blocked, blocked], 1)[:, :2], torch.tensor([2]))
    assert torch.equal(got, torch.zeros_like(got)) and torch.isneginf(log_z).all()


# (B, N, L): one word, one label, ragged batches up to 32 sentences of 20 words
TREE_SHAPES = [(1, 1, 3), (2, 2, 1), (7, 5, 4), (5, 9, 2), (32, 20, 6)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_cky_decoder_matches_the_public_cky(fmt):
    decode = CKYDecoder()
    if fmt == "script":
        decode = torch.jit.script(decode)
    elif fmt == "onnx":
        ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
        pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript")
        example = (torch.randn(3, 6, 6, 2), torch.tensor([5, 2, 1]))
        session = ort.InferenceSession(to_onnx(decode, example, decode.dynamic_shapes()))

        def decode(scores, lengths):
            feed = {"scores": scores.numpy(), "lengths": lengths.numpy()}
            return tuple(torch.from_numpy(x) for x in session.run(None, feed))

    generator = torch.Generator().manual_seed(3)
    for batch, words, labels in TREE_SHAPES:
        scores = 2 * torch.randn(batch, words + 1, words + 1, labels, generator=generator)
        if labels > 1:  # forbid label 0 on some spans: another label is always allowed
            forbidden = torch.rand(scores.shape[:3], generator=generator) < 0.3
            scores[..., 0][forbidden] = float("-inf")
        lengths = _ragged(batch, words, generator)
        _assert_same(decode(scores, lengths), cky(scores, lengths))


def test_cky_decoder_gives_no_tree_where_there_is_none():
    scores = torch.randn(2, 4, 4, 2)
    scores[1, 0, 3] = float("-inf")  # the whole of sentence 1 has no label
    spans, best = CKYDecoder()(scores, torch.tensor([3, 3]))
    assert torch.equal(spans[0], cky(scores[:1], torch.tensor([3]))[0][0])
    assert best[1] == float("-inf") and bool((spans[1] == -1).all())


@pytest.mark.parametrize("fmt", ["eager", "script"])
def test_forward_only_log_partition_matches_the_public_one(fmt):
    from hybrid.structured import portable

    transitions, start, end, allowed = _chain()
    folded = portable.fold_constraints(transitions, start, end, allowed)
    compute = portable.chain_log_partition
    if fmt == "script":
        compute = torch.jit.script(compute)
    for emissions, lengths in _inputs(NUM_TAGS, seed=4):
        expected = log_partition(emissions, transitions, start, end, lengths, allowed)
        torch.testing.assert_close(compute(emissions, lengths, *folded), expected, **SCORES)
