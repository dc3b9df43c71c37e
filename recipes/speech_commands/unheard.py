"""Speech Commands: words never trained on, recognised from their pronunciations alone.

    python recipes/speech_commands/unheard.py --data ../shared/data  # runs/sc-unheard/

Whole-word HMMs and word-level CTC can only say the words they were trained on. Phone HMMs
spelled into words by a lexicon can say any word whose phones they know. This recipe trains
the monophone GMM-HMM (`hybrid.speech.gmm.train_monophones`: 3-state phone HMMs, 4
Gaussians per state, CMUdict pronunciations without stress), and from its alignments the
tied-triphone GMM-HMM (`train_triphones`: triphones, a phonetic decision tree of at most
200 leaves; one word per clip, so cross-word and word-internal contexts agree), on every
clip of the ten command words and of the ten digits (the digits are among the ``_unknown_``
clips; the ``word`` column of the manifest names each clip's word). Both keep checkpoints in
the run folder: run the recipe again to resume. The test words are the other
``_unknown_`` words whose phones all occur in those twenty words: none of their clips is
trained on, and each is recognised by both systems, as one word with optional silence
around it (the tree answers the unheard words' contexts too), twice:

- over the closed list of the test words alone (chance: one over their number);
- over the test words and the twenty trained words together, which the unheard words must
  beat although every competitor was trained on.

Some speakers of the test clips also said training words (the corpus part at hand has few
clips per word); the words, not the voices, are new. Features: 13 MFCCs with deltas and
delta-deltas, each clip's mean removed. The run folder gets ``results.json``,
``results.md`` and ``confusion.png`` (the monophones over the unheard words), drawn from
``results.json``. Time: about 4 minutes on one thread beside two other training processes.
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
from hybrid.speech import unheard
from hybrid.speech.audio import read_audio
from hybrid.speech.datadir import read_manifest
from hybrid.speech.decoder import decode, frame_scores
from hybrid.speech.features import cmvn, deltas, mfcc
from hybrid.speech.gmm import GMMCheckpoint, train_monophones, train_triphones
from hybrid.speech.graph import decoding_graph
from hybrid.speech.lexicon import cmudict_lexicon
from hybrid.speech.topology import PhoneTopology, isolated_grammar

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SETTINGS = {
    "train_words": [*COMMANDS, *DIGITS],
    "lexicon": "cmudict, stress dropped",
    "phone_states": 3,
    "silence_states": 3,
    "mixtures": 4,
    "iterations": 10,
    "tree_leaves": 200,
    "tree_min_count": 50,
    "features": "13 MFCCs + deltas + delta-deltas, per-clip mean normalisation",
}


def features(path: Path) -> torch.Tensor:
    waveform, rate = read_audio(path)
    return cmvn(deltas(mfcc(waveform.mean(0) if waveform.dim() > 1 else waveform, rate)))


def run(corpus: Path, run_dir: Path) -> dict:
    lexicon = cmudict_lexicon().without_stress()
    entries = read_manifest(corpus / "manifest.csv", transcript_column="word")
    trained = tuple(SETTINGS["train_words"])
    topology = PhoneTopology(
        trained,
        lexicon,
        phone_states=SETTINGS["phone_states"],
        silence_states=SETTINGS["silence_states"],
    )
    known = set(topology.phones)
    spoken = sorted({e.words[0] for e in entries} - set(trained))
    unheard_words = tuple(
        w
        for w in spoken
        if all(p in known for pron in lexicon.pronunciations(w) for p in pron.phones)
    )
    folder = RunFolder(run_dir, "speech", ("accuracy", True), split="test")
    folder.claim("speech_commands", {**SETTINGS, "test_words": list(unheard_words)})

    train = [e for e in entries if e.words[0] in trained]
    test = [e for e in entries if e.words[0] in unheard_words]
    train_features = [features(e.path) for e in train]
    transcripts = [[trained.index(e.words[0])] for e in train]
    begin = time.perf_counter() - GMMCheckpoint.spent(folder.checkpoints / "gmm-mono.ckpt")
    emissions, loops, _ = train_monophones(
        topology,
        train_features,
        transcripts,
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
        progress=True,
        checkpoint=folder.checkpoints / "gmm-mono.ckpt",
    )
    seconds = {"gmm-mono": time.perf_counter() - begin}
    begin = time.perf_counter() - GMMCheckpoint.spent(folder.checkpoints / "gmm-tri.ckpt")
    triphones, tied, tied_loops, _ = train_triphones(
        topology,
        emissions,
        loops,
        train_features,
        transcripts,
        SETTINGS["tree_leaves"],
        SETTINGS["tree_min_count"],
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
        progress=True,
        checkpoint=folder.checkpoints / "gmm-tri.ckpt",
    )
    seconds["gmm-tri"] = time.perf_counter() - begin
    test_features = [features(e.path) for e in test]
    rows = []
    for system, tree, scorer, self_loop in (
        ("gmm-mono", topology.tree, emissions, loops),
        ("gmm-tri", triphones.tree, tied, tied_loops),
    ):
        scores = frame_scores(scorer, test_features)
        for name, vocabulary in (("unheard", unheard_words), ("all", (*unheard_words, *trained))):
            # the same pdfs: the phones of the trained words, in their order, and their tree
            words = PhoneTopology(
                vocabulary,
                lexicon,
                topology.phones,
                topology.phone_states,
                topology.silence_states,
                tree,
            )
            graph = decoding_graph(words, isolated_grammar(len(vocabulary)), self_loop)
            begin = time.perf_counter()
            hypotheses = [vocabulary[h[0]] for h in decode(scores, graph)]
            references = [e.words[0] for e in test]
            right = sum(h == r for h, r in zip(hypotheses, references, strict=True))
            rows.append(
                {
                    "task": unheard.TASK,
                    "system": system,
                    "decoder": name,
                    "seed": None,
                    "split": "test",
                    "metrics": {
                        "accuracy": right / len(test),
                        "clips": len(test),
                        "words": len(vocabulary),
                        "chance": 1 / len(vocabulary),
                        "tied_states": tree.num_leaves,
                        "decode_seconds": time.perf_counter() - begin,
                    },
                    "epochs": None,
                    "seconds": seconds[system],
                    "environment": environment("cpu"),
                    "vocabulary": list(vocabulary),
                    "references": references,
                    "hypotheses": hypotheses,
                    "train_clips": len(train),
                }
            )
    return folder.add_rows(rows, partial(unheard.draw, run_dir))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (holding speech_commands/)")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--name", default="sc-unheard")
    args = parser.parse_args(argv)
    root = data_root(args.data)
    if root is None or not (root / "speech_commands" / "manifest.csv").is_file():
        raise SystemExit(
            f"recipes/speech_commands/unheard.py: no speech_commands/manifest.csv under {root} "
            "(give --data)"
        )
    run_dir = Path(args.runs) / args.name
    run(root / "speech_commands", run_dir)
    print((run_dir / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
