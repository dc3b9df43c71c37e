"""The corpora a tagging run can use: the real benchmarks, or the embedded synthetic one."""

from __future__ import annotations

from pathlib import Path

from .corpus import Sentence, data_root, read_atis, read_conll
from .synthetic import SYNTHETIC_NOTICE, airline_splits

CORPORA = ("synthetic", "atis", "conll2000")
CONLL_DEV_SENTENCES = 1000  # CoNLL-2000 has no development split: the last train sentences


def load_splits(corpus: str, data: str | Path | None = None) -> dict[str, list[Sentence]]:
    """Train/valid/test sentences of ``corpus``.

    Args:
        corpus: ``"synthetic"`` (generated, no download), ``"atis"`` (the ATIS slot-filling
            layout ``{train,valid,test}/{seq.in,seq.out,label}``) or ``"conll2000"``
            (``train.txt``/``test.txt`` with POS tags as an extra feature; the last
            1,000 training sentences are the development split).
        data: Folder holding the corpus folders (default: ``$HYBRID_DATA`` or
            ``../shared/data``); the corpus is read from ``data/<corpus>``.

    Raises:
        ValueError: an unknown ``corpus``, no folder for it, a file of it that the reader
            refuses (naming the file: an empty file among them), or a CoNLL-2000
            ``train.txt`` of 1,000 sentences or fewer (nothing left to train on beside the
            development split).
    """
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")
    if corpus == "synthetic":  # small enough for the whole comparison in about a minute
        return airline_splits(train=600, valid=200, test=400)
    root = data_root(data)
    folder = None if root is None else Path(root) / corpus
    if folder is None or not folder.is_dir():
        raise ValueError(
            f"no {corpus} data found (looked in {folder}); pass --data with the folder that "
            f"holds '{corpus}/', set HYBRID_DATA, or use --corpus synthetic"
        )
    if corpus == "atis":
        return {split: read_atis(folder, split) for split in ("train", "valid", "test")}
    train = read_conll(folder / "train.txt", feature_column=1)
    if len(train) <= CONLL_DEV_SENTENCES:
        raise ValueError(
            f"{folder / 'train.txt'}: {len(train)} sentences; expected more than "
            f"{CONLL_DEV_SENTENCES}: the last {CONLL_DEV_SENTENCES} are the development split, "
            "the sentences before them the training split"
        )
    return {
        "train": train[:-CONLL_DEV_SENTENCES],
        "valid": train[-CONLL_DEV_SENTENCES:],
        "test": read_conll(folder / "test.txt", feature_column=1),
    }


__all__ = ["CORPORA", "SYNTHETIC_NOTICE", "load_splits"]
