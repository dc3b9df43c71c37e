"""The fused CPU kernels against the eager engine, and their build and fallback behaviour."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch
from oracles import logsumexp_scan
from test_graph import random_graph

from hybrid import CRF
from hybrid.structured import graph_viterbi, log_partition, marginals, native, viterbi
from hybrid.structured.forward_backward import LogChain


def _random_problem(generator, dtype, scale):
    batch = int(torch.randint(1, 21, (1,), generator=generator))
    steps = int(torch.randint(1, 30, (1,), generator=generator))
    num_tags = int(torch.randint(1, 12, (1,), generator=generator))
    emissions = torch.randn(batch, steps, num_tags, generator=generator, dtype=dtype) * scale
    transitions = torch.randn(num_tags, num_tags, generator=generator, dtype=dtype)
    start = torch.randn(num_tags, generator=generator, dtype=dtype)
    end = torch.randn(num_tags, generator=generator, dtype=dtype)
    allowed = torch.rand(num_tags, num_tags, generator=generator) > 0.3
    allowed |= torch.eye(num_tags, dtype=torch.bool)  # self-loops keep a path of every length
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    return emissions, transitions, start, end, lengths, allowed


def _everything(emissions, transitions, start, end, lengths, allowed):
    params = [x.clone().requires_grad_() for x in (emissions, transitions, start, end)]
    log_z = log_partition(*params, lengths=lengths, constraints=allowed)
    grads = torch.autograd.grad(log_z.sum(), params)
    paths, scores = viterbi(emissions, transitions, start, end, lengths, allowed)
    unary = marginals(emissions, transitions, start, end, lengths, allowed)
    return [log_z.detach(), *grads, paths, scores, unary]


def test_kernels_are_built_at_install_where_a_compiler_exists():
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler on this machine: the eager engine is used")
    assert native._library_path().is_file(), "pip install builds the kernels beside their sources"
    assert native.available(torch.zeros(1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scale", [1.0, 30.0], ids=["moderate", "peaked"])
def test_native_equals_eager(dtype, scale):
    if not native.available(torch.zeros(1, dtype=dtype)):
        pytest.skip("fused kernels unavailable")
    generator = torch.Generator().manual_seed(7)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-9}
    for _ in range(25):
        problem = _random_problem(generator, dtype, scale)
        fused = _everything(*problem)
        with native.disabled():
            eager = _everything(*problem)
        for a, b in zip(fused, eager, strict=True):
            if a.dtype == torch.long:
                assert torch.equal(a, b)
            else:
                torch.testing.assert_close(a, b, **tol)


def test_rows_outside_the_safe_range_are_recomputed_exactly():
    # One row with scores of +-3e4 (its rescaling underflows) among ordinary rows: every row
    # must match the float64 log-space reference, and the ordinary rows keep the fast result.
    generator = torch.Generator().manual_seed(3)
    emissions = torch.randn(4, 40, 6, generator=generator, dtype=torch.float64)
    emissions[2] *= 1e4
    transitions = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    transitions[0, 1:] = float("-inf")
    lengths = torch.tensor([40, 17, 33, 5])
    zeros = torch.zeros(6, dtype=torch.float64)
    reference = logsumexp_scan(emissions, transitions, zeros, zeros, lengths)
    em = emissions.clone().requires_grad_()
    log_z = log_partition(em, transitions, lengths=lengths)
    torch.testing.assert_close(log_z, reference, rtol=1e-12, atol=0.0)
    (grad,) = torch.autograd.grad(log_z.sum(), em)
    inside = torch.arange(40)[None, :] < lengths[:, None]
    exact = LogChain(
        torch.where(inside[..., None], emissions, 0.0).transpose(0, 1),
        transitions,
        zeros,
        zeros,
        lengths,
    )
    unary, _, _ = exact.posteriors()
    torch.testing.assert_close(grad, unary.transpose(0, 1), rtol=1e-9, atol=1e-12)


def test_nll_gradients_agree_between_engines():
    generator = torch.Generator().manual_seed(11)
    crf = CRF(7)
    emissions = torch.randn(12, 25, 7, generator=generator)
    tags = torch.randint(0, 7, (12, 25), generator=generator)
    lengths = torch.randint(1, 26, (12,), generator=generator)

    def run():
        crf.zero_grad()
        em = emissions.clone().requires_grad_()
        crf.nll(em, tags, lengths, reduction="sum").backward()
        return [em.grad, crf.transitions.grad, crf.start_transitions.grad, crf.end_transitions.grad]

    fused = run()
    with native.disabled():
        eager = run()
    for a, b in zip(fused, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", "not built when the package was installed"),
        ("other sources", "built from other sources than those beside it"),
    ],
)
def test_missing_or_stale_kernels_warn_and_fall_back(change, message, tmp_path, monkeypatch):
    """An install without a compiler leaves no library; a library built before its sources
    changed is refused. Either way the eager engine runs, after one warning."""
    if change == "missing":
        monkeypatch.setattr(native, "_library_path", lambda: tmp_path / "_kernels.so")
    else:
        if not native._library_path().is_file():
            pytest.skip("the kernels were not built here")
        monkeypatch.setattr(native._build, "digest", lambda: 12345)
    native._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=message):
            assert not native.available(torch.zeros(1))
        emissions = torch.randn(2, 5, 3)
        log_z = log_partition(emissions, torch.zeros(3, 3))
        torch.testing.assert_close(log_z, torch.logsumexp(emissions, -1).sum(-1) + 0.0)
    finally:
        native._library.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.undo()
        assert native.available(torch.zeros(1)) == native._library_path().is_file()


def test_native_equals_eager_on_larger_graphs():
    generator = torch.Generator().manual_seed(2)
    graph = random_graph(generator, states=40, arcs=300, emissions=25, labels=10, forbid=0.1)
    scores = torch.randn(6, 50, 25, generator=generator)
    lengths = torch.tensor([50, 1, 17, 33, 50, 2])
    for beam in (None, 8.0, 3.0):
        fast = graph_viterbi(scores, graph, lengths, beam=beam)
        with native.disabled():
            slow = graph_viterbi(scores, graph, lengths, beam=beam)
        for a, b in zip(fast, slow, strict=True):
            torch.testing.assert_close(a, b)
