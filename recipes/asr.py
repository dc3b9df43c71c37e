"""Speech recipe: GMM-HMM vs hybrid DNN-HMM vs hybrid BiLSTM-HMM vs a pure RNN vs CTC.

    python recipes/asr.py                                       # embedded synthetic digits
    python recipes/asr.py --corpus fsdd --data ../shared/data   # isolated, speakers, strings
    python recipes/asr.py --corpus speech_commands --data ../shared/data   # 11 words, by speaker
    python recipes/asr.py --train data/train --test data/test   # Kaldi data directories
    python recipes/asr.py --seeds 0 1 2                         # mean ± std over three seeds

A thin script over ``hybrid train-asr`` (same options); see ``--help``.
"""

import sys

from hybrid.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train-asr", *sys.argv[1:]]))
