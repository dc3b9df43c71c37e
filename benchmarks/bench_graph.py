"""Decoding graphs built by word against graphs through a determinized L∘G, on a real
vocabulary, in one process: sizes, build times and Viterbi search.

The vocabulary is the words of a text corpus that the lexicon pronounces (default: the ATIS
training sentences, ``atis/train/seq.in``, through CMUdict without stress), the grammars a
word loop weighed by the words' unigram probabilities and a back-off bigram, both estimated
from the same sentences (the bigram by absolute discounting, D = 0.5, backing off to the
unigrams), the HMMs 3-state monophones and a 3-state silence
(`hybrid.speech.graph.decoding_graph` with ``determinize=False`` and ``True``).

Each graph is built once and timed. Both graphs of a grammar then decode the same frame
scores, exactly and with a beam: for each of the first ``--sentences`` sentences of the
held-out file (``atis/test/seq.in``) said as its first pronunciations, each HMM state three
frames and a silence of 9 frames at both ends, every frame's score is N(0, 1) noise plus
``--clarity`` on the pdf of the state said (seed 0). The table gives the search time per
second of such speech (real-time factor at 10 ms frames), the largest difference between
the two graphs' best scores and the words each gets wrong.

    python benchmarks/bench_graph.py --data ../shared/data --out benchmarks/results/graph.md
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from pathlib import Path

import torch
from timing import write_table

from hybrid.ctc.lm import BOS, EOS, NGramLM
from hybrid.files import data_root
from hybrid.speech.graph import decoding_graph
from hybrid.speech.lexicon import cmudict_lexicon
from hybrid.speech.metrics import error_rate
from hybrid.speech.topology import SILENCE, PhoneTopology, loop_grammar, ngram_grammar
from hybrid.structured import graph_viterbi

DISCOUNT = 0.5
FRAMES_PER_STATE = 3
PAUSE = 9
FRAME_SECONDS = 0.010


def bigram(sentences: list[list[str]], words: list[str]) -> NGramLM:
    """A back-off bigram over ``words`` (sentences' other words left out) by absolute
    discounting: ``P(w | h) = (c(h w) - D) / c(h)`` for the bigrams seen, the rest of the
    mass to the unigrams ``c(w) / N`` of the words not seen after ``h``."""
    known = set(words)
    unigrams: collections.Counter = collections.Counter()
    bigrams: collections.Counter = collections.Counter()
    for sentence in sentences:
        tokens = [BOS, *(w for w in sentence if w in known), EOS]
        unigrams.update(tokens[1:])
        bigrams.update(zip(tokens[:-1], tokens[1:], strict=False))
    total = sum(unigrams.values())
    unigram = {w: c / total for w, c in unigrams.items()}
    after = collections.defaultdict(list)
    for (history, word), count in bigrams.items():
        after[history].append((word, count))
    first = {(w,): (math.log(p), 0.0) for w, p in unigram.items()}
    first[(BOS,)] = (-99.0, 0.0)
    second = {}
    for history, seen in after.items():
        count = sum(c for _, c in seen)
        for word, c in seen:
            second[(history, word)] = (math.log((c - DISCOUNT) / count), 0.0)
        left = DISCOUNT * len(seen) / count
        rest = 1.0 - sum(unigram[w] for w, _ in seen)
        first[(history,)] = (first[(history,)][0], math.log(left / rest) if rest > 0 else 0.0)
    return NGramLM([first, second])


def frame_scores(
    topology: PhoneTopology, sentence: list[int], clarity: float, generator: torch.Generator
) -> torch.Tensor:
    """``(T, P)`` scores: noise, and ``clarity`` on the pdfs of ``sentence`` said in order."""
    pdfs = topology.chains(SILENCE)[0][0] * (PAUSE // topology.silence_states)
    for word in sentence:
        pdfs += [p for p in topology.chains(word)[0][0] for _ in range(FRAMES_PER_STATE)]
    pdfs += topology.chains(SILENCE)[0][0] * (PAUSE // topology.silence_states)
    scores = torch.randn(len(pdfs), topology.num_pdfs, generator=generator)
    scores[torch.arange(len(pdfs)), torch.tensor(pdfs)] += clarity
    return scores


def search(graph, utterances: list[torch.Tensor], beam: float | None) -> tuple[float, list]:
    """Seconds to decode ``utterances`` one at a time, and each one's best (score, words)."""
    found = []
    begin = time.perf_counter()
    for scores in utterances:
        path = graph_viterbi(scores[None], graph, beam=beam)
        words = tuple(path.labels[0, : path.label_lengths[0]].tolist())
        found.append((float(path.scores[0]), words))
    return time.perf_counter() - begin, found


def measure(args: argparse.Namespace) -> tuple[list[dict], int, int]:
    """The table's rows, the number of words and that of the held-out sentences' words."""
    root = data_root(args.data) / "atis"
    sentences = [line.split() for line in (root / "train" / "seq.in").read_text().splitlines()]
    lexicon = cmudict_lexicon().without_stress()
    words = sorted({w for s in sentences for w in s if w in lexicon})
    topology = PhoneTopology(words, lexicon)
    index = {w: i for i, w in enumerate(words)}
    held_out = [
        [index[w] for w in line.split() if w in index]
        for line in (root / "test" / "seq.in").read_text().splitlines()[: args.sentences]
    ]
    generator = torch.Generator().manual_seed(0)
    utterances = [frame_scores(topology, s, args.clarity, generator) for s in held_out]
    speech = sum(len(u) for u in utterances) * FRAME_SECONDS
    lm = bigram(sentences, words)
    unigram = dict((gram[0], log_prob) for gram, log_prob, _ in lm.ngrams(1))
    grammars = {
        "unigram loop": loop_grammar(
            len(words), args.penalty, [unigram[w] for w in words], unigram[EOS]
        ),
        "bigram": ngram_grammar(lm, words, word_penalty=args.penalty),
    }
    print(
        f"{len(words)} words, {len(topology.phones)} phones; {len(held_out)} sentences, "
        f"{speech:.1f} s of frames",
        file=sys.stderr,
    )
    rows = []
    for name, grammar in grammars.items():
        built = {}
        for determinize in (False, True):
            begin = time.perf_counter()
            graph = decoding_graph(topology, grammar, determinize=determinize)
            seconds = time.perf_counter() - begin
            built[determinize] = graph
            rows.append(
                {
                    "grammar": name,
                    "graph": "determinized L∘G" if determinize else "by word",
                    "states": graph.num_states,
                    "arcs": graph.num_arcs,
                    "build_s": seconds,
                }
            )
            print(f"{name}, {rows[-1]['graph']}: built in {seconds:.1f} s", file=sys.stderr)
        for beam in (None, args.beam):
            results = {d: search(built[d], utterances, beam) for d in (False, True)}
            for determinize, row in zip((False, True), rows[-2:], strict=True):
                seconds, found = results[determinize]
                key = "exact" if beam is None else "beam"
                row[f"{key}_rtf"] = seconds / speech
                row[f"{key}_word_errors"] = error_rate(held_out, [w for _, w in found]).errors
            row[f"{key}_score_gap"] = max(
                abs(a[0] - b[0]) for a, b in zip(results[False][1], results[True][1], strict=True)
            )
            rows[-2][f"{key}_score_gap"] = row[f"{key}_score_gap"]
    return rows, len(words), sum(len(s) for s in held_out)


def format_table(rows: list[dict], args: argparse.Namespace, words: int, said: int) -> str:
    lines = [
        f"Decoding graphs over {words} ATIS words (CMUdict, monophones), one thread; search "
        f"over {args.sentences} held-out sentences ({said} words), clarity {args.clarity}, "
        f"beam {args.beam}",
        "",
        "| grammar | graph | states | arcs | build s | exact RTF | word errors | beam RTF "
        "| word errors | best-score gap (exact / beam) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['grammar']} | {r['graph']} | {r['states']:,} | {r['arcs']:,} "
            f"| {r['build_s']:.2f} | {r['exact_rtf']:.3f} | {r['exact_word_errors']} "
            f"| {r['beam_rtf']:.3f} | {r['beam_word_errors']} "
            f"| {r['exact_score_gap']:.1e} / {r['beam_score_gap']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="the corpora's folder")
    parser.add_argument("--sentences", type=int, default=5)
    parser.add_argument("--clarity", type=float, default=1.5)
    parser.add_argument("--beam", type=float, default=12.0)
    parser.add_argument("--penalty", type=float, default=0.0, help="log weight per word")
    parser.add_argument("--out", type=Path, help="write the table here (and .csv)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, words, said = measure(args)
    table = format_table(rows, args, words, said)
    print(table)
    if args.out:
        write_table(args.out, table, rows)
    return 0 if all(r["exact_score_gap"] < 1e-3 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
