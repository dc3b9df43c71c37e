"""Tree dynamic programs (`hybrid.structured.tree`) against their oracles.

Brute-force enumeration of every binary tree and labelling; `torch.autograd.gradcheck`;
torch-struct's ``TreeCRF`` (partition, marginals, argmax); hypothesis properties; bad input.
Every oracle test runs on both engines: the fused CPU kernels and the eager one.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_oracles import Enumeration

from hybrid.structured import (
    cky,
    native,
    span_hamming_cost,
    span_indicator,
    tree_hinge,
    tree_log_partition,
    tree_marginals,
    tree_score,
)

F64 = {"rtol": 1e-9, "atol": 1e-9}
NEG_INF = float("-inf")


@pytest.fixture(params=["native", "eager"])
def engine(request):
    """Run the test with the fused kernels ("native") or the eager engine ("eager")."""
    if request.param == "eager":
        with native.disabled():
            yield "eager"
    else:
        if not native.available(torch.zeros(1)):
            pytest.skip("fused kernels unavailable")
        yield "native"


def random_batch(lengths, size, labels, seed, pad=float("nan"), dtype=torch.float64):
    """Random scores ``(B, size + 1, size + 1, L)`` with ``pad`` on every unused entry."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(len(lengths), size + 1, size + 1, labels, generator=g, dtype=dtype)
    positions = torch.arange(size + 1)
    for b, n in enumerate(lengths):
        used = (positions[:, None] < positions[None, :]) & (positions[None, :] <= n)
        scores[b][~used] = pad
    return scores


BRUTE_SHAPES = [(n, 1) for n in range(1, 8)] + [(n, 2) for n in range(1, 7)]
BRUTE_SHAPES += [(n, 3) for n in range(1, 6)]


@pytest.mark.parametrize(("n", "labels"), BRUTE_SHAPES)
def test_single_sequences_match_brute_force(engine, n, labels):
    scores = random_batch([n], n, labels, seed=100 * n + labels)
    enum = Enumeration(scores[0], n)
    torch.testing.assert_close(tree_log_partition(scores)[0], enum.log_partition(), **F64)
    torch.testing.assert_close(tree_marginals(scores)[0], enum.marginals(n + 1), **F64)
    spans, best = cky(scores)
    want, rows = enum.best()
    torch.testing.assert_close(best[0], want, **F64)
    assert torch.equal(spans[0], rows)


@pytest.mark.parametrize("labels", [1, 2, 3])
def test_ragged_batches_match_brute_force(engine, labels):
    lengths = {1: [7, 1, 4, 6, 2], 2: [6, 3, 1, 5], 3: [5, 2, 4, 1]}[labels]
    size = max(lengths) + 2  # padding past the longest sequence too
    scores = random_batch(lengths, size, labels, seed=labels)
    lengths = torch.tensor(lengths)
    log_z = tree_log_partition(scores, lengths)
    marginals = tree_marginals(scores, lengths)
    spans, best = cky(scores, lengths)
    for b, n in enumerate(lengths.tolist()):
        enum = Enumeration(scores[b], n)
        torch.testing.assert_close(log_z[b], enum.log_partition(), **F64)
        torch.testing.assert_close(marginals[b], enum.marginals(size + 1), **F64)
        want, rows = enum.best()
        torch.testing.assert_close(best[b], want, **F64)
        assert torch.equal(spans[b, : 2 * n - 1], rows)
        assert (spans[b, 2 * n - 1 :] == -1).all()


@pytest.mark.parametrize("labels", [1, 2, 3])
def test_cost_augmented_best_and_hinge_match_brute_force(engine, labels):
    lengths = [5, 3, 1, 4] if labels < 3 else [4, 3, 1, 5]
    size = max(lengths)
    scores = random_batch(lengths, size, labels, seed=10 + labels)
    lengths = torch.tensor(lengths)
    gold, _ = cky(random_batch(lengths.tolist(), size, labels, seed=20 + labels), lengths)
    cost = span_hamming_cost(gold, scores.shape, lengths).double()
    _, augmented = cky(scores + cost, lengths)
    loss = tree_hinge(scores, gold, lengths)
    for b, n in enumerate(lengths.tolist()):
        enum = Enumeration(scores[b], n)
        rows = gold[b, : 2 * n - 1]
        want, _ = enum.best(enum.hamming(rows))
        torch.testing.assert_close(augmented[b], want, **F64)
        gold_score = enum.scores.flatten()[enum.hamming(rows).flatten() == 0]
        assert gold_score.numel() == 1
        torch.testing.assert_close(loss[b], want - gold_score[0], **F64)


def test_forbidden_spans_match_brute_force(engine):
    scores = random_batch([5], 5, 2, seed=3)
    scores[0, 0, 2] = NEG_INF  # span [0, 2) forbidden under every label
    scores[0, 1, 3, 0] = NEG_INF  # [1, 3) only with label 1
    enum = Enumeration(scores[0], 5)
    torch.testing.assert_close(tree_log_partition(scores)[0], enum.log_partition(), **F64)
    marginals = tree_marginals(scores)
    torch.testing.assert_close(marginals[0], enum.marginals(6), **F64)
    assert (marginals[0, 0, 2] == 0).all() and marginals[0, 1, 3, 0] == 0
    spans, best = cky(scores)
    torch.testing.assert_close(best[0], enum.best()[0], **F64)


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------


def test_gradcheck_float64(engine):
    scores = random_batch([4, 2, 1], 4, 2, seed=5, pad=0.0).requires_grad_()
    lengths = torch.tensor([4, 2, 1])
    assert torch.autograd.gradcheck(lambda x: tree_log_partition(x, lengths), (scores,))


def test_gradient_is_the_marginals_and_scales_with_the_upstream_gradient(engine):
    scores = random_batch([6, 3], 7, 3, seed=6).requires_grad_()
    lengths = torch.tensor([6, 3])
    weights = torch.tensor([2.0, -0.5], dtype=torch.float64)
    (tree_log_partition(scores, lengths) * weights).sum().backward()
    want = tree_marginals(scores.detach(), lengths) * weights[:, None, None, None]
    torch.testing.assert_close(scores.grad, want, **F64)


def test_engines_agree_on_larger_ragged_batches():
    if not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    lengths = [30, 17, 1, 24, 9]
    scores = random_batch(lengths, 32, 5, seed=8, dtype=torch.float32) * 3
    scores[1, 2:4, 6:9] = NEG_INF
    lengths = torch.tensor(lengths)

    def run():
        x = scores.clone().requires_grad_()
        log_z = tree_log_partition(x, lengths)
        log_z.sum().backward()
        return log_z.detach(), x.grad, *cky(scores, lengths)

    native_results = run()
    with native.disabled():
        eager_results = run()
    for a, b in zip(native_results, eager_results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_spans_far_below_the_rest_keep_their_digits(engine):
    # In float32 the kernels share one exp shift among the spans that start at a position; a
    # span whose labels all lie 300 below it is recomputed with its own shift.
    scores = random_batch([6, 4], 6, 3, seed=18, pad=0.0)
    scores[0, 0, 1] -= 300
    scores[1, 2, 4, :2] -= 300
    lengths = torch.tensor([6, 4])
    want_z, want_m = tree_log_partition(scores, lengths), tree_marginals(scores, lengths)
    got_z = tree_log_partition(scores.float(), lengths)
    got_m = tree_marginals(scores.float(), lengths)
    torch.testing.assert_close(got_z.double(), want_z, rtol=1e-6, atol=0)
    torch.testing.assert_close(got_m.double(), want_m, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_kernels_report_the_extremes_of_the_used_scores(dtype):
    # What spares the scores a pass of their own: the lowest entry above -inf, the highest,
    # and NaN, over the used spans only, as the inside pass and CKY read them.
    if not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    lengths = torch.tensor([5, 3, 4, 5, 2])
    scores = random_batch(lengths.tolist(), 5, 3, seed=40, pad=1e6, dtype=dtype)  # unused: huge
    scores[1, 0, 2, 1] = NEG_INF
    scores[2] = NEG_INF  # every used span of item 2 forbidden
    scores[3, 1, 4, 0] = float("nan")
    scores[4, 0, 1, 2] = float("inf")
    used = torch.zeros(scores.shape, dtype=torch.bool)
    for b, n in enumerate(lengths.tolist()):
        for i in range(n):
            used[b, i, i + 1 : n + 1] = True
    want = []
    for b in range(5):
        values = scores[b][used[b]]
        above = values[values > NEG_INF]
        low = float("nan") if values.isnan().any() else (above.min() if len(above) else torch.inf)
        want.append([float(low), float(values[~values.isnan()].max())])
    want = torch.tensor(want, dtype=dtype)
    for run in (native.tree_inside, native.tree_cky):
        extremes = torch.full((5, 2), 7.0, dtype=dtype)
        run(scores, lengths, extremes)
        torch.testing.assert_close(extremes, want, equal_nan=True, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# torch-struct
# ---------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*arg_constraints")
def test_torch_struct_tree_crf_agrees(engine):
    torch_struct = pytest.importorskip("torch_struct")
    lengths = torch.tensor([20, 10, 15, 13])
    scores = random_batch(lengths.tolist(), 20, 4, seed=9, pad=0.0)
    # torch-struct scores spans [i, j] of words (inclusive): ours [i, j + 1).
    peer = torch_struct.TreeCRF(scores[:, :-1, 1:].clone(), lengths=lengths)
    torch.testing.assert_close(tree_log_partition(scores, lengths), peer.partition, **F64)
    marginals = tree_marginals(scores, lengths)
    torch.testing.assert_close(marginals[:, :-1, 1:], peer.marginals, **F64)
    spans, best = cky(scores, lengths)
    torch.testing.assert_close(best, peer.max, **F64)
    chosen = span_indicator(spans, scores.shape, lengths).double()
    assert torch.equal(chosen[:, :-1, 1:], peer.argmax.detach())


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@st.composite
def problems(draw):
    """Small random batches: ragged lengths, some -inf spans, float64 scores."""
    size = draw(st.integers(1, 8))
    labels = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(1, size), min_size=1, max_size=3))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    forbid = draw(st.sampled_from([0.0, 0.2]))
    g = torch.Generator().manual_seed(seed)
    scores = random_batch(lengths, size, labels, seed) * scale
    if forbid:
        scores[torch.rand(scores.shape, generator=g) < forbid] = NEG_INF
        scores[..., 0] = scores[..., 0].nan_to_num(neginf=0.0)  # label 0: always a tree
    return scores, torch.tensor(lengths)


def _check_trees(spans: torch.Tensor, lengths: torch.Tensor) -> None:
    """Each row block is a binary tree over [0, n) in preorder, -1 past it."""
    for b, n in enumerate(lengths.tolist()):
        rows = spans[b, : 2 * n - 1].tolist()
        assert (spans[b, 2 * n - 1 :] == -1).all()
        assert rows[0][:2] == [0, n]
        assert sorted(rows, key=lambda r: (r[0], -r[1])) == rows
        pairs = {(i, j) for i, j, _ in rows}
        assert len(pairs) == 2 * n - 1 and all((i, i + 1) in pairs for i in range(n))
        for i, j, _ in rows:
            for k, m, _ in rows:
                assert not (i < k < j < m), "spans cross"
            if j - i > 1:  # exactly one split point with both children present
                assert sum((i, k) in pairs and (k, j) in pairs for k in range(i + 1, j)) == 1


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # engine: same each time
@given(problems())
def test_properties(engine, problem):
    scores, lengths = problem
    x = scores.clone().requires_grad_()
    log_z = tree_log_partition(x, lengths)
    log_z.sum().backward()
    marginals = tree_marginals(scores, lengths)
    spans, best = cky(scores, lengths)
    assert (log_z.detach() >= best - 1e-9).all()
    assert (marginals >= 0).all() and (marginals <= 1 + 1e-9).all()
    torch.testing.assert_close(marginals.sum((1, 2, 3)), (2 * lengths - 1).double(), **F64)
    torch.testing.assert_close(x.grad, marginals, **F64)
    _check_trees(spans, lengths)
    torch.testing.assert_close(tree_score(scores, spans, lengths), best, **F64)
    indicator = span_indicator(spans, scores.shape, lengths).double()
    torch.testing.assert_close((indicator * scores.nan_to_num()).sum((1, 2, 3)), best, **F64)
    hinge = tree_hinge(scores, spans, lengths)
    assert (hinge >= 0).all()
    _, augmented = cky(scores + span_hamming_cost(spans, scores.shape, lengths), lengths)
    assert (augmented >= best - 1e-9).all()


def test_a_gold_tree_with_a_margin_has_zero_hinge_and_its_subgradient_elsewhere(engine):
    scores = random_batch([6, 4], 6, 3, seed=12, pad=0.0)
    lengths = torch.tensor([6, 4])
    gold, _ = cky(scores, lengths)
    margin = scores + 5 * span_indicator(gold, scores.shape, lengths).double()
    assert torch.equal(tree_hinge(margin, gold, lengths), torch.zeros(2, dtype=torch.float64))
    other = scores - 5 * span_indicator(gold, scores.shape, lengths).double()
    x = other.clone().requires_grad_()
    loss = tree_hinge(x, gold, lengths)
    loss.sum().backward()
    predicted, value = cky(other + span_hamming_cost(gold, scores.shape, lengths), lengths)
    want = span_indicator(predicted, scores.shape, lengths) - span_indicator(
        gold, scores.shape, lengths
    )
    torch.testing.assert_close(x.grad, want.double())
    torch.testing.assert_close(loss, value - tree_score(other, gold, lengths), **F64)


# ---------------------------------------------------------------------------------------------
# dtypes, layouts, padding
# ---------------------------------------------------------------------------------------------


def test_unused_entries_are_ignored_whatever_they_hold(engine):
    clean = random_batch([5, 2], 6, 2, seed=13, pad=0.0)
    dirty = random_batch([5, 2], 6, 2, seed=13, pad=float("nan"))
    dirty[1, 0, 6] = float("inf")
    dirty[0, 3, 1] = 1e38
    lengths = torch.tensor([5, 2])
    torch.testing.assert_close(
        tree_log_partition(dirty, lengths), tree_log_partition(clean, lengths), **F64
    )
    torch.testing.assert_close(
        tree_marginals(dirty, lengths), tree_marginals(clean, lengths), **F64
    )
    assert torch.equal(cky(dirty, lengths)[0], cky(clean, lengths)[0])


def test_half_precision_is_promoted_and_boolean_masks_are_lengths(engine):
    scores = random_batch([4, 3], 4, 2, seed=14, pad=0.0)
    mask = torch.tensor([[True] * 4, [True] * 3 + [False]])
    log_z = tree_log_partition(scores.half(), mask)
    assert log_z.dtype == torch.float32
    want = tree_log_partition(scores.half().double(), torch.tensor([4, 3]))
    torch.testing.assert_close(log_z.double(), want, rtol=1e-5, atol=1e-5)
    assert tree_marginals(scores.bfloat16(), mask).dtype == torch.float32


def test_scores_that_overflow_float32_along_a_tree_run_in_float64(engine):
    scores = random_batch([5], 5, 2, seed=15, pad=0.0) * 3e36
    log_z = tree_log_partition(scores.float())
    assert log_z.dtype == torch.float32
    torch.testing.assert_close(log_z.double(), tree_log_partition(scores), rtol=1e-6, atol=0)


def test_views_give_the_results_of_contiguous_scores(engine):
    base = random_batch([6, 4, 5], 6, 3, seed=16, pad=0.0)
    view = base.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)  # labels not innermost
    lengths = torch.tensor([6, 4, 5])
    assert not view.is_contiguous()
    torch.testing.assert_close(tree_log_partition(view, lengths), tree_log_partition(base, lengths))
    assert torch.equal(cky(view, lengths)[0], cky(base, lengths)[0])


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

BAD_SCORES = [
    (torch.zeros(2, 4, 4), "scores must have shape"),
    (torch.zeros(2, 4, 5, 3), "scores must have shape"),
    (torch.zeros(2, 1, 1, 3), "scores must have shape"),
    (torch.zeros(0, 4, 4, 3), "scores must have shape"),
    (torch.zeros(2, 4, 4, 0), "scores must have shape"),
    (torch.zeros(2, 4, 4, 3, dtype=torch.long), "scores must be a floating-point"),
    ([[0.0]], "scores must be a torch.Tensor"),
]


@pytest.mark.parametrize(("scores", "match"), BAD_SCORES)
@pytest.mark.parametrize("function", [tree_log_partition, tree_marginals, cky])
def test_bad_scores_are_refused(function, scores, match):
    with pytest.raises(ValueError, match=match):
        function(scores)


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (torch.tensor([4, 0]), r"lengths must lie in \[1, T\] = \[1, 3\]"),
        (torch.tensor([4, 4]), r"lengths must lie in \[1, T\] = \[1, 3\]"),
        (torch.tensor([3.0, 2.0]), "lengths must be an integer tensor"),
        (torch.tensor([3]), r"lengths must have shape \(B,\)"),
        (torch.tensor([[True, False, True], [True] * 3]), "prefix"),
    ],
)
def test_bad_lengths_are_refused(lengths, match):
    with pytest.raises(ValueError, match=match):
        tree_log_partition(torch.zeros(2, 4, 4, 3), lengths)


def test_nan_inside_the_used_spans_is_refused_and_located():
    scores = torch.zeros(2, 5, 5, 3)
    scores[1, 1, 3, 2] = float("nan")
    with pytest.raises(ValueError, match=r"scores contain NaN.*batch 1, span \[1, 3\), label 2"):
        tree_log_partition(scores)
    scores[1, 1, 3, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        cky(scores)
    tree_log_partition(scores, torch.tensor([4, 2]))  # past the length: ignored


@pytest.mark.parametrize("function", [tree_log_partition, tree_marginals, cky])
def test_a_sequence_without_an_allowed_tree_is_named(engine, function):
    scores = torch.zeros(3, 4, 4, 2, dtype=torch.float64)
    scores[2, 0, 3] = NEG_INF  # the whole span of item 2, under every label
    with pytest.raises(ValueError, match=r"no valid tree for batch items \[2\]"):
        function(scores)


def _gold():
    return torch.tensor([[[0, 3, 0], [0, 1, 1], [1, 3, 0], [1, 2, 0], [2, 3, 1]]])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: s[:, :4], r"spans must have shape \(B, 2N - 1, 3\)"),
        (lambda s: s.double(), "spans must be an integer tensor"),
        (
            lambda s: s.index_put(
                (torch.tensor(0), torch.tensor(1), torch.tensor(2)), torch.tensor(2)
            ),
            "not a labelled span",
        ),  # noqa: E501
        (
            lambda s: s.index_put(
                (torch.tensor(0), torch.tensor(1), torch.tensor(1)), torch.tensor(4)
            ),
            "not a labelled span",
        ),  # noqa: E501
        (
            lambda s: s.index_put((torch.tensor(0), torch.tensor(4)), torch.tensor([0, 1, 0])),
            "appears twice",
        ),  # noqa: E501
        (
            lambda s: s.index_put((torch.tensor(0), torch.tensor(0)), torch.tensor([0, 2, 0])),
            "whole span",
        ),  # noqa: E501
        (
            lambda s: s.index_put((torch.tensor(0), torch.tensor(3)), torch.tensor([0, 2, 0])),
            "single-position span is missing",
        ),  # noqa: E501
    ],
)
def test_bad_trees_are_refused(change, match):
    scores = torch.zeros(1, 4, 4, 2)
    with pytest.raises(ValueError, match=match):
        tree_score(scores, change(_gold()))


def test_crossing_spans_are_refused():
    scores = torch.zeros(1, 5, 5, 1)
    crossing = torch.tensor(
        [[[0, 4, 0], [0, 3, 0], [1, 4, 0], [0, 1, 0], [1, 2, 0], [2, 3, 0], [3, 4, 0]]]
    )
    with pytest.raises(ValueError, match="batch item 0 do not form a binary tree.*cross"):
        tree_score(scores, crossing)


def test_rows_past_each_tree_are_ignored_and_gold_trees_in_any_order():
    scores = random_batch([3, 1], 3, 2, seed=17, pad=0.0)
    gold = torch.tensor(
        [
            [[1, 3, 0], [0, 3, 0], [2, 3, 1], [1, 2, 0], [0, 1, 1]],
            [[0, 1, 1], [7, 7, 7], [9, 9, 9], [-5, 0, 0], [0, 0, 0]],
        ]
    )
    lengths = torch.tensor([3, 1])
    want = torch.stack(
        [
            scores[0, 0, 3, 0]
            + scores[0, 0, 1, 1]
            + scores[0, 1, 3, 0]
            + scores[0, 1, 2, 0]
            + scores[0, 2, 3, 1],
            scores[1, 0, 1, 1],
        ]
    )
    torch.testing.assert_close(tree_score(scores, gold, lengths), want, **F64)


def test_a_forbidden_gold_tree_is_refused_by_the_hinge():
    scores = torch.zeros(1, 4, 4, 2)
    scores[0, 1, 3, 0] = NEG_INF
    with pytest.raises(ValueError, match=r"spans of batch items \[0\] use a labelled span"):
        tree_hinge(scores, _gold())
    assert torch.isneginf(tree_score(scores, _gold())).all()


def test_shape_and_lengths_of_the_helpers_are_checked():
    with pytest.raises(ValueError, match=r"shape must be \(B, N \+ 1, N \+ 1, L\)"):
        span_indicator(_gold(), (1, 4, 4))
    with pytest.raises(ValueError, match="lengths must lie"):
        span_hamming_cost(_gold(), (1, 4, 4, 2), torch.tensor([4]))
    cost = span_hamming_cost(_gold(), (1, 4, 4, 2))
    assert cost.sum() == 2 * 6 - 5 and cost[0, 0, 3, 0] == 0 and cost[0, 0, 3, 1] == 1


# ---------------------------------------------------------------------------------------------
# the structured hinge with a given cost
# ---------------------------------------------------------------------------------------------


def _rows_indicator(rows: torch.Tensor, shape: tuple) -> torch.Tensor:
    """``shape`` zeros with 1 at each row ``[i, j, label]`` of one tree."""
    out = torch.zeros(shape, dtype=torch.float64)
    for i, j, label in rows.tolist():
        out[i, j, label] = 1.0
    return out


def random_cost(gold, lengths, size, labels, seed, pad=float("nan")):
    """Uniform [0, 2) costs on the used spans, 0 on each gold tree's, ``pad`` elsewhere."""
    cost = random_batch(lengths.tolist(), size, labels, seed, pad=pad).abs() * 2 % 2
    for b, n in enumerate(lengths.tolist()):
        for i, j, label in gold[b, : 2 * n - 1].tolist():
            cost[b, i, j, label] = 0.0
    return cost


@pytest.mark.parametrize("labels", [1, 2, 3])
def test_hinge_with_a_given_cost_matches_brute_force(engine, labels):
    lengths = torch.tensor([5, 3, 1, 4] if labels < 3 else [4, 3, 1, 5])
    size = 5
    scores = random_batch(lengths.tolist(), size, labels, seed=30 + labels)
    gold, _ = cky(random_batch(lengths.tolist(), size, labels, seed=40 + labels), lengths)
    cost = random_cost(gold, lengths, size, labels, seed=50 + labels)  # NaN on unused entries
    loss = tree_hinge(scores, gold, lengths, cost=cost)
    for b, n in enumerate(lengths.tolist()):
        enum = Enumeration(scores[b], n)
        # the cost of each labelled tree: the sum of its spans' costs, as a score sums
        augmented = enum.scores + Enumeration(cost[b], n).scores
        rows = gold[b, : 2 * n - 1]
        gold_score = sum(scores[b, i, j, label] for i, j, label in rows.tolist())
        torch.testing.assert_close(loss[b], augmented.max() - gold_score, **F64)
        assert loss[b] >= 0


def test_hinge_with_the_hamming_cost_given_equals_the_default(engine):
    lengths = torch.tensor([6, 2, 4])
    scores = random_batch(lengths.tolist(), 6, 3, seed=61, pad=0.0)
    gold, _ = cky(random_batch(lengths.tolist(), 6, 3, seed=62), lengths)
    cost = span_hamming_cost(gold, scores.shape, lengths).double()
    results = []
    for given_cost in (None, cost):
        x = scores.clone().requires_grad_()
        loss = tree_hinge(x, gold, lengths, cost=given_cost)
        loss.sum().backward()
        results.append((loss.detach(), x.grad))
    assert (results[0][0] > 0).all()
    torch.testing.assert_close(results[1][0], results[0][0], **F64)
    torch.testing.assert_close(results[1][1], results[0][1], **F64)


def test_hinge_gradient_is_the_cost_augmented_best_minus_the_gold_tree(engine):
    scores = random_batch([5], 5, 2, seed=63, pad=0.0)
    lengths = torch.tensor([5])
    gold, _ = cky(random_batch([5], 5, 2, seed=64), lengths)
    cost = random_cost(gold, lengths, 5, 2, seed=65, pad=0.0)
    enum = Enumeration(scores[0], 5)
    augmented = enum.scores + Enumeration(cost[0], 5).scores
    top = augmented.flatten().topk(2).values
    assert top[0] - top[1] > 1e-3  # a unique maximum: the subgradient is the gradient
    _, best = enum.best(Enumeration(cost[0], 5).scores)
    assert not torch.equal(best, gold[0]) and not torch.equal(best, enum.best()[1])  # cost counts
    x = scores.clone().requires_grad_()
    tree_hinge(x, gold, lengths, cost=cost).sum().backward()
    want = _rows_indicator(best, scores.shape[1:]) - _rows_indicator(gold[0], scores.shape[1:])
    torch.testing.assert_close(x.grad[0], want, **F64)


def _set(cost: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    changed = cost.clone()
    changed[index] = value
    return changed


def _bad_costs():
    """``(change of a valid cost, message)``: the gold tree is ``_gold()`` over 3 positions,
    [0, 2) is no span of it and [1, 3) with label 0 is."""
    return [
        (lambda c: c[..., :1], "cost must be a floating-point tensor of the scores' shape"),
        (lambda c: c.long(), "cost must be a floating-point tensor"),
        (lambda c: _set(c, (0, 0, 2, 1), -0.5), ">= 0"),
        (lambda c: _set(c, (0, 0, 2, 1), float("nan")), "finite"),
        (lambda c: _set(c, (0, 0, 2, 1), float("inf")), "finite"),
        (
            lambda c: _set(c, (0, 1, 3, 0), 0.5),
            r"0 on the gold tree's spans; not so for items \[0\]",
        ),
        (lambda c: [[0.0]], "cost must be a torch.Tensor"),
    ]


@pytest.mark.parametrize(("change", "match"), _bad_costs())
def test_bad_costs_are_refused(change, match):
    scores = torch.zeros(1, 4, 4, 2)
    cost = torch.ones(1, 4, 4, 2)
    for i, j, label in _gold()[0].tolist():
        cost[0, i, j, label] = 0.0
    tree_hinge(scores, _gold(), cost=cost)  # the valid cost is accepted
    with pytest.raises(ValueError, match=match):
        tree_hinge(scores, _gold(), cost=change(cost))


def test_costs_past_the_lengths_are_ignored():
    scores = random_batch([3, 2], 3, 2, seed=66, pad=0.0)
    lengths = torch.tensor([3, 2])
    gold, _ = cky(scores, lengths)
    cost = random_cost(gold, lengths, 3, 2, seed=67, pad=0.0)
    want = tree_hinge(scores, gold, lengths, cost=cost)
    cost[1, :, 3] = -7.0  # spans ending past item 1's length
    cost[0, 2, 1] = float("nan")  # i >= j
    torch.testing.assert_close(tree_hinge(scores, gold, lengths, cost=cost), want, **F64)
