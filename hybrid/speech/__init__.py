"""Speech: audio, Kaldi-compatible features, corpora, HMM topologies and hybrid recognition.

`audio` reads WAV files (PCM and float, any channel count) and writes PCM ones; `augment`
perturbs their speed; `features` computes Kaldi's filterbank and MFCC features in pure
PyTorch (with deltas, splicing, per-utterance, per-speaker and global CMVN, and batching);
`fsdd` and `corpus` read the Free Spoken Digit Dataset, build connected word strings and
generate the embedded synthetic corpus; `datadir`, `grammar_files` and `datasets` read a
corpus of the user's (Kaldi data directories or CSV/TSV manifests; vocabulary, phrase and
unigram LM files); `topology` builds word and silence HMMs, grammars and their decoding
graphs; `decoder` decodes and force-aligns; `gmm` trains the generative GMM-HMM; `acoustic`
and `train` hold the neural acoustic models; `systems` and `experiment` run the comparison of
GMM-HMM, hybrid DNN-HMM, hybrid BiLSTM-HMM, a pure RNN and CTC; `recognizer` loads a saved
system.
"""

from .audio import read_audio, read_wav, write_wav
from .augment import perturb_speed, speed_perturbed
from .corpus import (
    FeatureConfig,
    Utterance,
    connected_strings,
    extract,
    frame_features,
    isolated_utterances,
    synthetic_recordings,
    synthetic_split,
)
from .datadir import Entry, read_kaldi_dir, read_manifest
from .datasets import SpeechData, SpeechFiles, load_speech
from .decoder import align, decode
from .features import GlobalCMVN, cmvn, deltas, fbank, mfcc, pad_features, speaker_cmvn, splice
from .fsdd import DIGITS, Recording, official_split, read_fsdd, speaker_split
from .grammar_files import UnigramLM, read_arpa_unigram, read_phrases, read_words
from .metrics import error_rate, word_errors
from .recognizer import Recognizer
from .topology import (
    SILENCE,
    Topology,
    decoding_graph,
    estimate_self_loops,
    isolated_grammar,
    loop_grammar,
    phrase_grammar,
    task_grammar,
    transcript_grammar,
)

__all__ = [
    "DIGITS",
    "Entry",
    "SpeechData",
    "SpeechFiles",
    "UnigramLM",
    "load_speech",
    "phrase_grammar",
    "read_arpa_unigram",
    "read_audio",
    "read_kaldi_dir",
    "read_manifest",
    "read_phrases",
    "read_words",
    "task_grammar",
    "SILENCE",
    "FeatureConfig",
    "GlobalCMVN",
    "Recognizer",
    "Recording",
    "Topology",
    "Utterance",
    "align",
    "cmvn",
    "connected_strings",
    "decode",
    "decoding_graph",
    "deltas",
    "error_rate",
    "estimate_self_loops",
    "extract",
    "fbank",
    "frame_features",
    "isolated_grammar",
    "isolated_utterances",
    "loop_grammar",
    "mfcc",
    "official_split",
    "pad_features",
    "perturb_speed",
    "read_fsdd",
    "read_wav",
    "speaker_cmvn",
    "speaker_split",
    "speed_perturbed",
    "splice",
    "synthetic_recordings",
    "synthetic_split",
    "transcript_grammar",
    "word_errors",
    "write_wav",
]
