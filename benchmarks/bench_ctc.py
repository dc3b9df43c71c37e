"""CTC decoding and alignment speed against the peers, one process, same inputs.

Prefix beam search against pyctcdecode: random log-probabilities, T = 500 frames, V = 30
symbols (blank first, then 26 letters, an apostrophe, a hyphen and a space), one sequence:
flat ones (a softmax of standard normal scores) and peaked ones (one symbol per frame boosted
by 5). Beams 10, 50 and 100; both without an LM, with pyctcdecode's pruning switched off
(``beam_prune_logp`` and ``token_min_logp`` at -1e9) and once more with its defaults. The
table says whether the top hypotheses agree (pyctcdecode collapses runs of spaces, so both
texts are compared with single spaces), and where they do not, by how much the exact CTC
log-probability of our top exceeds that of pyctcdecode's (``-ctc_loss`` of each text).
Then our search with a character trigram LM read from an ARPA file, fused kernel and
tensorized engine (pyctcdecode needs KenLM for an LM; it is not timed).

Forced alignment against ``torchaudio.functional.forced_align``: a batch of 32 sequences of
300 to 500 frames with targets of 40 to 120 symbols, in one call of ours against 32 calls of
torchaudio's (it takes one sequence at a time); the alignments must be identical.

pyctcdecode pins numpy < 2; install it beside this project with
``pip install --no-deps pyctcdecode pygtrie``. torchaudio's compiled parts do not load with
the CPU-only torch wheel; the alignment part then says so and is skipped.

    python benchmarks/bench_ctc.py --out benchmarks/results/ctc_cpu.md
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch
from timing import median_ms

from hybrid.ctc import ctc_loss, forced_align, lm_scorer, prefix_beam_search, read_arpa
from hybrid.structured import native

STEPS, VOCAB = 500, 30
SYMBOLS = ["", *"abcdefghijklmnopqrstuvwxyz'-", " "]
ALIGN_BATCH = 32


def log_probs(kind: str, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(STEPS, VOCAB, generator=generator, dtype=torch.float64)
    if kind == "peaked":
        best = torch.randint(0, VOCAB, (STEPS,), generator=generator)
        scores[torch.arange(STEPS), best] += 5.0
    return scores.log_softmax(-1)


def char_trigram_arpa() -> str:
    """A small character trigram model in ARPA format (uniform-ish, with backoffs)."""
    letters = SYMBOLS[1:]
    lines = ["\\data\\", f"ngram 1={len(letters) + 3}", "ngram 2=2", "ngram 3=1", "", "\\1-grams:"]
    lines += [f"-1.5\t{c if c != ' ' else '<space>'}\t-0.3" for c in letters]
    lines += ["-99\t<s>\t-0.3", "-1.5\t</s>", "-2.0\t<unk>", "", "\\2-grams:"]
    lines += ["-0.5\te <space>\t-0.1", "-0.7\tt h\t-0.1", "", "\\3-grams:", "-0.2\tt h e", ""]
    return "\n".join(lines + ["\\end\\", ""])


def text_of(labels: list[int]) -> str:
    """Labels as text with runs of spaces collapsed, as pyctcdecode writes it."""
    return " ".join("".join(SYMBOLS[i] for i in labels).split())


def ctc_log_prob(scores: torch.Tensor, text: str) -> float:
    """Exact log P(text | scores) summed over all alignments."""
    target = torch.tensor([[SYMBOLS.index(c) for c in text] or [-1]])
    return -float(ctc_loss(scores[None], target, reduction="sum"))


def search_rows(decoder, budget: float, beams: list[int]) -> list[str]:
    rows = [
        "| case | ours | pyctcdecode, no pruning | ratio | same top | pyctcdecode, defaults "
        "| ratio | same top |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for kind in ("flat", "peaked"):
        scores = log_probs(kind)
        ours = partial(prefix_beam_search, scores[None].float(), nbest=1)
        for beam in beams:
            peer = partial(decoder.decode_beams, scores.numpy(), beam_width=beam)
            unpruned = partial(peer, beam_prune_logp=-1e9, token_min_logp=-1e9)
            ms = median_ms(partial(ours, beam=beam), "cpu", budget)
            ours_text = text_of(ours(beam=beam).to_lists()[0][0])
            cells = [f"{kind}, beam {beam}", f"{ms:.1f}"]
            for run in (unpruned, peer):
                peer_ms = median_ms(run, "cpu", budget)
                peer_text = " ".join(run()[0][0].split())
                if peer_text == ours_text:
                    agree = "yes"
                else:
                    gain = ctc_log_prob(scores, ours_text) - ctc_log_prob(scores, peer_text)
                    agree = f"no (ours {gain:+.2f} log P)"
                cells += [f"{peer_ms:.1f}", f"{peer_ms / ms:.1f}x", agree]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def lm_line(budget: float) -> str:
    lm = lm_scorer(
        read_arpa(char_trigram_arpa()), SYMBOLS, unit="char", blank=0, token_map={" ": "<space>"}
    )
    search = partial(
        prefix_beam_search,
        log_probs("peaked")[None].float(),
        beam=50,
        nbest=1,
        lm=lm,
        lm_weight=0.5,
        insertion_bonus=0.5,
    )
    fused = median_ms(search, "cpu", budget)
    with native.disabled():
        tensorized = median_ms(search, "cpu", budget)
    return (
        f"Ours with a character trigram LM (peaked, beam 50): {fused:.1f} ms fused, "
        f"{tensorized:.1f} ms tensorized."
    )


def align_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of random log-probs ``(32, 500, 30)`` float32, lengths, -1 padded targets."""
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(ALIGN_BATCH, STEPS, VOCAB, generator=generator).log_softmax(-1)
    lengths = torch.randint(300, STEPS + 1, (ALIGN_BATCH,), generator=generator)
    target_lengths = torch.randint(40, 121, (ALIGN_BATCH,), generator=generator)
    targets = torch.randint(1, VOCAB, (ALIGN_BATCH, 120), generator=generator)
    targets[torch.arange(120)[None, :] >= target_lengths[:, None]] = -1
    return scores, lengths, targets, target_lengths


def align_rows(budget: float) -> list[str]:
    try:
        import torchaudio.functional as TAF
    except Exception as error:  # the CPU-only torch wheel cannot load torchaudio
        return [f"Forced alignment not timed: torchaudio does not load here ({error})."]
    scores, lengths, targets, target_lengths = align_inputs()

    def peer():
        return [
            TAF.forced_align(
                scores[b : b + 1, : lengths[b]],
                targets[b : b + 1, : target_lengths[b]].int(),
                blank=0,
            )[0][0]
            for b in range(ALIGN_BATCH)
        ]

    ours = partial(forced_align, scores, targets, lengths, target_lengths)
    alignment = ours()
    same = all(
        torch.equal(path.long(), alignment.labels[b, : lengths[b]]) for b, path in enumerate(peer())
    )
    ours_ms, peer_ms = median_ms(ours, "cpu", budget), median_ms(peer, "cpu", budget)
    with native.disabled():
        tensorized_ms = median_ms(ours, "cpu", budget)
    return [
        f"Forced alignment, batch of {ALIGN_BATCH}, T = 300-{STEPS}, V = {VOCAB}, targets of "
        f"40-120 symbols, float32, median ms (torch {torch.__version__})",
        "",
        "| ours, one call | ours, tensorized engine | torchaudio, 32 calls | ratio "
        "| same alignments |",
        "| ---: | ---: | ---: | ---: | --- |",
        f"| {ours_ms:.2f} | {tensorized_ms:.1f} | {peer_ms:.2f} | {peer_ms / ours_ms:.1f}x "
        f"| {'yes' if same else 'no'} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per timing cell")
    parser.add_argument("--beams", nargs="+", type=int, default=[10, 50, 100])
    parts = ["search", "align"]
    parser.add_argument("--parts", nargs="+", choices=parts, default=parts)
    parser.add_argument("--out", type=Path, help="write the Markdown tables here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = []
    if "search" in args.parts:
        lines += [
            f"CTC prefix beam search, T = {STEPS}, V = {VOCAB}, one sequence, CPU, torch "
            f"threads: {args.threads}, median ms (ratio = pyctcdecode / ours)",
            "",
        ]
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError:
            lines.append("pyctcdecode is not installed: pip install --no-deps pyctcdecode pygtrie")
        else:
            lines += search_rows(build_ctcdecoder(SYMBOLS), args.budget, args.beams)
        lines += ["", lm_line(args.budget), ""]
    if "align" in args.parts:
        lines += align_rows(args.budget)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
