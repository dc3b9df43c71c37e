"""Forward-backward for linear chains: log-partition with an explicit gradient, and marginals.

Two engines share one interface:

* `ScaledChain` runs in probability space with per-step rescaling, so that each step
  is one matrix product, one product with the emissions and one normalisation (the
  backward pass reuses the forward's normalisers, so both stay clear of denormals). Its backward
  pass is one matrix product per step, and the transition gradient is a single matrix product
  over all steps. This is the fast path.
* `LogChain` runs in log space (`chain_scan` with
  ``logsumexp``). It is exact for any finite or ``-inf`` scores and is used for the
  sequences (rows) on which the scaled engine reports that a rescaling factor under- or
  overflowed (extreme scores, or constraints that starve the reachable mass); the other rows
  keep the fast result.

Tensors in this module are time-major: ``(T, B, K)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import native
from .paths import path_scores, subtract_path_counts
from .semiring import LOG, chain_scan

_CHUNK_ELEMENTS = 1 << 22  # bound on the (steps, B, K, K) block materialised at once


def _time_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(T, B)`` bool: True where ``t < lengths[b]``."""
    return torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]


def _finite_or_zero(x: Tensor) -> Tensor:
    """Replace ``-inf`` (an all-forbidden row) by 0 so that ``x - max`` stays NaN-free."""
    return x.nan_to_num(nan=0.0, neginf=0.0)


class ScaledChain:
    """Forward-backward in rescaled probability space.

    Args:
        emissions: ``(T, B, K)`` scores, zero past each length.
        transitions: ``(K, K)`` scores, ``-inf`` where forbidden.
        start: ``(K,)`` first-state scores.
        end: ``(K,)`` last-state scores.
        lengths: ``(B,)`` lengths.

    After construction, `log_z` holds ``(B,)`` log-partitions in float64 and `row_ok`
    ``(B,)`` says for which sequences every rescaling factor stayed in the safe range; the
    other rows must be recomputed with `LogChain`. The first step and the sum of the log
    normalisers run in float64: in float32 the start scores and transition peak would be
    rounded away next to emissions of ``1e9``, and the sum of ``T`` such peaks rounded by
    thousands, which a negative log-likelihood (a small difference of two such sums) cannot
    afford.
    """

    def __init__(
        self, emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
    ) -> None:
        steps, batch, num_tags = emissions.shape
        self.lengths = lengths
        self.mask = _time_mask(lengths, steps)
        self.floor = torch.finfo(emissions.dtype).tiny ** 0.5

        peak = _finite_or_zero(emissions.amax(-1, keepdim=True))  # (T, B, 1)
        self.gains = torch.exp(emissions - peak)  # (T, B, K), max 1 per step
        trans_peak = _finite_or_zero(transitions.max())
        self.trans_exp = torch.exp(transitions - trans_peak)  # (K, K), zero where forbidden
        first = start.double() + emissions[0].double()
        first_peak = _finite_or_zero(first.amax(-1, keepdim=True))

        alpha = emissions.new_empty(steps, batch, num_tags)
        scale = emissions.new_empty(steps, batch, 1)
        alphas, scales, gains = alpha.unbind(0), scale.unbind(0), self.gains.unbind(0)
        alphas[0].copy_(torch.exp(first - first_peak))
        for t in range(steps):
            if t:
                torch.mm(alphas[t - 1], self.trans_exp, out=alphas[t])
                alphas[t].mul_(gains[t])
            torch.sum(alphas[t], -1, keepdim=True, out=scales[t])
            alphas[t].div_(scales[t])
        self.alpha, self.scale = alpha, scale

        end_peak = _finite_or_zero(end.max())
        self.final = torch.exp(end - end_peak)  # (K,)
        batch_index = torch.arange(batch, device=lengths.device)
        last = alpha[lengths - 1, batch_index]  # (B, K)
        self.final_scale = last @ self.final  # (B,)

        log_factors = scale.squeeze(-1).log().double() + peak.squeeze(-1).double()
        log_factors += trans_peak.double()
        log_factors[0] = scale[0, :, 0].log().double() + first_peak[:, 0]
        self.log_z = (
            torch.where(self.mask, log_factors, 0.0).sum(0)
            + self.final_scale.log().double()
            + end_peak.double()
        )
        # ``>=`` is False for NaN, so a NaN from a 0/0 rescaling is caught as well.
        safe = (scale.squeeze(-1) >= self.floor) | ~self.mask
        self.row_ok = safe.all(0) & (self.final_scale >= self.floor)

    def posteriors(self, pair: str = "rows") -> tuple[Tensor, Tensor, Tensor]:
        """Marginals of the rows whose rescaling stayed in range.

        Args:
            pair: ``"rows"`` for the pairwise marginals summed over time per sequence
                ``(B, K, K)``, or ``"full"`` for all of them ``(T-1, B, K, K)``.

        Returns:
            ``unary`` ``(T, B, K)`` with ``P(y_t = k)``, zero past each length; the pairwise
            marginals ``P(y_{t-1}=i, y_t=j)`` as asked; and ``failed`` ``(B,)``: rows whose
            forward or backward rescaling left the safe range. Their entries are zero:
            recompute them with `LogChain`.
        """
        alpha, mask, lengths = self.alpha, self.mask, self.lengths
        steps, batch, _ = alpha.shape
        batch_index = torch.arange(batch, device=lengths.device)
        gains = self.gains / self.scale  # G_t / s_t
        terminal = self.final / self.final_scale[:, None]  # (B, K)
        is_last = torch.zeros_like(mask)
        is_last[lengths - 1, batch_index] = True
        ends_early = set((lengths - 1).tolist()) - {steps - 1}

        beta = torch.empty_like(alpha)
        message = torch.empty_like(alpha)  # message[t] = G_t * beta_t / s_t
        betas, messages, gains = beta.unbind(0), message.unbind(0), gains.unbind(0)
        betas[steps - 1].copy_(terminal)
        trans_t = self.trans_exp.t().contiguous()
        for t in range(steps - 1, 0, -1):
            torch.mul(gains[t], betas[t], out=messages[t])
            torch.mm(messages[t], trans_t, out=betas[t - 1])
            if t - 1 in ends_early:
                torch.where(is_last[t - 1, :, None], terminal, betas[t - 1], out=betas[t - 1])

        unary = alpha * beta
        failed = ~(self.row_ok & torch.isfinite(unary).all(-1).logical_or(~mask).all(0))
        inside = (mask & ~failed)[..., None]
        unary = torch.where(inside, unary, 0.0)
        prev = torch.where(inside[:-1], alpha[:-1], 0.0)
        message = torch.where(inside[1:], message[1:], 0.0)
        if pair == "full":
            pairs = prev[..., :, None] * self.trans_exp * message[..., None, :]
        else:  # per sequence: sum_t prev_t^T message_t, one batched product
            pairs = self.trans_exp * (prev.permute(1, 2, 0) @ message.transpose(0, 1))
        return unary, pairs, failed


class LogChain:
    """Forward-backward in log space: exact for any finite or ``-inf`` scores.

    Same arguments and interface as `ScaledChain`; no row ever fails.
    """

    def __init__(
        self, emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
    ) -> None:
        steps, batch, _ = emissions.shape
        self.lengths, self.transitions = lengths, transitions
        self.mask = _time_mask(lengths, steps)
        batch_index = torch.arange(batch, device=lengths.device)
        self.alpha = chain_scan(LOG, emissions, start, transitions)
        self.log_z = torch.logsumexp(self.alpha[lengths - 1, batch_index] + end, -1)

        # Run the same scan on each sequence reversed within its length: its prefix scores
        # are gamma[t] = emissions[t] + log beta[t] (the backward messages incl. emission).
        flip = lengths[None, :] - 1 - torch.arange(steps, device=lengths.device)[:, None]
        flip = torch.where(self.mask, flip, 0)  # (T, B): source step of reversed step t
        gather = flip[..., None].expand_as(emissions)
        reversed_scores = chain_scan(LOG, emissions.gather(0, gather), end, transitions.t())
        self.gamma = reversed_scores.gather(0, gather)
        self.emissions = emissions

    def posteriors(self, pair: str = "rows") -> tuple[Tensor, Tensor, Tensor]:
        """Marginals; same contract as `ScaledChain.posteriors` (no row fails)."""
        alpha, gamma, mask = self.alpha, self.gamma, self.mask
        log_z = self.log_z[None, :, None]
        # log P(y_t = k) = alpha + gamma - emission; a -inf emission means probability 0.
        floor = torch.finfo(alpha.dtype).min
        unary = torch.exp(alpha + gamma - self.emissions.clamp_min(floor) - log_z)
        unary = torch.where(mask[..., None], unary, 0.0)

        steps, batch, num_tags = alpha.shape
        chunk = max(1, _CHUNK_ELEMENTS // (batch * num_tags * num_tags))
        blocks = []
        pair_rows = alpha.new_zeros(batch, num_tags, num_tags)
        for lo in range(1, steps, chunk):
            hi = min(steps, lo + chunk)
            block = (
                alpha[lo - 1 : hi - 1, :, :, None]
                + self.transitions
                + gamma[lo:hi, :, None, :]
                - log_z[..., None]
            ).exp()
            block = torch.where(mask[lo:hi, :, None, None], block, 0.0)
            if pair == "full":
                blocks.append(block)
            else:
                pair_rows += block.sum(0)
        failed = torch.zeros_like(self.lengths, dtype=torch.bool)
        if pair == "full":
            empty = alpha.new_zeros(0, batch, num_tags, num_tags)
            return unary, torch.cat(blocks) if blocks else empty, failed
        return unary, pair_rows, failed


def _eager(emissions, transitions, start, end, lengths, posteriors, pair):
    """Scaled engine on every row, log-space engine on the rows where it is unsafe."""
    engine = ScaledChain(emissions.transpose(0, 1), transitions, start, end, lengths)
    log_z, unary, pairs = engine.log_z, None, None
    if posteriors:
        unary, pairs, failed = engine.posteriors(pair)
        unary = unary.transpose(0, 1)
        if pair == "full":
            pairs = pairs.transpose(0, 1)
    else:
        failed = ~engine.row_ok
    return log_z, unary, pairs, failed


def partition(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    lengths: Tensor,
    posteriors: bool = False,
    pair: str = "rows",
    tags: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Log-partition and, optionally, marginals of every sequence, exact on every row.

    Runs the fused CPU kernels where available (`hybrid.structured.native`), else the
    eager `ScaledChain`; rows either reports as unsafe are recomputed with `LogChain` in
    float64. ``log Z`` is kept in float64 until the gold scores (also summed in float64) are
    subtracted: in float32 both would be rounded by thousands at scores of ``1e9`` and their
    small difference, the negative log-likelihood, lost (even negative).

    Args:
        emissions: ``(B, T, K)`` batch-major scores, zero past each length.
        transitions: ``(K, K)``, ``-inf`` where forbidden.
        start: ``(K,)``.
        end: ``(K,)``.
        lengths: ``(B,)``.
        posteriors: Also return the marginals.
        pair: ``"rows"``: pairwise marginals summed over time, ``(B, K, K)``; ``"full"``:
            ``(B, T-1, K, K)``.
        tags: Optional gold paths ``(B, T)`` (valid tags, zero past each length): their
            scores are subtracted from ``log Z`` and their features from the marginals
            (``pair="rows"`` only), which gives the negative log-likelihood and its gradient.

    Returns:
        ``log_z`` ``(B,)``; with ``posteriors``: ``unary`` ``(B, T, K)`` and the pairwise
        marginals; else ``None, None``.
    """
    if pair == "rows" and native.available(emissions, transitions):
        log_z, ok, unary, pairs = native.forward_backward(
            emissions, transitions, start, end, lengths, posteriors, tags
        )
        failed, gold_done = ~ok, ok
    else:
        log_z, unary, pairs, failed = _eager(
            emissions, transitions, start, end, lengths, posteriors, pair
        )
        gold_done = torch.zeros_like(failed)
    log_z = log_z.double()
    if failed.any():
        rows = failed.nonzero().flatten()
        # Rows with extreme scores: log space, in float64 so that the differences of
        # large log-scores that give their marginals keep their digits.
        wide = [x.double() for x in (emissions[rows].transpose(0, 1), transitions, start, end)]
        exact = LogChain(*wide, lengths[rows])
        log_z[rows] = exact.log_z
        if posteriors:
            row_unary, row_pairs, _ = exact.posteriors(pair)
            unary[rows] = row_unary.transpose(0, 1).to(unary.dtype)
            row_pairs = row_pairs.transpose(0, 1) if pair == "full" else row_pairs
            pairs[rows] = row_pairs.to(pairs.dtype)
    if tags is not None and not gold_done.all():
        rows = (~gold_done).nonzero().flatten()
        log_z[rows] -= path_scores(
            emissions[rows].double(),
            tags[rows],
            transitions.double(),
            start.double(),
            end.double(),
            lengths[rows],
        )
        if posteriors:
            row_unary, row_pairs = unary[rows], pairs[rows]
            subtract_path_counts(row_unary, row_pairs, tags[rows], lengths[rows])
            unary[rows], pairs[rows] = row_unary, row_pairs
    return log_z.to(emissions.dtype), unary, pairs


class LogPartition(torch.autograd.Function):
    """``log Z``, or ``log Z - score(tags)`` (the negative log-likelihood), with its gradient.

    Inputs are ``emissions (B, T, K)`` (zero past each length), ``transitions (K, K)``,
    ``start (K,)``, ``end (K,)``, ``lengths (B,)`` and ``tags`` ``(B, T)`` or ``None``; the
    output is ``(B,)``. The marginals are computed together with ``log Z`` when a gradient is
    needed: the gradient with respect to the emissions is the unary marginals, with respect
    to the transitions the summed pairwise marginals, with respect to start and end the first
    and last marginals, each minus the features of ``tags`` when given (first order only).
    """

    @staticmethod
    def forward(ctx, emissions, transitions, start, end, lengths, tags):
        posteriors = any(ctx.needs_input_grad[:4])
        log_z, unary, pairs = partition(
            emissions, transitions, start, end, lengths, posteriors, tags=tags
        )
        ctx.save_for_backward(unary, pairs, lengths)
        return log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        unary, pairs, lengths = ctx.saved_tensors
        weights = grad_output.to(unary.dtype)
        grad_emissions = unary * weights[:, None, None]
        grad_transitions = torch.einsum("b,bij->ij", weights, pairs)
        batch_index = torch.arange(lengths.shape[0], device=lengths.device)
        grad_start = grad_emissions[:, 0].sum(0)
        grad_end = grad_emissions[batch_index, lengths - 1].sum(0)
        return grad_emissions, grad_transitions, grad_start, grad_end, None, None
