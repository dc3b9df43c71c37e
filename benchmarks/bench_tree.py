"""Tree CRF speed: hybrid (fused kernels and eager engine) vs torch-struct, in one process.

Times the log-partition forward + backward (inside + outside: the span marginals) and CKY
(the best tree) on span scores of ``n`` positions, batch 32, 30 labels, float32, at
n = 20, 40 and 80, and prints a Markdown table with the ratios torch-struct / ours and checks
that both sides agree (log-partition, best trees). Each method is timed two ways, both taking
turns so that a machine whose load drifts slows the methods alike, medians reported:

* in blocks (the main figures): ``--block`` calls of one method, then of the next; the first
  call of each block is not timed. This is how a method runs inside a training or decoding
  loop, and how ``timeit`` and ``torch.utils.benchmark`` time it.
* call by call: one call of each method in turn, every call timed. Each call then starts
  right after the other method's, whose memory traffic (torch-struct's temporaries run to
  hundreds of MB) has evicted the caller's code and data; on this project's two-core virtual
  machine that added 0.1-0.6 ms to a call of ours at n = 20 (0.6-1.1 ms in blocks).

    python benchmarks/bench_tree.py
    python benchmarks/bench_tree.py --out benchmarks/results/tree_cpu.md   # also a CSV

torch-struct's ``TreeCRF`` takes ``(B, n, n, L)`` scores of inclusive spans ``[i, j]``:
ours ``[i, j + 1)``, the same scores.

Idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, set before torch loads unless given),
as in the tests: on a machine shared with other jobs, torch's spinning idle threads take the
cores from everything else and slow both sides many times over (measured here: torch-struct at
n = 80 from 0.1 s to several seconds, the fused kernels at n = 20 from 1 ms to 30 ms).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads its OpenMP runtime

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from timing import sync  # noqa: E402

from hybrid.structured import cky, native, span_indicator, tree_log_partition  # noqa: E402

SIZES = (20, 40, 80)
METHODS = ("ours", "eager", "ts", "ours_calls", "ts_calls")


def alternating_ms(
    fns: dict[str, Callable[[], object]], device: str, budget_s: float, block: int
) -> dict[str, float]:
    """Median wall time (ms) of each function, run in turn ``block`` calls at a time until the
    budget is spent (at least 3 turns). With ``block > 1`` the first call of each block is not
    timed; with ``block = 1`` every call is."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    begin, turns = time.perf_counter(), 0
    while turns < 3 or time.perf_counter() - begin < budget_s:
        for name, fn in fns.items():
            for call in range(block):
                t0 = time.perf_counter()
                fn()
                sync(device)
                if block == 1 or call > 0:
                    times[name].append((time.perf_counter() - t0) * 1e3)
        turns += 1
    return {name: statistics.median(values) for name, values in times.items()}


def timings(fns: dict[str, Callable[[], object]], args) -> dict[str, float]:
    """Block medians of every method, and call-by-call medians of ours and torch-struct's
    (keys ``ours_calls`` and ``ts_calls``); each way gets half the budget."""
    for fn in fns.values():
        fn()  # warm-up
    sync(args.device)
    result = alternating_ms(fns, args.device, args.budget / 2, args.block)
    pair = {name: fns[name] for name in ("ours", "ts") if name in fns}
    if len(pair) == 2:
        calls = alternating_ms(pair, args.device, args.budget / 2, 1)
        result.update({f"{name}_calls": value for name, value in calls.items()})
    return result


def eager(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with the fused kernels disabled (the tensorized eager engine)."""

    def run():
        with native.disabled():
            return fn()

    return run


def measure(n: int, args, torch_struct) -> dict:
    """Time the methods at one size; returns the timings and agreement checks."""
    g = torch.Generator().manual_seed(n)
    scores = torch.randn(args.batch, n + 1, n + 1, args.labels, generator=g).to(args.device)
    scores.requires_grad_()
    peer_scores = scores.detach()[:, :-1, 1:].clone().requires_grad_()

    def ours_fb():
        scores.grad = None
        tree_log_partition(scores).sum().backward()

    def ts_fb():
        peer_scores.grad = None
        torch_struct.TreeCRF(peer_scores).partition.sum().backward()

    def ours_cky():
        return cky(scores.detach())

    def ts_cky():
        return torch_struct.TreeCRF(peer_scores.detach()).argmax

    fb = {"ours": ours_fb, "eager": eager(ours_fb)}
    best = {"ours": ours_cky, "eager": eager(ours_cky)}
    if torch_struct is not None:
        fb["ts"], best["ts"] = ts_fb, ts_cky
    row = {"n": n, "fb": timings(fb, args), "cky": timings(best, args)}
    if torch_struct is not None:
        peer = torch_struct.TreeCRF(peer_scores.detach())
        log_z_diff = tree_log_partition(scores.detach()) - peer.partition.detach()
        row["log_z_diff"] = float(log_z_diff.abs().max())
        chosen = span_indicator(cky(scores.detach())[0], scores.shape).to(scores)
        row["same_trees"] = bool(torch.equal(chosen[:, :-1, 1:], peer.argmax.detach()))
    return row


def format_table(rows: list[dict], args) -> str:
    def cell(timings, key):
        return f"{timings[key]:.2f}" if key in timings else "n/a"

    def ratio(timings, key, peer="ts"):
        return f"{timings[peer] / timings[key]:.1f}x" if peer in timings else "-"

    lines = [
        f"Device: {args.device}, torch {torch.__version__}, {args.threads} threads, float32, "
        f"batch {args.batch}, {args.labels} labels; median ms, in blocks of {args.block} calls "
        "(lower is better); ratio = torch-struct time / ours; the last three columns time "
        "ours and torch-struct call by call.",
        "",
        "| work | n | hybrid | hybrid eager | torch-struct | ratio | ratio eager "
        "| hybrid, call by call | torch-struct, call by call | ratio, call by call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for work, key in (("inside + outside (fwd+bwd)", "fb"), ("CKY (best tree)", "cky")):
        for row in rows:
            t = row[key]
            lines.append(
                f"| {work} | {row['n']} | {cell(t, 'ours')} | {cell(t, 'eager')} | "
                f"{cell(t, 'ts')} | {ratio(t, 'ours')} | {ratio(t, 'eager')} | "
                f"{cell(t, 'ours_calls')} | {cell(t, 'ts_calls')} | "
                f"{ratio(t, 'ours_calls', 'ts_calls')} |"
            )
    checked = [row for row in rows if "same_trees" in row]
    if checked:
        worst = max(row["log_z_diff"] for row in checked)
        same = sum(row["same_trees"] for row in checked)
        lines += [
            "",
            f"Agreement with torch-struct: max |log-partition difference| {worst:.1e}; "
            f"identical best trees at {same}/{len(checked)} sizes.",
        ]
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    keys = [f"{work}_{method}" for work in ("fb", "cky") for method in METHODS]
    lines = ["n," + ",".join(f"{k}_ms" for k in keys)]
    for row in rows:
        cells = []
        for key in keys:
            work, method = key.split("_", 1)
            cells.append(f"{row[work][method]:.4f}" if method in row[work] else "")
        lines.append(f"{row['n']}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--labels", type=int, default=30)
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per size and work")
    parser.add_argument("--block", type=int, default=10, help="calls per block (>= 2)")
    parser.add_argument("--no-torch-struct", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here, a CSV beside")
    args = parser.parse_args(argv)
    if args.block < 2:
        parser.error("--block must be at least 2: the first call of each block is not timed")

    torch_struct = None
    if not args.no_torch_struct:
        try:
            import torch_struct
        except ImportError:
            print("torch-struct not installed: its columns are skipped", file=sys.stderr)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*arg_constraints.*")
    rows = []
    for n in args.sizes:
        row = measure(n, args, torch_struct)
        rows.append(row)
        print(f"n={n}: inside+outside {row['fb']}, CKY {row['cky']}", file=sys.stderr)

    table = format_table(rows, args)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
        write_csv(rows, args.out.with_suffix(".csv"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
