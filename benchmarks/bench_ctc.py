"""CTC decoding speed: hybrid's prefix beam search vs pyctcdecode, one process, same inputs.

Random log-probabilities, T = 500 frames, V = 30 symbols (blank first, then 26 letters, an
apostrophe, a hyphen and a space), one sequence: flat ones (a softmax of standard normal
scores) and peaked ones (one symbol per frame boosted by 5). Beams 10, 50 and 100; both
decoders without an LM, with pyctcdecode's pruning switched off (``beam_prune_logp`` and
``token_min_logp`` at -1e9) and once more with its defaults. The table says whether the top
hypotheses agree. A last line times our search with a character trigram LM read from an ARPA
file (pyctcdecode needs KenLM for that; it is not timed).

pyctcdecode pins numpy < 2; install it beside this project with
``pip install --no-deps pyctcdecode pygtrie``.

    python benchmarks/bench_ctc.py --out benchmarks/results/ctc_cpu.md
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch
from timing import median_ms

from hybrid.ctc import lm_scorer, prefix_beam_search, read_arpa

STEPS, VOCAB = 500, 30
SYMBOLS = ["", *"abcdefghijklmnopqrstuvwxyz'-", " "]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per timing cell")
    parser.add_argument("--beams", nargs="+", type=int, default=[10, 50, 100])
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        print("pyctcdecode is not installed: pip install --no-deps pyctcdecode pygtrie")
        return 1
    decoder = build_ctcdecoder(SYMBOLS)
    rows = []
    for kind in ("flat", "peaked"):
        scores = log_probs(kind)
        ours_input = scores[None].float()
        peer_input = scores.numpy()
        for beam in args.beams:
            ours = partial(prefix_beam_search, ours_input, beam=beam, nbest=1)
            peer = partial(
                decoder.decode_beams,
                peer_input,
                beam_width=beam,
                beam_prune_logp=-1e9,
                token_min_logp=-1e9,
            )
            default = partial(decoder.decode_beams, peer_input, beam_width=beam)
            best = ours()
            text = "".join(SYMBOLS[i] for i in best.labels[0, 0, : best.label_lengths[0, 0]])
            rows.append(
                {
                    "case": f"{kind}, beam {beam}",
                    "ours": median_ms(ours, "cpu", args.budget),
                    "peer": median_ms(peer, "cpu", args.budget),
                    "peer_default": median_ms(default, "cpu", args.budget),
                    "same": text.strip() == peer()[0][0].strip(),
                    "same_default": text.strip() == default()[0][0].strip(),
                }
            )
    lm = lm_scorer(
        read_arpa(char_trigram_arpa()), SYMBOLS, unit="char", blank=0, token_map={" ": "<space>"}
    )
    with_lm = median_ms(
        lambda: prefix_beam_search(
            log_probs("peaked")[None].float(),
            beam=50,
            nbest=1,
            lm=lm,
            lm_weight=0.5,
            insertion_bonus=0.5,
        ),
        "cpu",
        args.budget,
    )
    lines = [
        f"CTC prefix beam search, T = {STEPS}, V = {VOCAB}, one sequence, CPU, torch threads: "
        f"{args.threads}, median ms (ratio = pyctcdecode / ours)",
        "",
        "| case | ours | pyctcdecode, no pruning | ratio | same top | pyctcdecode, defaults "
        "| ratio | same top |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['ours']:.1f} | {r['peer']:.1f} | {r['peer'] / r['ours']:.1f}x "
            f"| {'yes' if r['same'] else 'no'} | {r['peer_default']:.1f} "
            f"| {r['peer_default'] / r['ours']:.1f}x | {'yes' if r['same_default'] else 'no'} |"
        )
    lines += ["", f"Ours with a character trigram LM (peaked, beam 50): {with_lm:.1f} ms."]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
