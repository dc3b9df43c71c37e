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

From the monophones' alignments, a phonetic decision tree of at most 200 leaves ties the
states of cross-word triphones (`train_triphones`, 50 frames or more per tied state): each
phone in the context of the phones said before and after it, whichever "word" they belong
to, measured by forced alignment and by phone recognition (the phone loop's graph copies each
phone for the neighbours whose pdfs differ). On the tied states, the hybrid DNN-HMM and
BiLSTM-HMM (the FSDD recipe's networks, trained on the triphone GMM-HMM's alignments through
the training engine, their posteriors divided by the state priors) are measured the same
way, and the same BiLSTM without an HMM, as a pure RNN (frame labels collapsed) and with CTC,
by its phone error rate. A second pair of systems takes the runs of phones between silences
(pauses and stop closures) as its words (`hybrid.speech.timit.spoken_runs`): the monophone
GMM-HMM trained again on those transcripts, then word-internal triphones, the neighbours
inside each run, measured by forced alignment. Every GMM-HMM stage and network keeps a
checkpoint in the run folder: run the recipe again to resume.

The run folder gets ``results.json``, ``results.md`` and ``alignment.png`` (hand and
predicted boundaries of a test sentence over its spectrogram), drawn from ``results.json``.
Time: about 25 minutes on one thread beside two other training processes (the four
networks' 60 epochs 2-7 minutes each).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch

from hybrid.files import data_root
from hybrid.nn import ScaledPosteriors
from hybrid.runs import RunFolder, environment
from hybrid.speech.acoustic import AcousticConfig, build
from hybrid.speech.alignment import TASK, boundary_errors, draw
from hybrid.speech.audio import read_wav
from hybrid.speech.decoder import align, decode, frame_scores
from hybrid.speech.features import cmvn, deltas, fbank, mfcc
from hybrid.speech.gmm import GMMCheckpoint, train_monophones, train_triphones
from hybrid.speech.graph import decoding_graph
from hybrid.speech.lexicon import Lexicon
from hybrid.speech.metrics import error_rate
from hybrid.speech.recognizer import Recognizer, system_dict
from hybrid.speech.systems import PENALTIES
from hybrid.speech.timit import FOLD_39, SILENCE_CLASS, phone_sequence, read_timit, spoken_runs
from hybrid.speech.topology import PhoneTopology, loop_grammar
from hybrid.speech.train import AcousticTrainConfig, fit_acoustic

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
    # the hybrids on the tied states: the FSDD recipe's networks, Adam at 0.001, the epoch
    # chosen on a tenth of the training sentences, one pass on the GMM-HMM's alignments;
    # batches of 8 sentences, as 108 sentences make few steps an epoch
    "dnn": {"hidden": 256, "layers": 3, "context": 2, "dropout": 0.3},
    "bilstm": {"hidden": 128, "layers": 2},
    "hybrid_epochs": 60,
    "hybrid_batch_size": 8,
    # the pure RNN (a frame classifier over the phones and silence, on the triphone GMM-HMM's
    # alignments) and CTC (over the phones and a blank, on the phone sequences alone): the
    # hybrid's BiLSTM, its epochs and batches; CTC at the FSDD recipe's learning rate
    "ctc_lr": 0.003,
}


#: The scales of a system's scores (`hybrid.speech.recognizer.system_dict`): none.
SCALES = {"acoustic_scale": 1.0, "prior_scale": 1.0, "word_penalty": 0.0}


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

    mono_checkpoint = folder.checkpoints / "gmm-mono-phones.ckpt"
    begin = time.perf_counter() - GMMCheckpoint.spent(mono_checkpoint)  # over every run
    train_features = [f for _, f, _ in split["train"]]
    train_phones = [p for _, _, p in split["train"]]
    emissions, loops, _ = train_monophones(
        topology,
        train_features,
        train_phones,
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
        progress=True,
        checkpoint=mono_checkpoint,
    )
    train_seconds = time.perf_counter() - begin

    test_features = [f for _, f, _ in split["test"]]
    test_phones = [p for _, _, p in split["test"]]
    paths = align(frame_scores(emissions, test_features), test_phones, topology, loops)
    references = [[(s.start, s.end) for s in phone_sequence(u.phones)] for u, _, _ in split["test"]]
    aligned = boundary_errors(paths, topology, references, SETTINGS["tolerance_ms"] / 1000)

    first, first_features, first_phones = split["test"][0]
    waveform, rate = read_wav(first.audio)
    spectrogram = fbank(waveform, rate, num_mel_bins=40)[: len(first_features)]
    names = [classes[i] for i in first_phones]
    row = alignment_row("gmm-mono", "phones", aligned, train_seconds)
    recognition_row(row, topology, partial(frame_scores, emissions), loops, split)
    row["plot"] = {
        "utterance": first.id,
        "spectrogram": (spectrogram * 100).round().div(100).tolist(),
        "reference": [[n, *span] for n, span in zip(names, references[0], strict=True)],
        "predicted": [[n, *span] for n, span in zip(names, aligned["predicted"][0], strict=True)],
    }
    tri_checkpoint = folder.checkpoints / "gmm-tri-phones.ckpt"
    begin = time.perf_counter() - GMMCheckpoint.spent(tri_checkpoint)
    triphones, tied, tied_loops, tied_alignments = train_triphones(
        topology,
        emissions,
        loops,
        train_features,
        train_phones,
        SETTINGS["tree_leaves"],
        SETTINGS["tree_min_count"],
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
        checkpoint=tri_checkpoint,
    )
    train_seconds = time.perf_counter() - begin
    paths = align(frame_scores(tied, test_features), test_phones, triphones, tied_loops)
    aligned = boundary_errors(paths, triphones, references, SETTINGS["tolerance_ms"] / 1000)
    cross = alignment_row("gmm-tri", "phones", aligned, train_seconds, triphones)
    recognition_row(cross, triphones, partial(frame_scores, tied), tied_loops, split)
    hybrids = [
        hybrid_row(kind, triphones, tied_alignments, tied_loops, split, references, folder)
        for kind in ("dnn", "bilstm")
    ]
    rows = [row, cross, *hybrids, *sequence_rows(triphones, tied_alignments, split, folder)]
    rows += in_context(split, classes, references, folder.checkpoints)
    return folder.add_rows(rows, partial(draw, run_dir))


def sequence_rows(triphones, alignments, split, folder) -> list[dict]:
    """The pure RNN and CTC on the same features and the same BiLSTM as the hybrid
    BiLSTM-HMM, each decoding phones without an HMM: the pure RNN's frame labels collapsed
    (repeats merged, silence dropped), CTC by prefix beam search (`Recognizer`)."""
    assert triphones.words == triphones.phones  # each phone its own word, in one order
    phones = len(triphones.words)
    of_pdf = triphones.pdf_phones().masked_fill(triphones.pdf_phones() < 0, phones)
    train_features = [f for _, f, _ in split["train"]]
    said = [torch.tensor(p) for _, _, p in split["train"]]
    jobs = {  # kind: (targets, blank, learning rate)
        "rnn": ([of_pdf[a] for a in alignments], None, 1e-3),
        "ctc": (said, phones, SETTINGS["ctc_lr"]),
    }
    rows = []
    for kind, (targets, blank, lr) in jobs.items():
        torch.manual_seed(0)
        dim = train_features[0].shape[1]
        config = AcousticConfig("bilstm", dim, phones + 1, **SETTINGS["bilstm"])
        model = build(config)
        training = AcousticTrainConfig(
            epochs=SETTINGS["hybrid_epochs"], batch_size=SETTINGS["hybrid_batch_size"], lr=lr
        )
        checkpoint = folder.checkpoints / f"{kind}-phones.ckpt"
        history = fit_acoustic(
            model, train_features, targets, training, checkpoint, ctc_blank=blank
        )
        data = {"config": asdict(config), "weights": model.state_dict()}
        data |= {} if blank is None else {"blank": blank}
        recognizer = Recognizer(system_dict(kind, triphones, "loop", SCALES, data))
        begin = time.perf_counter()
        hypotheses = recognizer.decode([f for _, f, _ in split["test"]])
        decode_seconds = time.perf_counter() - begin
        counts = error_rate([p for _, _, p in split["test"]], hypotheses)
        rows.append(
            {
                "task": TASK,
                "system": kind,
                "decoder": "phones",
                "seed": None,
                "split": "test",
                "metrics": {**_phone_errors(counts), "decode_seconds": decode_seconds},
                "epochs": len(history),
                "best_epoch": history.best_epoch,
                "seconds": sum(history.seconds),
                "environment": environment("cpu"),
            }
        )
    return rows


def _phone_errors(counts) -> dict:
    """The phone error rate and its kinds of errors, as metrics of a row."""
    return {
        "phone_error_rate": counts.errors / counts.reference,
        "substitutions": counts.substitutions,
        "deletions": counts.deletions,
        "insertions": counts.insertions,
        "reference_phones": counts.reference,
    }


def hybrid_row(kind, triphones, alignments, loops, split, references, folder) -> dict:
    """A hybrid ``kind`` (``"dnn"``, ``"bilstm"``) on the tied states: the network trained
    on the triphone GMM-HMM's alignments (`fit_acoustic`, checkpointed), its posteriors
    divided by the state priors, measured as the GMM-HMMs are."""
    features = [f for _, f, _ in split["train"]]
    torch.manual_seed(0)
    config = AcousticConfig(kind, features[0].shape[1], triphones.num_pdfs, **SETTINGS[kind])
    model = build(config)
    training = AcousticTrainConfig(
        epochs=SETTINGS["hybrid_epochs"], batch_size=SETTINGS["hybrid_batch_size"]
    )
    checkpoint = folder.checkpoints / f"{kind}-tri-phones.ckpt"
    history = fit_acoustic(model, features, alignments, training, checkpoint)
    priors = ScaledPosteriors.from_alignments(torch.cat(alignments), triphones.num_pdfs)
    model_data = {
        "config": asdict(config),
        "weights": model.state_dict(),
        "log_priors": priors.log_priors,
        "self_loop": loops,
    }
    recognizer = Recognizer(system_dict(kind, triphones, "loop", SCALES, model_data))
    test_features = [f for _, f, _ in split["test"]]
    scores = recognizer.scaled_scores(test_features)
    paths = align(scores, [p for _, _, p in split["test"]], triphones, loops)
    aligned = boundary_errors(paths, triphones, references, SETTINGS["tolerance_ms"] / 1000)
    row = alignment_row(f"{kind}-tri", "phones", aligned, sum(history.seconds), triphones)
    row["epochs"], row["best_epoch"] = len(history), history.best_epoch
    recognition_row(row, triphones, recognizer.scaled_scores, loops, split)
    return row


def recognition_row(row: dict, topology, scores_of, loops, split) -> None:
    """Add to ``row`` the phone error rate of a phone loop on the test sentences (frame
    scores by ``scores_of``), its phone insertion penalty the one of `PENALTIES` with the
    fewest errors on the training ones, and the loop's graph size and build time."""

    def phone_errors(scores, transcripts, penalty):
        graph = decoding_graph(topology, loop_grammar(len(topology.words), penalty), loops)
        return error_rate(transcripts, decode(scores, graph))

    train_scores = scores_of([f for _, f, _ in split["train"]])
    train_phones = [p for _, _, p in split["train"]]
    penalty = min(PENALTIES, key=lambda p: phone_errors(train_scores, train_phones, p).errors)
    test_scores = scores_of([f for _, f, _ in split["test"]])
    begin = time.perf_counter()
    graph = decoding_graph(topology, loop_grammar(len(topology.words), penalty), loops)
    built = time.perf_counter()
    counts = error_rate([p for _, _, p in split["test"]], decode(test_scores, graph))
    row["metrics"] |= {
        **_phone_errors(counts),
        "decode_seconds": time.perf_counter() - built,
        "graph_states": graph.num_states,
        "graph_arcs": graph.num_arcs,
        "graph_seconds": built - begin,
    }
    row["phone_penalty"] = penalty


def alignment_row(
    system: str, transcript: str, aligned: dict, seconds: float, topology=None
) -> dict:
    """A results row of forced alignment against the hand labels (`boundary_errors`), the
    transcript's kind as its decoder; with the tied triphones' ``topology``, their contexts
    and number of tied states."""
    row = {
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
    if topology is not None:
        row["contexts"] = "cross-word" if topology.cross_word else "word-internal"
        row["metrics"]["tied_states"] = topology.tree.num_leaves
    return row


def in_context(split, classes, references, checkpoints: Path) -> list[dict]:
    """Training and forced alignment over the runs of phones between silences, each run
    taken as a word (`spoken_runs`), so that a phone's neighbours in its run are its
    word-internal context: the monophone system trained on those transcripts, and the tied
    triphones grown from its alignments (`train_triphones`; its train seconds come after the
    monophones')."""
    runs = {part: [spoken_runs(u.phones) for u, _, _ in split[part]] for part in split}
    vocabulary = sorted({" ".join(r) for part in runs.values() for said in part for r in said})
    index = {word: i for i, word in enumerate(vocabulary)}
    lexicon = Lexicon({w: [tuple(w.split())] for w in vocabulary}, source="the runs of phones")
    stretches = PhoneTopology(
        vocabulary, lexicon, classes, SETTINGS["phone_states"], SETTINGS["silence_states"]
    )
    transcripts = {p: [[index[" ".join(r)] for r in said] for said in runs[p]] for p in runs}
    features = {part: [f for _, f, _ in split[part]] for part in split}
    begin = time.perf_counter() - GMMCheckpoint.spent(checkpoints / "gmm-mono-runs.ckpt")
    emissions, loops, _ = train_monophones(
        stretches,
        features["train"],
        transcripts["train"],
        SETTINGS["mixtures"],
        SETTINGS["iterations"],
        checkpoint=checkpoints / "gmm-mono-runs.ckpt",
    )
    mono_seconds = time.perf_counter() - begin
    begin = time.perf_counter() - GMMCheckpoint.spent(checkpoints / "gmm-tri-runs.ckpt")
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
        checkpoint=checkpoints / "gmm-tri-runs.ckpt",
        cross_word=False,
    )
    seconds = {"gmm-mono": mono_seconds, "gmm-tri": time.perf_counter() - begin}
    rows = []
    for system, topology, scorer, self_loop, tree in (
        ("gmm-mono", stretches, emissions, loops, None),
        ("gmm-tri", triphones, tied, tied_loops, triphones),
    ):
        scores = frame_scores(scorer, features["test"])
        paths = align(scores, transcripts["test"], topology, self_loop)
        aligned = boundary_errors(paths, topology, references, SETTINGS["tolerance_ms"] / 1000)
        transcript = "runs between silences"
        rows.append(alignment_row(system, transcript, aligned, seconds[system], tree))
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
