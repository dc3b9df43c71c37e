"""Parsing recipe: seq2seq without attention, with it, and with it and the word pointer
(greedy, beam and constrained decoding), and the chart parser as a tree CRF and as a
structured SVM (CKY), on one encoder; over several seeds.

    python recipes/parse.py                                     # embedded synthetic treebank
    python recipes/parse.py --corpus ptb --data ../shared/data  # the Penn Treebank sample
    python recipes/parse.py --corpus ptb --models chart-crf --epochs 15 --seeds 0 1 2

Every option of ``hybrid train-parser`` (see ``--help``) but ``--seed``, and ``--seeds``
(default: 0). Each seed trains into its own run folder, ``<runs>/<name>-s<seed>`` (resumable
like any run folder); the mean ± std over seeds goes to ``<runs>/<name>-seeds.md`` and is
printed.
"""

import argparse
import sys
from pathlib import Path

from hybrid.cli import main
from hybrid.commands import NON_NEGATIVE_INT
from hybrid.files import read_json, write_text_atomic
from hybrid.parsing.experiment import seeds_table


def run(argv: list[str]) -> int:
    options = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    options.add_argument("--seeds", nargs="+", type=NON_NEGATIVE_INT, default=[0])
    options.add_argument("--corpus", default="synthetic")
    options.add_argument("--runs", default="runs")
    options.add_argument("--name")
    known, rest = options.parse_known_args(argv)
    if "--seed" in rest:
        print("parse.py: error: give --seeds (a run folder per seed), not --seed", file=sys.stderr)
        return 2
    if "-h" in rest or "--help" in rest:
        return main(["train-parser", "--help"])
    name = known.name or f"parse-{known.corpus}"
    common = ["--corpus", known.corpus, "--runs", known.runs, *rest]
    for seed in known.seeds:
        code = main(["train-parser", *common, "--seeds", str(seed), "--name", f"{name}-s{seed}"])
        if code:
            return code
    runs = {s: read_json(Path(known.runs) / f"{name}-s{s}" / "results.json") for s in known.seeds}
    table = seeds_table(runs, known.corpus)
    write_text_atomic(Path(known.runs) / f"{name}-seeds.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
