"""The structured SVM layer: margin-rescaled hinge and perceptron losses against enumeration."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracles import (
    brute_hinge,
    constraint_masks,
    enumerate_batch,
    hamming_cost_matrix,
    lengths_to_mask,
    path_is_valid,
    random_lengths,
    random_masks,
    random_tags,
)

from hybrid import CRF, ChainConstraints, StructuredSVM, allowed_transitions
from hybrid.structured import kbest, sequence_score, viterbi

F64 = {"rtol": 1e-9, "atol": 1e-9}


def randomize_(module, seed, std=0.7):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def valid_gold(ssvm, em, lengths):
    """A gold sequence that satisfies the layer's constraints: decode random scores."""
    g = torch.Generator().manual_seed(99)
    noise = torch.randn(em.shape, generator=g, dtype=em.dtype)
    with torch.no_grad():
        paths, _ = ssvm.decode(noise, lengths)
    return paths


def _setup(B, T, K, seed, constrained, cost_kind):
    g = torch.Generator().manual_seed(seed)
    lengths = random_lengths(B, T, g)
    em = torch.randn(B, T, K, generator=g, dtype=torch.float64)
    constraints = None
    if constrained:
        t, s, e = random_masks(K, lengths.tolist(), g)
        constraints = ChainConstraints(t, s, e)
    ssvm = randomize_(StructuredSVM(K, constraints=constraints).double(), seed + 1)
    if constrained:
        tags = valid_gold(ssvm, em, lengths)
    else:
        tags = random_tags(lengths.tolist(), T, K, g, pad=-1)
    if cost_kind == "hamming":
        cost, cost_matrix = "hamming", hamming_cost_matrix(K)
    else:
        cm = torch.rand(K, K, generator=g, dtype=torch.float64) * 3
        cm.fill_diagonal_(0)
        cost, cost_matrix = cm, cm
    return ssvm, em, tags, lengths, constraints, cost, cost_matrix


def test_parameter_names_and_shapes():
    ssvm = StructuredSVM(5)
    names = dict(ssvm.named_parameters())
    assert set(names) == {"transitions", "start_transitions", "end_transitions"}
    assert names["transitions"].shape == (5, 5)
    assert names["start_transitions"].shape == (5,) and names["end_transitions"].shape == (5,)


@pytest.mark.parametrize("cost_kind", ["hamming", "matrix"])
@pytest.mark.parametrize("constrained", [False, True], ids=["free", "constrained"])
@pytest.mark.parametrize(
    "shape", [(4, 4, 3), (3, 5, 2), (5, 3, 4)], ids=lambda s: "B{}T{}K{}".format(*s)
)
def test_hinge_matches_enumeration(shape, constrained, cost_kind):
    B, T, K = shape
    ssvm, em, tags, lengths, c, cost, cm = _setup(B, T, K, sum(shape), constrained, cost_kind)
    params = (ssvm.transitions, ssvm.start_transitions, ssvm.end_transitions)
    enums = enumerate_batch(em, lengths.tolist(), *params, c)
    expected = torch.stack([brute_hinge(e, tags[b, : e.length], cm) for b, e in enumerate(enums)])
    got = ssvm.loss(em, tags, lengths, cost=cost, reduction="none")
    assert got.shape == (B,)
    torch.testing.assert_close(got, expected, **F64)
    assert (got >= 0).all()
    torch.testing.assert_close(
        ssvm.loss(em, tags, lengths, cost=cost, reduction="sum"), expected.sum(), **F64
    )
    torch.testing.assert_close(
        ssvm.loss(em, tags, lengths, cost=cost, reduction="mean"), expected.mean(), **F64
    )
    torch.testing.assert_close(ssvm.loss(em, tags, lengths, cost=cost), expected.mean(), **F64)


@pytest.mark.parametrize("constrained", [False, True], ids=["free", "constrained"])
def test_perceptron_matches_enumeration(constrained):
    ssvm, em, tags, lengths, c, _, _ = _setup(5, 4, 3, 3, constrained, "hamming")
    params = (ssvm.transitions, ssvm.start_transitions, ssvm.end_transitions)
    enums = enumerate_batch(em, lengths.tolist(), *params, c)
    expected = torch.stack([brute_hinge(e, tags[b, : e.length], None) for b, e in enumerate(enums)])
    got = ssvm.perceptron_loss(em, tags, lengths, reduction="none")
    torch.testing.assert_close(got, expected, **F64)
    assert (got >= 0).all()
    torch.testing.assert_close(ssvm.perceptron_loss(em, tags, lengths), expected.mean(), **F64)
    torch.testing.assert_close(
        ssvm.perceptron_loss(em, tags, lengths, reduction="sum"), expected.sum(), **F64
    )
    # a zero cost matrix is the perceptron
    zero = torch.zeros(3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        ssvm.loss(em, tags, lengths, cost=zero, reduction="none"), expected, **F64
    )


def test_decode_and_score_like_crf():
    c = allowed_transitions("BIO", ["O", "B-A", "I-A", "B-B", "I-B"])
    ssvm = randomize_(StructuredSVM(5, constraints=c).double(), 4)
    crf = CRF(5, constraints=c).double()
    crf.load_state_dict(ssvm.state_dict())
    g = torch.Generator().manual_seed(5)
    lengths = random_lengths(6, 7, g)
    em = torch.randn(6, 7, 5, generator=g, dtype=torch.float64)
    p1, s1 = ssvm.decode(em, lengths)
    p2, s2 = crf.decode(em, lengths)
    vp, vs = viterbi(
        em,
        ssvm.transitions,
        ssvm.start_transitions,
        ssvm.end_transitions,
        lengths=lengths,
        constraints=c,
    )
    assert torch.equal(p1, p2) and torch.equal(p1, vp)
    torch.testing.assert_close(s1, vs)
    torch.testing.assert_close(s1, s2)
    kp, ks = ssvm.decode(em, lengths, k=3)
    ep, es = kbest(
        em,
        ssvm.transitions,
        ssvm.start_transitions,
        ssvm.end_transitions,
        lengths=lengths,
        constraints=c,
        k=3,
    )
    assert torch.equal(kp, ep)
    torch.testing.assert_close(ks, es)
    tags = p1
    torch.testing.assert_close(
        ssvm.score(em, tags, lengths),
        sequence_score(
            em,
            tags,
            ssvm.transitions,
            ssvm.start_transitions,
            ssvm.end_transitions,
            lengths=lengths,
        ),
    )


def test_hinge_subgradient_is_feature_difference():
    # With a unique cost-augmented argmax y*, d loss / d emissions = onehot(y*) - onehot(gold).
    ssvm, em, tags, lengths, c, cost, cm = _setup(3, 4, 3, 21, False, "hamming")
    params = (ssvm.transitions, ssvm.start_transitions, ssvm.end_transitions)
    enums = enumerate_batch(em, lengths.tolist(), *params, c)
    em_g = em.clone().requires_grad_()
    ssvm.loss(em_g, tags, lengths, reduction="sum").backward()
    expected = torch.zeros_like(em)
    for b, e in enumerate(enums):
        L = e.length
        gold = tags[b, :L]
        aug = e.scores + cm[gold[None, :], e.paths].sum(-1)
        top2 = torch.topk(aug, min(2, aug.numel())).values
        assert top2.numel() < 2 or top2[0] - top2[1] > 1e-6, "tie in the test data"
        y = e.paths[aug.argmax()]
        expected[b, torch.arange(L), y] += 1
        expected[b, torch.arange(L), gold] -= 1
    torch.testing.assert_close(em_g.grad, expected, **F64)
    for name, p in ssvm.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_training_reaches_zero_hinge_on_separable_batch():
    g = torch.Generator().manual_seed(23)
    B, T, D, K = 12, 8, 6, 4
    x = torch.randn(B, T, D, generator=g)
    lengths = random_lengths(B, T, g)
    tags = (x @ torch.randn(D, K, generator=g)).argmax(-1)
    tags = torch.where(lengths_to_mask(lengths, T), tags, torch.full_like(tags, -1))
    torch.manual_seed(0)
    proj = torch.nn.Linear(D, K)
    ssvm = StructuredSVM(K)
    opt = torch.optim.Adam(list(proj.parameters()) + list(ssvm.parameters()), lr=0.05)
    losses = []
    for _ in range(80):
        opt.zero_grad()
        loss = ssvm.loss(proj(x), tags, lengths)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses[::10]


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------


@st.composite
def ssvm_problems(draw):
    B = draw(st.integers(1, 4))
    T = draw(st.integers(1, 6))
    K = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    constrained = draw(st.booleans())
    g = torch.Generator().manual_seed(seed)
    lengths = random_lengths(B, T, g)
    constraints = None
    if constrained:
        t, s, e = random_masks(K, lengths.tolist(), g)
        constraints = ChainConstraints(t, s, e)
    ssvm = StructuredSVM(K, constraints=constraints).double()
    with torch.no_grad():
        for p in ssvm.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    em = torch.randn(B, T, K, generator=g, dtype=torch.float64)
    return ssvm, em, lengths, constraints, g


@given(ssvm_problems())
def test_losses_are_nonnegative(problem):
    ssvm, em, lengths, constraints, g = problem
    tags = valid_gold(ssvm, em, lengths)
    hinge = ssvm.loss(em, tags, lengths, reduction="none")
    perceptron = ssvm.perceptron_loss(em, tags, lengths, reduction="none")
    assert (hinge >= -1e-9).all(), hinge
    assert (perceptron >= -1e-9).all(), perceptron
    assert (hinge >= perceptron - 1e-9).all()  # costs are non-negative
    # y = the model's own prediction is a candidate: hinge >= score(pred) + hamming - score(gold)
    pred, _ = ssvm.decode(em, lengths)
    mask = lengths_to_mask(lengths, em.shape[1])
    wrong = ((pred != tags) & mask).sum(1).double()
    margin = ssvm.score(em, pred, lengths) - ssvm.score(em, tags, lengths)
    assert (hinge >= wrong + margin - 1e-9).all()
    assert (perceptron >= margin - 1e-9).all()


@given(ssvm_problems(), st.sampled_from(["hamming", "matrix"]))
def test_hinge_is_zero_when_gold_wins_by_the_margin(problem, cost_kind):
    ssvm, em, lengths, constraints, g = problem
    B, T, K = em.shape
    tags = valid_gold(ssvm, em, lengths)
    mask = lengths_to_mask(lengths, T)
    # emissions that make the gold path win by far more than any cost
    big = torch.nn.functional.one_hot(tags.clamp(min=0), K).double() * 50.0
    em_gold = em * 0.1 + big * mask[..., None]
    if cost_kind == "hamming":
        cost = "hamming"
    else:
        cost = torch.rand(K, K, generator=g, dtype=torch.float64) * 2
        cost.fill_diagonal_(0)
    hinge = ssvm.loss(em_gold, tags, lengths, cost=cost, reduction="none")
    torch.testing.assert_close(hinge, torch.zeros_like(hinge), rtol=0, atol=1e-9)
    perceptron = ssvm.perceptron_loss(em_gold, tags, lengths, reduction="none")
    torch.testing.assert_close(perceptron, torch.zeros_like(perceptron), rtol=0, atol=1e-9)


@given(ssvm_problems())
def test_hinge_matches_enumeration_property(problem):
    ssvm, em, lengths, constraints, g = problem
    tags = valid_gold(ssvm, em, lengths)
    params = (ssvm.transitions, ssvm.start_transitions, ssvm.end_transitions)
    enums = enumerate_batch(em, lengths.tolist(), *params, constraints)
    cm = hamming_cost_matrix(em.shape[-1])
    expected = torch.stack([brute_hinge(e, tags[b, : e.length], cm) for b, e in enumerate(enums)])
    torch.testing.assert_close(ssvm.loss(em, tags, lengths, reduction="none"), expected, **F64)
    t, s, e_ = constraint_masks(constraints, em.shape[-1])
    for b in range(em.shape[0]):
        assert path_is_valid(tags[b, : int(lengths[b])].tolist(), t, s, e_)
