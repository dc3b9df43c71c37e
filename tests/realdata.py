"""The real corpora for tests: present, skipped with a reason, or a failure under CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hybrid.files import data_root


def real_corpus(name: str) -> Path:
    """The real corpus folder ``data_root() / name``; skip without it (fail under CI)."""
    root = data_root()
    folder = None if root is None else root / name
    if folder is None or not folder.is_dir():
        where = "no data folder found" if root is None else f"{folder} does not exist"
        reason = f"real corpus {name!r} is absent ({where}; set HYBRID_DATA to the data folder)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return folder
