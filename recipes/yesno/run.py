"""Kaldi's first recipe, yesno, by path: Kaldi data directories written from the file names,
then the speech comparison decoding with a word loop and with the corpus's unigram LM.

    python recipes/yesno/run.py --data ../shared/data      # both runs, runs/yesno-{loop,lm}/
    python recipes/yesno/run.py --systems gmm dnn           # any option of hybrid train-asr

As Kaldi's ``egs/yesno/s5/local/prepare_data.sh`` does, the 60 recordings of
``yesno/waves_yesno/`` are sorted by name, the first 30 are the training set and the last 30
the test set; each file name is its transcript (``0_1_1_0_0_1_1_0.wav``: NO YES YES NO NO YES
YES NO). The data directories (``wav.scp``, ``text``, ``utt2spk``) and the unigram model of
the corpus's README (``lm.arpa``) go to ``<runs>/yesno-data/``; then ``hybrid train-asr``
trains on ``train/`` and scores ``test/`` twice: decoding with a word loop, and with the loop
weighed by the unigram model (``--lm``). The corpus has one speaker, so the development set
(every network's epoch, the word penalty) is 3 of the 30 training recordings (seed 0).

Time: 16 minutes in one process, one thread (9 for the word loop, 7 for the LM run), of which
the monophone GMM-HMM over CMUdict phones (``gmm-mono``) takes 6 seconds per run.
"""

import argparse
import sys
from pathlib import Path

from hybrid.cli import main
from hybrid.files import data_root, write_text_atomic

#: The unigram model of the corpus's README (Kaldi's ``input/task.arpabo``).
LM = """\\data\\
ngram 1=4

\\1-grams:
-1\tNO
-1\tYES
-99\t<s>
-1\t</s>

\\end\\
"""

WORDS = {"0": "NO", "1": "YES"}


def prepare(waves: Path, out: Path) -> None:
    """Write Kaldi data directories ``out/train`` and ``out/test`` and ``out/lm.arpa``."""
    files = sorted(waves.glob("*.wav"))
    if len(files) != 60:
        raise SystemExit(f"recipes/yesno/run.py: expected the 60 recordings of yesno in {waves}")
    for split, part in (("train", files[:30]), ("test", files[30:])):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "wav.scp", "".join(f"{f.stem} {f.resolve()}\n" for f in part))
        write_text_atomic(
            folder / "text",
            "".join(f"{f.stem} {' '.join(WORDS[d] for d in f.stem.split('_'))}\n" for f in part),
        )
        write_text_atomic(folder / "utt2spk", "".join(f"{f.stem} global\n" for f in part))
    write_text_atomic(out / "lm.arpa", LM)


def run(argv: list[str]) -> int:
    options = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    options.add_argument("--data")
    options.add_argument("--runs", default="runs")
    known, rest = options.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(__doc__)
        return main(["train-asr", "--help"])
    root = data_root(known.data)
    if root is None or not (root / "yesno" / "waves_yesno").is_dir():
        raise SystemExit(f"recipes/yesno/run.py: no yesno/waves_yesno/ under {root} (give --data)")
    out = Path(known.runs) / "yesno-data"
    prepare(root / "yesno" / "waves_yesno", out)
    common = ["--train", str(out / "train"), "--test", str(out / "test")]
    common += ["--runs", known.runs, *rest]
    for name, extra in (("yesno-loop", []), ("yesno-lm", ["--lm", str(out / "lm.arpa")])):
        code = main(["train-asr", *common, *extra, "--name", name])
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
