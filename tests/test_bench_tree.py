"""`benchmarks/bench_tree.py` runs end to end on a tiny size and times as it says."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_tree  # noqa: E402


def test_blocks_leave_their_first_call_untimed_and_calls_time_every_call():
    calls = {"a": 0, "b": 0}
    order = []

    def make(name):
        def fn():
            calls[name] += 1
            order.append(name)

        return fn

    timed = bench_tree.alternating_ms({"a": make("a"), "b": make("b")}, "cpu", 0.0, block=3)
    assert order == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    assert set(timed) == {"a", "b"}
    order.clear()
    bench_tree.alternating_ms({"a": make("a"), "b": make("b")}, "cpu", 0.0, block=1)
    assert order == ["a", "b"] * 3


def test_the_benchmark_writes_its_table_and_csv(tmp_path, capsys):
    pytest.importorskip("torch_struct")
    out = tmp_path / "tree.md"
    args = ["--sizes", "3", "--batch", "2", "--labels", "2", "--budget", "0.02", "--block", "2"]
    assert bench_tree.main([*args, "--out", str(out)]) == 0
    table = out.read_text()
    assert "| inside + outside (fwd+bwd) | 3 |" in table
    assert "| CKY (best tree) | 3 |" in table
    assert "identical best trees at 1/1 sizes" in table
    header, row = out.with_suffix(".csv").read_text().splitlines()
    assert header.split(",")[0] == "n" and "fb_ours_calls_ms" in header and "cky_ts_ms" in header
    assert row.startswith("3,") and "" not in row.split(",")
    with pytest.raises(SystemExit):
        bench_tree.main([*args[:-1], "1"])
    assert "--block must be at least 2" in capsys.readouterr().err
