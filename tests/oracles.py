"""Brute-force reference computations for linear-chain models.

Everything here is deliberately naive: it enumerates every tag sequence of a (tiny) chain and
computes the quantities the library computes with dynamic programs. It only depends on torch,
never on the library under test, so it can serve as an independent oracle.

Score of a path ``y`` of length ``L`` (the library's documented formula)::

    start[y_0] + sum_{t<L} emissions[t, y_t] + sum_{0<t<L} transitions[y_{t-1}, y_t] + end[y_{L-1}]

A forbidden transition / start / end state contributes ``-inf``; a path whose score is ``-inf``
has zero probability ("invalid").
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch

NEG_INF = float("-inf")


# --------------------------------------------------------------------------------------------
# constraints
# --------------------------------------------------------------------------------------------


def constraint_masks(constraints, num_tags: int):
    """Return ``(transitions, start, end)`` boolean masks (True = allowed) for ``constraints``.

    ``constraints`` may be ``None``, a bare ``(K, K)`` bool tensor, or any 3-sequence
    ``(transitions, start, end)`` whose ``start``/``end`` may be ``None``.
    """
    full_t = torch.ones(num_tags, num_tags, dtype=torch.bool)
    full_v = torch.ones(num_tags, dtype=torch.bool)
    if constraints is None:
        return full_t, full_v, full_v.clone()
    if isinstance(constraints, torch.Tensor):
        return constraints.bool().cpu(), full_v, full_v.clone()
    trans, start, end = constraints
    trans = full_t if trans is None else trans.bool().cpu()
    start = full_v if start is None else start.bool().cpu()
    end = full_v.clone() if end is None else end.bool().cpu()
    return trans, start, end


def has_valid_path(trans_mask, start_mask, end_mask, length: int) -> bool:
    """Whether a path of ``length`` steps exists under the boolean masks (emissions finite)."""
    reach = start_mask.clone()
    for _ in range(length - 1):
        reach = (reach[:, None] & trans_mask).any(0)
    return bool((reach & end_mask).any())


def random_masks(
    num_tags: int,
    lengths,
    generator: torch.Generator,
    p_allowed: float = 0.6,
    with_start_end: bool = True,
    tries: int = 200,
):
    """Random ``(transitions, start, end)`` bool masks leaving a valid path for every length.

    Masks are drawn i.i.d. Bernoulli(``p_allowed``) and rejected until every length in
    ``lengths`` admits at least one path. If no draw succeeds, the all-True masks are returned.
    ``start``/``end`` are ``None`` when ``with_start_end`` is False.
    """
    lengths = sorted({int(v) for v in lengths})
    ones_v = torch.ones(num_tags, dtype=torch.bool)
    for _ in range(tries):
        trans = torch.rand(num_tags, num_tags, generator=generator) < p_allowed
        if with_start_end:
            start = torch.rand(num_tags, generator=generator) < p_allowed
            end = torch.rand(num_tags, generator=generator) < p_allowed
        else:
            start = end = None
        s = ones_v if start is None else start
        e = ones_v if end is None else end
        if trans.all() and s.all() and e.all():
            continue  # we want something actually constrained
        if all(has_valid_path(trans, s, e, L) for L in lengths):
            return trans, start, end
    trans = torch.ones(num_tags, num_tags, dtype=torch.bool)
    return trans, (ones_v if with_start_end else None), (ones_v.clone() if with_start_end else None)


def effective_parameters(num_tags, transitions, start=None, end=None, constraints=None):
    """float64 transitions / start / end with forbidden entries replaced by ``-inf``."""
    t_mask, s_mask, e_mask = constraint_masks(constraints, num_tags)
    trans = transitions.detach().cpu().double().clone()
    st = (
        torch.zeros(num_tags, dtype=torch.float64)
        if start is None
        else start.detach().cpu().double().clone()
    )
    en = (
        torch.zeros(num_tags, dtype=torch.float64)
        if end is None
        else end.detach().cpu().double().clone()
    )
    trans[~t_mask] = NEG_INF
    st[~s_mask] = NEG_INF
    en[~e_mask] = NEG_INF
    return trans, st, en


# --------------------------------------------------------------------------------------------
# enumeration
# --------------------------------------------------------------------------------------------


@functools.cache
def _all_paths(length: int, num_tags: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(num_tags), repeat=length)), dtype=torch.long)


def all_paths(length: int, num_tags: int) -> torch.Tensor:
    """All ``num_tags ** length`` tag sequences, shape ``(N, length)``, lexicographic order."""
    return _all_paths(length, num_tags).clone()


def score_paths(emissions, paths, trans, start, end) -> torch.Tensor:
    """Scores of ``paths`` (N, L) given float64 ``emissions`` (L, K) and effective parameters."""
    length = paths.shape[1]
    pos = torch.arange(length)
    scores = start[paths[:, 0]] + emissions[pos[None, :], paths].sum(-1) + end[paths[:, -1]]
    if length > 1:
        scores = scores + trans[paths[:, :-1], paths[:, 1:]].sum(-1)
    return scores


@dataclass
class Enumeration:
    """All paths of one batch item, with their scores (float64)."""

    paths: torch.Tensor  # (N, L) long
    scores: torch.Tensor  # (N,) float64, -inf for zero-probability paths
    num_tags: int

    @property
    def length(self) -> int:
        return self.paths.shape[1]

    @property
    def valid(self) -> torch.Tensor:
        return self.scores > NEG_INF

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    def log_partition(self) -> torch.Tensor:
        return torch.logsumexp(self.scores, 0)

    def best(self):
        """``(path, score, gap)``: argmax path, its score, distance to the runner-up."""
        order = torch.argsort(self.scores, descending=True, stable=True)
        best = order[0]
        if len(order) > 1 and self.scores[order[1]] > NEG_INF:
            gap = float(self.scores[best] - self.scores[order[1]])
        else:
            gap = float("inf")
        return self.paths[best], self.scores[best], gap

    def sorted_scores(self) -> torch.Tensor:
        return torch.sort(self.scores, descending=True).values

    def score_of(self, path) -> torch.Tensor:
        """Score of one path (sequence of ints of length ``L``) looked up in the enumeration."""
        path = torch.as_tensor(path, dtype=torch.long)
        idx = 0
        for tag in path.tolist():
            if not 0 <= tag < self.num_tags:
                raise AssertionError(f"tag {tag} out of range in path {path.tolist()}")
            idx = idx * self.num_tags + tag
        return self.scores[idx]

    def probabilities(self) -> torch.Tensor:
        return torch.exp(self.scores - self.log_partition())

    def unary(self):
        """``(marginals (L, K), support (L, K) bool)``; support = some valid path uses it."""
        onehot = torch.nn.functional.one_hot(self.paths, self.num_tags).double()  # (N, L, K)
        probs = self.probabilities()
        marg = torch.einsum("n,nlk->lk", probs, onehot)
        support = (
            onehot[self.valid].sum(0) > 0
            if self.num_valid
            else torch.zeros_like(marg, dtype=torch.bool)
        )
        return marg, support

    def pairwise(self):
        """``(marginals (L-1, K, K), support (L-1, K, K) bool)``."""
        K, L = self.num_tags, self.length
        marg = torch.zeros(max(L - 1, 0), K, K, dtype=torch.float64)
        support = torch.zeros(max(L - 1, 0), K, K, dtype=torch.bool)
        probs = self.probabilities()
        valid = self.valid
        for t in range(L - 1):
            flat = self.paths[:, t] * K + self.paths[:, t + 1]
            marg[t].view(-1).index_add_(0, flat, probs)
            support[t].view(-1)[flat[valid]] = True
        return marg, support


def enumerate_batch(emissions, lengths, transitions, start=None, end=None, constraints=None):
    """One :class:`Enumeration` per batch item. ``lengths`` is a sequence of ints."""
    num_tags = emissions.shape[-1]
    trans, st, en = effective_parameters(num_tags, transitions, start, end, constraints)
    out = []
    em64 = emissions.detach().cpu().double()
    for b, length in enumerate(lengths):
        length = int(length)
        paths = all_paths(length, num_tags)
        scores = score_paths(em64[b, :length], paths, trans, st, en)
        out.append(Enumeration(paths, scores, num_tags))
    return out


# --------------------------------------------------------------------------------------------
# direct formulas
# --------------------------------------------------------------------------------------------


def direct_sequence_score(emissions, tags, transitions, start=None, end=None, lengths=None):
    """The documented path-score formula, written as plain Python loops (float64)."""
    B, T, K = emissions.shape
    if lengths is None:
        lengths = [T] * B
    em = emissions.detach().double().tolist()
    tr = transitions.detach().double().tolist()
    st = [0.0] * K if start is None else start.detach().double().tolist()
    en = [0.0] * K if end is None else end.detach().double().tolist()
    tg = tags.tolist()
    out = []
    for b in range(B):
        L = int(lengths[b])
        s = st[tg[b][0]] + en[tg[b][L - 1]]
        for t in range(L):
            s += em[b][t][tg[b][t]]
        for t in range(1, L):
            s += tr[tg[b][t - 1]][tg[b][t]]
        out.append(s)
    return torch.tensor(out, dtype=torch.float64)


def path_is_valid(path, trans_mask, start_mask, end_mask) -> bool:
    path = list(path)
    if not path:
        return False
    if not start_mask[path[0]] or not end_mask[path[-1]]:
        return False
    return all(bool(trans_mask[a, b]) for a, b in zip(path[:-1], path[1:], strict=True))


def hamming_cost_matrix(num_tags: int) -> torch.Tensor:
    return 1.0 - torch.eye(num_tags, dtype=torch.float64)


def brute_hinge(enum: Enumeration, gold, cost_matrix=None) -> torch.Tensor:
    """max over valid paths y of score(y) + cost(gold, y) - score(gold), float64.

    ``cost_matrix[g, p]`` is the per-position cost; ``None`` means zero cost (perceptron).
    """
    gold = torch.as_tensor(gold, dtype=torch.long)
    if cost_matrix is None:
        cost = torch.zeros(enum.paths.shape[0], dtype=torch.float64)
    else:
        cm = cost_matrix.detach().double()
        cost = cm[gold[None, :], enum.paths].sum(-1)
    aug = enum.scores + cost
    aug = torch.where(enum.valid, aug, torch.full_like(aug, NEG_INF))
    return aug.max() - enum.score_of(gold)


# --------------------------------------------------------------------------------------------
# random instances
# --------------------------------------------------------------------------------------------


def random_lengths(batch: int, max_len: int, generator: torch.Generator) -> torch.Tensor:
    """Random lengths in ``[1, max_len]``; includes 1 and ``max_len`` whenever ``batch >= 2``."""
    lengths = torch.randint(1, max_len + 1, (batch,), generator=generator)
    if batch >= 2:
        lengths[0] = max_len
        lengths[-1] = 1
    elif batch == 1:
        lengths[0] = max_len
    return lengths


def lengths_to_mask(lengths, max_len: int) -> torch.Tensor:
    return torch.arange(max_len)[None, :] < torch.as_tensor(lengths)[:, None]


def random_tags(lengths, max_len: int, num_tags: int, generator: torch.Generator, pad: int = -1):
    B = len(lengths)
    tags = torch.randint(0, num_tags, (B, max_len), generator=generator)
    mask = lengths_to_mask(lengths, max_len)
    return torch.where(mask, tags, torch.full_like(tags, pad))


def logsumexp_scan(emissions, transitions, start, end, lengths):
    """Reference forward algorithm: a plain float64 loop over time with ``torch.logsumexp``."""
    em = emissions.detach().double()
    tr = transitions.detach().double()
    st = start.detach().double()
    en = end.detach().double()
    lengths = torch.as_tensor(lengths)
    alpha = st[None, :] + em[:, 0]
    for t in range(1, em.shape[1]):
        nxt = torch.logsumexp(alpha[:, :, None] + tr[None], dim=1) + em[:, t]
        alpha = torch.where((t < lengths)[:, None], nxt, alpha)
    return torch.logsumexp(alpha + en[None, :], dim=1)


def maxplus_scan(emissions, transitions, start, end, lengths):
    """Reference Viterbi score: a plain float64 max-plus loop over time."""
    em = emissions.detach().double()
    tr = transitions.detach().double()
    st = start.detach().double()
    en = end.detach().double()
    lengths = torch.as_tensor(lengths)
    delta = st[None, :] + em[:, 0]
    for t in range(1, em.shape[1]):
        nxt = (delta[:, :, None] + tr[None]).max(dim=1).values + em[:, t]
        delta = torch.where((t < lengths)[:, None], nxt, delta)
    return (delta + en[None, :]).max(dim=1).values
