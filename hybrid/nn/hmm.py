"""A hidden Markov model layer: log-space parameters, pluggable emissions, exact inference.

``HMM(emissions, start, transitions, allowed)`` holds the initial and transition
distributions as logits (normalised with a log-softmax, so gradient training keeps them
distributions) and any emission module of `hybrid.nn.emissions` (Gaussian, GMM,
categorical, or a network's posteriors through `ScaledPosteriors`). ``allowed`` fixes the
topology: dense, banded (`HMM.left_to_right`), or any ``(K, K)`` mask.

Inference runs on the library's engines: the chain engine for the log-likelihood,
posteriors and dense Viterbi, the sparse-graph engine for Viterbi on sparse topologies
(``O(T * arcs)``). `HMM.fit` is Baum-Welch for generative emissions; the expected counts
are the gradients of the log-likelihood. `HMM.from_hmmlearn` converts hmmlearn's
Gaussian, GMM and categorical HMMs, giving the same Viterbi paths and log-likelihoods.

Observations hold ``B >= 1`` sequences of ``T >= 1`` steps; ``lengths`` are ``(B,)`` integers
or a ``(B, T)`` bool prefix mask (right padding), everywhere `fit` included. Float
observations of another dtype than the emission parameters are scored in the wider of the
two (see `hybrid.nn.emissions`); transitions follow the scores' dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..structured import Graph, graph_viterbi, log_partition, marginals, viterbi
from ..structured._inputs import check_not_meta, resolve_lengths
from .emissions import (
    CategoricalEmissions,
    GaussianEmissions,
    GMMEmissions,
    check_parameters,
    check_probabilities,
)

_NEG_INF = float("-inf")
_SPARSE_BELOW = 0.125  # Viterbi on the graph engine when fewer transitions are allowed


def _probabilities(name: str, x: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    if x is None:
        return torch.full(shape, 1.0 / shape[-1], dtype=torch.float64)
    x = torch.as_tensor(x, dtype=torch.float64)
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    check_probabilities(name, x)
    return x


def _check_observations(observations: object, lengths: Tensor | None) -> None:
    """Raise a ``ValueError`` unless ``observations`` is a tensor ``(B, T, ...)`` holding
    ``B >= 1`` sequences of ``T >= 1`` steps, not on the meta device, without NaN inside
    ``lengths`` (as the chain engine takes them; padding may hold anything)."""
    if (
        not isinstance(observations, Tensor)
        or observations.dim() < 2
        or 0 in observations.shape[:2]
    ):
        got = (
            tuple(observations.shape)
            if isinstance(observations, Tensor)
            else type(observations).__name__
        )
        raise ValueError(
            "observations must be a tensor (B, T, ...) of B >= 1 sequences of T >= 1 steps, "
            f"got {got}"
        )
    check_not_meta(observations, "observations")
    if not observations.is_floating_point() or not bool(torch.isnan(observations).any()):
        return
    steps = observations if observations.dim() > 2 else observations[..., None]
    nan = torch.isnan(steps).flatten(2).any(-1)  # (B, T)
    batch, total = nan.shape
    inside = (
        torch.arange(total, device=nan.device)[None, :]
        < resolve_lengths(lengths, batch, total, nan.device)[:, None]
    )
    if (nan & inside).any():
        b, t = (nan & inside).nonzero()[0].tolist()
        raise ValueError(
            f"observations contain NaN inside the lengths (first at batch {b}, step {t})"
        )


class HMM(nn.Module):
    """An HMM over ``K`` states.

    Args:
        emissions: A module mapping observations to ``(B, T, K)`` log emission scores.
        start: ``(K,)`` initial probabilities (uniform if ``None``).
        transitions: ``(K, K)`` probabilities ``[from, to]`` (uniform over ``allowed``
            if ``None``).
        allowed: ``(K, K)`` bool topology (``None``: dense). Forbidden transitions stay
            impossible through training.
        final: ``(K,)`` bool: the states a sequence may end in (``None``: all), fixed.
    """

    def __init__(
        self,
        emissions: nn.Module,
        start: Tensor | None = None,
        transitions: Tensor | None = None,
        allowed: Tensor | None = None,
        final: Tensor | None = None,
    ) -> None:
        super().__init__()
        k = emissions.num_states
        if allowed is None:
            allowed = torch.ones(k, k, dtype=torch.bool)
        check_not_meta(allowed, "allowed")
        if allowed.dtype != torch.bool or tuple(allowed.shape) != (k, k):
            raise ValueError(f"allowed must be a bool tensor (K, K) = {(k, k)}")
        if not allowed.any(-1).all():
            raise ValueError("allowed must let every state go somewhere (a row is all False)")
        if transitions is None:
            transitions = allowed.double() / allowed.sum(-1, keepdim=True)
        transitions = _probabilities("transitions", transitions, (k, k))
        if (transitions[~allowed] > 0).any():
            raise ValueError("transitions puts probability on transitions that allowed forbids")
        self.emissions = emissions
        if final is None:
            final = torch.ones(k, dtype=torch.bool)
        check_not_meta(final, "final")
        if final.dtype != torch.bool or tuple(final.shape) != (k,) or not final.any():
            raise ValueError(f"final must be a bool tensor (K,) = ({k},) with a True entry")
        self.register_buffer("allowed", allowed.clone())
        self.register_buffer("final", final.clone())
        self.start_logits = nn.Parameter(torch.log(_probabilities("start", start, (k,))))
        self.transition_logits = nn.Parameter(torch.log(transitions))
        self._graph_cache: tuple | None = None

    @classmethod
    def left_to_right(cls, emissions: nn.Module, self_loop: float = 0.5, skip: bool = False) -> HMM:
        """A left-to-right (Bakis) HMM from state 0 to the last state: self-loops and
        next-state steps (and one-state skips if ``skip``), so its transitions are banded."""
        k = emissions.num_states
        index = torch.arange(k)
        allowed = (index[None, :] == index[:, None]) | (index[None, :] == index[:, None] + 1)
        if skip:
            allowed |= index[None, :] == index[:, None] + 2
        forward = allowed & ~torch.eye(k, dtype=torch.bool)
        transitions = forward.double() * (1 - self_loop) / forward.sum(-1, keepdim=True).clamp(1)
        transitions += torch.eye(k, dtype=torch.float64) * self_loop
        transitions[-1, -1] = 1.0
        start = torch.zeros(k, dtype=torch.float64)
        start[0] = 1.0
        return cls(emissions, start, transitions, allowed, final=index == k - 1)

    @classmethod
    def from_hmmlearn(cls, model) -> HMM:
        """Convert a fitted ``hmmlearn.hmm.GaussianHMM``, ``GMMHMM`` or ``CategoricalHMM``.

        Parameters are copied in float64; spherical and tied covariances become diagonal and
        full ones. The result decodes to the same paths with the same log-likelihoods.
        """
        from hmmlearn import hmm as hmmlearn

        def tensor(x):
            return torch.as_tensor(x, dtype=torch.float64)

        if isinstance(model, hmmlearn.GaussianHMM):
            emissions = _gaussian_from_hmmlearn(model, tensor)
        elif isinstance(model, hmmlearn.GMMHMM):
            emissions = _gmm_from_hmmlearn(model, tensor)
        elif isinstance(model, hmmlearn.CategoricalHMM):
            emissions = CategoricalEmissions(tensor(model.emissionprob_))
        else:
            raise ValueError(
                "model must be an hmmlearn GaussianHMM, GMMHMM or CategoricalHMM, "
                f"got {type(model).__name__}"
            )
        transitions = tensor(model.transmat_)
        return cls(emissions, tensor(model.startprob_), transitions, transitions > 0)

    @property
    def num_states(self) -> int:
        """``K``."""
        return self.allowed.shape[0]

    @property
    def log_start(self) -> Tensor:
        """``(K,)`` log initial probabilities."""
        return torch.log_softmax(self.start_logits, -1)

    @property
    def log_final(self) -> Tensor:
        """``(K,)``: 0 where a sequence may end, ``-inf`` elsewhere."""
        return torch.zeros(self.num_states).masked_fill(~self.final, _NEG_INF)

    @property
    def log_transitions(self) -> Tensor:
        """``(K, K)`` log transition probabilities ``[from, to]``, ``-inf`` where forbidden."""
        logits = self.transition_logits.masked_fill(~self.allowed, _NEG_INF)
        return torch.log_softmax(logits, -1)

    def graph(self) -> Graph:
        """This HMM's topology as a decoding `Graph` (state ``j`` reads column ``j``)."""
        with torch.no_grad():
            return Graph.from_chain(
                self.log_transitions.cpu(), self.log_start.cpu(), self.log_final.cpu()
            )

    def emission_scores(self, observations: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, T, K)`` log emission scores of ``observations`` (``B, T >= 1``, no NaN
        inside ``lengths``).

        Raises:
            ValueError: bad ``observations`` or ``lengths``, or a parameter or buffer of the
                HMM (its emissions' included) on the meta device, naming it.
        """
        _check_observations(observations, lengths)
        check_parameters(self)
        scores = self.emissions(observations)
        if scores.dim() != 3 or scores.shape[-1] != self.num_states:
            raise ValueError(
                f"the emissions returned shape {tuple(scores.shape)}, expected (B, T, "
                f"K = {self.num_states})"
            )
        return scores

    def _chain(self, scores: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Emission scores, log transitions, log start and log final, in the scores' dtype
        and device."""
        cast = {"dtype": scores.dtype, "device": scores.device}
        return (
            scores,
            self.log_transitions.to(**cast),
            self.log_start.to(**cast),
            self.log_final.to(**cast),
        )

    def forward(self, observations: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B,)`` log-likelihoods ``log p(x_1..x_T)`` (the forward algorithm).

        Args:
            observations: What the emission module takes: ``(B, T, D)`` features, ``(B, T)``
                symbols, or ``(B, T, K)`` log-posteriors.
            lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
        """
        scores = self.emission_scores(observations, lengths)
        return log_partition(*self._chain(scores), lengths=lengths)

    log_likelihood = forward

    def posteriors(self, observations: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, T, K)`` state posteriors ``p(s_t = k | x)``, zeros past each length."""
        with torch.no_grad():
            scores = self.emission_scores(observations, lengths)
            return marginals(*self._chain(scores), lengths=lengths)

    def viterbi(self, observations: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Best state paths ``(B, T)`` (``-1`` past each length) and their log scores ``(B,)``.

        Dense topologies run on the chain engine; sparse ones (fewer than an eighth of the
        transitions allowed) on the graph engine, which only visits allowed transitions.
        """
        with torch.no_grad():
            scores = self.emission_scores(observations, lengths)
            if self.allowed.float().mean() >= _SPARSE_BELOW:
                _, transitions, start, end = self._chain(scores)
                return viterbi(scores, transitions, start, end, lengths=lengths)
            path = graph_viterbi(scores, self._decoding_graph(scores), lengths)
            return path.states, path.scores

    def _decoding_graph(self, scores: Tensor) -> Graph:
        """`graph` on the device and dtype of ``scores``, compiled again only after the
        start or transition parameters change (their in-place version counters)."""
        key = (
            self.start_logits._version,
            self.transition_logits._version,
            id(self.start_logits),
            id(self.transition_logits),
            scores.device,
            scores.dtype,
        )
        if self._graph_cache is None or self._graph_cache[0] != key:
            graph = self.graph().to(scores.device, scores.dtype)
            self._graph_cache = (key, graph)
        return self._graph_cache[1]

    def fit(
        self,
        observations: Tensor,
        lengths: Tensor | None = None,
        iterations: int = 20,
        tolerance: float = 1e-4,
        progress: bool = False,
    ) -> list[float]:
        """Baum-Welch: re-estimate all parameters from ``observations``, in place.

        The E-step's expected counts are gradients of the total log-likelihood: with respect
        to the emission scores they are the state occupancies, with respect to the log
        transition and start probabilities the expected transition and first-state counts.
        The emission module re-estimates itself from the occupancies (its ``reestimate``).

        Args:
            observations: ``(B, T, D)`` features or ``(B, T)`` symbols.
            lengths: ``(B,)`` integers in [1, T], a ``(B, T)`` bool prefix mask, or ``None``
                for full length.
            iterations: Maximum number of EM iterations.
            tolerance: Stop when the total log-likelihood improves by less than this.
            progress: Show a progress bar.

        Returns:
            The total log-likelihood before each iteration's update.

        Raises:
            ValueError: for emissions that cannot re-estimate themselves, or naming the
                argument, for an empty batch or bad ``lengths`` (see `log_partition`).
        """
        if not hasattr(self.emissions, "reestimate"):
            raise ValueError(f"{type(self.emissions).__name__} is not generative: no reestimate")
        _check_observations(observations, lengths)
        batch, steps = observations.shape[:2]
        lengths = resolve_lengths(lengths, batch, steps, observations.device)
        inside = torch.arange(steps, device=observations.device)[None, :] < lengths[:, None]
        frames = observations[inside]
        history: list[float] = []
        for _ in tqdm(range(iterations), desc="baum-welch", disable=not progress):
            scores, transitions, start, end = (
                x.detach().requires_grad_()
                for x in self._chain(self.emission_scores(observations, lengths))
            )
            total = log_partition(scores, transitions, start, end, lengths=lengths).sum()
            occupancy, transition_counts, start_counts = torch.autograd.grad(
                total, (scores, transitions, start)
            )
            history.append(float(total.detach()))
            self._reestimate(start_counts, transition_counts)
            self.emissions.reestimate(frames, occupancy[inside])
            if len(history) > 1 and history[-1] - history[-2] < tolerance:
                break
        return history

    @torch.no_grad()
    def _reestimate(self, start_counts: Tensor, transition_counts: Tensor) -> None:
        start = start_counts / start_counts.sum()
        rows = transition_counts.sum(-1, keepdim=True)
        current = self.log_transitions.exp().to(transition_counts.dtype)
        transitions = torch.where(rows > 0, transition_counts / rows.clamp_min(1e-300), current)
        self.start_logits.copy_(torch.log(start))
        self.transition_logits.copy_(torch.log(transitions))


def _gaussian_from_hmmlearn(model, tensor) -> GaussianEmissions:
    kind, covars = model.covariance_type, tensor(model._covars_)
    k, d = model.means_.shape
    if kind == "spherical":  # one variance per state, stored (K,) or repeated (K, D)
        covars = covars.reshape(k, -1)[:, :1].expand(k, d)
    elif kind == "tied":
        covars = covars[None].expand(k, d, d)
    covariance = "diag" if kind in ("diag", "spherical") else "full"
    return GaussianEmissions(tensor(model.means_), covars, covariance)


def _gmm_from_hmmlearn(model, tensor) -> GMMEmissions:
    kind, covars = model.covariance_type, tensor(model.covars_)
    k, m, d = model.means_.shape
    if kind == "spherical":
        covars = covars[..., None].expand(k, m, d)
    elif kind == "tied":
        covars = covars[:, None].expand(k, m, d, d)
    covariance = "diag" if kind in ("diag", "spherical") else "full"
    return GMMEmissions(tensor(model.weights_), tensor(model.means_), covars, covariance)
