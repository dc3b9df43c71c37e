"""Parsing recipe: seq2seq without attention, with it, and with it and the word pointer;
greedy, beam and constrained decoding.

    python recipes/parse.py                                     # embedded synthetic treebank
    python recipes/parse.py --corpus ptb --data ../shared/data  # the Penn Treebank sample

A thin script over ``hybrid train-parser`` (same options); see ``--help``.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train-parser", *sys.argv[1:]]))
