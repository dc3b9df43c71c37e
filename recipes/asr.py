"""Speech recipe: GMM-HMM vs hybrid DNN-HMM vs hybrid BiLSTM-HMM vs a pure RNN on spoken digits.

    python recipes/asr.py                                       # embedded synthetic digits
    python recipes/asr.py --corpus fsdd --data ../shared/data   # isolated, speakers, strings

A thin script over ``hybrid train-asr`` (same options); see ``--help``.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train-asr", *sys.argv[1:]]))
