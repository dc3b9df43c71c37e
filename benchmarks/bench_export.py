"""Speed of exported systems: PyTorch eager, TorchScript, ONNX Runtime (and pytorch-crf).

The same weights tag the same sentences from text to result dictionaries in one process, at
batch 1 (latency per sentence) and batch 64 (throughput), interleaved round by round:

* ``eager``: `hybrid.tagging.model.Tagger.predict` (fused C++ Viterbi and marginals);
* ``torchscript`` and ``onnxruntime``: the tagger exported by ``hybrid export`` and run by
  `hybrid.deploy` (the ONNX one without torch);
* ``pytorch-crf``: the same encoder, and pytorch-crf's ``CRF.decode`` with the tagger's
  transitions (tags only: pytorch-crf has no marginals, so no confidences).

Every system must give the same tags (checked). A saved tagger comes by ``--model``; without
one a small tagger is trained on the embedded synthetic airline corpus (no download)::

    python benchmarks/bench_export.py --model runs/atis/models/crf-seed0.pt \\
        --corpus atis --out benchmarks/results/export_cpu.md

With ``--recognizer``, a saved speech system recognises the FSDD test recordings instead, from
waveform to words, one recording at a time (latency; real-time factor) and one speaker's
recordings at a time (throughput, seconds of audio per second), eager
(`hybrid.speech.Recognizer.recognize`) against its TorchScript and ONNX exports run by
`hybrid.deploy`; every system must give the same words::

    python benchmarks/bench_export.py --recognizer runs/fsdd/models/isolated-dnn-seed0.pt \\
        --out benchmarks/results/export_speech_cpu.md
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import onnxruntime
import torch

import hybrid
from hybrid import deploy
from hybrid.tagging.corpus import Sentence
from hybrid.tagging.export import export_tagger
from hybrid.tagging.inference import tag_batch
from hybrid.tagging.model import Tagger
from hybrid.tagging.text import sentence_from_text

SYSTEMS = ("eager", "torchscript", "onnxruntime", "pytorch-crf")
BATCHES = (1, 64)


def _synthetic_tagger() -> tuple[Tagger, list[Sentence]]:
    from hybrid.tagging.batching import TaggingVocabulary
    from hybrid.tagging.model import TaggerConfig
    from hybrid.tagging.synthetic import airline_splits
    from hybrid.tagging.train import TaggerTrainConfig, fit

    splits = airline_splits(train=600, valid=100, test=300, seed=0)
    vocabulary = TaggingVocabulary.build(splits["train"])
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(word_dim=64, hidden=128), vocabulary)
    settings = TaggerTrainConfig(epochs=3, batch_size=32, lr=2e-3, seed=0, patience=0)
    fit(model, vocabulary, splits["train"], None, settings, progress=False, log=lambda _: None)
    return model.eval(), splits["test"]


def _test_sentences(corpus: str, data: str | None, with_features: bool) -> list[Sentence]:
    from hybrid.tagging.datasets import load_tagging, preset_files

    test = load_tagging(preset_files(corpus, data)).splits["test"]
    if with_features:
        texts = [
            " ".join(f"{w}/{f}" for w, f in zip(s.words, s.features, strict=True)) for s in test
        ]
    else:
        texts = [" ".join(s.words) for s in test]
    return [sentence_from_text(i, text, with_features) for i, text in enumerate(texts)]


def _pytorch_crf(model: Tagger):
    """Tag a batch with the tagger's encoder and pytorch-crf's decoder on its transitions."""
    import torchcrf

    chain = model.chain
    crf = torchcrf.CRF(len(model.vocabulary.tags), batch_first=True)
    with torch.no_grad():
        transitions, start, end = (
            x.masked_fill(~allowed, -10000.0)
            for x, allowed in (
                (chain.transitions, chain.allowed_transitions),
                (chain.start_transitions, chain.allowed_start),
                (chain.end_transitions, chain.allowed_end),
            )
        )
        crf.transitions.copy_(transitions)
        crf.start_transitions.copy_(start)
        crf.end_transitions.copy_(end)

    def tag(sentences: list[Sentence]) -> list[dict]:
        batch = model.vocabulary.batch(sentences, with_labels=False)
        with torch.no_grad():
            emissions, _ = model(batch)
            mask = torch.arange(emissions.shape[1])[None] < batch.lengths[:, None]
            paths = crf.decode(emissions, mask)
        return [{"tags": model.vocabulary.tags.decode(p)} for p in paths]

    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved tagger (default: train a small one)")
    parser.add_argument("--corpus", help="tag this preset's test sentences (atis, conll2000)")
    parser.add_argument("--data", help="the data folder of --corpus")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per cell (median)")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--out", type=Path, help="also write the table here, a CSV and PNG beside")
    parser.add_argument("--recognizer", help="time this saved speech system on FSDD instead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.recognizer:
        return _recognition(args)

    if args.model:
        model = Tagger.load(args.model)
        sentences = None
    else:
        model, sentences = _synthetic_tagger()
    if args.corpus:
        sentences = _test_sentences(args.corpus, args.data, model.vocabulary.features is not None)
    if sentences is None:
        parser.error("--model needs --corpus: the sentences to tag")
    if model.chain is None:
        parser.error("the tagger has a softmax head: pytorch-crf has nothing to decode")

    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    atexit.register(shutil.rmtree, folder, True)
    taggers = {"eager": lambda batch: tag_batch(model, model.vocabulary, None, batch)}
    for name, fmt in (("torchscript", "torchscript"), ("onnxruntime", "onnx")):
        export_tagger(model, fmt, folder / f"tagger.{fmt}")
        exported = deploy.load(folder / f"tagger.{fmt}", threads=args.threads)
        taggers[name] = exported.tag_batch
    taggers["pytorch-crf"] = _pytorch_crf(model)

    reference = [r["tags"] for r in taggers["eager"](sentences[:64])]
    for name, tag in taggers.items():
        if [r["tags"] for r in tag(sentences[:64])] != reference:
            print(f"{name} tags differently from eager", file=sys.stderr)
            return 1

    passes = {
        1: [[s] for s in sentences[: args.latency_sentences]],
        64: [sentences[i : i + 64] for i in range(0, len(sentences), 64)],
    }
    seconds = _median_seconds(taggers, passes, args.rounds)
    rows = []
    for name in taggers:
        latency = seconds[name, 1] / len(passes[1]) * 1e3
        throughput = len(sentences) / seconds[name, 64]
        rows.append((name, latency, len(passes[1]) / seconds[name, 1], throughput))
    table = _table(rows, model, len(sentences), args)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
        _write_csv(rows, args.out.with_suffix(".csv"))
        _plot(rows, args.out.with_suffix(".png"))
    return 0


def _median_seconds(systems: dict, passes: dict, rounds: int) -> dict:
    """``{(system, batch size): median seconds}`` of running each system over every batch of
    ``passes[batch size]``, ``rounds`` times, the systems interleaved round by round."""
    seconds = {(name, b): [] for name in systems for b in passes}
    for _ in range(rounds):
        for b, batches in passes.items():
            for name, run in systems.items():
                begin = time.perf_counter()
                for batch in batches:
                    run(batch)
                seconds[name, b].append(time.perf_counter() - begin)
    return {key: statistics.median(values) for key, values in seconds.items()}


def _recognition(args) -> int:
    """The ``--recognizer`` benchmark (see the module docstring)."""
    from hybrid.files import data_root
    from hybrid.speech.audio import read_wav
    from hybrid.speech.export import export_recognizer
    from hybrid.speech.fsdd import official_split, read_fsdd
    from hybrid.speech.recognizer import Recognizer

    eager = Recognizer.load(args.recognizer)
    root = Path(args.data) if args.data else data_root()
    if root is None:
        raise SystemExit("no data folder: give --data, the FSDD folder (or set HYBRID_DATA)")
    root = root if args.data else root / "fsdd"
    _, test = official_split(read_fsdd(root))
    speakers: dict[str, list] = {}
    for recording in test:
        samples, rate = read_wav(recording.path, downmix=True)
        speakers.setdefault(recording.speaker, []).append((samples, rate))
    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    atexit.register(shutil.rmtree, folder, True)
    systems = {"eager": eager.recognize}
    for name, fmt in (("torchscript", "torchscript"), ("onnxruntime", "onnx")):
        export_recognizer(eager, fmt, folder / f"system.{fmt}")
        exported = deploy.load(folder / f"system.{fmt}", threads=args.threads)
        systems[name] = lambda batch, run=exported.recognize: run(
            [(samples.numpy(), rate) for samples, rate in batch]
        )
    groups = list(speakers.values())
    reference = [eager.recognize(group) for group in groups]
    for name, recognize in systems.items():
        if [recognize(group) for group in groups] != reference:
            print(f"{name} recognises differently from eager", file=sys.stderr)
            return 1
    recordings = [item for group in groups for item in group]
    audio = sum(len(samples) / rate for samples, rate in recordings)
    passes = {1: [[item] for item in recordings], 64: groups}  # "64": a speaker's recordings
    seconds = _median_seconds(systems, passes, args.rounds)
    lines = [
        f"Recognising the {len(recordings)} FSDD test recordings ({audio:.0f} s of audio) with "
        f"one {eager.kind} system, waveform to words, {args.threads} thread(s), median of "
        f"{args.rounds} passes (hybrid {hybrid.__version__}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}).",
        "",
        "| system | latency per recording (ms) | real-time factor, one at a time | audio s/s, "
        "one speaker at a time | one at a time vs eager |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    base = seconds["eager", 1]
    csv = ["system,latency_ms,real_time_factor,audio_seconds_per_second_batched"]
    for name in systems:
        single, batched = seconds[name, 1], seconds[name, 64]
        latency = single / len(recordings) * 1e3
        lines.append(
            f"| {name} | {latency:.2f} | {single / audio:.4f} | {audio / batched:.0f} "
            f"| {base / single:.2f}x |"
        )
        csv.append(f"{name},{latency:.4f},{single / audio:.6f},{audio / batched:.2f}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
        args.out.with_suffix(".csv").write_text("\n".join(csv) + "\n")
    return 0


def _table(rows, model: Tagger, count: int, args) -> str:
    eager = {b: v for b, v in zip(("latency", "batch1", "batch64"), rows[0][1:], strict=True)}
    lines = [
        f"Tagging {count} sentences with one {model.config.head.upper()} tagger, text to "
        f"results, {args.threads} thread(s), median of {args.rounds} passes "
        f"(hybrid {hybrid.__version__}, torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}).",
        "",
        "| system | latency at batch 1 (ms) | sentences/s at batch 1 | sentences/s at batch 64 "
        "| batch 1 vs eager | batch 64 vs eager |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, latency, batch1, batch64 in rows:
        lines.append(
            f"| {name} | {latency:.2f} | {batch1:.0f} | {batch64:.0f} "
            f"| {batch1 / eager['batch1']:.2f}x | {batch64 / eager['batch64']:.2f}x |"
        )
    lines.append("")
    lines.append("pytorch-crf decodes tags only; the others also compute each tag's confidence.")
    return "\n".join(lines)


def _write_csv(rows, path: Path) -> None:
    lines = ["system,latency_ms_batch1,sentences_per_s_batch1,sentences_per_s_batch64"]
    lines += [f"{n},{a:.4f},{b:.2f},{c:.2f}" for n, a, b, c in rows]
    path.write_text("\n".join(lines) + "\n")


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r[0] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, column, title in ((axes[0], 2, "batch 1"), (axes[1], 3, "batch 64")):
        ax.barh(names[::-1], [r[column] for r in rows][::-1], color="#4c72b0")
        ax.set_title(f"sentences per second, {title}")
        ax.set_xlabel("sentences / s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
