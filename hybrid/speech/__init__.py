"""Speech: audio, Kaldi-compatible features, corpora, HMM topologies and hybrid recognition.

`audio` reads WAV files (PCM and float, any channel count) and writes PCM ones; `augment`
perturbs their speed; `features` computes Kaldi's filterbank and MFCC features in pure
PyTorch (with deltas, splicing, per-utterance, per-speaker and global CMVN, and batching);
`fsdd` and `corpus` read the Free Spoken Digit Dataset, build connected word strings and
generate the embedded synthetic corpus; `datadir`, `grammar_files` and `datasets` read a
corpus of the user's (Kaldi data directories or CSV/TSV manifests; vocabulary and phrase
files; n-gram language models through `hybrid.ctc.lm.read_arpa`); `lexicon` reads
pronunciation lexicons; `tree` grows the phonetic decision trees that tie triphone states;
`topology` builds word, phone and silence HMMs, grammars (n-gram models included) and their
decoding graphs; `decoder` decodes and force-aligns; `gmm` trains the generative GMM-HMMs
(whole words, monophones, tied triphones); `timit`, `alignment` and `unheard` read TIMIT and
measure alignments and unheard words; `acoustic` and `train` hold the neural
acoustic models; `systems` and `experiment` run the comparison of GMM-HMMs, hybrid DNN-HMM,
hybrid BiLSTM-HMM, a pure RNN and CTC; `recognizer` loads a saved system; `export` writes one
for the torch-free runtime `hybrid.deploy`.

The names below load on first use, so that a torch-free module of the package
(`statistics`) imports without torch.
"""

from .._lazy import lazy_names

_HOMES = {
    "read_audio": ".audio",
    "read_wav": ".audio",
    "write_wav": ".audio",
    "perturb_speed": ".augment",
    "speed_perturbed": ".augment",
    "FeatureConfig": ".corpus",
    "Utterance": ".corpus",
    "connected_strings": ".corpus",
    "extract": ".corpus",
    "frame_features": ".corpus",
    "isolated_utterances": ".corpus",
    "synthetic_recordings": ".corpus",
    "synthetic_split": ".corpus",
    "Entry": ".datadir",
    "read_kaldi_dir": ".datadir",
    "read_manifest": ".datadir",
    "SpeechData": ".datasets",
    "SpeechFiles": ".datasets",
    "load_speech": ".datasets",
    "align": ".decoder",
    "decode": ".decoder",
    "GlobalCMVN": ".features",
    "cmvn": ".features",
    "deltas": ".features",
    "fbank": ".features",
    "mfcc": ".features",
    "pad_features": ".features",
    "speaker_cmvn": ".features",
    "splice": ".features",
    "DIGITS": ".fsdd",
    "Recording": ".fsdd",
    "official_split": ".fsdd",
    "read_fsdd": ".fsdd",
    "speaker_split": ".fsdd",
    "read_phrases": ".grammar_files",
    "read_words": ".grammar_files",
    "error_rate": ".metrics",
    "word_errors": ".metrics",
    "Recognizer": ".recognizer",
    "SILENCE": ".topology",
    "Topology": ".topology",
    "PhoneTopology": ".topology",
    "ngram_grammar": ".topology",
    "topology_from_dict": ".topology",
    "Lexicon": ".lexicon",
    "Pronunciation": ".lexicon",
    "cmudict_lexicon": ".lexicon",
    "read_lexicon": ".lexicon",
    "equal_alignment_start": ".gmm",
    "train_monophones": ".gmm",
    "train_triphones": ".gmm",
    "PhoneticTree": ".tree",
    "decoding_graph": ".topology",
    "estimate_self_loops": ".topology",
    "isolated_grammar": ".topology",
    "loop_grammar": ".topology",
    "phrase_grammar": ".topology",
    "task_grammar": ".topology",
    "transcript_grammar": ".topology",
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES)

__all__ = [
    "DIGITS",
    "Entry",
    "SpeechData",
    "SpeechFiles",
    "load_speech",
    "phrase_grammar",
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
    "PhoneTopology",
    "Lexicon",
    "Pronunciation",
    "cmudict_lexicon",
    "read_lexicon",
    "ngram_grammar",
    "topology_from_dict",
    "equal_alignment_start",
    "train_monophones",
    "train_triphones",
    "PhoneticTree",
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
