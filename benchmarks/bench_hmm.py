"""HMM Viterbi speed: hybrid vs hmmlearn on the same model, side by side in one process.

Cases (T = 1000 frames, one sequence, float64 as hmmlearn computes): dense K = 10, 100,
1000 and a left-to-right banded K = 1000 (self-loop and next state). Two timings each:

- ``viterbi``: the dynamic program alone on the same frame log-likelihoods: hmmlearn's
  compiled ``_hmmc.viterbi`` vs ``HMM.viterbi`` of a model whose emission module passes the
  scores through (`ScaledPosteriors` with zero priors);
- ``decode``: observations to states, emissions included: ``GaussianHMM.decode`` vs
  ``HMM.from_hmmlearn(model).viterbi`` (13-dimensional diagonal Gaussians).

Both sides must return the same path; the table says so. Ratios are hmmlearn / ours.

    python benchmarks/bench_hmm.py --out benchmarks/results/hmm_cpu.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from hmmlearn import _hmmc
from hmmlearn import hmm as hmmlearn
from timing import median_ms, write_table

from hybrid.nn import HMM, ScaledPosteriors

CASES = {
    "dense K=10": (10, False),
    "dense K=100": (100, False),
    "dense K=1000": (1000, False),
    "banded K=1000": (1000, True),
}
STEPS = 1000
FEATURES = 13


def make_model(states: int, banded: bool, rs: np.random.RandomState) -> hmmlearn.GaussianHMM:
    """A GaussianHMM with random parameters (dense or left-to-right banded)."""
    model = hmmlearn.GaussianHMM(states, covariance_type="diag", init_params="", params="")
    if banded:
        stay = rs.uniform(0.5, 0.9, states)
        transmat = np.diag(stay) + np.diag(1 - stay[:-1], 1)
        transmat[-1, -1] = 1.0
        startprob = np.eye(states)[0]
    else:
        transmat = rs.dirichlet(np.ones(states), states)
        startprob = rs.dirichlet(np.ones(states))
    model.startprob_, model.transmat_ = startprob, transmat
    model.means_ = rs.randn(states, FEATURES) * 2
    model.covars_ = rs.uniform(0.5, 2.0, (states, FEATURES))
    return model


def measure(name: str, states: int, banded: bool, budget: float) -> dict:
    rs = np.random.RandomState(0)
    model = make_model(states, banded, rs)
    ours = HMM.from_hmmlearn(model)
    # Observations from the model itself, so the best path is a plausible one.
    x, _ = model.sample(STEPS, random_state=rs)
    frame_scores = model._compute_log_likelihood(x)
    passthrough = HMM(
        ScaledPosteriors(torch.zeros(states, dtype=torch.float64)),
        ours.log_start.exp().detach(),
        ours.log_transitions.exp().detach(),
        ours.allowed,
    )
    scores = torch.as_tensor(frame_scores)[None]
    observations = torch.as_tensor(x)[None]

    def peer_viterbi():
        return _hmmc.viterbi(model.startprob_, model.transmat_, frame_scores)

    def our_viterbi():
        return passthrough.viterbi(scores)

    def peer_decode():
        return model.decode(x)

    def our_decode():
        return ours.viterbi(observations)

    peer_score, peer_path = peer_decode()
    path, score = our_decode()
    row = {
        "case": name,
        "same_path": bool((path[0].numpy() == peer_path).all()),
        "score_difference": abs(float(score[0]) - peer_score),
    }
    for key, fn in (
        ("peer_viterbi", peer_viterbi),
        ("ours_viterbi", our_viterbi),
        ("peer_decode", peer_decode),
        ("ours_decode", our_decode),
    ):
        row[key] = median_ms(fn, "cpu", budget)
    return row


def format_table(rows: list[dict], threads: int) -> str:
    lines = [
        f"HMM Viterbi, T = {STEPS}, one sequence, float64, CPU, torch threads: {threads}, "
        "median ms (ratio = hmmlearn / ours)",
        "",
        "| case | viterbi: hmmlearn | ours | ratio | decode: hmmlearn | ours | ratio | same path |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['peer_viterbi']:.2f} | {r['ours_viterbi']:.2f} "
            f"| {r['peer_viterbi'] / r['ours_viterbi']:.1f}x | {r['peer_decode']:.2f} "
            f"| {r['ours_decode']:.2f} | {r['peer_decode'] / r['ours_decode']:.1f}x "
            f"| {'yes' if r['same_path'] else 'NO'} (score diff {r['score_difference']:.1e}) |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    index = np.arange(len(rows))
    for offset, key, label in ((-0.2, "peer_viterbi", "hmmlearn"), (0.2, "ours_viterbi", "hybrid")):
        ax.bar(index + offset, [r[key] for r in rows], 0.4, label=label)
    ax.set_yscale("log")
    ax.set_xticks(index, [r["case"] for r in rows])
    ax.set_ylabel("Viterbi, ms (log scale)")
    ax.set_title(f"HMM Viterbi, T = {STEPS}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per timing cell")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", type=Path, help="write the table here (and .csv, .png)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure(name, *CASES[name], args.budget) for name in args.cases]
    table = format_table(rows, args.threads)
    print(table)
    if args.out:
        write_table(args.out, table, rows)
        plot(rows, args.out.with_suffix(".png"))
    return 0 if all(r["same_path"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
