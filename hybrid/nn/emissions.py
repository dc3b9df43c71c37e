"""Emission models of an HMM: per-frame, per-state log scores ``(B, T, K)``.

Each module maps observations to log emission scores and, where the model is generative,
re-estimates itself from state occupancies (the M-step of Baum-Welch):

- `GaussianEmissions`: one Gaussian per state, diagonal or full covariance.
- `GMMEmissions`: a mixture of diagonal or full Gaussians per state.
- `CategoricalEmissions`: a discrete distribution over symbols per state.
- `ScaledPosteriors`: the hybrid model's emissions, a network's state log-posteriors turned
  into scaled log-likelihoods with Bayes' rule, ``log p(x|s) = log p(s|x) - log p(s) + c``.

Parameters are checked as hmmlearn checks them, naming the parameter: ``covars`` must hold
positive variances (``"diag"``) or symmetric positive-definite matrices (``"full"``), when
the module is built and before each use (gradient steps may break them); mixture ``weights``
and categorical ``probabilities`` must be distributions. Observations of another float dtype
than the parameters are scored in the wider of the two (torch's type promotion): float32
features under float64 parameters give float64 scores, and gradients reach the parameters.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
from torch import Tensor, nn

from ..structured._inputs import capturing, check_not_meta

_COVARIANCES = ("diag", "full")


def check_parameters(module: nn.Module) -> None:
    """Raise a ``ValueError`` naming the first parameter or buffer of ``module`` that is a meta
    tensor (a module moved to the meta device holds shapes without values)."""
    for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
        check_not_meta(tensor, name)


def _check_observations(x: Tensor, features: int) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != features:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"observations must be a float tensor (B, T, D = {features}), got {shape}")
    check_not_meta(x, "observations")
    if not x.is_floating_point():
        raise ValueError(f"observations must be floating point, got {x.dtype}")
    return x


def _check_covariance(covariance: str) -> None:
    if covariance not in _COVARIANCES:
        raise ValueError(f"covariance must be one of {_COVARIANCES}, got {covariance!r}")


def _first(mask: Tensor) -> str:
    """The index of the first ``True`` of ``mask``, as ``"i, j, ..."``."""
    return ", ".join(str(i) for i in mask.nonzero()[0].tolist())


def _check_covars(covars: Tensor, covariance: str) -> None:
    """Raise a ``ValueError`` naming the first bad entry of ``covars`` unless it holds positive
    finite variances (``"diag"``, ``(..., D)``) or finite symmetric positive-definite matrices
    (``"full"``, ``(..., D, D)``). Skipped while a graph is recorded: the parameters are
    those of a model checked when it was trained or loaded."""
    c = check_not_meta(covars, "covars").detach()
    if capturing():
        return
    if covariance == "diag":
        bad = ~((c > 0) & torch.isfinite(c))  # also catches NaN
        if bad.any():
            where = _first(bad)
            raise ValueError(
                f"covars must hold positive finite variances (covariance='diag'), "
                f"got covars[{where}] = {c[bad][0].item()}"
            )
        return
    largest = c.abs().flatten(-2).amax(-1)
    tolerance = torch.finfo(c.dtype).eps ** 0.5 * largest
    problems = (
        ("holds NaN or infinity", ~torch.isfinite(c).flatten(-2).all(-1)),
        ("is not symmetric", (c - c.mT).abs().flatten(-2).amax(-1) > tolerance),
        ("is not positive-definite", torch.linalg.cholesky_ex(c).info != 0),
    )
    for problem, bad in problems:
        if bad.any():
            raise ValueError(
                "covars must hold symmetric positive-definite matrices (covariance='full'), "
                f"covars[{_first(bad)}] {problem}"
            )


def check_probabilities(name: str, probabilities: Tensor) -> None:
    """Raise a ``ValueError`` naming ``name`` unless every row (last axis) of
    ``probabilities`` is a distribution: entries >= 0 summing to 1 (`torch.allclose`)."""
    p = check_not_meta(probabilities, name).detach()
    sums = p.sum(-1)
    if not bool((p >= 0).all()) or not torch.allclose(sums, torch.ones_like(sums)):
        raise ValueError(f"{name} must hold probabilities that sum to 1 along the last axis")


def _promoted(*tensors: Tensor) -> tuple[Tensor, ...]:
    """``tensors`` in the widest of their dtypes (torch's type promotion)."""
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return tuple(t.to(dtype) for t in tensors)


def gaussian_log_density(x: Tensor, means: Tensor, covars: Tensor, covariance: str) -> Tensor:
    """Log densities of ``x`` ``(N, D)`` under ``C`` Gaussians: ``(N, C)``.

    Args:
        x: ``(N, D)`` observations.
        means: ``(C, D)``.
        covars: ``(C, D)`` variances for ``"diag"``, ``(C, D, D)`` matrices for ``"full"``.
        covariance: ``"diag"`` or ``"full"``.
    """
    d = x.shape[-1]
    if covariance == "diag":  # one product: [x^2, x] @ [-prec / 2; mean * prec] + constant
        precision = 1.0 / covars
        weights = torch.cat([-0.5 * precision, means * precision], dim=1)
        constant = -0.5 * (
            d * math.log(2 * math.pi) + torch.log(covars).sum(-1) + (means**2 * precision).sum(-1)
        )
        return torch.cat([x * x, x], dim=1) @ weights.T + constant
    cholesky = torch.linalg.cholesky(covars)  # (C, D, D)
    diff = (x[None, :, :] - means[:, None, :]).transpose(1, 2)  # (C, D, N)
    solved = torch.linalg.solve_triangular(cholesky, diff, upper=False)
    quadratic = (solved**2).sum(1).T
    log_det = 2 * torch.log(torch.diagonal(cholesky, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (d * math.log(2 * math.pi) + log_det + quadratic)


def _weighted_moments(
    x: Tensor, weights: Tensor, covariance: str, floor: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Occupancy-weighted means and covariances: ``(C,)`` totals, ``(C, D)``, covariances."""
    total = weights.sum(0)  # (C,)
    safe = total.clamp_min(1e-10)[:, None]
    means = weights.T @ x / safe
    if covariance == "diag":
        covars = weights.T @ (x * x) / safe - means**2
        return total, means, covars.clamp_min(floor)
    second = torch.einsum("nc,nd,ne->cde", weights, x, x) / safe[..., None]
    covars = second - means[:, :, None] * means[:, None, :]
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return total, means, covars + floor * eye


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    """``(C,)`` mask viewed with trailing singleton dimensions to broadcast over ``like``."""
    return mask.reshape(-1, *([1] * (like.dim() - 1)))


class GaussianEmissions(nn.Module):
    """One Gaussian per state.

    Args:
        means: ``(K, D)``.
        covars: ``(K, D)`` variances (``"diag"``) or ``(K, D, D)`` covariances (``"full"``).
        covariance: ``"diag"`` or ``"full"``.
        variance_floor: Lower bound on re-estimated variances (added to the diagonal of full
            covariances), which keeps a state with few frames from collapsing.
    """

    def __init__(
        self, means: Tensor, covars: Tensor, covariance: str = "diag", variance_floor: float = 1e-3
    ) -> None:
        super().__init__()
        _check_covariance(covariance)
        k, d = means.shape
        expected = (k, d) if covariance == "diag" else (k, d, d)
        if tuple(covars.shape) != expected:
            raise ValueError(f"covars must have shape {expected}, got {tuple(covars.shape)}")
        _check_covars(covars, covariance)
        self.covariance = covariance
        self.variance_floor = variance_floor
        self.means = nn.Parameter(means.clone())
        self.covars = nn.Parameter(covars.clone())

    @property
    def num_states(self) -> int:
        return self.means.shape[0]

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, T, D)`` observations -> ``(B, T, K)`` log densities (in the wider of the
        observations' and the parameters' dtypes)."""
        x = _check_observations(observations, self.means.shape[1])
        check_parameters(self)
        _check_covars(self.covars, self.covariance)
        frames, means, covars = _promoted(x.reshape(-1, x.shape[-1]), self.means, self.covars)
        flat = gaussian_log_density(frames, means, covars, self.covariance)
        return flat.reshape(*x.shape[:2], self.num_states)

    @torch.no_grad()
    def reestimate(self, observations: Tensor, occupancy: Tensor) -> None:
        """M-step from frames ``(N, D)`` and their state posteriors ``(N, K)``."""
        observations, occupancy, _ = _promoted(observations, occupancy, self.means)
        total, means, covars = _weighted_moments(
            observations, occupancy, self.covariance, self.variance_floor
        )
        seen = total > 0  # a state without frames keeps its parameters
        self.means.copy_(torch.where(seen[:, None], means, self.means))
        self.covars.copy_(torch.where(_expand(seen, covars), covars, self.covars))


class GMMEmissions(nn.Module):
    """A mixture of ``M`` Gaussians per state.

    Args:
        weights: ``(K, M)`` mixture weights (rows sum to 1).
        means: ``(K, M, D)``.
        covars: ``(K, M, D)`` (``"diag"``) or ``(K, M, D, D)`` (``"full"``).
        covariance: ``"diag"`` or ``"full"``.
        variance_floor: As in `GaussianEmissions`.
    """

    def __init__(
        self,
        weights: Tensor,
        means: Tensor,
        covars: Tensor,
        covariance: str = "diag",
        variance_floor: float = 1e-3,
    ) -> None:
        super().__init__()
        _check_covariance(covariance)
        k, m, d = means.shape
        if tuple(weights.shape) != (k, m):
            raise ValueError(
                f"weights must have shape (K, M) = {(k, m)}, got {tuple(weights.shape)}"
            )
        expected = (k, m, d) if covariance == "diag" else (k, m, d, d)
        if tuple(covars.shape) != expected:
            raise ValueError(f"covars must have shape {expected}, got {tuple(covars.shape)}")
        check_probabilities("weights", weights)
        _check_covars(covars, covariance)
        self.covariance = covariance
        self.variance_floor = variance_floor
        self.log_weights = nn.Parameter(torch.log(weights))
        self.means = nn.Parameter(means.clone())
        self.covars = nn.Parameter(covars.clone())

    @property
    def num_states(self) -> int:
        return self.means.shape[0]

    def component_scores(self, observations: Tensor) -> Tensor:
        """``(N, D)`` frames -> ``(N, K, M)`` log weight + log density of each component (in
        the wider of the frames' and the parameters' dtypes)."""
        k, m, d = self.means.shape
        frames, means, covars, log_weights = _promoted(
            observations, self.means, self.covars, self.log_weights
        )
        density = gaussian_log_density(
            frames,
            means.reshape(k * m, d),
            covars.reshape(k * m, *covars.shape[2:]),
            self.covariance,
        )
        return density.reshape(-1, k, m) + log_weights

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, T, D)`` observations -> ``(B, T, K)`` log densities."""
        x = _check_observations(observations, self.means.shape[2])
        check_parameters(self)
        _check_covars(self.covars, self.covariance)
        scores = torch.logsumexp(self.component_scores(x.reshape(-1, x.shape[-1])), -1)
        return scores.reshape(*x.shape[:2], self.num_states)

    @torch.no_grad()
    def reestimate(self, observations: Tensor, occupancy: Tensor) -> None:
        """M-step: state occupancies ``(N, K)`` split over components by their posteriors."""
        k, m, d = self.means.shape
        components = self.component_scores(observations)
        observations, occupancy, _ = _promoted(observations, occupancy, components)
        responsibility = occupancy[:, :, None] * torch.softmax(components, -1)  # (N, K, M)
        total, means, covars = _weighted_moments(
            observations, responsibility.reshape(-1, k * m), self.covariance, self.variance_floor
        )
        self._update(total, means, covars)

    @torch.no_grad()
    def reestimate_aligned(self, observations: Tensor, states: Tensor) -> None:
        """M-step from a hard alignment (Viterbi training): frames ``(N, D)``, each wholly in
        its state ``states (N,)`` (int64 in ``[0, K)``). The same update as `reestimate` with
        one-hot occupancies, state by state, in memory that grows with ``N`` and not with
        ``N x K``.

        Raises:
            ValueError: ``states`` not of shape ``(N,)``, or outside ``[0, K)``.
        """
        k, m, d = self.means.shape
        if states.shape != observations.shape[:1]:
            raise ValueError(
                f"states must have shape (N,) = ({observations.shape[0]},), got "
                f"{tuple(states.shape)}"
            )
        if len(states) and not 0 <= int(states.min()) <= int(states.max()) < k:
            raise ValueError(
                f"states must lie in [0, {k}), got {int(states.min())}..{int(states.max())}"
            )
        observations, means, covars, log_weights = _promoted(
            observations, self.means, self.covars, self.log_weights
        )
        total = torch.zeros(k, m, dtype=observations.dtype, device=observations.device)
        new_means, new_covars = means.clone(), covars.clone()
        order = torch.argsort(states, stable=True)
        counts = torch.bincount(states, minlength=k).tolist()
        for state, frames in enumerate(torch.split(observations[order], counts)):
            if len(frames) == 0:
                continue
            components = log_weights[state] + gaussian_log_density(
                frames, means[state], covars[state], self.covariance
            )
            responsibility = torch.softmax(components, -1)  # (n, M)
            total[state], new_means[state], new_covars[state] = _weighted_moments(
                frames, responsibility, self.covariance, self.variance_floor
            )
        self._update(
            total.reshape(k * m),
            new_means.reshape(k * m, d),
            new_covars.reshape(k * m, *covars.shape[2:]),
        )

    def _update(self, total: Tensor, means: Tensor, covars: Tensor) -> None:
        """Set the parameters from per-component ``(K * M,)`` occupancies, means and
        covariances; a component (or state) without frames keeps its parameters."""
        k, m, d = self.means.shape
        seen = total > 0
        means = torch.where(seen[:, None], means, self.means.reshape(k * m, d))
        old = self.covars.reshape(k * m, *self.covars.shape[2:])
        covars = torch.where(_expand(seen, covars), covars, old)
        total = total.reshape(k, m)
        state_total = total.sum(-1, keepdim=True)
        weights = torch.where(
            state_total > 0, total / state_total.clamp_min(1e-300), self.log_weights.exp()
        )
        self.log_weights.copy_(torch.log(weights.clamp_min(1e-10)))
        self.means.copy_(means.reshape(k, m, d))
        self.covars.copy_(covars.reshape(self.covars.shape))


class CategoricalEmissions(nn.Module):
    """A discrete distribution over ``V`` symbols per state.

    Args:
        probabilities: ``(K, V)`` rows summing to 1.
    """

    def __init__(self, probabilities: Tensor) -> None:
        super().__init__()
        if probabilities.dim() != 2:
            raise ValueError(f"probabilities must be (K, V), got {tuple(probabilities.shape)}")
        check_probabilities("probabilities", probabilities)
        self.log_probs = nn.Parameter(torch.log(probabilities))

    @property
    def num_states(self) -> int:
        return self.log_probs.shape[0]

    def forward(self, observations: Tensor) -> Tensor:
        """``(B, T)`` integer symbols -> ``(B, T, K)`` log probabilities."""
        symbols = self.log_probs.shape[1]
        if (
            not isinstance(observations, Tensor)
            or observations.dim() != 2
            or observations.is_floating_point()
            or observations.dtype == torch.bool
        ):
            raise ValueError("observations must be an integer tensor (B, T) of symbols")
        check_not_meta(observations, "observations")
        check_parameters(self)
        if (observations < 0).any() or (observations >= symbols).any():
            raise ValueError(f"observations must hold symbols in [0, V) = [0, {symbols})")
        return self.log_probs.T[observations]

    @torch.no_grad()
    def reestimate(self, observations: Tensor, occupancy: Tensor) -> None:
        """M-step from symbols ``(N,)`` and state posteriors ``(N, K)``."""
        counts = torch.zeros_like(self.log_probs.T).index_add_(0, observations, occupancy).T
        self.log_probs.copy_(torch.log(counts / counts.sum(-1, keepdim=True).clamp_min(1e-10)))


class ScaledPosteriors(nn.Module):
    """Bayes' rule for hybrid models: state log-posteriors to scaled log-likelihoods.

    ``scores = acoustic_scale * (log p(s|x) - prior_scale * log p(s))``, the emission scores of
    a hybrid DNN-HMM (Kaldi's ``nnet-am-compute`` with priors divided out, then its
    ``--acoustic-scale``). The priors are state frequencies in the training alignments.

    Args:
        log_priors: ``(K,)`` log state priors.
        acoustic_scale: Weight of the acoustic scores against the graph's weights.
        prior_scale: Exponent of the priors (1 = exact Bayes' rule, 0 = raw posteriors).
    """

    def __init__(
        self, log_priors: Tensor, acoustic_scale: float = 1.0, prior_scale: float = 1.0
    ) -> None:
        super().__init__()
        check_not_meta(log_priors, "log_priors")
        if log_priors.dim() != 1 or not torch.isfinite(log_priors).all():
            raise ValueError("log_priors must be a finite 1-D tensor (K,); floor unseen states")
        self.register_buffer("log_priors", log_priors.clone())
        self.acoustic_scale = acoustic_scale
        self.prior_scale = prior_scale

    @classmethod
    def from_alignments(
        cls, alignments: Tensor, num_states: int, floor: float = 1e-5, **scales: float
    ) -> ScaledPosteriors:
        """Priors from frame-level state alignments (``-1`` entries are padding).

        Args:
            alignments: Integer tensor of any shape, states in ``[0, K)`` or ``-1``.
            num_states: ``K``.
            floor: Smallest prior, for states that never occur.
            **scales: ``acoustic_scale`` and ``prior_scale``.
        """
        states = alignments[alignments >= 0].long()
        if states.numel() == 0 or int(states.max()) >= num_states:
            raise ValueError(f"alignments must hold states in [0, {num_states}) and some frames")
        counts = torch.bincount(states, minlength=num_states).double()
        priors = (counts / counts.sum()).clamp_min(floor)
        return cls(torch.log(priors / priors.sum()).float(), **scales)

    @property
    def num_states(self) -> int:
        return self.log_priors.shape[0]

    def forward(self, log_posteriors: Tensor) -> Tensor:
        """``(B, T, K)`` state log-posteriors -> ``(B, T, K)`` scaled log-likelihoods."""
        if log_posteriors.dim() != 3 or log_posteriors.shape[-1] != self.num_states:
            raise ValueError(
                f"log_posteriors must be (B, T, K = {self.num_states}), "
                f"got {tuple(log_posteriors.shape)}"
            )
        check_not_meta(log_posteriors, "log_posteriors")
        check_parameters(self)
        priors = self.log_priors.to(log_posteriors.dtype)
        return self.acoustic_scale * (log_posteriors - self.prior_scale * priors)
