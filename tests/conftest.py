"""Shared test configuration: import path, fixed seeds, hypothesis profile."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest
import torch
from hypothesis import HealthCheck, settings

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


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)
    yield


def pytest_report_header(config):
    return f"torch {torch.__version__}"
