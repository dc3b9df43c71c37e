"""Issue 21 on the structured engine: extreme scores, meta tensors and sequences with no path.

The numeric checks run on both engines (the fused CPU kernels and the eager PyTorch engine)
against float64 brute-force enumeration (`oracles`), never against numbers printed by the
library.
"""

from __future__ import annotations

import pytest
import torch
from oracles import brute_hinge, enumerate_batch, hamming_cost_matrix

from hybrid import CRF, StructuredSVM
from hybrid.structured import (
    Graph,
    beam_search,
    graph_log_likelihood,
    graph_posteriors,
    graph_viterbi,
    kbest,
    log_partition,
    marginals,
    native,
    sequence_score,
    viterbi,
)

EPS32 = torch.finfo(torch.float32).eps
EPS64 = torch.finfo(torch.float64).eps
K = 3


@pytest.fixture(params=["native", "eager"])
def engine(request):
    """Run the test with the fused kernels ("native") and without them ("eager")."""
    if request.param == "eager":
        with native.disabled():
            yield request.param
    else:
        yield request.param


def layer(cls, seed: int):
    """A CRF or structured SVM with ``K`` tags and its default random parameters."""
    torch.manual_seed(seed)
    return cls(K)


def chain_oracle(emissions, module, lengths):
    """Float64 enumerations of every path of each sequence under ``module``'s parameters."""
    return enumerate_batch(
        emissions,
        lengths.tolist(),
        module.transitions,
        module.start_transitions,
        module.end_transitions,
    )


def near_best_tags(enums, total: int) -> torch.Tensor:
    """``(B, T)`` gold tags, ``-1`` padded: the best path of even items and the runner-up of
    odd ones: the losses of a well-trained model, small next to the path scores."""
    tags = torch.full((len(enums), total), -1, dtype=torch.long)
    for b, enum in enumerate(enums):
        rank = torch.argsort(enum.scores, descending=True, stable=True)[b % 2]
        tags[b, : enum.length] = enum.paths[rank]
    return tags


# -- case 2: float32 losses at large emission scales -----------------------------------------


SCALES = [1e3, 1e5, 1e7, 1e9]


def scaled_problem(scale: float, seed: int):
    """Float32 emissions ``(6, 7, K)`` of magnitude ``scale`` and ragged lengths, where the
    runner-up tag of step 1 trails the best by ``scale / 1000`` (a well-trained model's close
    runner-up path, whose loss is small next to the path scores)."""
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(6, 7, K, generator=g) * scale
    top = emissions[:, 1].topk(2, -1)
    emissions[:, 1].scatter_(1, top.indices[:, 1:], top.values[:, :1] - scale / 1000)
    return emissions, torch.tensor([7, 7, 6, 5, 4, 3])


def float32_tolerance(reference: torch.Tensor, lengths: torch.Tensor, scale: float):
    """What a float32 loss may miss by: float32 rounding of the loss itself and of one
    normaliser per step, plus the float64 rounding of the oracle's sums of ``scale``-sized
    scores. Far below the rounding of ``log Z`` itself (``EPS32 * T * scale``)."""
    lengths = lengths.double()
    return 16 * EPS32 * (reference.abs() + lengths) + 16 * EPS64 * lengths * scale


@pytest.mark.parametrize("scale", SCALES)
def test_crf_nll_keeps_float32_precision_at_large_scales(engine, scale):
    emissions, lengths = scaled_problem(scale, seed=1)
    crf = layer(CRF, seed=2)
    enums = chain_oracle(emissions, crf, lengths)
    tags = near_best_tags(enums, emissions.shape[1])
    reference = torch.stack(
        [
            enum.log_partition() - enum.score_of(tags[b, :n])
            for b, (enum, n) in enumerate(zip(enums, lengths.tolist(), strict=True))
        ]
    )
    nll = crf.nll(emissions, tags, lengths, reduction="none")
    tolerance = float32_tolerance(reference, lengths, scale)
    assert nll.dtype == torch.float32
    assert (nll.double() >= -tolerance).all(), (nll, tolerance)
    assert ((nll.double() - reference).abs() <= tolerance).all(), (nll, reference, tolerance)


@pytest.mark.parametrize("scale", SCALES)
def test_ssvm_loss_keeps_float32_precision_at_large_scales(engine, scale):
    emissions, lengths = scaled_problem(scale, seed=3)
    ssvm = layer(StructuredSVM, seed=4)
    enums = chain_oracle(emissions, ssvm, lengths)
    tags = near_best_tags(enums, emissions.shape[1])
    reference = torch.stack(
        [
            brute_hinge(enum, tags[b, :n], hamming_cost_matrix(K))
            for b, (enum, n) in enumerate(zip(enums, lengths.tolist(), strict=True))
        ]
    )
    loss = ssvm.loss(emissions, tags, lengths, reduction="none")
    tolerance = float32_tolerance(reference, lengths, scale)
    assert loss.dtype == torch.float32 and (loss >= 0).all()
    assert ((loss.double() - reference).abs() <= tolerance).all(), (loss, reference, tolerance)


# -- case 1: scores near the largest float32 ---------------------------------------------------


def huge_problem(seed: int) -> torch.Tensor:
    """Float32 emissions ``(2, 3, K)`` whose path sums pass the largest float32 after two steps
    (``3e38 + 3e38``) and come back into range at the third (``- 3e38``)."""
    g = torch.Generator().manual_seed(seed)
    emissions = 3e38 - torch.rand(2, 3, K, generator=g) * 1e37
    emissions[:, 2] = -emissions[:, 2]
    return emissions


def test_path_sums_beyond_float32_give_the_exact_results(engine):
    emissions = huge_problem(seed=5)
    crf = layer(CRF, seed=6)
    lengths = torch.tensor([3, 3])
    enums = chain_oracle(emissions, crf, lengths)
    potentials = (crf.transitions, crf.start_transitions, crf.end_transitions)

    paths, scores = viterbi(emissions, *potentials)
    unary = marginals(emissions, *potentials)
    for b, enum in enumerate(enums):
        best_path, best_score, _ = enum.best()
        assert paths[b].tolist() == best_path.tolist()
        assert scores[b].item() == pytest.approx(best_score.item(), rel=4 * EPS32)
        assert torch.allclose(unary[b].double(), enum.unary()[0])
    log_z = log_partition(emissions, *potentials)
    reference = torch.stack([enum.log_partition() for enum in enums])
    assert torch.allclose(log_z.double(), reference, rtol=4 * EPS32, atol=0)
    tags = near_best_tags(enums, 3)
    nll = crf.nll(emissions, tags, reduction="none")
    gold = torch.stack([enum.score_of(tags[b]) for b, enum in enumerate(enums)])
    assert torch.allclose(nll.double(), reference - gold, rtol=4 * EPS32, atol=1e-3)


def overflowing_results():
    """Calls whose true result, a sum of three scores of at least 1.5e38, is beyond the largest
    float32 (3.4e38)."""
    g = torch.Generator().manual_seed(7)
    emissions = (1.5 + torch.rand(2, 3, K, generator=g) / 2) * 1e38
    crf = layer(CRF, seed=8)
    potentials = (crf.transitions.detach(), crf.start_transitions.detach())
    tags = torch.zeros(2, 3, dtype=torch.long)
    return {
        "log_partition": lambda: log_partition(emissions, *potentials),
        "viterbi": lambda: viterbi(emissions, *potentials),
        "kbest": lambda: kbest(emissions, *potentials, k=2),
        "sequence_score": lambda: sequence_score(emissions, tags, *potentials),
        "CRF.log_partition": lambda: crf.log_partition(emissions),
        "CRF.score": lambda: crf.score(emissions, tags),
        "graph_viterbi": lambda: graph_viterbi(emissions, Graph.from_chain(potentials[0])),
        "graph_log_likelihood": lambda: graph_log_likelihood(
            emissions, Graph.from_chain(potentials[0])
        ),
    }


@pytest.mark.parametrize("call", list(overflowing_results()))
def test_results_beyond_float32_raise_naming_the_scores(engine, call):
    with pytest.raises(ValueError, match=r"^(emissions|scores): .*beyond the range") as error:
        overflowing_results()[call]()
    assert "tags" not in str(error.value)


def test_path_sums_beyond_float64_raise_naming_the_emissions(engine):
    emissions = torch.full((1, 3, K), 1e307, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^emissions: .* overflow even float64") as error:
        log_partition(emissions, torch.zeros(K, K, dtype=torch.float64))
    assert "tags" not in str(error.value)


def test_graph_path_sums_beyond_float32_give_the_exact_results(engine):
    emissions = huge_problem(seed=9)
    crf = layer(CRF, seed=10)
    graph = Graph.from_chain(crf.transitions.detach(), crf.start_transitions.detach())
    enums = enumerate_batch(emissions, [3, 3], crf.transitions, crf.start_transitions)
    for beam in (None, 1e39):
        path = graph_viterbi(emissions, graph, beam=beam)
        for b, enum in enumerate(enums):
            best_path, best_score, _ = enum.best()
            assert path.states[b].tolist() == best_path.tolist()
            assert path.scores[b].item() == pytest.approx(best_score.item(), rel=4 * EPS32)
    log_likelihood = graph_log_likelihood(emissions, graph)
    reference = torch.stack([enum.log_partition() for enum in enums])
    assert torch.allclose(log_likelihood.double(), reference, rtol=4 * EPS32, atol=0)
    occupancy = torch.stack([enum.unary()[0] for enum in enums])
    assert torch.allclose(graph_posteriors(emissions, graph).double(), occupancy)


# -- case 3: meta tensors ----------------------------------------------------------------------


def meta_calls():
    """Entry points, each given one meta tensor (the named argument) among valid ones."""
    emissions, transitions = torch.randn(2, 3, K), torch.randn(K, K)
    tags, lengths = torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 2])
    meta = {"emissions": emissions.to("meta"), "transitions": transitions.to("meta")}
    crf, graph = CRF(K), Graph.from_chain(transitions)

    def step(tokens, state):
        return torch.zeros(tokens.shape[0], 4, device="meta"), state

    return {
        "log_partition": ("emissions", lambda: log_partition(meta["emissions"], transitions)),
        "marginals": ("transitions", lambda: marginals(emissions, meta["transitions"])),
        "viterbi": ("lengths", lambda: viterbi(emissions, transitions, lengths=lengths.to("meta"))),
        "kbest": (
            "start",
            lambda: kbest(emissions, transitions, torch.zeros(K, device="meta"), k=2),
        ),
        "sequence_score": ("tags", lambda: sequence_score(emissions, tags.to("meta"), transitions)),
        "CRF.nll": ("emissions", lambda: crf.nll(meta["emissions"], tags)),
        "CRF on meta": ("transitions", lambda: CRF(K).to("meta").decode(emissions)),
        "StructuredSVM.loss": ("emissions", lambda: StructuredSVM(K).loss(meta["emissions"], tags)),
        "graph_viterbi": ("scores", lambda: graph_viterbi(meta["emissions"], graph)),
        "graph_posteriors": ("scores", lambda: graph_posteriors(meta["emissions"], graph)),
        "Graph.build": (
            "src",
            lambda: Graph.build(
                torch.zeros(1, dtype=torch.long, device="meta"), [0], [0], [0.0], [0.0]
            ),
        ),
        "beam_search state": (
            "state",
            lambda: beam_search(step, torch.zeros(2, 1, device="meta"), 2, 2, 3, 0, 1),
        ),
        "beam_search log_probs": (
            "log_probs returned by step",
            lambda: beam_search(step, torch.zeros(2, 1), 2, 2, 3, 0, 1),
        ),
    }


@pytest.mark.parametrize("call", list(meta_calls()))
def test_meta_tensors_are_refused_by_name(call):
    name, run = meta_calls()[call]
    with pytest.raises(ValueError, match=rf"{name} is a meta tensor: meta tensors carry no data"):
        run()


# -- case 4: no path ---------------------------------------------------------------------------


def test_beam_search_with_every_token_at_minus_inf_raises_naming_the_sequence():
    def step(tokens, state):
        log_probs = torch.log_softmax(torch.zeros(tokens.shape[0], 4), -1)
        return torch.where(state[:, None] == 1, float("-inf"), log_probs), state

    with pytest.raises(ValueError, match=r"no hypothesis left for sequences \[1\]"):
        beam_search(step, torch.tensor([0, 1, 0]), 3, beam=2, max_length=3, bos=0, eos=1)


# -- float16 and bfloat16 scores are promoted for the DP ---------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_graph_posteriors_of_half_scores_come_promoted_like_the_chain_marginals(engine, dtype):
    g = torch.Generator().manual_seed(11)
    scores = torch.randn(2, 4, K, generator=g).to(dtype)
    transitions = torch.randn(K, K, generator=g)
    lengths = torch.tensor([4, 2])
    enums = enumerate_batch(scores, lengths.tolist(), transitions)
    occupancy = graph_posteriors(scores, Graph.from_chain(transitions), lengths)
    assert occupancy.dtype == marginals(scores, transitions, lengths=lengths).dtype == torch.float32
    for b, (enum, n) in enumerate(zip(enums, lengths.tolist(), strict=True)):
        probabilities, _ = enum.unary()
        assert torch.allclose(occupancy[b, :n].double(), probabilities, atol=1e-5)
