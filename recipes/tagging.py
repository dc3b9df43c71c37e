"""Semantic tagging recipe: softmax vs CRF vs structured SVM on one BiLSTM encoder.

    python recipes/tagging.py                                  # embedded synthetic corpus
    python recipes/tagging.py --corpus atis --data ../shared/data
    python recipes/tagging.py --corpus conll2000 --data ../shared/data

A thin script over ``hybrid train-tagger`` (same options); see ``--help``.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train-tagger", *sys.argv[1:]]))
