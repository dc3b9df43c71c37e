"""Make the pictures of the docs from run folders: the plots the recipes draw, made small.

    python docs/figures.py                 # from runs/, into docs/images/
    python docs/figures.py --runs /elsewhere/runs

Each entry of `FIGURES` names a picture of the docs and the plot of a run folder it is made
from (the recipes in ``recipes/`` write those run folders; ``hybrid redraw RUN`` draws a
folder's plots again from its ``results.json``). A picture is shrunk to at most `WIDTH`
pixels wide and stored as an 8-bit palette PNG, so that all of them together stay under
`BUDGET` bytes. A plot that is not there is named, and its picture is left as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"

#: Widest picture, in pixels.
WIDTH = 900

#: All pictures together, in bytes.
BUDGET = 2_000_000

#: ``picture: (run folder, plot)``; the run folders are those of ``recipes/``.
FIGURES: dict[str, tuple[str, str]] = {
    "atis-training.png": ("atis", "training_curves.png"),
    "atis-label-f1.png": ("atis", "label_f1.png"),
    "atis-confusion.png": ("atis", "confusion.png"),
    "conll2000-label-f1.png": ("conll2000", "label_f1.png"),
    "fsdd-alignment.png": ("fsdd", "alignment-isolated.png"),
    "fsdd-confusion.png": ("fsdd", "confusion.png"),
    "fsdd-training.png": ("fsdd", "training-isolated.png"),
    "fsdd-ctc.png": ("fsdd", "ctc.png"),
    "yesno-alignment.png": ("yesno-loop", "alignment-continuous.png"),
    "timit-alignment.png": ("timit-phones", "alignment.png"),
    "unheard-confusion.png": ("sc-unheard", "confusion.png"),
    "speech-commands-phones.png": ("speech_commands-phones", "errors.png"),
    "babi-hops.png": ("babi-joint", "hop_attention.png"),
    "babi-errors.png": ("babi-joint", "errors.png"),
    "ptb-attention.png": ("ptb-seq2seq", "pointer-attention.png"),
    "ptb-f1-by-length.png": ("ptb-seq2seq", "f1-by-length.png"),
    "ptb-tree.png": ("ptb-seq2seq", "tree.png"),
}


def shrink(source: Path, target: Path) -> int:
    """Write ``source`` to ``target`` at most `WIDTH` pixels wide, as a palette PNG; returns
    its size in bytes."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > WIDTH:
            height = round(image.height * WIDTH / image.width)
            image = image.resize((WIDTH, height), Image.Resampling.LANCZOS)
        small = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        target.parent.mkdir(parents=True, exist_ok=True)
        small.save(target, optimize=True)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="the folder holding the run folders")
    args = parser.parse_args(argv)
    missing = []
    for picture, (run, plot) in FIGURES.items():
        source = Path(args.runs) / run / plot
        if not source.is_file():
            missing.append(source)
            continue
        size = shrink(source, IMAGES / picture)
        print(f"{picture}: {size / 1000:.0f} kB from {source}")
    total = sum(p.stat().st_size for p in IMAGES.glob("*.png"))
    print(f"docs/images: {total / 1e6:.2f} MB of {BUDGET / 1e6:.0f} MB")
    for source in missing:
        print(f"{source}: not there; run the recipe of its folder first", file=sys.stderr)
    return 1 if total > BUDGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
