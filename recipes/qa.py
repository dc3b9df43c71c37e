"""Question-answering recipe: memory network vs attentive reader vs LSTM on bAbI.

    python recipes/qa.py                                        # embedded synthetic stories
    python recipes/qa.py --corpus babi --data ../shared/data    # 20 tasks x 5 seeds each
    python recipes/qa.py --corpus babi --joint                  # one reader for all 20 tasks

A thin script over ``hybrid train-qa`` (same options); see ``--help``.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train-qa", *sys.argv[1:]]))
