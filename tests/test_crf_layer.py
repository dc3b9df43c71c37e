"""The CRF layer: agreement with the pure functions, with brute force, and with pytorch-crf."""

from __future__ import annotations

import io

import pytest
import torch
from oracles import (
    constraint_masks,
    enumerate_batch,
    lengths_to_mask,
    path_is_valid,
    random_lengths,
    random_tags,
)

from hybrid import CRF, ChainConstraints, allowed_transitions
from hybrid.structured import kbest, log_partition, marginals, sequence_score, viterbi

F64 = {"rtol": 1e-9, "atol": 1e-9}

BIO_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.7) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def batch(B, T, K, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    lengths = random_lengths(B, T, g)
    em = torch.randn(B, T, K, generator=g, dtype=dtype)
    tags = random_tags(lengths.tolist(), T, K, g, pad=-1)
    return em, tags, lengths


def potentials(crf):
    return crf.transitions, crf.start_transitions, crf.end_transitions


# --------------------------------------------------------------------------------------------
# structure of the module
# --------------------------------------------------------------------------------------------


def test_parameter_names_and_shapes():
    crf = CRF(6)
    names = dict(crf.named_parameters())
    assert set(names) == {"transitions", "start_transitions", "end_transitions"}
    assert names["transitions"].shape == (6, 6)
    assert names["start_transitions"].shape == (6,)
    assert names["end_transitions"].shape == (6,)
    assert all(p.requires_grad for p in names.values())


def test_forward_is_nll():
    crf = randomize_(CRF(4).double(), 1)
    em, tags, lengths = batch(5, 6, 4, seed=2)
    for reduction in ("mean", "sum", "none", "token_mean"):
        torch.testing.assert_close(
            crf(em, tags, lengths, reduction=reduction),
            crf.nll(em, tags, lengths, reduction=reduction),
        )
    torch.testing.assert_close(crf(em, tags, lengths), crf.nll(em, tags, lengths, reduction="mean"))


def test_methods_agree_with_pure_functions():
    crf = randomize_(CRF(4).double(), 3)
    em, tags, lengths = batch(5, 6, 4, seed=4)
    tr, st, en = potentials(crf)
    torch.testing.assert_close(
        crf.log_partition(em, lengths), log_partition(em, tr, st, en, lengths=lengths)
    )
    torch.testing.assert_close(
        crf.marginals(em, lengths), marginals(em, tr, st, en, lengths=lengths)
    )
    torch.testing.assert_close(
        crf.score(em, tags, lengths), sequence_score(em, tags, tr, st, en, lengths=lengths)
    )
    p, s = crf.decode(em, lengths)
    vp, vs = viterbi(em, tr, st, en, lengths=lengths)
    assert torch.equal(p, vp)
    torch.testing.assert_close(s, vs)
    kp, ks = crf.decode(em, lengths, k=5)
    ep, es = kbest(em, tr, st, en, lengths=lengths, k=5)
    assert kp.shape == (5, 5, 6) and ks.shape == (5, 5)
    assert torch.equal(kp, ep)
    torch.testing.assert_close(ks, es)


def test_nll_reductions():
    crf = randomize_(CRF(3).double(), 5)
    em, tags, lengths = batch(6, 5, 3, seed=6)
    tr, st, en = potentials(crf)
    expected = log_partition(em, tr, st, en, lengths=lengths) - sequence_score(
        em, tags, tr, st, en, lengths=lengths
    )
    none = crf.nll(em, tags, lengths, reduction="none")
    assert none.shape == (6,)
    torch.testing.assert_close(none, expected, **F64)
    torch.testing.assert_close(crf.nll(em, tags, lengths, reduction="sum"), expected.sum(), **F64)
    torch.testing.assert_close(crf.nll(em, tags, lengths, reduction="mean"), expected.mean(), **F64)
    torch.testing.assert_close(
        crf.nll(em, tags, lengths, reduction="token_mean"), expected.sum() / lengths.sum(), **F64
    )
    assert (none >= 0).all()


def test_nll_matches_enumeration_with_constraints():
    c = allowed_transitions("BIO", ["O", "B-A", "I-A"])
    crf = randomize_(CRF(3, constraints=c).double(), 7)
    g = torch.Generator().manual_seed(8)
    lengths = torch.tensor([5, 3, 1, 4])
    em = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    # valid gold BIO sequences (padding -1)
    tags = torch.tensor([[0, 1, 2, 2, 0], [1, 1, 2, -1, -1], [0, -1, -1, -1, -1], [1, 2, 0, 1, -1]])
    enums = enumerate_batch(em, lengths.tolist(), *potentials(crf), c)
    expected = torch.stack(
        [e.log_partition() - e.score_of(tags[b, : e.length]) for b, e in enumerate(enums)]
    )
    torch.testing.assert_close(crf.nll(em, tags, lengths, reduction="none"), expected, **F64)
    # the probabilities of all valid full-length sequences sum to one
    valid_paths = enums[0].paths[enums[0].valid]
    n = valid_paths.shape[0]
    nll_all = crf.nll(em[:1].expand(n, -1, -1), valid_paths, None, reduction="none")
    torch.testing.assert_close(
        torch.exp(-nll_all).sum(), torch.tensor(1.0, dtype=torch.float64), **F64
    )


def test_bool_mask_equals_lengths():
    crf = randomize_(CRF(4).double(), 9)
    em, tags, lengths = batch(5, 7, 4, seed=10)
    mask = lengths_to_mask(lengths, 7)
    torch.testing.assert_close(
        crf.nll(em, tags, mask, reduction="none"), crf.nll(em, tags, lengths, reduction="none")
    )
    p1, s1 = crf.decode(em, mask)
    p2, s2 = crf.decode(em, lengths)
    assert torch.equal(p1, p2)
    torch.testing.assert_close(s1, s2)
    torch.testing.assert_close(crf.marginals(em, mask), crf.marginals(em, lengths))


def test_constraints_as_bare_tensor():
    c = allowed_transitions("BIO", BIO_LABELS)
    crf_full = randomize_(CRF(5, constraints=ChainConstraints(c.transitions)).double(), 11)
    crf_bare = CRF(5, constraints=c.transitions).double()
    crf_bare.load_state_dict(crf_full.state_dict())
    em, _, lengths = batch(4, 6, 5, seed=12)
    torch.testing.assert_close(
        crf_bare.log_partition(em, lengths), crf_full.log_partition(em, lengths)
    )


def test_decode_with_k_matches_enumeration():
    c = allowed_transitions("BIO", ["O", "B-A", "I-A"])
    crf = randomize_(CRF(3, constraints=c).double(), 13)
    em, _, lengths = batch(4, 4, 3, seed=14)
    paths, scores = crf.decode(em, lengths, k=4)
    assert paths.shape == (4, 4, 4) and scores.shape == (4, 4)
    enums = enumerate_batch(em, lengths.tolist(), *potentials(crf), c)
    t, s, e = constraint_masks(c, 3)
    for b, enum in enumerate(enums):
        n = min(4, enum.num_valid)
        torch.testing.assert_close(scores[b, :n], enum.sorted_scores()[:n], **F64)
        assert torch.isneginf(scores[b, n:]).all() and (paths[b, n:] == -1).all()
        for j in range(n):
            assert path_is_valid(paths[b, j, : enum.length].tolist(), t, s, e)


# --------------------------------------------------------------------------------------------
# serialisation
# --------------------------------------------------------------------------------------------


def _roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_state_dict_roundtrip_keeps_parameters_and_constraints():
    c = allowed_transitions("BIOES", ["O", "B-A", "I-A", "E-A", "S-A"])
    src = randomize_(CRF(5, constraints=c), 15)
    state = _roundtrip(src.state_dict())
    # the constraints travel in the state dict as buffers
    assert len(state) > 3
    assert {"transitions", "start_transitions", "end_transitions"} <= set(state)
    # load into a module created with *no* effective constraints: it must pick them up
    all_true = ChainConstraints(
        torch.ones(5, 5, dtype=torch.bool),
        torch.ones(5, dtype=torch.bool),
        torch.ones(5, dtype=torch.bool),
    )
    dst = CRF(5, constraints=all_true)
    dst.load_state_dict(state)
    for name, p in src.named_parameters():
        assert torch.equal(p, dict(dst.named_parameters())[name])
    em, tags, lengths = batch(6, 7, 5, seed=16, dtype=torch.float32)
    torch.testing.assert_close(dst.log_partition(em, lengths), src.log_partition(em, lengths))
    pd, sd = dst.decode(em, lengths)
    ps, ss = src.decode(em, lengths)
    assert torch.equal(pd, ps)
    t, s, e = constraint_masks(c, 5)
    for b in range(6):
        assert path_is_valid(pd[b, : int(lengths[b])].tolist(), t, s, e)


def test_state_dict_roundtrip_unconstrained():
    src = randomize_(CRF(4), 17)
    dst = CRF(4)
    dst.load_state_dict(_roundtrip(src.state_dict()))
    em, tags, lengths = batch(3, 5, 4, seed=18, dtype=torch.float32)
    torch.testing.assert_close(dst.nll(em, tags, lengths), src.nll(em, tags, lengths))


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def test_training_decreases_nll_and_learns_the_tags():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(19)
    B, T, D, K = 16, 12, 8, 5
    x = torch.randn(B, T, D, generator=g)
    lengths = random_lengths(B, T, g)
    # gold tags depend on the input and on the previous tag (so transitions matter)
    w = torch.randn(D, K, generator=g)
    tags = (x @ w).argmax(-1)
    tags = torch.where(lengths_to_mask(lengths, T), tags, torch.full_like(tags, -1))
    proj = torch.nn.Linear(D, K)
    crf = CRF(K)
    opt = torch.optim.Adam(list(proj.parameters()) + list(crf.parameters()), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = crf.nll(proj(x), tags, lengths)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert sum(losses[-5:]) < sum(losses[:5])
    with torch.no_grad():
        paths, _ = crf.decode(proj(x), lengths)
    mask = lengths_to_mask(lengths, T)
    acc = (paths[mask] == tags[mask]).float().mean()
    assert acc > 0.8, acc


def test_gradients_flow_to_all_parameters():
    crf = randomize_(CRF(4, constraints=allowed_transitions("BIO", ["O", "B-A", "I-A", "B-B"])), 20)
    em, _, lengths = batch(3, 5, 4, seed=21, dtype=torch.float32)
    tags = torch.tensor([[0, 1, 2, 0, 3], [1, 2, 2, -1, -1], [3, -1, -1, -1, -1]])
    lengths = torch.tensor([5, 3, 1])
    em.requires_grad_()
    crf.nll(em, tags, lengths).backward()
    for name, p in crf.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert torch.isfinite(em.grad).all()
    # forbidden transitions receive no gradient
    allowed = allowed_transitions("BIO", ["O", "B-A", "I-A", "B-B"]).transitions
    assert (crf.transitions.grad[~allowed] == 0).all()


# --------------------------------------------------------------------------------------------
# pytorch-crf equality
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchcrf():
    return pytest.importorskip("torchcrf")


PEER_SHAPES = [pytest.param((8, 30, 10), id="8x30x10"), pytest.param((4, 50, 25), id="4x50x25")]


def _peer_batch(B, T, K, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    em = (torch.randn(B, T, K, generator=g) * 2).to(dtype)
    tags = torch.randint(0, K, (B, T), generator=g)  # padding filled with valid tags for torchcrf
    mask = lengths_to_mask(lengths, T)
    return em, tags, mask


def _peer(torchcrf, K, batch_first, dtype, seed):
    tc = torchcrf.CRF(K, batch_first=batch_first)
    randomize_(tc, seed, std=0.5)
    tc = tc.to(dtype)
    ours = CRF.from_pytorch_crf(tc).to(dtype)
    return tc, ours


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", PEER_SHAPES)
def test_pytorch_crf_likelihood_decode_and_gradients(torchcrf, shape, dtype, batch_first):
    B, T, K = shape
    tc, ours = _peer(torchcrf, K, batch_first, dtype, seed=B * T + K)
    assert isinstance(ours, CRF)
    # same parameters
    torch.testing.assert_close(ours.transitions, tc.transitions, rtol=0, atol=0)
    torch.testing.assert_close(ours.start_transitions, tc.start_transitions, rtol=0, atol=0)
    torch.testing.assert_close(ours.end_transitions, tc.end_transitions, rtol=0, atol=0)

    em, tags, mask = _peer_batch(B, T, K, seed=T, dtype=dtype)
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-9}

    def peer_args(x):  # torchcrf wants time-first inputs when batch_first=False
        return x if batch_first else x.transpose(0, 1)

    em_ours = em.clone().requires_grad_()
    em_peer = em.clone().requires_grad_()
    nll = ours.nll(em_ours, tags, mask, reduction="sum")
    llh = tc(peer_args(em_peer), peer_args(tags), peer_args(mask), reduction="sum")
    torch.testing.assert_close(nll, -llh, **tol)
    per_item = ours.nll(em, tags, mask, reduction="none")
    torch.testing.assert_close(
        per_item, -tc(peer_args(em), peer_args(tags), peer_args(mask), reduction="none"), **tol
    )

    nll.backward()
    (-llh).backward()
    gtol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-8, "atol": 1e-10}
    torch.testing.assert_close(ours.transitions.grad, tc.transitions.grad, **gtol)
    torch.testing.assert_close(ours.start_transitions.grad, tc.start_transitions.grad, **gtol)
    torch.testing.assert_close(ours.end_transitions.grad, tc.end_transitions.grad, **gtol)
    torch.testing.assert_close(em_ours.grad, em_peer.grad, **gtol)

    with torch.no_grad():
        paths, scores = ours.decode(em, mask)
        peer_paths = tc.decode(peer_args(em), peer_args(mask))
    lengths = mask.sum(1)
    assert paths.shape == (B, T)
    for b in range(B):
        L = int(lengths[b])
        assert paths[b, :L].tolist() == peer_paths[b]
        assert (paths[b, L:] == -1).all()
    torch.testing.assert_close(scores, ours.score(em, paths, mask), **tol)


def test_pytorch_crf_full_length_without_mask(torchcrf):
    tc, ours = _peer(torchcrf, 6, True, torch.float64, seed=3)
    em, tags, _ = _peer_batch(5, 9, 6, seed=4, dtype=torch.float64)
    full = torch.ones(5, 9, dtype=torch.bool)  # torchcrf's own default mask is a deprecated uint8
    torch.testing.assert_close(
        ours.nll(em, tags, reduction="sum"), -tc(em, tags, full, reduction="sum"), **F64
    )
    paths, _ = ours.decode(em)
    assert paths.tolist() == tc.decode(em, full)


def test_from_pytorch_crf_token_mean_matches_peer(torchcrf):
    tc, ours = _peer(torchcrf, 5, True, torch.float64, seed=5)
    em, tags, mask = _peer_batch(6, 8, 5, seed=6, dtype=torch.float64)
    torch.testing.assert_close(
        ours.nll(em, tags, mask, reduction="token_mean"),
        -tc(em, tags, mask, reduction="token_mean"),
        **F64,
    )
    torch.testing.assert_close(
        ours.nll(em, tags, mask, reduction="mean"), -tc(em, tags, mask, reduction="mean"), **F64
    )
