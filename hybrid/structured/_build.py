"""What the fused CPU kernels are built from: the sources, the compiler flags, the library's
name and the digest that ties a built library to its sources.

`setup.py` reads this file by path (the package and torch are not importable while it
builds) and compiles the sources into one shared library beside them when the package is
built or installed; `hybrid.structured.native` loads it. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: The C++ sources, one library (plain C ABI, no Python or torch headers).
SOURCES = [
    HERE / name
    for name in ("chain_kernels.cpp", "graph_kernels.cpp", "ctc_kernels.cpp", "tree_kernels.cpp")
]

#: The library's module name: ``hybrid/structured/_kernels`` + the interpreter's extension
#: suffix (``.cpython-311-x86_64-linux-gnu.so``).
LIBRARY = "hybrid.structured._kernels"

#: The C macro through which the library learns the `digest` of its sources.
DIGEST_MACRO = "HYBRID_SOURCES_DIGEST"

#: ``-march``: ``native`` (this CPU, the default) or a portable level such as ``x86-64-v2``
#: for a wheel that will run on other machines (``HYBRID_MARCH=x86-64-v2 pip wheel .``).
MARCH = os.environ.get("HYBRID_MARCH", "native")

FLAGS = ["-O3", f"-march={MARCH}", "-fno-math-errno", "-std=c++17"]
OPENMP = ["-fopenmp"]


def digest() -> int:
    """The first 60 bits of the SHA-256 of the sources' names and contents, in order (an
    ``int64_t`` for ``hybrid_sources_digest()``)."""
    sha = hashlib.sha256()
    for source in SOURCES:
        sha.update(source.name.encode() + b"\0" + source.read_bytes())
    return int(sha.hexdigest()[:15], 16)
