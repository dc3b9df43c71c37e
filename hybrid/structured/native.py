"""Fused CPU kernels for the chain and graph engines and prefix search, compiled on first use.

``chain_kernels.cpp``, ``graph_kernels.cpp`` and ``ctc_kernels.cpp`` (plain C ABI, no
Python or torch headers) are
compiled once per machine with the system C++ compiler into one library in ``$HYBRID_CACHE``
(default ``~/.cache/hybrid``), written atomically, and loaded with `ctypes`. They run the
dynamic program of each sequence in one fused loop, sequences in parallel (OpenMP), which
removes the per-step dispatch cost of eager PyTorch that dominates small shapes.

Where the kernels cannot be used (CUDA tensors, no compiler, ``HYBRID_NATIVE=0``), the eager
engines of `hybrid.structured.forward_backward`, `hybrid.structured.decode` and
`hybrid.structured.graph` (and the tensorized prefix search of `hybrid.ctc.beam`) run
instead; both paths are tested against the same oracles.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

SOURCES = [
    Path(__file__).with_name(name)
    for name in ("chain_kernels.cpp", "graph_kernels.cpp", "ctc_kernels.cpp")
]
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC"]
_state = {"enabled": os.environ.get("HYBRID_NATIVE", "1") != "0"}


def _cache_dir() -> Path:
    root = os.environ.get("HYBRID_CACHE") or Path.home() / ".cache" / "hybrid"
    return Path(root) / "native"


def _cpu_signature() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))), "")
    except OSError:
        model = ""
    return f"{platform.machine()} {model}"


def _compile(target: Path) -> None:
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX)")
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for openmp in (["-fopenmp"], []):
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".so", delete=False) as tmp:
            partial = Path(tmp.name)
        command = [compiler, *_FLAGS, *openmp, *map(str, SOURCES), "-o", str(partial)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            os.replace(partial, target)  # atomic: concurrent builders never see a partial file
            return
        partial.unlink(missing_ok=True)
        errors.append(result.stderr.strip())
    raise RuntimeError("compiling the native kernels failed:\n" + "\n".join(errors))


def _load_passive(target: Path) -> ctypes.CDLL:
    """Load the kernels with an OpenMP runtime whose idle threads sleep instead of spinning.

    The kernels' OpenMP runtime is not torch's; with spinning idle threads the two runtimes
    (and any other process) fight over the cores between calls, which slows training by an
    order of magnitude on a busy machine. The runtime reads the policy once, when it loads.
    """
    previous = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        return ctypes.CDLL(str(target))
    finally:
        if previous is None:
            del os.environ["OMP_WAIT_POLICY"]
        else:
            os.environ["OMP_WAIT_POLICY"] = previous


@cache
def _library() -> ctypes.CDLL | None:
    sources = b"".join(source.read_bytes() for source in SOURCES)
    key = hashlib.sha256(
        sources + " ".join(_FLAGS).encode() + _cpu_signature().encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"kernels-{key}.so"
    try:
        if not target.exists():
            _compile(target)
        lib = _load_passive(target)
    except (OSError, RuntimeError) as error:
        warnings.warn(
            f"hybrid: fused CPU kernels unavailable, using the eager engine ({error})",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    for suffix in ("f32", "f64"):
        for name in ("forward_backward", "viterbi", "graph_viterbi", "prefix_beam", "ctc_align"):
            getattr(lib, f"hybrid_{name}_{suffix}").restype = None
    return lib


def available(*tensors: Tensor) -> bool:
    """Whether the fused kernels can run on these tensors (CPU, float32/float64)."""
    if not _state["enabled"]:
        return False
    if any(
        t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64) for t in tensors
    ):
        return False
    return _library() is not None


@contextmanager
def disabled():
    """Context manager that forces the eager engines (used by tests to cover both paths)."""
    previous = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = previous


def _ptr(x: Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(x.data_ptr())


def _scalar(x: float, dtype: torch.dtype):
    return ctypes.c_float(x) if dtype == torch.float32 else ctypes.c_double(x)


def _suffix(dtype: torch.dtype) -> str:
    return "f32" if dtype == torch.float32 else "f64"


def _peak(x: Tensor) -> float:
    peak = float(x.max())
    return peak if peak > float("-inf") else 0.0


def forward_backward(
    emissions: Tensor,
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    lengths: Tensor,
    posteriors: bool,
    tags: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Scaled forward-backward of every sequence.

    Args:
        emissions: ``(B, T, K)`` CPU scores, zero past each length.
        transitions: ``(K, K)``, ``-inf`` where forbidden.
        start: ``(K,)``.
        end: ``(K,)``.
        lengths: ``(B,)``.
        posteriors: Also compute the marginals.
        tags: Optional gold paths ``(B, T)`` (valid tags everywhere): their scores are
            subtracted from ``log_z`` and their features from the marginals.

    Returns:
        ``log_z`` ``(B,)`` (minus the gold scores if given), ``ok`` ``(B,)`` bool (False:
        recompute that row in log space), and with ``posteriors``: ``unary`` ``(B, T, K)``
        and per-sequence summed pairwise marginals ``(B, K, K)`` (minus the gold features;
        zero for rows that are not ok); else ``None, None``.
    """
    lib = _library()
    batch, steps, num_tags = emissions.shape
    dtype = emissions.dtype
    emissions = emissions.detach().contiguous()
    trans_peak = _peak(transitions)
    trans_exp = torch.exp(transitions.detach() - trans_peak).contiguous()
    end_peak = _peak(end)
    end_exp = torch.exp(end.detach() - end_peak).contiguous()
    start = start.detach().contiguous()
    lengths = lengths.contiguous()
    if tags is not None:
        tags = tags.contiguous()
        transitions = transitions.detach().contiguous()
        end = end.detach().contiguous()
    log_z = torch.empty(batch, dtype=torch.float64)
    ok = torch.empty(batch, dtype=torch.uint8)
    unary = pair = None
    if posteriors:
        unary = emissions.new_zeros(batch, steps, num_tags)
        pair = emissions.new_zeros(batch, num_tags, num_tags)
    getattr(lib, f"hybrid_forward_backward_{_suffix(dtype)}")(
        _ptr(emissions),
        _ptr(lengths),
        ctypes.c_int64(batch),
        ctypes.c_int64(steps),
        ctypes.c_int64(num_tags),
        _ptr(trans_exp),
        _scalar(trans_peak, dtype),
        _ptr(start),
        _ptr(end_exp),
        _scalar(end_peak, dtype),
        _optional(tags),
        ctypes.c_void_p(None if tags is None else transitions.data_ptr()),
        ctypes.c_void_p(None if tags is None else end.data_ptr()),
        _ptr(log_z),
        _ptr(ok),
        _optional(unary),
        _optional(pair),
        ctypes.c_int(_threads(batch)),
    )
    return log_z.to(dtype), ok.bool(), unary, pair


def viterbi(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """Best paths ``(B, T)`` (-1 past each length) and their scores ``(B,)``."""
    lib = _library()
    batch, steps, num_tags = emissions.shape
    dtype = emissions.dtype
    emissions = emissions.detach().contiguous()
    paths = torch.full((batch, steps), -1, dtype=torch.long)
    scores = emissions.new_empty(batch)
    getattr(lib, f"hybrid_viterbi_{_suffix(dtype)}")(
        _ptr(emissions),
        _ptr(lengths.contiguous()),
        ctypes.c_int64(batch),
        ctypes.c_int64(steps),
        ctypes.c_int64(num_tags),
        _ptr(transitions.detach().contiguous()),
        _ptr(start.detach().contiguous()),
        _ptr(end.detach().contiguous()),
        _ptr(scores),
        _ptr(paths),
        ctypes.c_int(_threads(batch)),
    )
    return paths, scores


def graph_viterbi(scores: Tensor, lengths: Tensor, graph, beam: float) -> tuple[Tensor, Tensor]:
    """Token-passing Viterbi over a `hybrid.structured.Graph` (arcs sorted by source state).

    Returns:
        ``arcs`` ``(B, T)`` int64 (the arc taken at each frame, -1 past each length or where no
        path survives) and ``scores`` ``(B,)`` (``-inf`` where no path survives).
    """
    lib = _library()
    batch, steps, num_emissions = scores.shape
    dtype = scores.dtype
    # Bound to names so that no converted copy is freed before the call returns.
    scores = scores.detach().contiguous()
    weight, start, final = (
        x.detach().to(dtype).contiguous() for x in (graph.weight, graph.start, graph.final)
    )
    arcs = torch.full((batch, steps), -1, dtype=torch.long)
    best = scores.new_empty(batch)
    getattr(lib, f"hybrid_graph_viterbi_{_suffix(dtype)}")(
        _ptr(scores),
        _ptr(lengths.contiguous()),
        ctypes.c_int64(batch),
        ctypes.c_int64(steps),
        ctypes.c_int64(num_emissions),
        ctypes.c_int64(start.shape[0]),
        _ptr(graph.out_offsets),
        _ptr(graph.src),
        _ptr(graph.dst),
        _ptr(graph.emission),
        _ptr(weight),
        _ptr(start),
        _ptr(final),
        _ptr(graph.in_offsets),
        _ptr(graph.in_arcs),
        _scalar(beam, dtype),
        _ptr(best),
        _ptr(arcs),
        ctypes.c_int(_threads(batch)),
    )
    return arcs, best


def ctc_align(
    log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor, blank: int
) -> tuple[Tensor, Tensor]:
    """Best path through the CTC lattice of each target (`hybrid.ctc.forced_align`'s DP).

    Args:
        log_probs: ``(B, T, V)`` CPU float32/float64, validated.
        lengths: ``(B,)`` int64 in ``[1, T]``.
        targets: ``(B, S)`` int64 symbols (padding ignored past ``target_lengths``).
        target_lengths: ``(B,)`` int64, feasible for ``lengths``.

    Returns:
        ``states (B, T)`` int64 lattice states (``2 i + 1``: symbol ``i``; even: blank;
        ``-1`` past each length) and ``scores (B,)``.
    """
    lib = _library()
    batch, steps, vocab = log_probs.shape
    log_probs = log_probs.detach().contiguous()
    targets = targets.contiguous()
    states = torch.full((batch, steps), -1, dtype=torch.long)
    scores = log_probs.new_empty(batch)
    getattr(lib, f"hybrid_ctc_align_{_suffix(log_probs.dtype)}")(
        _ptr(log_probs),
        _ptr(lengths.contiguous()),
        *map(ctypes.c_int64, (batch, steps, vocab)),
        _ptr(targets),
        _ptr(target_lengths.contiguous()),
        ctypes.c_int64(targets.shape[1]),
        ctypes.c_int64(blank),
        _ptr(states),
        _ptr(scores),
        ctypes.c_int(_threads(batch)),
    )
    return states, scores


class PrefixLexicon(NamedTuple):
    """A trie the prefixes must spell: ``next (N, V)`` int64 (``-1``: forbidden), ``accepting
    (N,)`` bool (where a prefix may end); node 0 is the start."""

    next: Tensor
    accepting: Tensor


class PrefixLM(NamedTuple):
    """A back-off n-gram model fused into the prefix search (natural logs, float64 tables).

    ``unit`` 1 scores every appended symbol as ``symbol_tokens[symbol]``; ``unit`` 2 scores a
    word when ``delimiter`` (or the end) completes it, its symbols walking the trie
    ``word_next (M, V)`` whose nodes name words by ``node_words (M,)`` (``unk`` off the
    trie). Order ``n`` keys are the ids as base-``vocab`` digits, sorted, in rows
    ``offsets[n - 1]:offsets[n]`` of ``keys``, ``logp`` and ``backoff``.
    """

    unit: int
    order: int
    vocab: int
    bos: int
    eos: int
    unk: int
    offsets: Tensor
    keys: Tensor
    logp: Tensor
    backoff: Tensor
    symbol_tokens: Tensor | None
    word_next: Tensor | None
    node_words: Tensor | None
    delimiter: int


def prefix_beam_search(
    log_probs: Tensor,
    lengths: Tensor,
    beam: int,
    nbest: int,
    blank: int,
    prune: int | float | None,
    lexicon: PrefixLexicon | None,
    lm: PrefixLM | None,
    lm_weight: float,
    insertion_bonus: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Prefix beam search with a blank symbol (the semantics of `hybrid.ctc.prefix_beam_search`).

    Args:
        log_probs: ``(B, T, V)`` CPU float32/float64, validated.
        lengths: ``(B,)`` int64 in ``[1, T]``.
        prune: ``None``, top-k ``int`` or log-probability threshold ``float``.

    Returns:
        ``labels (B, N, T)`` int64 (-1 padded), ``label_lengths (B, N)``, total ``scores``
        and ``acoustic`` log-probabilities ``(B, N)`` (``-inf`` for missing hypotheses).
    """
    lib = _library()
    batch, steps, vocab = log_probs.shape
    dtype = log_probs.dtype
    log_probs = log_probs.detach().contiguous()
    labels = torch.full((batch, nbest, steps), -1, dtype=torch.long)
    label_lengths = torch.zeros((batch, nbest), dtype=torch.long)
    scores = log_probs.new_empty(batch, nbest)
    acoustic = log_probs.new_empty(batch, nbest)
    top = prune if isinstance(prune, int) else 0
    threshold = prune if isinstance(prune, float) else float("-inf")
    if lexicon is not None:
        lexicon = PrefixLexicon(
            lexicon.next.contiguous(), lexicon.accepting.to(torch.uint8).contiguous()
        )
    if lm is None:
        lm = PrefixLM(0, 1, 1, 0, 0, 0, *(None,) * 7, -1)
    lm = lm._replace(**{f: _contiguous(getattr(lm, f)) for f in lm._fields[6:13]})
    getattr(lib, f"hybrid_prefix_beam_{_suffix(dtype)}")(
        _ptr(log_probs),
        _ptr(lengths.contiguous()),
        *map(ctypes.c_int64, (batch, steps, vocab, blank, beam, nbest, top)),
        _scalar(threshold, dtype),
        *map(_optional, lexicon or (None, None)),
        *map(ctypes.c_int64, lm[:6]),
        ctypes.c_double(lm_weight),
        ctypes.c_double(insertion_bonus),
        *map(_optional, lm[6:13]),
        ctypes.c_int64(lm.delimiter),
        _ptr(labels),
        _ptr(label_lengths),
        _ptr(scores),
        _ptr(acoustic),
        ctypes.c_int(_threads(batch)),
    )
    return labels, label_lengths, scores, acoustic


def _contiguous(x: Tensor | None) -> Tensor | None:
    return None if x is None else x.contiguous()


def _optional(x: Tensor | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(None if x is None else x.data_ptr())


def _threads(batch: int) -> int:
    return max(1, min(torch.get_num_threads(), batch))
