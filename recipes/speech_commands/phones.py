"""Speech Commands, 10 words and "_unknown_", through phones: the monophone and tied-triphone
GMM-HMMs and the hybrid DNN-HMM and BiLSTM-HMM on the tied states, beside the whole-word
GMM-HMM, on the split and features of ``recipes/speech_commands/run.sh``.

    python recipes/speech_commands/phones.py --data ../shared/data   # runs/speech_commands-phones/

Phone systems need every word's pronunciation. The ten commands take theirs from CMUdict
(stress dropped). ``_unknown_`` is not a word but a class: the corpus puts 25 other words
under it (the manifest's ``word`` column names each clip's). Its pronunciations here are
those of the 25 words, all of them (a filler of known words, as the whole-word systems'
``_unknown_`` HMM is trained on all of them): forced alignment picks the one a training clip
says, and decoding answers ``_unknown_`` when one of them wins. The recipe writes that lexicon
(``lexicon.txt``, Kaldi's form) into the run folder and gives it to ``hybrid train-asr
--lexicon``.

Two processes share the run folder, one per core: the GMM-HMMs with the hybrid DNN-HMM on
tied states, and the hybrid BiLSTM-HMM on tied states (each trains the GMM-HMMs its targets
come from). Rerun to resume. Every setting is in the run folder's results.json ("settings").
Time on two cores: about 40 minutes (the tied-state BiLSTM-HMM's process is the longer).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from hybrid.files import data_root, write_text_atomic
from hybrid.speech.lexicon import cmudict_lexicon

SETTINGS = [
    "--corpus", "speech_commands", "--epochs", "15", "--spec-augment",
    "--speed-factors", "0.9", "1.1", "--seeds", "0", "--threads", "1", "--quiet",
]  # fmt: skip
PROCESSES = (["gmm", "gmm-mono", "gmm-tri", "dnn-tri"], ["bilstm-tri"])


def write_lexicon(manifest: Path, out: Path) -> None:
    """CMUdict pronunciations (stress dropped) of the manifest's labels, ``_unknown_``
    spelled as every word filed under it."""
    rows = list(csv.DictReader(manifest.open(newline="")))
    cmudict = cmudict_lexicon().without_stress()
    lines = []
    for label in sorted({row["label"] for row in rows}):
        said = sorted({row["word"] for row in rows if row["label"] == label})
        for word in said if label == "_unknown_" else [label]:
            for pron in cmudict.pronunciations(word):
                lines.append(f"{label} {' '.join(pron.phones)}\n")
    write_text_atomic(out, "".join(dict.fromkeys(lines)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (holding speech_commands/)")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--name", default="speech_commands-phones")
    args = parser.parse_args(argv)
    root = data_root(args.data)
    if root is None or not (root / "speech_commands" / "manifest.csv").is_file():
        raise SystemExit(f"recipes/speech_commands/phones.py: no speech_commands/ under {root}")
    run_dir = Path(args.runs) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    lexicon = run_dir / "lexicon.txt"
    write_lexicon(root / "speech_commands" / "manifest.csv", lexicon)
    command = ["hybrid", "train-asr", *SETTINGS, "--data", str(root), "--runs", args.runs]
    command += ["--name", args.name, "--lexicon", str(lexicon)]
    processes = [subprocess.Popen([*command, "--systems", *systems]) for systems in PROCESSES]
    codes = [process.wait() for process in processes]
    if any(codes):
        return max(codes)
    return subprocess.call(["hybrid", "redraw", str(run_dir)])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
