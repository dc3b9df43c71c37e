"""Fused CPU kernels for the chain, graph and tree engines and prefix search, built at install.

``chain_kernels.cpp``, ``graph_kernels.cpp``, ``ctc_kernels.cpp`` and ``tree_kernels.cpp``
(plain C ABI, no Python or torch headers) are compiled into one shared library beside them
when the package is built or installed (``setup.py``; `hybrid.structured._build` holds the
sources, flags and name), and loaded here with `ctypes`. They run the dynamic program of each
sequence in one fused loop, sequences in parallel (OpenMP), which removes the per-step
dispatch cost of eager PyTorch that dominates small shapes.

The C boundary is declared once, in `_KERNELS` (every exported function's parameters, as in
the sources): loading sets the ctypes signatures from it and refuses a library that lacks a
symbol, has another ABI version, or was built from other sources than those beside it (the
digest compiled into it, `hybrid.structured._build.digest`); every call goes through
`_call`, which checks each buffer
(contiguous, CPU, the parameter's dtype) and keeps it referenced until the kernel returns.
The wrappers below make their inputs contiguous and of the right dtype first.

Where the kernels cannot be used (CUDA tensors, no library because the install had no
compiler, a refused library, ``HYBRID_NATIVE=0``), the eager engines of
`hybrid.structured.forward_backward`, `hybrid.structured.decode`, `hybrid.structured.graph`
and `hybrid.structured.tree` (and the tensorized prefix search of `hybrid.ctc.beam`) run
instead, after a one-line `RuntimeWarning`; both paths are tested against the same oracles.
"""

from __future__ import annotations

import ctypes
import os
import re
import sysconfig
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from . import _build

SOURCES = _build.SOURCES
_state = {"enabled": os.environ.get("HYBRID_NATIVE", "1") != "0"}
_REBUILD = "reinstall the package where a C++ compiler is found (pip install -e .)"


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


class _Signature(NamedTuple):
    """One exported function of the kernels, as declared in its ``extern "C"`` block.

    Attributes:
        params: ``(C type, name)`` of each parameter, in order; ``F`` stands for the float
            type of a ``typed`` function (``float`` in its ``_f32`` variant, ``double`` in
            its ``_f64`` one).
        nullable: The pointer parameters that may be NULL (Python ``None``).
        restype: The C return type.
        typed: Whether the function comes in ``_f32`` and ``_f64`` variants.
    """

    params: tuple[tuple[str, str], ...]
    nullable: frozenset[str] = frozenset()
    restype: str = "void"
    typed: bool = True


def _signature(prototype: str, nullable: tuple[str, ...] = (), **kwargs) -> _Signature:
    """A `_Signature` from a C parameter list such as ``"const F* x, int64_t n"``."""
    params = tuple(tuple(p.strip().rsplit(" ", 1)) for p in prototype.split(",") if p.strip())
    return _Signature(params, frozenset(nullable), **kwargs)


# Every function the library exports, exactly as in the sources (tests compare the two).
# `_library` declares the ctypes signatures from this table and refuses a library that lacks
# one of them; `_call` checks every argument against it.
_KERNELS: dict[str, _Signature] = {
    "abi_version": _signature("", restype="int", typed=False),
    "sources_digest": _signature("", restype="int64_t", typed=False),
    "forward_backward": _signature(
        "const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps, int64_t tags,"
        "const F* trans_exp, F trans_peak, const F* start, const F* end_exp, F end_peak,"
        "const int64_t* gold_tags, const F* transitions, const F* end, double* log_z,"
        "uint8_t* ok, F* unary, F* pair, int threads",
        nullable=("gold_tags", "transitions", "end", "unary", "pair"),
    ),
    "viterbi": _signature(
        "const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps, int64_t tags,"
        "const F* transitions, const F* start, const F* end, F* score, int64_t* path,"
        "int threads"
    ),
    "graph_viterbi": _signature(
        "const F* scores, const int64_t* lengths, int64_t batch, int64_t steps,"
        "int64_t num_emissions, int64_t num_states, const int64_t* out_offsets,"
        "const int64_t* src, const int64_t* dst, const int64_t* emission, const F* weight,"
        "const F* start, const F* final, const int64_t* in_offsets, const int64_t* in_arcs,"
        "F beam, F* score, int64_t* arcs_out, int threads"
    ),
    "prefix_beam": _signature(
        "const F* log_probs, const int64_t* lengths, int64_t batch, int64_t steps,"
        "int64_t vocab, int64_t blank, int64_t beam, int64_t nbest, int64_t prune_top,"
        "F prune_threshold, const int64_t* lexicon_next, const uint8_t* lexicon_accepting,"
        "int64_t unit, int64_t order, int64_t lm_vocab, int64_t bos, int64_t eos, int64_t unk,"
        "double weight, double bonus, const int64_t* offsets, const int64_t* keys,"
        "const double* logp, const double* backoff, const int64_t* symbol_tokens,"
        "const int64_t* word_next, const int64_t* node_words, int64_t delimiter,"
        "int64_t* labels, int64_t* label_lengths, F* scores, F* acoustic, int threads",
        nullable=(
            "lexicon_next",
            "lexicon_accepting",
            "offsets",
            "keys",
            "logp",
            "backoff",
            "symbol_tokens",
            "word_next",
            "node_words",
        ),
    ),
    "ctc_align": _signature(
        "const F* log_probs, const int64_t* lengths, int64_t batch, int64_t steps,"
        "int64_t vocab, const int64_t* targets, const int64_t* target_lengths, int64_t width,"
        "int64_t blank, int64_t* states, F* scores, int threads"
    ),
    "tree_inside": _signature(
        "const F* scores, const int64_t* lengths, int64_t batch, int64_t size, int64_t labels,"
        "F* span, F* inside, F* shift, F* mass, F* log_z, F* extremes, int threads"
    ),
    "tree_outside": _signature(
        "const F* scores, const int64_t* lengths, int64_t batch, int64_t size, int64_t labels,"
        "const F* span, const F* inside, const F* shift, const F* mass, const F* weight,"
        "F* marginals, int threads"
    ),
    "tree_cky": _signature(
        "const F* scores, const int64_t* lengths, int64_t batch, int64_t size, int64_t labels,"
        "F* score, int64_t* spans, F* extremes, int threads"
    ),
}
_ABI_VERSION = 5  # what ``hybrid_abi_version()`` of these sources returns

_C_SCALARS = {
    "int": ctypes.c_int,
    "int64_t": ctypes.c_int64,
    "uint8_t": ctypes.c_uint8,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "void": None,
}
_ELEMENT_DTYPES = {
    "int64_t": torch.int64,
    "uint8_t": torch.uint8,
    "float": torch.float32,
    "double": torch.float64,
}
_FLOAT_TYPES = {"f32": "float", "f64": "double"}
_SUFFIXES = {torch.float32: "f32", torch.float64: "f64"}


class _Param(NamedTuple):
    """A parameter resolved for one variant: ``c_type`` as C spells it (``F`` replaced),
    ``ctype`` its ctypes type, ``dtype`` the element type of a buffer (``None``: a scalar)."""

    name: str
    c_type: str
    ctype: type
    dtype: torch.dtype | None
    nullable: bool


def _symbols(stem: str) -> list[tuple[str, str | None]]:
    """``(symbol, float type)`` of each variant of ``_KERNELS[stem]``."""
    if not _KERNELS[stem].typed:
        return [(f"hybrid_{stem}", None)]
    return [(f"hybrid_{stem}_{suffix}", c) for suffix, c in _FLOAT_TYPES.items()]


@cache
def _params(stem: str, float_type: str | None) -> tuple[_Param, ...]:
    """The parameters of ``_KERNELS[stem]`` with ``F`` replaced by ``float_type``."""
    signature = _KERNELS[stem]
    params = []
    for c_type, name in signature.params:
        c_type = re.sub(r"\bF\b", float_type or "F", c_type)
        base = c_type.removeprefix("const ").rstrip("*")
        if c_type.endswith("*"):
            ctype, dtype = ctypes.POINTER(_C_SCALARS[base]), _ELEMENT_DTYPES[base]
        else:
            ctype, dtype = _C_SCALARS[base], None
        params.append(_Param(name, c_type, ctype, dtype, name in signature.nullable))
    return tuple(params)


def _declare(lib: ctypes.CDLL, path: Path) -> None:
    """Set ``argtypes`` and ``restype`` of every function in `_KERNELS` and check the ABI.

    Raises:
        RuntimeError: ``path`` lacks one of the symbols (it is some other library) or was
            built from other sources.
    """
    for stem, signature in _KERNELS.items():
        for symbol, float_type in _symbols(stem):
            try:
                function = getattr(lib, symbol)
            except AttributeError:
                raise RuntimeError(
                    f"{path} is not a build of the hybrid kernels: it has no symbol {symbol}; "
                    + _REBUILD
                ) from None
            function.argtypes = [p.ctype for p in _params(stem, float_type)]
            function.restype = _C_SCALARS[signature.restype]
    version = lib.hybrid_abi_version()
    if version != _ABI_VERSION:
        raise RuntimeError(
            f"{path} has kernel ABI version {version}, expected {_ABI_VERSION}; " + _REBUILD
        )


def _library_path() -> Path:
    """Where the build put the kernels: beside their sources."""
    name = _build.LIBRARY.rsplit(".", 1)[1] + sysconfig.get_config_var("EXT_SUFFIX")
    return _build.HERE / name


def _check_sources(lib: ctypes.CDLL, path: Path) -> None:
    """Refuse a library built from other sources than those beside it.

    Raises:
        RuntimeError: its ``hybrid_sources_digest()`` is not the sources' `_build.digest`.
    """
    if lib.hybrid_sources_digest() != _build.digest():
        raise RuntimeError(
            f"{path} was built from other sources than those beside it (they changed since "
            f"the install); {_REBUILD}"
        )


@cache
def _library() -> ctypes.CDLL | None:
    target = _library_path()
    try:
        if not target.exists():
            raise RuntimeError(
                f"they were not built when the package was installed (no {target.name}); "
                + _REBUILD
            )
        lib = _load_passive(target)
        _declare(lib, target)
        _check_sources(lib, target)
    except (OSError, RuntimeError) as error:
        warnings.warn(
            f"hybrid: fused CPU kernels unavailable, using the eager engine ({error})",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
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


def _call(stem: str, dtype: torch.dtype, **arguments) -> None:
    """Run kernel ``hybrid_{stem}_{f32|f64}`` on ``arguments``, named as its C parameters.

    The one place where tensors become C arguments. Each buffer must already be a contiguous
    CPU tensor of its parameter's element type (the wrappers below convert); ``arguments``
    holds every one of them until the kernel returns, so no pointer outlives its tensor.

    Raises:
        ValueError: A missing or unknown argument, or an argument the C parameter cannot
            take (a wrong dtype, device or layout, ``None`` for a required pointer, a
            number out of the C type's range), named in the message.
    """
    suffix = _SUFFIXES.get(dtype)
    if suffix is None:
        raise ValueError(f"dtype: expected float32 or float64 for hybrid_{stem}, got {dtype}")
    symbol = f"hybrid_{stem}_{suffix}"
    params = _params(stem, _FLOAT_TYPES[suffix])
    if arguments.keys() != {p.name for p in params}:
        names = [p.name for p in params]
        raise ValueError(f"{symbol}: expected the arguments {names}, got {list(arguments)}")
    lib = _library()
    if lib is None:
        raise RuntimeError("hybrid: the fused CPU kernels are unavailable (see `available`)")
    getattr(lib, symbol)(*(_c_argument(p, arguments[p.name], symbol) for p in params))


def _c_argument(param: _Param, value, symbol: str):
    """``value`` as the C argument ``param`` of ``symbol``; ValueError if it cannot be one."""
    if param.dtype is None:
        return _c_scalar(param, value, symbol)
    if value is None and param.nullable:
        return None
    if (
        not isinstance(value, Tensor)
        or not value.is_cpu
        or value.dtype != param.dtype
        or not value.is_contiguous()
    ):
        raise ValueError(
            f"{param.name}: expected a contiguous CPU {param.dtype} tensor for the "
            f"{param.c_type} of {symbol}, got {_describe(value)}"
        )
    return ctypes.cast(value.data_ptr(), param.ctype)


def _c_scalar(param: _Param, value, symbol: str):
    """A Python number checked to fit the C scalar type of ``param`` (ctypes would wrap it)."""
    if param.c_type in ("float", "double"):
        fits = isinstance(value, int | float)
    else:
        fits = isinstance(value, int) and param.ctype(value).value == value
    if isinstance(value, bool) or not fits:
        raise ValueError(
            f"{param.name}: expected a number that fits the {param.c_type} of {symbol}, "
            f"got {value!r}"
        )
    return value


def _describe(value) -> str:
    if not isinstance(value, Tensor):
        return type(value).__name__
    layout = "contiguous" if value.is_contiguous() else f"strides {value.stride()}"
    return f"{value.device} {value.dtype} {tuple(value.shape)} with {layout}"


def _buffer(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x`` as a contiguous tensor of ``dtype``: itself if it is one, else a detached copy."""
    if x.dtype == dtype and x.is_contiguous():
        return x
    return x.detach().to(dtype).contiguous()


def _optional(x: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if x is None else _buffer(x, dtype)


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
    batch, steps, num_tags = emissions.shape
    dtype = emissions.dtype
    trans_peak, end_peak = _peak(transitions), _peak(end)
    gold = tags is not None
    log_z = torch.empty(batch, dtype=torch.float64)
    ok = torch.empty(batch, dtype=torch.uint8)
    unary = pair = None
    if posteriors:
        unary = torch.zeros(batch, steps, num_tags, dtype=dtype)
        pair = torch.zeros(batch, num_tags, num_tags, dtype=dtype)
    _call(
        "forward_backward",
        dtype,
        emissions=_buffer(emissions, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        steps=steps,
        tags=num_tags,
        trans_exp=_buffer(torch.exp(transitions.detach() - trans_peak), dtype),
        trans_peak=trans_peak,
        start=_buffer(start, dtype),
        end_exp=_buffer(torch.exp(end.detach() - end_peak), dtype),
        end_peak=end_peak,
        gold_tags=_optional(tags, torch.long),
        transitions=_buffer(transitions, dtype) if gold else None,
        end=_buffer(end, dtype) if gold else None,
        log_z=log_z,
        ok=ok,
        unary=unary,
        pair=pair,
        threads=_threads(batch),
    )
    return log_z.to(dtype), ok.bool(), unary, pair


def viterbi(
    emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor]:
    """Best paths ``(B, T)`` (-1 past each length) and their scores ``(B,)``."""
    batch, steps, num_tags = emissions.shape
    dtype = emissions.dtype
    paths = torch.full((batch, steps), -1, dtype=torch.long)
    scores = torch.empty(batch, dtype=dtype)
    _call(
        "viterbi",
        dtype,
        emissions=_buffer(emissions, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        steps=steps,
        tags=num_tags,
        transitions=_buffer(transitions, dtype),
        start=_buffer(start, dtype),
        end=_buffer(end, dtype),
        score=scores,
        path=paths,
        threads=_threads(batch),
    )
    return paths, scores


def graph_viterbi(scores: Tensor, lengths: Tensor, graph, beam: float) -> tuple[Tensor, Tensor]:
    """Token-passing Viterbi over a `hybrid.structured.Graph` (arcs sorted by source state).

    Returns:
        ``arcs`` ``(B, T)`` int64 (the arc taken at each frame, -1 past each length or where no
        path survives) and ``scores`` ``(B,)`` (``-inf`` where no path survives).
    """
    batch, steps, num_emissions = scores.shape
    dtype = scores.dtype
    arcs = torch.full((batch, steps), -1, dtype=torch.long)
    best = torch.empty(batch, dtype=dtype)
    _call(
        "graph_viterbi",
        dtype,
        scores=_buffer(scores, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        steps=steps,
        num_emissions=num_emissions,
        num_states=graph.start.shape[0],
        out_offsets=_buffer(graph.out_offsets, torch.long),
        src=_buffer(graph.src, torch.long),
        dst=_buffer(graph.dst, torch.long),
        emission=_buffer(graph.emission, torch.long),
        weight=_buffer(graph.weight, dtype),
        start=_buffer(graph.start, dtype),
        final=_buffer(graph.final, dtype),
        in_offsets=_buffer(graph.in_offsets, torch.long),
        in_arcs=_buffer(graph.in_arcs, torch.long),
        beam=beam,
        score=best,
        arcs_out=arcs,
        threads=_threads(batch),
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
    batch, steps, vocab = log_probs.shape
    dtype = log_probs.dtype
    states = torch.full((batch, steps), -1, dtype=torch.long)
    scores = torch.empty(batch, dtype=dtype)
    _call(
        "ctc_align",
        dtype,
        log_probs=_buffer(log_probs, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        steps=steps,
        vocab=vocab,
        targets=_buffer(targets, torch.long),
        target_lengths=_buffer(target_lengths, torch.long),
        width=targets.shape[1],
        blank=blank,
        states=states,
        scores=scores,
        threads=_threads(batch),
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
    batch, steps, vocab = log_probs.shape
    dtype = log_probs.dtype
    labels = torch.full((batch, nbest, steps), -1, dtype=torch.long)
    label_lengths = torch.zeros((batch, nbest), dtype=torch.long)
    scores = torch.empty(batch, nbest, dtype=dtype)
    acoustic = torch.empty(batch, nbest, dtype=dtype)
    if lexicon is None:
        lexicon = PrefixLexicon(None, None)
    if lm is None:
        lm = PrefixLM(0, 1, 1, 0, 0, 0, *(None,) * 7, -1)
    _call(
        "prefix_beam",
        dtype,
        log_probs=_buffer(log_probs, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        steps=steps,
        vocab=vocab,
        blank=blank,
        beam=beam,
        nbest=nbest,
        prune_top=prune if isinstance(prune, int) else 0,
        prune_threshold=prune if isinstance(prune, float) else float("-inf"),
        lexicon_next=_optional(lexicon.next, torch.long),
        lexicon_accepting=_optional(lexicon.accepting, torch.uint8),
        unit=lm.unit,
        order=lm.order,
        lm_vocab=lm.vocab,
        bos=lm.bos,
        eos=lm.eos,
        unk=lm.unk,
        weight=lm_weight,
        bonus=insertion_bonus,
        offsets=_optional(lm.offsets, torch.long),
        keys=_optional(lm.keys, torch.long),
        logp=_optional(lm.logp, torch.float64),
        backoff=_optional(lm.backoff, torch.float64),
        symbol_tokens=_optional(lm.symbol_tokens, torch.long),
        word_next=_optional(lm.word_next, torch.long),
        node_words=_optional(lm.node_words, torch.long),
        delimiter=lm.delimiter,
        labels=labels,
        label_lengths=label_lengths,
        scores=scores,
        acoustic=acoustic,
        threads=_threads(batch),
    )
    return labels, label_lengths, scores, acoustic


def tree_inside(
    scores: Tensor, lengths: Tensor, extremes: Tensor | None = None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Inside pass over binary trees of labelled spans (`hybrid.structured.tree`).

    Args:
        scores: ``(B, S, S, L)`` CPU float32/float64 span scores, ``S = N + 1``; only spans
            ``[i, j)`` with ``0 <= i < j <= lengths[b]`` are read.
        lengths: ``(B,)`` int64 in ``[1, N]``.
        extremes: Optional ``(B, 2)`` tensor of the scores' dtype that receives what the pass
            saw of each sequence's used scores, so that they need no check of their own:
            ``[b, 0]`` the lowest above ``-inf`` (``+inf`` if none; NaN if any is NaN) and
            ``[b, 1]`` the highest (``-inf`` if none). NaN or ``+inf`` there make the
            results meaningless.

    Returns:
        ``log_z (B,)`` and the state of `tree_outside`: four width-major ``(B, S, S)`` charts
        (entry ``[b, w, i]`` for span ``[i, i + w)``): ``span``, the log-sum-exp over labels;
        ``inside``, the inside scores; and over the splits' scores ``x`` of each span,
        ``shift = max x`` and ``mass = sum exp(x - shift)`` (``inside = span + shift +
        log(mass)`` for widths >= 2).
    """
    batch, size, _, labels = scores.shape
    dtype = scores.dtype
    log_z = torch.empty(batch, dtype=dtype)
    span, inside, shift, mass = (torch.empty(batch, size, size, dtype=dtype) for _ in range(4))
    _call(
        "tree_inside",
        dtype,
        scores=_buffer(scores, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        size=size,
        labels=labels,
        span=span,
        inside=inside,
        shift=shift,
        mass=mass,
        log_z=log_z,
        extremes=_extremes(extremes, batch, dtype),
        threads=_threads(batch),
    )
    return log_z, (span, inside, shift, mass)


def tree_outside(
    scores: Tensor, lengths: Tensor, state: tuple[Tensor, ...], weight: Tensor
) -> Tensor:
    """Outside pass: ``weight[b]`` times the labelled-span marginals ``(B, S, S, L)``.

    Args:
        scores, lengths: As given to `tree_inside`.
        state: The charts `tree_inside` returned for them.
        weight: ``(B,)`` factor of each sequence (the incoming gradient; ones for marginals).

    Returns:
        ``(B, S, S, L)``, zero outside the used spans.
    """
    batch, size, _, labels = scores.shape
    dtype = scores.dtype
    span, inside, shift, mass = (_buffer(x, dtype) for x in state)
    marginals = torch.empty(batch, size, size, labels, dtype=dtype)
    _call(
        "tree_outside",
        dtype,
        scores=_buffer(scores, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        size=size,
        labels=labels,
        span=span,
        inside=inside,
        shift=shift,
        mass=mass,
        weight=_buffer(weight, dtype),
        marginals=marginals,
        threads=_threads(batch),
    )
    return marginals


def tree_cky(
    scores: Tensor, lengths: Tensor, extremes: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Best binary tree of each sequence, as `tree_inside` reads its scores (and fills
    ``extremes`` as it does).

    Returns:
        ``spans (B, 2N - 1, 3)`` int64 rows ``[i, j, label]`` in preorder (``-1`` past each
        sequence's ``2 n - 1`` spans) and ``scores (B,)``.
    """
    batch, size, _, labels = scores.shape
    dtype = scores.dtype
    spans = torch.full((batch, 2 * size - 3, 3), -1, dtype=torch.long)
    best = torch.empty(batch, dtype=dtype)
    _call(
        "tree_cky",
        dtype,
        scores=_buffer(scores, dtype),
        lengths=_buffer(lengths, torch.long),
        batch=batch,
        size=size,
        labels=labels,
        score=best,
        spans=spans,
        extremes=_extremes(extremes, batch, dtype),
        threads=_threads(batch),
    )
    return spans, best


def _extremes(extremes: Tensor | None, batch: int, dtype: torch.dtype) -> Tensor:
    """The ``(B, 2)`` buffer a tree kernel writes the scores' extremes to: ``extremes`` (which
    must be one), or scratch."""
    return torch.empty(batch, 2, dtype=dtype) if extremes is None else extremes


def _threads(batch: int) -> int:
    return max(1, min(torch.get_num_threads(), batch))
