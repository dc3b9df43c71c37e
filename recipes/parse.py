"""Parsing recipe: seq2seq without attention, with it, and with it and the word pointer
(greedy, beam and constrained decoding), and the chart parser as a tree CRF and as a
structured SVM (CKY), on one encoder; over several seeds.

    python recipes/parse.py                                     # embedded synthetic treebank
    python recipes/parse.py --corpus ptb --data ../shared/data  # the Penn Treebank sample
    python recipes/parse.py --corpus ptb --models chart-crf --epochs 15 --seeds 0 1 2

It is ``hybrid train-parser`` (every option, see ``--help``): each seed of ``--seeds``
(default 0) trains its parsers into the one run folder, ``<runs>/<name>/`` (resumable like
any run folder), whose ``results.md`` gives the mean ± std over seeds (printed at the end);
``hybrid report`` compares run folders side by side.
"""

import sys

from hybrid.cli import main


def run(argv: list[str]) -> int:
    """``hybrid train-parser`` with the arguments ``argv``; its exit status."""
    return main(["train-parser", *argv])


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
