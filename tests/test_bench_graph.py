"""`benchmarks/bench_graph.py`: its bigram is a distribution after every history, and it runs
end to end on a tiny corpus, both graphs finding the same best scores."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_graph  # noqa: E402

from hybrid.ctc.lm import BOS, EOS  # noqa: E402

SENTENCES = [
    "show me the flights to boston",
    "show me the fares to denver",
    "the flights from boston to denver",
    "list the flights",
]


def test_the_bigram_sums_to_one_after_every_history():
    words = sorted({w for s in SENTENCES for w in s.split()})
    lm = bench_graph.bigram([s.split() for s in SENTENCES], words)
    tokens = [*words, EOS]
    for history in [BOS, *words]:
        contexts = torch.full((len(tokens), 1), lm.token_id(history))
        targets = torch.tensor([lm.token_id(t) for t in tokens])
        total = lm.score(contexts, targets).exp().sum()
        assert float(total) == pytest.approx(1.0, abs=1e-9), history


def test_the_benchmark_runs_on_a_tiny_corpus(tmp_path):
    for part, lines in (("train", SENTENCES), ("test", SENTENCES[:2])):
        folder = tmp_path / "atis" / part
        folder.mkdir(parents=True)
        (folder / "seq.in").write_text("\n".join(lines) + "\n")
    out = tmp_path / "graph.md"
    code = bench_graph.main(["--data", str(tmp_path), "--sentences", "2", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [(r["grammar"], r["graph"]) for r in rows] == [
        ("unigram loop", "by word"),
        ("unigram loop", "determinized L∘G"),
        ("bigram", "by word"),
        ("bigram", "determinized L∘G"),
    ]
    for by_word, shared in (rows[:2], rows[2:]):
        assert int(shared["arcs"]) < int(by_word["arcs"])
        assert float(shared["exact_score_gap"]) < 1e-3
        assert not math.isnan(float(shared["beam_rtf"]))
    assert "determinized L∘G" in out.read_text()
