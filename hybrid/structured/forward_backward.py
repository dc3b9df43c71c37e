"""Forward-backward for linear chains: log-partition with an explicit gradient, and marginals.

Two engines share one interface:

* :class:`ScaledChain` runs in probability space with per-step rescaling, so that each step
  is one matrix product, one product with the emissions and one normalisation. Its backward
  pass is one matrix product per step, and the transition gradient is a single matrix product
  over all steps. This is the fast path.
* :class:`LogChain` runs in log space (:func:`~hybrid.structured.semiring.chain_scan` with
  ``logsumexp``). It is exact for any finite or ``-inf`` scores and is used for the
  sequences (rows) on which the scaled engine reports that a rescaling factor under- or
  overflowed (extreme scores, or constraints that starve the reachable mass); the other rows
  keep the fast result.

Tensors in this module are time-major: ``(T, B, K)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .semiring import LOG, chain_scan

_CHUNK_ELEMENTS = 1 << 22  # bound on the (steps, B, K, K) block materialised at once


def _time_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(T, B)`` bool: True where ``t < lengths[b]``."""
    return torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]


def rescale_period(num_tags: int, dtype: torch.dtype) -> int:
    """How many steps the scaled forward may run between normalisations.

    Between normalisations the total mass grows by at most ``K`` per step (entries of the
    rescaled transitions and emissions are <= 1), and a normalisation that finds the mass
    above ``sqrt(tiny)`` proves it never fell below ``sqrt(tiny) / K**period``. The period is
    chosen so that this bound stays a million times above ``tiny`` (no denormals) and
    ``K**period`` far below overflow.
    """
    headroom = -0.5 * math.log10(torch.finfo(dtype).tiny) - 6  # decades between floor and tiny*1e6
    return max(1, int(min(headroom, 30) / math.log10(max(num_tags, 2))))


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

    After construction, :attr:`log_z` holds ``(B,)`` log-partitions and :attr:`row_ok`
    ``(B,)`` says for which sequences every rescaling factor stayed in the safe range; the
    other rows must be recomputed with :class:`LogChain`.
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
        first = start + emissions[0]
        first_peak = _finite_or_zero(first.amax(-1, keepdim=True))

        alpha = emissions.new_empty(steps, batch, num_tags)
        scale = emissions.new_ones(steps, batch, 1)
        alphas, scales, gains = alpha.unbind(0), scale.unbind(0), self.gains.unbind(0)
        torch.exp(first - first_peak, out=alphas[0])
        period = rescale_period(num_tags, emissions.dtype)
        for t in range(steps):
            if t:
                torch.mm(alphas[t - 1], self.trans_exp, out=alphas[t])
                alphas[t].mul_(gains[t])
            if t % period == 0 or t == steps - 1:
                torch.sum(alphas[t], -1, keepdim=True, out=scales[t])
                alphas[t].div_(scales[t])
        self.alpha, self.scale = alpha, scale

        end_peak = _finite_or_zero(end.max())
        self.final = torch.exp(end - end_peak)  # (K,)
        batch_index = torch.arange(batch, device=lengths.device)
        last = alpha[lengths - 1, batch_index]  # (B, K)
        self.final_scale = last @ self.final  # (B,)

        log_factors = scale.squeeze(-1).log() + peak.squeeze(-1) + trans_peak
        log_factors[0] = scale[0, :, 0].log() + first_peak[:, 0]
        self.log_z = (
            torch.where(self.mask, log_factors, 0.0).sum(0) + self.final_scale.log() + end_peak
        )
        # ``>=`` is False for NaN, so a NaN from a 0/0 rescaling is caught as well.
        safe = (scale.squeeze(-1) >= self.floor) | ~self.mask
        self.row_ok = safe.all(0) & (self.final_scale >= self.floor)

    def backward(self, weights: Tensor, pairwise: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Weighted posteriors of the rows whose rescaling stayed in range.

        Args:
            weights: ``(B,)`` multiplier per sequence (the incoming gradient).
            pairwise: If True, return the full pairwise marginals instead of their sum.

        Returns:
            ``unary`` ``(T, B, K)``: ``weights[b] * P(y_t = k)``, zero past each length;
            ``pair``: ``(K, K)`` ``sum_{b,t} weights[b] * P(y_{t-1}=i, y_t=j)``, or with
            ``pairwise=True`` the unweighted ``(T-1, B, K, K)`` marginals; and ``failed``
            ``(B,)``: rows whose forward or backward rescaling left the safe range. Their
            entries in ``unary`` and ``pair`` are zero: recompute them with :class:`LogChain`.
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
        trans_t = self.trans_exp.t()
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
        if pairwise:
            pair = prev[..., :, None] * self.trans_exp * message[..., None, :]
        else:
            num_tags = alpha.shape[-1]
            weighted = message * weights[None, :, None]
            pair = self.trans_exp * (
                prev.reshape(-1, num_tags).t() @ weighted.reshape(-1, num_tags)
            )
        return unary * weights[None, :, None], pair, failed


class LogChain:
    """Forward-backward in log space: exact for any finite or ``-inf`` scores.

    Same arguments and interface as :class:`ScaledChain`; no row ever fails.
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

    def backward(self, weights: Tensor, pairwise: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Weighted posteriors; same contract as :meth:`ScaledChain.backward`."""
        alpha, gamma, mask = self.alpha, self.gamma, self.mask
        log_z = self.log_z[None, :, None]
        # log P(y_t = k) = alpha + gamma - emission; a -inf emission means probability 0.
        floor = torch.finfo(alpha.dtype).min
        unary = torch.exp(alpha + gamma - self.emissions.clamp_min(floor) - log_z)
        unary = torch.where(mask[..., None], unary, 0.0) * weights[None, :, None]

        steps, batch, num_tags = alpha.shape
        chunk = max(1, _CHUNK_ELEMENTS // (batch * num_tags * num_tags))
        blocks = []
        pair_sum = alpha.new_zeros(num_tags, num_tags)
        for lo in range(1, steps, chunk):
            hi = min(steps, lo + chunk)
            block = (
                alpha[lo - 1 : hi - 1, :, :, None]
                + self.transitions
                + gamma[lo:hi, :, None, :]
                - log_z[..., None]
            ).exp()
            block = torch.where(mask[lo:hi, :, None, None], block, 0.0)
            if pairwise:
                blocks.append(block)
            else:
                pair_sum += (block * weights[None, :, None, None]).sum((0, 1))
        failed = torch.zeros_like(self.lengths, dtype=torch.bool)
        if pairwise:
            empty = alpha.new_zeros(0, batch, num_tags, num_tags)
            return unary, torch.cat(blocks) if blocks else empty, failed
        return unary, pair_sum, failed


def run_forward(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
) -> ScaledChain:
    """Run the fast engine; rows where it is unsafe get their ``log_z`` from :class:`LogChain`."""
    engine = ScaledChain(emissions, transitions, start, end, lengths)
    rows = (~engine.row_ok).nonzero().flatten()
    if len(rows):
        engine.log_z[rows] = LogChain(
            emissions[:, rows], transitions, start, end, lengths[rows]
        ).log_z
    return engine


def run_backward(
    engine: ScaledChain,
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    weights: Tensor,
    pairwise: bool = False,
) -> tuple[Tensor, Tensor]:
    """Weighted posteriors (see :meth:`ScaledChain.backward`), exact on every row.

    Rows the scaled engine could not handle are recomputed in log space and merged in.
    """
    unary, pair, failed = engine.backward(weights, pairwise)
    rows = failed.nonzero().flatten()
    if len(rows):
        log_engine = LogChain(emissions[:, rows], transitions, start, end, engine.lengths[rows])
        row_unary, row_pair, _ = log_engine.backward(weights[rows], pairwise)
        unary[:, rows] = row_unary
        if pairwise:
            pair[:, rows] = row_pair
        else:
            pair = pair + row_pair
    return unary, pair


class LogPartition(torch.autograd.Function):
    """``log Z`` with its gradient from an explicit forward-backward pass.

    Inputs are time-major ``emissions (T, B, K)``, ``transitions (K, K)``, ``start (K,)``,
    ``end (K,)`` and ``lengths (B,)``; the output is ``(B,)``. The gradient of ``log Z`` with
    respect to the emissions is the unary marginals, with respect to the transitions the
    summed pairwise marginals (first-order only).
    """

    @staticmethod
    def forward(ctx, emissions, transitions, start, end, lengths):
        engine = run_forward(emissions, transitions, start, end, lengths)
        ctx.engine = engine
        ctx.save_for_backward(emissions, transitions, start, end)
        return engine.log_z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_z):
        emissions, transitions, start, end = ctx.saved_tensors
        engine = ctx.engine
        unary, pair_sum = run_backward(
            engine, emissions, transitions, start, end, grad_log_z.to(emissions.dtype)
        )
        lengths = engine.lengths
        batch_index = torch.arange(lengths.shape[0], device=lengths.device)
        grad_start = unary[0].sum(0)
        grad_end = unary[lengths - 1, batch_index].sum(0)
        return unary, pair_sum, grad_start, grad_end, None
