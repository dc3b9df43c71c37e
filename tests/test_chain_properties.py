"""Property tests (hypothesis) and numerical-stability tests for the chain dynamic programs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from oracles import (
    constraint_masks,
    lengths_to_mask,
    logsumexp_scan,
    maxplus_scan,
    path_is_valid,
    random_lengths,
    random_masks,
)

from hybrid.structured import (
    ChainConstraints,
    kbest,
    log_partition,
    marginals,
    sequence_score,
    viterbi,
)

F64 = {"rtol": 1e-9, "atol": 1e-9}


class Instance:
    def __init__(self, B, T, K, seed, start_end, constrained, scale):
        g = torch.Generator().manual_seed(seed)
        self.B, self.T, self.K = B, T, K
        self.lengths = random_lengths(B, T, g)
        self.emissions = torch.randn(B, T, K, generator=g, dtype=torch.float64) * scale
        self.transitions = torch.randn(K, K, generator=g, dtype=torch.float64)
        self.start = torch.randn(K, generator=g, dtype=torch.float64) if start_end else None
        self.end = torch.randn(K, generator=g, dtype=torch.float64) if start_end else None
        if constrained:
            t, s, e = random_masks(K, self.lengths.tolist(), g, with_start_end=start_end)
            self.constraints = ChainConstraints(t, s, e)
        else:
            self.constraints = None

    def kw(self, **over):
        d = dict(start=self.start, end=self.end, lengths=self.lengths, constraints=self.constraints)
        d.update(over)
        return d

    @property
    def mask(self):
        return lengths_to_mask(self.lengths, self.T)

    def __repr__(self):
        return (
            f"Instance(B={self.B}, T={self.T}, K={self.K}, lengths={self.lengths.tolist()}, "
            f"constrained={self.constraints is not None}, start_end={self.start is not None})"
        )


@st.composite
def instances(draw, max_b=4, max_t=6, max_k=5):
    return Instance(
        B=draw(st.integers(1, max_b)),
        T=draw(st.integers(1, max_t)),
        K=draw(st.integers(1, max_k)),
        seed=draw(st.integers(0, 2**31 - 1)),
        start_end=draw(st.booleans()),
        constrained=draw(st.booleans()),
        scale=draw(st.sampled_from([0.1, 1.0, 5.0])),
    )


@given(instances())
def test_log_partition_dominates_viterbi(inst):
    lp = log_partition(inst.emissions, inst.transitions, **inst.kw())
    _, vs = viterbi(inst.emissions, inst.transitions, **inst.kw())
    assert torch.isfinite(lp).all() and torch.isfinite(vs).all()
    assert (lp >= vs - 1e-9).all(), (lp, vs)


@given(instances())
def test_marginals_are_distributions(inst):
    unary, pair = marginals(inst.emissions, inst.transitions, **inst.kw(), pairwise=True)
    mask = inst.mask
    assert (unary >= 0).all() and (unary <= 1 + 1e-12).all()
    sums = unary.sum(-1)
    torch.testing.assert_close(sums[mask], torch.ones_like(sums[mask]), **F64)
    assert (unary[~mask] == 0).all()
    # pairwise marginals are consistent with the unary ones inside each sequence
    pmask = lengths_to_mask(inst.lengths - 1, max(inst.T - 1, 0))
    assert pair.shape == (inst.B, max(inst.T - 1, 0), inst.K, inst.K)
    torch.testing.assert_close(pair.sum(-1)[pmask], unary[:, :-1][pmask], **F64)
    torch.testing.assert_close(pair.sum(-2)[pmask], unary[:, 1:][pmask], **F64)
    assert (pair[~pmask] == 0).all()


@given(instances(), st.integers(1, 6))
def test_kbest_sorted_distinct_and_led_by_viterbi(inst, k):
    paths, scores = kbest(inst.emissions, inst.transitions, **inst.kw(), k=k)
    vp, vs = viterbi(inst.emissions, inst.transitions, **inst.kw())
    assert paths.shape == (inst.B, k, inst.T) and scores.shape == (inst.B, k)
    torch.testing.assert_close(scores[:, 0], vs, **F64)
    for b in range(inst.B):
        L = int(inst.lengths[b])
        s = scores[b]
        finite = torch.isfinite(s)
        n = int(finite.sum())
        assert finite[:n].all() and not finite[n:].any(), s  # -inf only at the tail
        assert (s[1:n] <= s[: n - 1]).all(), s
        rows = [tuple(paths[b, j, :L].tolist()) for j in range(n)]
        assert len(set(rows)) == n, rows
        assert (paths[b, :, L:] == -1).all() and (paths[b, n:] == -1).all()
        # claimed scores are the scores of the claimed paths
        if n:
            again = sequence_score(
                inst.emissions[b : b + 1].expand(n, -1, -1),
                paths[b, :n],
                inst.transitions,
                inst.start,
                inst.end,
                lengths=inst.lengths[b : b + 1].expand(n),
            )
            torch.testing.assert_close(again, s[:n], **F64)


@given(instances())
def test_viterbi_path_scores_what_it_claims(inst):
    paths, scores = viterbi(inst.emissions, inst.transitions, **inst.kw())
    again = sequence_score(
        inst.emissions, paths, inst.transitions, inst.start, inst.end, lengths=inst.lengths
    )
    torch.testing.assert_close(again, scores, **F64)
    t, s, e = constraint_masks(inst.constraints, inst.K)
    for b in range(inst.B):
        L = int(inst.lengths[b])
        assert path_is_valid(paths[b, :L].tolist(), t, s, e)
        assert (paths[b, L:] == -1).all()


@given(instances())
def test_gradient_of_log_partition_is_marginals(inst):
    em = inst.emissions.clone().requires_grad_()
    tr = inst.transitions.clone().requires_grad_()
    lp = log_partition(em, tr, **inst.kw())
    g_em, g_tr = torch.autograd.grad(lp.sum(), (em, tr))
    unary, pair = marginals(inst.emissions, inst.transitions, **inst.kw(), pairwise=True)
    torch.testing.assert_close(g_em, unary, **F64)
    torch.testing.assert_close(g_tr, pair.sum((0, 1)), **F64)


@given(instances(), st.floats(-50, 50))
def test_shifting_emissions_shifts_scores(inst, c):
    shifted = inst.emissions + c
    lp0 = log_partition(inst.emissions, inst.transitions, **inst.kw())
    lp1 = log_partition(shifted, inst.transitions, **inst.kw())
    L = inst.lengths.double()
    torch.testing.assert_close(lp1, lp0 + c * L, rtol=1e-9, atol=1e-8)
    p0, v0 = viterbi(inst.emissions, inst.transitions, **inst.kw())
    p1, v1 = viterbi(shifted, inst.transitions, **inst.kw())
    torch.testing.assert_close(v1, v0 + c * L, rtol=1e-9, atol=1e-8)
    m0 = marginals(inst.emissions, inst.transitions, **inst.kw())
    m1 = marginals(shifted, inst.transitions, **inst.kw())
    torch.testing.assert_close(m1, m0, rtol=1e-7, atol=1e-9)


@given(instances())
def test_batched_equals_one_by_one(inst):
    lp = log_partition(inst.emissions, inst.transitions, **inst.kw())
    vp, vs = viterbi(inst.emissions, inst.transitions, **inst.kw())
    m = marginals(inst.emissions, inst.transitions, **inst.kw())
    for b in range(inst.B):
        L = int(inst.lengths[b])
        em_b = inst.emissions[b : b + 1, :L]
        kw = inst.kw(lengths=None)
        torch.testing.assert_close(
            log_partition(em_b, inst.transitions, **kw), lp[b : b + 1], **F64
        )
        p_b, s_b = viterbi(em_b, inst.transitions, **kw)
        torch.testing.assert_close(s_b, vs[b : b + 1], **F64)
        torch.testing.assert_close(marginals(em_b, inst.transitions, **kw), m[b : b + 1, :L], **F64)


@given(instances())
def test_padding_content_is_irrelevant(inst):
    # Values past each length must not influence any result.
    noisy = inst.emissions.clone()
    noisy[~inst.mask] = 1e6
    for fn in (log_partition, marginals):
        torch.testing.assert_close(
            fn(noisy, inst.transitions, **inst.kw()),
            fn(inst.emissions, inst.transitions, **inst.kw()),
            **F64,
        )
    p0, s0 = viterbi(inst.emissions, inst.transitions, **inst.kw())
    p1, s1 = viterbi(noisy, inst.transitions, **inst.kw())
    torch.testing.assert_close(s1, s0, **F64)
    assert torch.equal(p0, p1)


# --------------------------------------------------------------------------------------------
# numerical stability: long sequences, huge scores
# --------------------------------------------------------------------------------------------


def _long_instance(dtype, constrained):
    g = torch.Generator().manual_seed(2024)
    B, T, K = 2, 10_000, 5
    em = ((torch.rand(B, T, K, generator=g, dtype=torch.float64) * 2 - 1) * 1e4).to(dtype)
    tr = (torch.randn(K, K, generator=g, dtype=torch.float64) * 10).to(dtype)
    st_ = (torch.randn(K, generator=g, dtype=torch.float64) * 10).to(dtype)
    en = (torch.randn(K, generator=g, dtype=torch.float64) * 10).to(dtype)
    lengths = torch.tensor([T, 6_123])
    constraints = None
    if constrained:
        # a fixed BIO-like mask: tag 0 = O, (1, 2) = (B-A, I-A), (3, 4) = (B-B, I-B)
        allowed = torch.ones(K, K, dtype=torch.bool)
        allowed[:, 2] = False
        allowed[1, 2] = allowed[2, 2] = True
        allowed[:, 4] = False
        allowed[3, 4] = allowed[4, 4] = True
        start_ok = torch.tensor([True, True, False, True, False])
        constraints = ChainConstraints(allowed, start_ok, None)
    return em, tr, st_, en, lengths, constraints


@pytest.fixture(scope="module")
def long_references():
    out = {}
    for constrained in (False, True):
        em, tr, st_, en, lengths, c = _long_instance(torch.float64, constrained)
        tr_eff, st_eff = tr.clone(), st_.clone()
        if c is not None:
            tr_eff[~c.transitions] = float("-inf")
            st_eff[~c.start] = float("-inf")
        out[constrained] = (
            logsumexp_scan(em, tr_eff, st_eff, en, lengths),
            maxplus_scan(em, tr_eff, st_eff, en, lengths),
        )
    return out


@pytest.mark.parametrize("constrained", [False, True], ids=["free", "constrained"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_long_sequences_with_huge_scores(dtype, constrained, long_references):
    em, tr, st_, en, lengths, c = _long_instance(dtype, constrained)
    ref_lp, ref_vit = long_references[constrained]
    # float32 inputs are rounded copies of the float64 ones; recompute the reference from them
    if dtype == torch.float32:
        tr_eff, st_eff = tr.double().clone(), st_.double().clone()
        if c is not None:
            tr_eff[~c.transitions] = float("-inf")
            st_eff[~c.start] = float("-inf")
        ref_lp = logsumexp_scan(em.double(), tr_eff, st_eff, en.double(), lengths)
        ref_vit = maxplus_scan(em.double(), tr_eff, st_eff, en.double(), lengths)
    # float32 accumulates rounding over 10k steps of magnitude ~1e4 each: allow 1e-4 relative.
    tol = {"rtol": 1e-4, "atol": 0.0} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 0.0}

    em_g = em.clone().requires_grad_()
    tr_g = tr.clone().requires_grad_()
    st_g = st_.clone().requires_grad_()
    en_g = en.clone().requires_grad_()
    lp = log_partition(em_g, tr_g, st_g, en_g, lengths=lengths, constraints=c)
    assert torch.isfinite(lp).all(), lp
    torch.testing.assert_close(lp.double(), ref_lp, **tol)
    lp.sum().backward()
    for name, x in (("emissions", em_g), ("transitions", tr_g), ("start", st_g), ("end", en_g)):
        assert x.grad is not None and torch.isfinite(x.grad).all(), f"non-finite grad for {name}"
    mask = lengths_to_mask(lengths, em.shape[1])
    assert (em_g.grad[~mask] == 0).all()

    paths, scores = viterbi(em, tr, st_, en, lengths=lengths, constraints=c)
    assert torch.isfinite(scores).all()
    torch.testing.assert_close(scores.double(), ref_vit, **tol)
    # the decoded path itself scores the optimum (computed in float64 from the inputs)
    again = sequence_score(
        em.double(), paths, tr.double(), st_.double(), en.double(), lengths=lengths
    )
    torch.testing.assert_close(again, ref_vit, **tol)
    assert (paths[1, int(lengths[1]) :] == -1).all()
    if c is not None:
        t_mask, s_mask, e_mask = constraint_masks(c, 5)
        for b in range(2):
            assert path_is_valid(paths[b, : int(lengths[b])].tolist(), t_mask, s_mask, e_mask)

    m = marginals(em, tr, st_, en, lengths=lengths, constraints=c)
    assert torch.isfinite(m).all()


@pytest.mark.parametrize("constrained", [False, True], ids=["free", "constrained"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_long_sequences_marginals_are_normalised(dtype, constrained):
    # Marginals (and d logZ / d emissions, which equal them) are probabilities at every position,
    # even when the log-scores themselves reach ~1e8.
    em, tr, st_, en, lengths, c = _long_instance(dtype, constrained)
    mask = lengths_to_mask(lengths, em.shape[1])
    atol = 1e-3 if dtype == torch.float32 else 1e-6
    m = marginals(em, tr, st_, en, lengths=lengths, constraints=c)
    assert torch.isfinite(m).all()
    assert (m >= 0).all() and (m <= 1 + atol).all(), (m.min(), m.max())
    rows = m.sum(-1)[mask].double()
    torch.testing.assert_close(rows, torch.ones_like(rows), rtol=0, atol=atol)
    em_g = em.clone().requires_grad_()
    log_partition(em_g, tr, st_, en, lengths=lengths, constraints=c).sum().backward()
    rows = em_g.grad.sum(-1)[mask].double()
    torch.testing.assert_close(rows, torch.ones_like(rows), rtol=0, atol=atol)


# --------------------------------------------------------------------------------------------
# half precision inputs and determinism
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_half_precision_scores_are_promoted(dtype):
    inst = Instance(B=4, T=7, K=5, seed=8, start_end=True, constrained=True, scale=1.0)
    em = inst.emissions.to(dtype)
    tr = inst.transitions.to(dtype)
    st_, en = inst.start.to(dtype), inst.end.to(dtype)
    kw = inst.kw(start=st_, end=en)
    # reference: the same (rounded) values in float64
    ref_kw = inst.kw(start=st_.double(), end=en.double())
    lp = log_partition(em, tr, **kw)
    ref = log_partition(em.double(), tr.double(), **ref_kw)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp.double(), ref, rtol=1e-2, atol=1e-2)
    _, vs = viterbi(em, tr, **kw)
    _, ref_vs = viterbi(em.double(), tr.double(), **ref_kw)
    torch.testing.assert_close(vs.double(), ref_vs, rtol=1e-2, atol=1e-2)
    m = marginals(em, tr, **kw)
    torch.testing.assert_close(
        m.double(), marginals(em.double(), tr.double(), **ref_kw), rtol=0, atol=1e-2
    )


def test_results_are_deterministic():
    inst = Instance(B=4, T=9, K=6, seed=9, start_end=True, constrained=True, scale=2.0)
    runs = []
    for _ in range(2):
        em = inst.emissions.clone().requires_grad_()
        lp = log_partition(em, inst.transitions, **inst.kw())
        (g,) = torch.autograd.grad(lp.sum(), em)
        p, s = viterbi(inst.emissions, inst.transitions, **inst.kw())
        kp, ks = kbest(inst.emissions, inst.transitions, **inst.kw(), k=4)
        runs.append((lp.detach(), g, p, s, kp, ks))
    for a, b in zip(runs[0], runs[1], strict=True):
        assert torch.equal(a, b)
