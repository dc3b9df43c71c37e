"""TIMIT sample: monophone and tied-triphone GMM-HMMs trained from a flat start, then forced
alignment and phone recognition on speakers held out of training.

    python recipes/timit/run.py --data ../shared/data          # runs/timit-phones/

The corpus (`hybrid.speech.timit.read_timit`): 160 read sentences of 16 speakers with
hand-labelled phone boundaries. The speakers of dialect regions 7 and 8 (4 speakers, 40
sentences) are the test set, the other 12 train. Phones are folded from TIMIT's 61 to the 39
classes of Lee and Hon (1989); the 38 that are not silence are the models' phones (3-state
left-to-right HMMs, 4 Gaussians per state), ``sil`` is the silence model, optional between
any two phones. Training uses the phone sequences of the training sentences, never their
boundaries: Kaldi's equal-alignment flat start (`equal_alignment_start`), then 10 passes of
forced alignment and re-estimation (`viterbi_training`; both in `train_monophones`).

Measured on the test speakers:
- forced alignment with their phone sequences: the share of phone start and end times within
  20 ms of the hand labels (a frame boundary sits halfway between the centres of its two
  frames: 25 ms windows every 10 ms put it 7.5 ms after the 10 ms mark), and the median
  signed error;
- phone recognition with a phone loop: the phone error rate over the 39 classes (silence not
  counted), the phone insertion penalty chosen on the training sentences.

Context-dependent phones need words to hold their context. A second pair of systems takes
the runs of phones between silences (pauses and stop closures) as its words
(`hybrid.speech.timit.spoken_runs`): the monophone GMM-HMM trained again on those
transcripts, then word-internal triphones whose states a phonetic decision tree of at most
200 leaves ties (`train_triphones`, 50 frames or more per tied state), both measured by
forced alignment alone (a phone loop has no words, so no context to decode with).

The run folder gets ``results.json``, ``results.md`` and ``alignment.png`` (hand and
predicted boundaries of a test sentence over its spectrogram), drawn from ``results.json``.
Time: about four minutes on one thread beside two other training processes.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

from hybrid.files import data_root
from hybrid.runs import RunFolder, environment
from hybrid.speech.alignment import TASK, boundary_errors, draw
from hybrid.speech.audio import read_wav
from hybrid.speech.decoder import align, decode, frame_scores
from hybrid.speech.features import cmvn, deltas, fbank, mfcc
from hybrid.speech.gmm import train_monophones, train_triphones
from hybrid.speech.lexicon import Lexicon
from hybrid.speech.metrics import error_rate
from hybrid.speech.systems import PENALTIES
from hybrid.speech.timit import FOLD_39, SILENCE_CLASS, phone_sequence, read_timit, spoken_runs
from hybrid.speech.topology import PhoneTopology, decoding_graph, loop_grammar

SETTINGS = {
    "test_regions": ["dr7", "dr8"],
    "phone_states": 3,
    "silence_states": 3,
    "mixtures": 4,
    "iterations": 10,
    "tree_leaves": 200,
    "tree_min_count": 50,
    "features": "13 MFCCs + deltas + delta-deltas, per-utterance mean normalisation",
    "tolerance_ms": 20,
}


def features(waveform: torch.Tensor, rate: int) -> torch.Tensor:
    return cmvn(deltas(mfcc(waveform, rate)))


def run(data: Path, run_dir: Path) -> dict:
    utterances = read_timit(data)
    classes = sorted({c for c in FOLD_39.values() if c and c != SILENCE_CLASS})
    topology = PhoneTopology(
        classes,
        Lexicon({c: [(c,)] for c in classes}, source="the 38 phone classes"),
        phone_states=SETTINGS["phone_states"],
        silence_states=SETTINGS["silence_states"],
    )
    index = {c: i for i, c in enumerate(classes)}
    test_regions = tuple(f"{region}-" for region in SETTINGS["test_regions"])
    split = {"train": [], "test": []}
    for u in utterances:
        waveform, rate = read_wav(u.audio)
        phones = phone_sequence(u.phones)
        part = "test" if u.speaker.startswith(test_regions) else "train"
        split[part].append((u, features(waveform, rate), [index[s.phone] for s in phones]))
    folder = RunFolder(run_dir, "speech", ("alignment_accuracy", True), split="test")
    folder.claim("timit_sample", SETTINGS)

    begin = time.perf_counter()
    train_features = [f for _, f, _ in split["train"]]
    train_phones = [p for _, _, p in split["train"]]
    emissions, loops, _ = train_monophones(
        topology,
        train_features,
        train_phones,
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
        progress=True,
    )
    train_seconds = time.perf_counter() - begin

    test_scores = frame_scores(emissions, [f for _, f, _ in split["test"]])
    paths = align(test_scores, [p for _, _, p in split["test"]], topology, loops)
    references = [[(s.start, s.end) for s in phone_sequence(u.phones)] for u, _, _ in split["test"]]
    aligned = boundary_errors(paths, topology, references, SETTINGS["tolerance_ms"] / 1000)

    def phone_errors(scores, transcripts, penalty):
        graph = decoding_graph(topology, loop_grammar(len(classes), penalty), loops)
        return error_rate(transcripts, decode(scores, graph))

    train_scores = frame_scores(emissions, train_features)
    penalty = min(PENALTIES, key=lambda p: phone_errors(train_scores, train_phones, p).errors)
    begin = time.perf_counter()
    counts = phone_errors(test_scores, [p for _, _, p in split["test"]], penalty)
    decode_seconds = time.perf_counter() - begin

    first, first_features, first_phones = split["test"][0]
    waveform, rate = read_wav(first.audio)
    spectrogram = fbank(waveform, rate, num_mel_bins=40)[: len(first_features)]
    names = [classes[i] for i in first_phones]
    row = alignment_row("gmm-mono", "phones", aligned, train_seconds)
    row["metrics"] |= {
        "phone_error_rate": counts.errors / counts.reference,
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "reference_phones": counts.reference,
        "decode_seconds": decode_seconds,
    }
    row["phone_penalty"] = penalty
    row["plot"] = {
        "utterance": first.id,
        "spectrogram": (spectrogram * 100).round().div(100).tolist(),
        "reference": [[n, *span] for n, span in zip(names, references[0], strict=True)],
        "predicted": [[n, *span] for n, span in zip(names, aligned["predicted"][0], strict=True)],
    }
    rows = [row, *in_context(split, classes, references)]
    return folder.add_rows(rows, partial(draw, run_dir))


def alignment_row(system: str, transcript: str, aligned: dict, seconds: float) -> dict:
    """A results row of forced alignment against the hand labels (`boundary_errors`), the
    transcript's kind as its decoder."""
    return {
        "task": TASK,
        "system": system,
        "decoder": transcript,
        "seed": None,
        "split": "test",
        "metrics": {
            "alignment_accuracy": aligned["accuracy"],
            "boundaries": aligned["boundaries"],
            "median_boundary_error_ms": aligned["median_error_ms"],
        },
        "epochs": None,
        "seconds": seconds,
        "environment": environment("cpu"),
    }


def in_context(split, classes, references) -> list[dict]:
    """Training and forced alignment over the runs of phones between silences, each run
    taken as a word (`spoken_runs`), so that a phone's neighbours in its run are its context:
    the monophone system trained on those transcripts, and the tied triphones grown from its
    alignments (`train_triphones`; its train seconds come after the monophones')."""
    runs = {part: [spoken_runs(u.phones) for u, _, _ in split[part]] for part in split}
    vocabulary = sorted({" ".join(r) for part in runs.values() for said in part for r in said})
    index = {word: i for i, word in enumerate(vocabulary)}
    lexicon = Lexicon({w: [tuple(w.split())] for w in vocabulary}, source="the runs of phones")
    stretches = PhoneTopology(
        vocabulary, lexicon, classes, SETTINGS["phone_states"], SETTINGS["silence_states"]
    )
    transcripts = {p: [[index[" ".join(r)] for r in said] for said in runs[p]] for p in runs}
    features = {part: [f for _, f, _ in split[part]] for part in split}
    begin = time.perf_counter()
    emissions, loops, _ = train_monophones(
        stretches,
        features["train"],
        transcripts["train"],
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
    )
    mono_seconds = time.perf_counter() - begin
    triphones, tied, tied_loops, _ = train_triphones(
        stretches,
        emissions,
        loops,
        features["train"],
        transcripts["train"],
        SETTINGS["tree_leaves"],
        SETTINGS["tree_min_count"],
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
    )
    seconds = {"gmm-mono": mono_seconds, "gmm-tri": time.perf_counter() - begin - mono_seconds}
    rows = []
    for system, topology, scorer, self_loop in (
        ("gmm-mono", stretches, emissions, loops),
        ("gmm-tri", triphones, tied, tied_loops),
    ):
        scores = frame_scores(scorer, features["test"])
        paths = align(scores, transcripts["test"], topology, self_loop)
        aligned = boundary_errors(paths, topology, references, SETTINGS["tolerance_ms"] / 1000)
        rows.append(alignment_row(system, "runs between silences", aligned, seconds[system]))
        rows[-1]["metrics"]["tied_states"] = topology.tree.num_leaves
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (holding timit_sample/)")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--name", default="timit-phones")
    args = parser.parse_args(argv)
    root = data_root(args.data)
    if root is None or not (root / "timit_sample").is_dir():
        raise SystemExit(f"recipes/timit/run.py: no timit_sample/ under {root} (give --data)")
    run_dir = Path(args.runs) / args.name
    run(root / "timit_sample", run_dir)
    print((run_dir / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
