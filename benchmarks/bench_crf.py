"""CRF speed: hybrid vs pytorch-crf vs torch-struct, side by side in one process.

Times the negative log-likelihood forward + backward and Viterbi decoding at the shapes of
the reference table (float32, ``torch.set_num_threads(2)`` by default, medians after
warm-up) and prints a Markdown table with the ratios peer / ours.

    python benchmarks/bench_crf.py                 # CPU, all shapes
    python benchmarks/bench_crf.py --device cuda   # where a GPU is available
    python benchmarks/bench_crf.py --out benchmarks/results/crf_cpu.md

torch-struct materialises ``(B, T, K, K)`` potentials and a log-depth scan, so it is
skipped where that would not fit in memory (say so in the table) unless ``--memory-gb``
allows it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from timing import median_ms

from hybrid import CRF

SHAPES = {"S1": (32, 50, 20), "S2": (64, 100, 50), "S3": (16, 200, 128), "S4": (256, 30, 10)}


def torch_struct_potentials(emissions, crf):
    """Our chain as torch-struct edge potentials ``(B, T-1, K_to, K_from)``."""
    trans = crf.transitions.t()[None, None]  # [to, from]
    edge = emissions[:, 1:, :, None] + trans
    first = emissions[:, 0] + crf.start_transitions
    edge = torch.cat([edge[:, :1] + first[:, None, None, :], edge[:, 1:]], 1)
    last = torch.zeros_like(edge)
    last[:, -1] = crf.end_transitions[None, :, None]
    return edge + last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per timing cell")
    parser.add_argument(
        "--memory-gb",
        type=float,
        default=12.0,
        help="skip torch-struct where its estimated memory exceeds this",
    )
    parser.add_argument("--no-torch-struct", action="store_true")
    parser.add_argument(
        "--out", type=Path, help="also write the Markdown table here, a CSV and a PNG beside it"
    )
    args = parser.parse_args(argv)

    import torchcrf

    torch_struct = None
    if not args.no_torch_struct:
        try:
            import torch_struct
        except ImportError:
            print("torch-struct not installed: its columns are skipped", file=sys.stderr)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*arg_constraints.*")
    torch.manual_seed(0)
    device = args.device
    rows = []
    for name in args.shapes:
        row = measure(name, SHAPES[name], device, args, torchcrf, torch_struct)
        rows.append(row)
        print(
            f"{name} {row[1]}: "
            + ", ".join(f"{k} {v:.2f} ms" for k, v in row[2].items())
            + f"; |nll diff| {row[4]:.2e}, same paths {row[5]}",
            file=sys.stderr,
        )

    table = format_table(rows, device, args.threads)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
        write_csv(rows, args.out.with_suffix(".csv"))
        plot_ratios(rows, args.out.with_suffix(".png"), device)
    return 0


def measure(name, shape, device, args, torchcrf, torch_struct):
    """Time ours and the peers at one shape; returns a table row."""
    B, T, K = shape
    peer = torchcrf.CRF(K, batch_first=True).to(device)
    ours = CRF.from_pytorch_crf(peer).to(device)
    emissions = torch.randn(B, T, K, device=device, requires_grad=True)
    tags = torch.randint(K, (B, T), device=device)
    mask = torch.ones(B, T, dtype=torch.bool, device=device)

    def ours_nll():
        emissions.grad = None
        ours.nll(emissions, tags, reduction="sum").backward()

    def peer_nll():
        emissions.grad = None
        (-peer(emissions, tags, mask, reduction="sum")).backward()

    with torch.no_grad():
        check = abs(
            ours.nll(emissions, tags, reduction="sum").item()
            + peer(emissions, tags, mask, reduction="sum").item()
        )
        same_paths = torch.equal(
            ours.decode(emissions)[0].cpu(), torch.tensor(peer.decode(emissions, mask))
        )
    timings = {
        "ours_nll": median_ms(ours_nll, device, args.budget),
        "peer_nll": median_ms(peer_nll, device, args.budget),
    }
    with torch.no_grad():
        timings["ours_vit"] = median_ms(lambda: ours.decode(emissions), device, args.budget)
        timings["peer_vit"] = median_ms(lambda: peer.decode(emissions, mask), device, args.budget)

    note = ""
    estimate_gb = 125 * B * T * K * K * 4 / 1e9  # measured: ~8 GB at (64, 100, 50)
    if torch_struct is not None and estimate_gb <= args.memory_gb:
        lengths = torch.full((B,), T, device=device)
        parts = torch_struct.LinearChainCRF.struct.to_parts(tags, K, lengths=lengths)

        def distribution():
            potentials = torch_struct_potentials(emissions, ours)
            return torch_struct.LinearChainCRF(potentials, lengths=lengths)

        def ts_nll():
            emissions.grad = None
            (-distribution().log_prob(parts).sum()).backward()

        timings["ts_nll"] = median_ms(ts_nll, device, args.budget, min_reps=1)
        with torch.no_grad():
            timings["ts_vit"] = median_ms(
                lambda: distribution().argmax, device, args.budget, min_reps=1
            )
    elif torch_struct is not None:
        note = f"skipped (~{estimate_gb:.0f} GB)"
    return name, shape, timings, note, check, same_paths


def write_csv(rows, path: Path) -> None:
    keys = ["ours_nll", "peer_nll", "ts_nll", "ours_vit", "peer_vit", "ts_vit"]
    lines = ["shape,B,T,K," + ",".join(f"{k}_ms" for k in keys)]
    for name, (B, T, K), timings, *_ in rows:
        cells = [f"{timings[k]:.4f}" if k in timings else "" for k in keys]
        lines.append(f"{name},{B},{T},{K}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def plot_ratios(rows, path: Path, device: str) -> None:
    """Bar chart of the speed-up over each peer (log scale), per shape and work."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (work, suffix) in zip(axes, (("NLL fwd+bwd", "nll"), ("Viterbi", "vit")), strict=True):
        names = [r[0] for r in rows]
        for offset, (peer, label) in enumerate((("peer", "pytorch-crf"), ("ts", "torch-struct"))):
            ratios = [
                r[2].get(f"{peer}_{suffix}", float("nan")) / r[2][f"ours_{suffix}"] for r in rows
            ]
            xs = [i + 0.4 * offset for i in range(len(rows))]
            ax.bar(xs, ratios, width=0.4, label=f"vs {label}")
        target = 10 if suffix == "nll" else 5
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target}x")
        ax.set_xticks([i + 0.2 for i in range(len(rows))], names)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1)
        ax.set_title(f"{work} ({device})")
    axes[0].set_ylabel("speed-up of hybrid (peer time / ours)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(rows, device: str, threads: int) -> str:
    def cell(timings, key, note=""):
        return f"{timings[key]:.2f}" if key in timings else (note or "n/a")

    def ratio(timings, key, ours):
        return f"{timings[key] / timings[ours]:.1f}x" if key in timings else "-"

    lines = [
        f"Device: {device}, torch {torch.__version__}, {threads} threads, float32, "
        "median ms (lower is better); ratio = peer time / ours.",
        "",
        "| work | shape (B,T,K) | hybrid | pytorch-crf | ratio | torch-struct | ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for work, suffix in (("NLL fwd+bwd", "nll"), ("Viterbi", "vit")):
        for name, shape, timings, note, _, _ in rows:
            ours = f"ours_{suffix}"
            lines.append(
                f"| {work} | {name} {shape} | {timings[ours]:.2f} | "
                f"{cell(timings, f'peer_{suffix}')} | {ratio(timings, f'peer_{suffix}', ours)} | "
                f"{cell(timings, f'ts_{suffix}', note)} | {ratio(timings, f'ts_{suffix}', ours)} |"
            )
    worst = max(r[4] for r in rows)
    lines.append("")
    lines.append(
        f"Agreement with pytorch-crf: max |NLL difference| {worst:.1e} (sum over the batch); "
        f"identical Viterbi paths at {sum(r[5] for r in rows)}/{len(rows)} shapes."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
