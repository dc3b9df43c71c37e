"""Builds the fused CPU kernels when the package is built or installed (all other metadata is
in pyproject.toml).

The kernels are one plain-C shared library loaded with ctypes: no Python or torch headers.
Without a working C++ compiler the build warns and goes on; the package then runs its eager
PyTorch engines (`hybrid.structured.native` says so once, when first asked for a kernel).
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_spec = importlib.util.spec_from_file_location(
    "_build", Path(__file__).parent / "hybrid" / "structured" / "_build.py"
)
kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernels)


class BuildKernels(build_ext):
    """Compile with OpenMP, else without it, else leave the kernels out with a warning; the
    library returns the digest of its sources from ``hybrid_sources_digest()``."""

    def build_extension(self, ext: Extension) -> None:
        failures = []
        ext.define_macros = [(kernels.DIGEST_MACRO, f"{kernels.digest()}LL")]
        for openmp in (kernels.OPENMP, []):
            ext.extra_compile_args = [*kernels.FLAGS, *openmp]
            ext.extra_link_args = list(openmp)
            try:
                super().build_extension(ext)
            except Exception as error:  # a missing or failing compiler: setuptools' errors vary
                failures.append(f"{type(error).__name__}: {error}")
                continue
            return
        print(
            "hybrid: the fused CPU kernels were not built (" + "; ".join(failures) + "); "
            "the eager PyTorch engine will run instead",
            file=sys.stderr,
        )

    def get_export_symbols(self, ext: Extension) -> list[str]:
        return []  # a ctypes library, not a Python module: no PyInit_ function to export


setup(
    ext_modules=[
        Extension(
            kernels.LIBRARY,
            sources=[str(s.relative_to(Path(__file__).parent.resolve())) for s in kernels.SOURCES],
            language="c++",
        )
    ],
    cmdclass={"build_ext": BuildKernels},
)
