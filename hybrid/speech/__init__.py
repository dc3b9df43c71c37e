"""Speech: audio files, Kaldi-compatible acoustic features and the corpora read from them.

`audio` reads and writes PCM WAV files, `features` computes Kaldi's filterbank and MFCC
features in pure PyTorch (with deltas, splicing, CMVN and batching), and `fsdd` reads the Free
Spoken Digit Dataset.
"""

from .audio import read_wav, write_wav
from .features import GlobalCMVN, cmvn, deltas, fbank, mfcc, pad_features, splice
from .fsdd import DIGITS, Recording, official_split, read_fsdd, speaker_split

__all__ = [
    "DIGITS",
    "GlobalCMVN",
    "Recording",
    "cmvn",
    "deltas",
    "fbank",
    "mfcc",
    "official_split",
    "pad_features",
    "read_fsdd",
    "read_wav",
    "speaker_split",
    "splice",
    "write_wav",
]
