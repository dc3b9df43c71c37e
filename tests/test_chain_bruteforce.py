"""Chain dynamic programs against exhaustive enumeration of all tag sequences.

Tiny shapes (K <= 5, T <= 5), batched with variable lengths (always including length 1 and T),
with and without start/end scores, with and without constraints. Every expected value comes
from :mod:`oracles`, which enumerates the K**L paths of each batch item.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from oracles import (
    NEG_INF,
    all_paths,
    constraint_masks,
    direct_sequence_score,
    enumerate_batch,
    lengths_to_mask,
    path_is_valid,
    random_lengths,
    random_masks,
    random_tags,
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
F32 = {"rtol": 1e-5, "atol": 2e-5}

# Label sets used for the scheme-constrained cases (one per K).
SCHEME_LABELS = {
    1: ("BIO", ["O"]),
    2: ("BIO", ["O", "B-A"]),
    3: ("BIO", ["O", "B-A", "I-A"]),
    # I-B can never be used under BIO here (no B-B), so it must get exactly zero mass.
    4: ("BIO", ["B-A", "I-A", "O", "I-B"]),
    5: ("BIOES", ["O", "B-A", "I-A", "E-A", "S-A"]),
}

# (B, T, K)
SHAPES = [(3, 1, 3), (4, 3, 1), (4, 4, 2), (5, 5, 3), (4, 4, 4), (3, 5, 4), (4, 4, 5)]
CONSTRAINT_MODES = ["none", "random", "random_bare", "scheme"]


@dataclass
class Case:
    emissions: torch.Tensor
    transitions: torch.Tensor
    start: torch.Tensor | None
    end: torch.Tensor | None
    lengths: torch.Tensor
    constraints: object
    enums: list = field(default_factory=list)

    @property
    def B(self):
        return self.emissions.shape[0]

    @property
    def T(self):
        return self.emissions.shape[1]

    @property
    def K(self):
        return self.emissions.shape[2]

    def kwargs(self, lengths=None):
        return dict(
            start=self.start,
            end=self.end,
            lengths=self.lengths if lengths is None else lengths,
            constraints=self.constraints,
        )

    def masks(self):
        return constraint_masks(self.constraints, self.K)


def build_case(B, T, K, *, seed, start_end, mode, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    lengths = random_lengths(B, T, g)
    emissions = (torch.randn(B, T, K, generator=g) * scale).to(dtype)
    transitions = torch.randn(K, K, generator=g).to(dtype)
    start = torch.randn(K, generator=g).to(dtype) if start_end else None
    end = torch.randn(K, generator=g).to(dtype) if start_end else None
    if mode == "none":
        constraints = None
    elif mode == "random":
        t, s, e = random_masks(K, lengths.tolist(), g, with_start_end=True)
        constraints = ChainConstraints(t, s, e)
    elif mode == "random_bare":
        t, _, _ = random_masks(K, lengths.tolist(), g, with_start_end=False)
        constraints = t
    elif mode == "scheme":
        from hybrid import allowed_transitions

        scheme, labels = SCHEME_LABELS[K]
        constraints = allowed_transitions(scheme, labels)
    else:  # pragma: no cover
        raise AssertionError(mode)
    case = Case(emissions, transitions, start, end, lengths, constraints)
    case.enums = enumerate_batch(emissions, lengths.tolist(), transitions, start, end, constraints)
    return case


def _case_params():
    params = []
    for i, (B, T, K) in enumerate(SHAPES):
        for start_end in (True, False):
            for mode in CONSTRAINT_MODES:
                seed = 1000 * i + 10 * CONSTRAINT_MODES.index(mode) + int(start_end)
                ident = f"B{B}T{T}K{K}-{'se' if start_end else 'nose'}-{mode}"
                params.append(pytest.param((B, T, K, seed, start_end, mode), id=ident))
    return params


CASE_PARAMS = _case_params()
CONSTRAINED_PARAMS = [p for p in CASE_PARAMS if p.values[0][5] != "none"]


@pytest.fixture(params=CASE_PARAMS)
def case(request):
    B, T, K, seed, start_end, mode = request.param
    return build_case(B, T, K, seed=seed, start_end=start_end, mode=mode)


@pytest.fixture(params=CONSTRAINED_PARAMS)
def constrained_case(request):
    B, T, K, seed, start_end, mode = request.param
    return build_case(B, T, K, seed=seed, start_end=start_end, mode=mode)


# --------------------------------------------------------------------------------------------
# log partition
# --------------------------------------------------------------------------------------------


def test_log_partition_matches_enumeration(case):
    got = log_partition(case.emissions, case.transitions, **case.kwargs())
    expected = torch.stack([e.log_partition() for e in case.enums])
    assert got.shape == (case.B,)
    assert got.dtype == case.emissions.dtype
    torch.testing.assert_close(got, expected, **F64)


def test_log_partition_accepts_prefix_mask(case):
    mask = lengths_to_mask(case.lengths, case.T)
    got = log_partition(case.emissions, case.transitions, **case.kwargs(lengths=mask))
    expected = torch.stack([e.log_partition() for e in case.enums])
    torch.testing.assert_close(got, expected, **F64)


def test_lengths_none_means_full_length(case):
    # lengths always include T, so the full length admits a path in every case
    full = torch.full((case.B,), case.T, dtype=torch.long)
    kw = case.kwargs()
    kw["lengths"] = None
    a = log_partition(case.emissions, case.transitions, **kw)
    kw["lengths"] = full
    b = log_partition(case.emissions, case.transitions, **kw)
    torch.testing.assert_close(a, b, **F64)
    enum_full = enumerate_batch(
        case.emissions, full.tolist(), case.transitions, case.start, case.end, case.constraints
    )
    torch.testing.assert_close(a, torch.stack([e.log_partition() for e in enum_full]), **F64)


# --------------------------------------------------------------------------------------------
# Viterbi
# --------------------------------------------------------------------------------------------


def test_viterbi_matches_enumeration(case):
    paths, scores = viterbi(case.emissions, case.transitions, **case.kwargs())
    assert paths.shape == (case.B, case.T)
    assert paths.dtype == torch.long
    assert scores.shape == (case.B,)
    t_mask, s_mask, e_mask = case.masks()
    for b, enum in enumerate(case.enums):
        L = enum.length
        best_path, best_score, gap = enum.best()
        torch.testing.assert_close(scores[b], best_score.to(scores.dtype), **F64)
        assert (paths[b, L:] == -1).all(), paths[b]
        path = paths[b, :L]
        assert ((path >= 0) & (path < case.K)).all(), path
        assert path_is_valid(path.tolist(), t_mask, s_mask, e_mask), path
        # The returned path must score what the decoder claims, and be the argmax.
        torch.testing.assert_close(enum.score_of(path), best_score, **F64)
        if gap > 1e-6:
            assert path.tolist() == best_path.tolist()


# --------------------------------------------------------------------------------------------
# k-best
# --------------------------------------------------------------------------------------------


def check_kbest(case, k, paths, scores):
    assert paths.shape == (case.B, k, case.T)
    assert scores.shape == (case.B, k)
    assert paths.dtype == torch.long
    t_mask, s_mask, e_mask = case.masks()
    for b, enum in enumerate(case.enums):
        L = enum.length
        n = min(k, enum.num_valid)
        expected = enum.sorted_scores()[:n]
        torch.testing.assert_close(scores[b, :n].double(), expected, **F64)
        # non-increasing
        finite = scores[b, :n]
        assert (finite[1:] <= finite[:-1]).all(), finite
        seen = set()
        for j in range(n):
            p = paths[b, j]
            assert (p[L:] == -1).all(), p
            prefix = p[:L].tolist()
            assert all(0 <= v < case.K for v in prefix), prefix
            assert path_is_valid(prefix, t_mask, s_mask, e_mask), prefix
            torch.testing.assert_close(enum.score_of(prefix), scores[b, j].double(), **F64)
            seen.add(tuple(prefix))
        assert len(seen) == n, f"duplicate paths in k-best for item {b}: {paths[b, :n]}"
        # fewer valid paths than k: trailing -inf scores and all -1 paths
        assert torch.isneginf(scores[b, n:]).all(), scores[b]
        assert (paths[b, n:] == -1).all(), paths[b]


@pytest.mark.parametrize("k", [1, 3])
def test_kbest_matches_enumeration(case, k):
    paths, scores = kbest(case.emissions, case.transitions, **case.kwargs(), k=k)
    check_kbest(case, k, paths, scores)


def test_kbest_more_than_available(case):
    # Items of length 1 or 2 have at most K**2 paths, so k = K**2 + 2 overflows them.
    k = case.K**2 + 2
    paths, scores = kbest(case.emissions, case.transitions, **case.kwargs(), k=k)
    check_kbest(case, k, paths, scores)


def test_kbest_first_equals_viterbi(case):
    vp, vs = viterbi(case.emissions, case.transitions, **case.kwargs())
    kp, ks = kbest(case.emissions, case.transitions, **case.kwargs(), k=2)
    torch.testing.assert_close(ks[:, 0], vs, **F64)
    for b, enum in enumerate(case.enums):
        if enum.best()[2] > 1e-6:
            assert kp[b, 0].tolist() == vp[b].tolist()


def test_kbest_enumerates_everything_on_tiny_chain():
    # B=2, T=3, K=2: 8 paths for the long item, 2 for the short one; ask for 10.
    g = torch.Generator().manual_seed(7)
    em = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    tr = torch.randn(2, 2, generator=g, dtype=torch.float64)
    st = torch.randn(2, generator=g, dtype=torch.float64)
    en = torch.randn(2, generator=g, dtype=torch.float64)
    lengths = torch.tensor([3, 1])
    case = Case(em, tr, st, en, lengths, None)
    case.enums = enumerate_batch(em, [3, 1], tr, st, en)
    paths, scores = kbest(em, tr, st, en, lengths=lengths, k=10)
    check_kbest(case, 10, paths, scores)
    assert torch.isfinite(scores[0, :8]).all() and torch.isneginf(scores[0, 8:]).all()
    assert torch.isfinite(scores[1, :2]).all() and torch.isneginf(scores[1, 2:]).all()
    # all 8 sequences appear exactly once
    assert {tuple(p) for p in paths[0, :8].tolist()} == {tuple(p) for p in all_paths(3, 2).tolist()}


# --------------------------------------------------------------------------------------------
# marginals
# --------------------------------------------------------------------------------------------


def _expected_unary(case):
    out = torch.zeros(case.B, case.T, case.K, dtype=torch.float64)
    support = torch.zeros(case.B, case.T, case.K, dtype=torch.bool)
    for b, enum in enumerate(case.enums):
        m, s = enum.unary()
        out[b, : enum.length] = m
        support[b, : enum.length] = s
    return out, support


def _expected_pairwise(case):
    T1 = max(case.T - 1, 0)
    out = torch.zeros(case.B, T1, case.K, case.K, dtype=torch.float64)
    support = torch.zeros(case.B, T1, case.K, case.K, dtype=torch.bool)
    for b, enum in enumerate(case.enums):
        m, s = enum.pairwise()
        out[b, : enum.length - 1] = m
        support[b, : enum.length - 1] = s
    return out, support


def test_unary_marginals_match_enumeration(case):
    got = marginals(case.emissions, case.transitions, **case.kwargs())
    expected, support = _expected_unary(case)
    assert got.shape == (case.B, case.T, case.K)
    torch.testing.assert_close(got, expected, **F64)
    # impossible states (and everything past each length) carry exactly zero mass
    assert (got[~support] == 0).all(), got[~support]


def test_pairwise_marginals_match_enumeration(case):
    unary, pair = marginals(case.emissions, case.transitions, **case.kwargs(), pairwise=True)
    expected_u, _ = _expected_unary(case)
    expected_p, support = _expected_pairwise(case)
    torch.testing.assert_close(unary, expected_u, **F64)
    assert pair.shape == (case.B, max(case.T - 1, 0), case.K, case.K)
    torch.testing.assert_close(pair, expected_p, **F64)
    assert (pair[~support] == 0).all(), pair[~support]


def test_forbidden_transitions_have_exactly_zero_mass(constrained_case):
    case = constrained_case
    t_mask, s_mask, e_mask = case.masks()
    unary, pair = marginals(case.emissions, case.transitions, **case.kwargs(), pairwise=True)
    assert (pair[:, :, ~t_mask] == 0).all()
    assert (unary[:, 0, ~s_mask] == 0).all()
    last = unary[torch.arange(case.B), case.lengths - 1]
    assert (last[:, ~e_mask] == 0).all()


def test_decoders_never_use_forbidden_steps(constrained_case):
    case = constrained_case
    t_mask, s_mask, e_mask = case.masks()
    vp, _ = viterbi(case.emissions, case.transitions, **case.kwargs())
    kp, ks = kbest(case.emissions, case.transitions, **case.kwargs(), k=4)
    for b in range(case.B):
        L = int(case.lengths[b])
        assert path_is_valid(vp[b, :L].tolist(), t_mask, s_mask, e_mask)
        for j in range(4):
            if torch.isfinite(ks[b, j]):
                assert path_is_valid(kp[b, j, :L].tolist(), t_mask, s_mask, e_mask)


# --------------------------------------------------------------------------------------------
# sequence score
# --------------------------------------------------------------------------------------------


def test_sequence_score_matches_direct_formula(case):
    g = torch.Generator().manual_seed(123)
    tags = random_tags(case.lengths.tolist(), case.T, case.K, g, pad=-1)
    got = sequence_score(
        case.emissions, tags, case.transitions, case.start, case.end, lengths=case.lengths
    )
    expected = direct_sequence_score(
        case.emissions, tags, case.transitions, case.start, case.end, case.lengths.tolist()
    )
    assert got.shape == (case.B,)
    torch.testing.assert_close(got, expected, **F64)


def test_sequence_score_ignores_values_past_length():
    g = torch.Generator().manual_seed(5)
    B, T, K = 4, 5, 3
    em = torch.randn(B, T, K, generator=g, dtype=torch.float64)
    tr = torch.randn(K, K, generator=g, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 1, 3])
    tags = random_tags(lengths.tolist(), T, K, g, pad=-1)
    tags_other = tags.clone()
    mask = lengths_to_mask(lengths, T)
    tags_other[~mask] = 1
    a = sequence_score(em, tags, tr, lengths=lengths)
    b = sequence_score(em, tags_other, tr, lengths=lengths)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(
        a, direct_sequence_score(em, tags, tr, None, None, lengths.tolist()), **F64
    )


def test_viterbi_score_equals_sequence_score_of_its_path(case):
    paths, scores = viterbi(case.emissions, case.transitions, **case.kwargs())
    # constrained paths are valid, so the unconstrained formula gives the same number
    again = sequence_score(
        case.emissions, paths, case.transitions, case.start, case.end, lengths=case.lengths
    )
    torch.testing.assert_close(again, scores, **F64)


# --------------------------------------------------------------------------------------------
# -inf scores mean "forbidden", exactly like constraints
# --------------------------------------------------------------------------------------------


def test_neg_inf_scores_behave_like_constraints():
    g = torch.Generator().manual_seed(11)
    B, T, K = 4, 4, 3
    lengths = torch.tensor([4, 3, 2, 1])
    em = torch.randn(B, T, K, generator=g, dtype=torch.float64)
    tr = torch.randn(K, K, generator=g, dtype=torch.float64)
    st = torch.randn(K, generator=g, dtype=torch.float64)
    en = torch.randn(K, generator=g, dtype=torch.float64)
    allowed = torch.tensor([[True, False, True], [True, True, False], [False, True, True]])
    s_allowed = torch.tensor([True, True, False])
    e_allowed = torch.tensor([False, True, True])
    tr_inf = tr.masked_fill(~allowed, NEG_INF)
    st_inf = st.masked_fill(~s_allowed, NEG_INF)
    en_inf = en.masked_fill(~e_allowed, NEG_INF)
    c = ChainConstraints(allowed, s_allowed, e_allowed)
    enums = enumerate_batch(em, lengths.tolist(), tr, st, en, c)
    expected_lp = torch.stack([e.log_partition() for e in enums])
    lp_c = log_partition(em, tr, st, en, lengths=lengths, constraints=c)
    lp_inf = log_partition(em, tr_inf, st_inf, en_inf, lengths=lengths)
    torch.testing.assert_close(lp_c, expected_lp, **F64)
    torch.testing.assert_close(lp_inf, expected_lp, **F64)
    m_inf = marginals(em, tr_inf, st_inf, en_inf, lengths=lengths)
    m_c = marginals(em, tr, st, en, lengths=lengths, constraints=c)
    torch.testing.assert_close(m_inf, m_c, **F64)
    p_inf, s_inf = viterbi(em, tr_inf, st_inf, en_inf, lengths=lengths)
    p_c, s_c = viterbi(em, tr, st, en, lengths=lengths, constraints=c)
    torch.testing.assert_close(s_inf, s_c, **F64)
    assert torch.equal(p_inf, p_c)


def test_neg_inf_emissions_are_never_decoded():
    g = torch.Generator().manual_seed(12)
    B, T, K = 3, 5, 4
    lengths = torch.tensor([5, 3, 1])
    em = torch.randn(B, T, K, generator=g, dtype=torch.float64)
    tr = torch.randn(K, K, generator=g, dtype=torch.float64)
    banned = torch.rand(B, T, K, generator=g) < 0.4
    banned[..., 0] = False  # keep a valid path everywhere
    em = em.masked_fill(banned, NEG_INF)
    enums = enumerate_batch(em, lengths.tolist(), tr)
    lp = log_partition(em, tr, lengths=lengths)
    torch.testing.assert_close(lp, torch.stack([e.log_partition() for e in enums]), **F64)
    m = marginals(em, tr, lengths=lengths)
    assert (m[banned] == 0).all()
    paths, scores = viterbi(em, tr, lengths=lengths)
    kp, ks = kbest(em, tr, lengths=lengths, k=5)
    for b in range(B):
        L = int(lengths[b])
        for t in range(L):
            assert not banned[b, t, paths[b, t]]
            for j in range(5):
                if torch.isfinite(ks[b, j]):
                    assert not banned[b, t, kp[b, j, t]]
        torch.testing.assert_close(scores[b], enums[b].best()[1], **F64)


def test_all_transitions_forbidden_is_fine_for_length_one():
    g = torch.Generator().manual_seed(13)
    em = torch.randn(3, 4, 3, generator=g, dtype=torch.float64)
    tr = torch.randn(3, 3, generator=g, dtype=torch.float64)
    lengths = torch.ones(3, dtype=torch.long)
    c = torch.zeros(3, 3, dtype=torch.bool)
    lp = log_partition(em, tr, lengths=lengths, constraints=c)
    torch.testing.assert_close(lp, torch.logsumexp(em[:, 0], -1), **F64)
    paths, scores = viterbi(em, tr, lengths=lengths, constraints=c)
    assert torch.equal(paths[:, 0], em[:, 0].argmax(-1))
    assert (paths[:, 1:] == -1).all()


# --------------------------------------------------------------------------------------------
# float32: same oracles, relative tolerance
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,mode,start_end",
    [
        ((4, 5, 4), "none", True),
        ((5, 4, 3), "random", True),
        ((3, 5, 2), "random_bare", False),
        ((4, 4, 5), "scheme", True),
    ],
    ids=["none", "random", "bare", "scheme"],
)
def test_float32_against_enumeration(shape, mode, start_end):
    B, T, K = shape
    case = build_case(B, T, K, seed=77, start_end=start_end, mode=mode, dtype=torch.float32)
    lp = log_partition(case.emissions, case.transitions, **case.kwargs())
    assert lp.dtype == torch.float32
    torch.testing.assert_close(
        lp.double(), torch.stack([e.log_partition() for e in case.enums]), **F32
    )
    paths, scores = viterbi(case.emissions, case.transitions, **case.kwargs())
    assert scores.dtype == torch.float32
    for b, enum in enumerate(case.enums):
        _, best, gap = enum.best()
        torch.testing.assert_close(scores[b].double(), best, **F32)
        torch.testing.assert_close(enum.score_of(paths[b, : enum.length]), best, **F32)
    unary, pair = marginals(case.emissions, case.transitions, **case.kwargs(), pairwise=True)
    eu, su = _expected_unary(case)
    ep, sp = _expected_pairwise(case)
    torch.testing.assert_close(unary.double(), eu, **F32)
    torch.testing.assert_close(pair.double(), ep, **F32)
    assert (unary[~su] == 0).all() and (pair[~sp] == 0).all()
    kp, ks = kbest(case.emissions, case.transitions, **case.kwargs(), k=3)
    for b, enum in enumerate(case.enums):
        n = min(3, enum.num_valid)
        torch.testing.assert_close(ks[b, :n].double(), enum.sorted_scores()[:n], **F32)


# --------------------------------------------------------------------------------------------
# autograd
# --------------------------------------------------------------------------------------------


GRAD_CASES = [
    pytest.param((3, 4, 3), "none", True, id="plain"),
    pytest.param((4, 5, 2), "none", True, id="K2"),
    pytest.param((3, 4, 3), "random", True, id="random-constraints"),
    pytest.param((3, 4, 3), "scheme", True, id="bio-constraints"),
    pytest.param((4, 4, 5), "scheme", True, id="bioes-constraints"),
]


@pytest.mark.parametrize("shape,mode,start_end", GRAD_CASES)
def test_gradcheck_log_partition(shape, mode, start_end):
    B, T, K = shape
    case = build_case(B, T, K, seed=31, start_end=start_end, mode=mode)
    em = case.emissions.clone().requires_grad_()
    tr = case.transitions.clone().requires_grad_()
    st = case.start.clone().requires_grad_()
    en = case.end.clone().requires_grad_()

    def fn(e, t, s, n):
        return log_partition(e, t, s, n, lengths=case.lengths, constraints=case.constraints)

    assert torch.autograd.gradcheck(fn, (em, tr, st, en), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_log_partition_without_start_end():
    case = build_case(3, 4, 3, seed=32, start_end=False, mode="random_bare")
    em = case.emissions.clone().requires_grad_()
    tr = case.transitions.clone().requires_grad_()

    def fn(e, t):
        return log_partition(e, t, lengths=case.lengths, constraints=case.constraints)

    assert torch.autograd.gradcheck(fn, (em, tr), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradients_equal_marginals(case):
    em = case.emissions.clone().requires_grad_()
    tr = case.transitions.clone().requires_grad_()
    st = case.start.clone().requires_grad_() if case.start is not None else None
    en = case.end.clone().requires_grad_() if case.end is not None else None
    lp = log_partition(em, tr, st, en, lengths=case.lengths, constraints=case.constraints)
    inputs = [em, tr] + [x for x in (st, en) if x is not None]
    grads = torch.autograd.grad(lp.sum(), inputs)
    g_em, g_tr = grads[0], grads[1]

    unary, pair = marginals(case.emissions, case.transitions, **case.kwargs(), pairwise=True)
    eu, _ = _expected_unary(case)
    ep, _ = _expected_pairwise(case)
    torch.testing.assert_close(g_em, unary, **F64)
    torch.testing.assert_close(g_em, eu, **F64)
    torch.testing.assert_close(g_tr, pair.sum((0, 1)), **F64)
    torch.testing.assert_close(g_tr, ep.sum((0, 1)), **F64)
    if st is not None:
        g_st, g_en = grads[2], grads[3]
        torch.testing.assert_close(g_st, eu[:, 0].sum(0), **F64)
        last = eu[torch.arange(case.B), case.lengths - 1]
        torch.testing.assert_close(g_en, last.sum(0), **F64)


def test_gradient_of_weighted_sum_is_weighted_marginals():
    # d/d emissions of sum_b w_b * logZ_b = w_b * marginals_b (per-item backward is not mixed up)
    case = build_case(4, 5, 3, seed=41, start_end=True, mode="random")
    w = torch.tensor([0.5, -2.0, 3.0, 1.5], dtype=torch.float64)
    em = case.emissions.clone().requires_grad_()
    lp = log_partition(em, case.transitions, **case.kwargs())
    (g,) = torch.autograd.grad((lp * w).sum(), em)
    eu, _ = _expected_unary(case)
    torch.testing.assert_close(g, eu * w[:, None, None], **F64)
