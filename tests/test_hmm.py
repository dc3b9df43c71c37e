"""The HMM layer against hmmlearn (decoding, likelihood, posteriors, Baum-Welch) and itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hmmlearn import hmm as hmmlearn

from hybrid.nn.emissions import (
    CategoricalEmissions,
    GaussianEmissions,
    GMMEmissions,
    ScaledPosteriors,
)
from hybrid.nn.hmm import HMM
from hybrid.structured import viterbi

LENGTHS = [37, 60, 1, 45]


def _features(seed: int, dim: int = 3) -> np.ndarray:
    rs = np.random.RandomState(seed)
    # Three well-separated regimes so that the fitted models are not degenerate.
    centres = rs.randn(3, dim) * 3
    labels = np.repeat(rs.randint(0, 3, sum(LENGTHS) // 5 + 1), 5)[: sum(LENGTHS)]
    return centres[labels] + rs.randn(sum(LENGTHS), dim)


def _batch(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Split the concatenated sequences; pad them into a batch ``(B, T, ...)``."""
    pieces = np.split(x, np.cumsum(LENGTHS)[:-1])
    width = max(LENGTHS)
    padded = np.zeros((len(pieces), width, *x.shape[1:]), dtype=x.dtype)
    for b, piece in enumerate(pieces):
        padded[b, : len(piece)] = piece
    return torch.as_tensor(padded), torch.tensor(LENGTHS), pieces


def _fitted_models():
    x = _features(0)
    for kind in ("diag", "full", "spherical", "tied"):
        yield (
            f"gaussian-{kind}",
            hmmlearn.GaussianHMM(4, covariance_type=kind, n_iter=5, random_state=0).fit(x, LENGTHS),
            x,
        )
        yield (
            f"gmm-{kind}",
            hmmlearn.GMMHMM(3, n_mix=2, covariance_type=kind, n_iter=5, random_state=0).fit(
                x, LENGTHS
            ),
            x,
        )
    symbols = np.random.RandomState(1).randint(0, 5, (sum(LENGTHS), 1))
    yield (
        "categorical",
        hmmlearn.CategoricalHMM(3, n_iter=5, random_state=0).fit(symbols, LENGTHS),
        symbols,
    )


MODELS = list(_fitted_models())


@pytest.mark.parametrize("name, model, x", MODELS, ids=[m[0] for m in MODELS])
def test_from_hmmlearn_decodes_like_hmmlearn(name, model, x):
    ours = HMM.from_hmmlearn(model)
    observations, lengths, pieces = _batch(x[:, 0] if name == "categorical" else x)
    paths, scores = ours.viterbi(observations, lengths)
    log_likelihood = ours(observations, lengths)
    posteriors = ours.posteriors(observations, lengths)
    for b, piece in enumerate(np.split(x, np.cumsum(LENGTHS)[:-1])):
        n = len(piece)
        expected_score, expected_path = model.decode(piece)
        assert paths[b, :n].tolist() == expected_path.tolist()
        assert (paths[b, n:] == -1).all()
        assert scores[b].item() == pytest.approx(expected_score, rel=1e-10)
        assert log_likelihood[b].item() == pytest.approx(model.score(piece), rel=1e-10)
        np.testing.assert_allclose(posteriors[b, :n].numpy(), model.predict_proba(piece), atol=1e-9)
    assert len(pieces) == len(LENGTHS)


def test_sparse_topology_decodes_on_the_graph_engine_like_the_chain_engine():
    generator = torch.Generator().manual_seed(0)
    k, d = 120, 2
    emissions = GaussianEmissions(
        torch.randn(k, d, generator=generator, dtype=torch.float64),
        torch.rand(k, d, generator=generator, dtype=torch.float64) + 0.5,
    )
    model = HMM.left_to_right(emissions, self_loop=0.7, skip=True)
    assert model.allowed.float().mean() < 0.125  # takes the graph path
    x = torch.randn(3, 300, d, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([300, 250, 130])

    def check():
        paths, scores = model.viterbi(x, lengths)
        expected_paths, expected_scores = viterbi(
            model.emission_scores(x).detach(),
            model.log_transitions.detach(),
            model.log_start.detach(),
            model.log_final,
            lengths=lengths,
        )
        assert torch.equal(paths, expected_paths)
        torch.testing.assert_close(scores, expected_scores)
        return paths

    before = check()
    model.fit(x, lengths, iterations=1)  # the compiled graph must follow the new parameters
    paths = check()
    assert not torch.equal(before, paths)
    # A left-to-right model never moves backwards, starts in state 0 and ends in the last.
    steps = paths[:, 1:] - paths[:, :-1]
    valid = paths[:, 1:] >= 0
    assert ((steps >= 0) & (steps <= 2))[valid].all() and (paths[:, 0] == 0).all()
    assert (paths[torch.arange(3), lengths - 1] == k - 1).all()


@pytest.mark.parametrize("kind", ["diag", "full", "categorical"])
def test_baum_welch_equals_hmmlearn(kind):
    """Same initial parameters, no priors: hmmlearn's EM and ours take the same steps."""
    if kind == "categorical":
        x = np.random.RandomState(2).randint(0, 4, (sum(LENGTHS), 1))
        reference = hmmlearn.CategoricalHMM(3, n_iter=1, random_state=0, init_params="")
        reference.startprob_ = np.array([0.5, 0.3, 0.2])
        reference.transmat_ = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
        reference.emissionprob_ = np.random.RandomState(3).dirichlet(np.ones(4), 3)
        data = x[:, 0]
    else:
        x = _features(4)
        reference = hmmlearn.GaussianHMM(
            3,
            covariance_type=kind,
            n_iter=1,
            random_state=0,
            covars_prior=0.0,
            init_params="",
        )
        reference.startprob_ = np.array([0.5, 0.3, 0.2])
        reference.transmat_ = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
        reference.means_ = x[[0, 40, 80]]
        covars = np.ones((3, x.shape[1])) if kind == "diag" else np.stack([np.eye(x.shape[1])] * 3)
        reference.covars_ = covars
        data = x
    ours = HMM.from_hmmlearn(reference)
    ours.emissions.variance_floor = 1e-12
    observations, lengths, _ = _batch(data)
    for _ in range(4):
        reference.fit(x, LENGTHS)
        ours.fit(observations, lengths, iterations=1)
        np.testing.assert_allclose(ours.log_start.exp().detach().numpy(), reference.startprob_)
        np.testing.assert_allclose(
            ours.log_transitions.exp().detach().numpy(), reference.transmat_, atol=1e-10
        )
        if kind == "categorical":
            np.testing.assert_allclose(
                ours.emissions.log_probs.exp().detach().numpy(), reference.emissionprob_
            )
        else:
            np.testing.assert_allclose(ours.emissions.means.detach().numpy(), reference.means_)
            np.testing.assert_allclose(
                ours.emissions.covars.detach().numpy(), reference._covars_, rtol=1e-8
            )


def test_baum_welch_with_mixtures_climbs_and_recovers_a_two_state_model():
    generator = torch.Generator().manual_seed(5)
    # Ground truth: two sticky states, each a two-component mixture in 2-D.
    centres = torch.tensor([[[-4.0, 0.0], [-4.0, 3.0]], [[4.0, 0.0], [4.0, -3.0]]])
    states = torch.zeros(8, 80, dtype=torch.long)
    for t in range(1, 80):
        switch = torch.rand(8, generator=generator) < 0.1
        states[:, t] = torch.where(switch, 1 - states[:, t - 1], states[:, t - 1])
    component = torch.randint(0, 2, (8, 80), generator=generator)
    x = centres[states, component] + 0.5 * torch.randn(8, 80, 2, generator=generator)
    x = x.double()
    emissions = GMMEmissions(
        torch.full((2, 2), 0.5, dtype=torch.float64),
        torch.randn(2, 2, 2, generator=generator, dtype=torch.float64),
        torch.ones(2, 2, 2, dtype=torch.float64) * 4,
    )
    model = HMM(emissions)
    history = model.fit(x, iterations=60, tolerance=1e-8)
    assert all(b >= a - 1e-6 for a, b in zip(history, history[1:], strict=False))
    paths, _ = model.viterbi(x)
    agreement = (paths == states).double().mean().item()
    assert max(agreement, 1 - agreement) > 0.97
    stay = torch.diagonal(model.log_transitions.exp().detach())
    torch.testing.assert_close(stay, torch.full((2,), 0.9, dtype=torch.float64), atol=0.05, rtol=0)


def test_scaled_posteriors_apply_bayes_rule():
    alignments = torch.tensor([[0, 0, 1, 2, -1], [2, 2, 2, 0, -1]])
    layer = ScaledPosteriors.from_alignments(alignments, 4, acoustic_scale=0.5, prior_scale=0.8)
    counts = torch.tensor([3.0, 1.0, 4.0, 0.0]) / 8
    counts[3] = 1e-5
    torch.testing.assert_close(layer.log_priors, torch.log(counts / counts.sum()))
    log_post = torch.log_softmax(torch.randn(2, 5, 4), -1)
    torch.testing.assert_close(
        layer(log_post), 0.5 * (log_post - 0.8 * layer.log_priors), rtol=1e-6, atol=1e-6
    )
    with pytest.raises(ValueError, match="alignments must hold states in"):
        ScaledPosteriors.from_alignments(torch.tensor([0, 5]), 4)
    with pytest.raises(ValueError, match=r"log_posteriors must be \(B, T, K = 4\)"):
        layer(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="not generative"):
        HMM(layer).fit(log_post)


def test_gradients_reach_every_parameter():
    generator = torch.Generator().manual_seed(6)
    emissions = GaussianEmissions(torch.randn(3, 2, generator=generator), torch.ones(3, 2))
    model = HMM(emissions)
    x = torch.randn(2, 10, 2, generator=generator)
    (-model(x, torch.tensor([10, 6])).sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_bad_input():
    emissions = GaussianEmissions(torch.zeros(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"allowed must be a bool tensor \(K, K\)"):
        HMM(emissions, allowed=torch.ones(3, 3))
    with pytest.raises(ValueError, match="a row is all False"):
        HMM(emissions, allowed=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="transitions puts probability on transitions"):
        HMM(emissions, transitions=torch.full((3, 3), 1 / 3), allowed=torch.eye(3).bool())
    with pytest.raises(ValueError, match=r"final must be a bool tensor \(K,\)"):
        HMM(emissions, final=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="start must hold probabilities"):
        HMM(emissions, start=torch.tensor([0.5, 0.6, -0.1]))
    with pytest.raises(ValueError, match=r"observations must be a float tensor \(B, T, D = 2\)"):
        HMM(emissions)(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="covars must have shape"):
        GaussianEmissions(torch.zeros(3, 2), torch.ones(3, 2, 2), "diag")
    with pytest.raises(ValueError, match="covariance must be one of"):
        GaussianEmissions(torch.zeros(3, 2), torch.ones(3, 2), "tied")
    categorical = HMM(CategoricalEmissions(torch.full((2, 3), 1 / 3)))
    with pytest.raises(ValueError, match=r"symbols in \[0, V\) = \[0, 3\)"):
        categorical(torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match="integer tensor"):
        categorical(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="GaussianHMM, GMMHMM or CategoricalHMM"):
        HMM.from_hmmlearn(hmmlearn.PoissonHMM(2))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T\]"):
        HMM(emissions).viterbi(torch.zeros(2, 4, 2), torch.tensor([4, 5]))


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_reestimate_from_an_alignment_equals_one_hot_occupancies(covariance):
    """Viterbi training's state-by-state M-step against the general one with one-hot
    occupancies; a state without frames keeps its parameters in both."""
    generator = torch.Generator().manual_seed(0)
    k, m, d = 4, 3, 2
    weights = torch.softmax(torch.randn(k, m, generator=generator, dtype=torch.float64), -1)
    means = torch.randn(k, m, d, generator=generator, dtype=torch.float64)
    if covariance == "diag":
        covars = torch.rand(k, m, d, generator=generator, dtype=torch.float64) + 0.5
    else:
        covars = torch.eye(d, dtype=torch.float64).expand(k, m, d, d) * 0.8
    frames = torch.randn(60, d, generator=generator, dtype=torch.float64)
    states = torch.randint(0, k - 1, (60,), generator=generator)  # state k - 1 gets no frame
    general = GMMEmissions(weights, means, covars, covariance)
    aligned = GMMEmissions(weights, means, covars, covariance)
    occupancy = torch.nn.functional.one_hot(states, k).double()
    general.reestimate(frames, occupancy)
    aligned.reestimate_aligned(frames, states)
    for name in ("log_weights", "means", "covars"):
        torch.testing.assert_close(getattr(aligned, name), getattr(general, name))
    torch.testing.assert_close(aligned.means[k - 1], means[k - 1])
    with pytest.raises(ValueError, match=r"states must lie in \[0, 4\)"):
        aligned.reestimate_aligned(frames, states + 2)
    with pytest.raises(ValueError, match=r"states must have shape \(N,\) = \(60,\)"):
        aligned.reestimate_aligned(frames, states[:5])
