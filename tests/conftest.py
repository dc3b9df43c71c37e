"""Shared test configuration: import path, fixed seeds, hypothesis profile."""

from __future__ import annotations

import os
import pathlib
import sys

# Idle OpenMP threads sleep instead of spinning: on a shared two-core machine spinning
# runtimes (torch's, the chain kernels', other processes') slow each other down many times.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTS = pathlib.Path(__file__).resolve().parent
for p in (str(ROOT), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

# Deterministic, bounded property tests: same examples on every run, no example database,
# no per-example deadline (the first call may pay for lazy initialisation).
settings.register_profile(
    "hybrid",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "hybrid-thorough",
    parent=settings.get_profile("hybrid"),
    max_examples=300,
)
settings.load_profile(os.environ.get("HYBRID_HYPOTHESIS_PROFILE", "hybrid"))


# The oracle suites run once per engine: the fused CPU kernels (where they build) and the
# eager PyTorch engines that serve CUDA and machines without a compiler.
ENGINE_SUITES = {
    "test_chain_bruteforce",
    "test_chain_properties",
    "test_crf_layer",
    "test_ctc",
    "test_ctc_beam",
    "test_ctc_lm",
    "test_graph",
    "test_ssvm",
    "test_validation",
}


def pytest_generate_tests(metafunc):
    if "chain_engine" in metafunc.fixturenames:
        suite = metafunc.module.__name__.rpartition(".")[2]
        both = suite in ENGINE_SUITES and not metafunc.definition.get_closest_marker(
            "compares_engines"
        )
        engines = ["native", "eager"] if both else ["native"]
        metafunc.parametrize("chain_engine", engines, indirect=True)


@pytest.fixture(autouse=True)
def chain_engine(request):
    """Run the test with the fused kernels enabled ("native") or disabled ("eager")."""
    from hybrid.structured import native

    if request.param == "eager":
        with native.disabled():
            yield "eager"
    else:
        yield "native"


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)
    yield


def pytest_report_header(config):
    return f"torch {torch.__version__}"
