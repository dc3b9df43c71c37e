"""Make the pictures of the docs from run folders: the plots the recipes draw, made small.

    python docs/figures.py                 # from runs/, into docs/images/
    python docs/figures.py --runs /elsewhere/runs

Each entry of `FIGURES` names a picture of the docs and the plot of a run folder it is made
from (the recipes in ``recipes/`` write those run folders; ``hybrid redraw RUN`` draws a
folder's plots again from its ``results.json``). A picture is shrunk to at most `WIDTH`
pixels wide and stored as an 8-bit palette PNG, so that all of them together stay under
`BUDGET` bytes. A run folder that is missing is named, and its pictures are left as they are.
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

#: ``picture: (run folder, plot)``.
FIGURES: dict[str, tuple[str, str]] = {}


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
    missing = set()
    for picture, (run, plot) in FIGURES.items():
        source = Path(args.runs) / run / plot
        if not source.is_file():
            missing.add(run)
            continue
        size = shrink(source, IMAGES / picture)
        print(f"{picture}: {size / 1000:.0f} kB from {source}")
    total = sum(p.stat().st_size for p in IMAGES.glob("*.png"))
    print(f"docs/images: {total / 1e6:.2f} MB of {BUDGET / 1e6:.0f} MB")
    for run in sorted(missing):
        print(f"{Path(args.runs) / run}: missing; run its recipe first", file=sys.stderr)
    return 1 if total > BUDGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
