"""Fuzz of every public decoder over memory layouts and dtypes, fused kernels and eager engine.

Each case hands a decoder its tensors in random layouts (strided along a random dim, an
offset window, transposed, expanded with stride 0; ``lengths`` also as int32 or a boolean
mask) and dtypes (float32, float64, and float16/bfloat16 scores, which the API promotes).
Oracles: the same decoder on contiguous float64 copies of the same values (scores within
the tolerance of the computing dtype; paths exactly, inputs being from ``randn`` so ties
have probability zero), and on contiguous copies in the caller's dtype (paths exactly, also
for float16/bfloat16 inputs, whose rounding can make two paths tie).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from test_native_safety import expanded, strided, transposed, window
from torch import Tensor, nn

from hybrid import CRF
from hybrid.ctc import forced_align, greedy_decode, prefix_beam_search
from hybrid.structured import Graph, graph_viterbi, kbest, log_partition, marginals, native, viterbi

CASES = 30  # per family of decoders and engine
SCORE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
PARAM_DTYPES = (torch.float32, torch.float64)

Inputs = dict[str, Tensor | None]
Decoder = Callable[[Inputs], tuple[Tensor, ...]]


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: waking the kernels' sleeping OpenMP threads costs milliseconds a call on a
    busy machine, which would dominate hundreds of tiny calls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pick(g: torch.Generator, options):
    return options[int(torch.randint(len(options), (1,), generator=g))]


def _size(g: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (1,), generator=g))


def random_layout(g: torch.Generator, x: Tensor, expand: bool = True) -> Tensor:
    """``x`` as given, strided along a random dim, in a window, transposed (2-D and up) or,
    with ``expand``, its first entry along dim 0 repeated with stride 0 (other values)."""
    layouts = [lambda: x, lambda: strided(x, _size(g, 0, x.dim() - 1)), lambda: window(x)]
    if x.dim() >= 2:
        layouts.append(lambda: transposed(x))
    if expand:
        layouts.append(lambda: expanded(x))
    return _pick(g, layouts)()


def random_lengths(g: torch.Generator, batch: int, steps: int, shortest: int = 1) -> Tensor | None:
    """``None``, int64 or int32 lengths in ``[shortest, steps]``, or a prefix mask, laid out
    at random."""
    lengths = torch.randint(shortest, steps + 1, (batch,), generator=g)
    form = _pick(g, ["none", "int64", "int32", "mask"])
    if form == "none":
        return None
    if form == "mask":
        return random_layout(g, torch.arange(steps)[None, :] < lengths[:, None])
    return random_layout(g, lengths.to(getattr(torch, form)))


def _randn(g: torch.Generator, *shape: int, dtype: torch.dtype) -> Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


# ---------------------------------------------------------------------------------------------
# cases: (decoder name, decoder, inputs in random layouts)
# ---------------------------------------------------------------------------------------------


def _crf_decode(x: Inputs) -> tuple[Tensor, ...]:
    """`CRF.decode` of a CRF whose parameters are the inputs' potentials."""
    crf = CRF(x["transitions"].shape[0])
    crf.transitions = nn.Parameter(x["transitions"])
    crf.start_transitions = nn.Parameter(x["start"])
    crf.end_transitions = nn.Parameter(x["end"])
    return crf.decode(x["emissions"], x["lengths"])


CHAIN_DECODERS: dict[str, Decoder] = {
    "viterbi": lambda x: viterbi(**x),
    "kbest": lambda x: kbest(**x, k=3),
    "marginals": lambda x: (marginals(**x),),
    "log_partition": lambda x: (log_partition(**x),),
    "CRF.decode": _crf_decode,
}


def chain_cases(g: torch.Generator) -> Iterator[tuple[str, Decoder, Inputs]]:
    batch, steps, tags = _size(g, 1, 4), _size(g, 1, 6), _size(g, 2, 4)
    dtype = _pick(g, PARAM_DTYPES)
    inputs = {
        "emissions": _randn(g, batch, steps, tags, dtype=_pick(g, SCORE_DTYPES)),
        "transitions": _randn(g, tags, tags, dtype=dtype),
        "start": _randn(g, tags, dtype=dtype),
        "end": _randn(g, tags, dtype=dtype),
    }
    inputs = {name: random_layout(g, x) for name, x in inputs.items()}
    inputs["lengths"] = random_lengths(g, batch, steps)
    for name, decoder in CHAIN_DECODERS.items():
        yield name, decoder, inputs


def _complete_graph(x: Inputs) -> Graph:
    """The graph with an arc between every ordered pair of states (a path of every length)."""
    states = x["start"].shape[0]
    pairs = torch.cartesian_prod(torch.arange(states), torch.arange(states))
    return Graph.build(
        pairs[:, 0],
        pairs[:, 1],
        x["emission"],
        x["start"],
        x["final"],
        x["weight"],
        x["label"],
        num_emissions=x["scores"].shape[-1],
    )


GRAPH_DECODERS: dict[str, Decoder] = {
    "graph_viterbi": lambda x: graph_viterbi(x["scores"], _complete_graph(x), x["lengths"]),
    "graph_viterbi beam": lambda x: graph_viterbi(
        x["scores"], _complete_graph(x), x["lengths"], beam=2.0
    ),
}


def graph_cases(g: torch.Generator) -> Iterator[tuple[str, Decoder, Inputs]]:
    batch, steps, states, columns = _size(g, 1, 4), _size(g, 1, 6), _size(g, 2, 3), 4
    arcs = states * states
    dtype = _pick(g, PARAM_DTYPES)
    # Expanded weights or state weights would make arcs equal, and so paths tie.
    inputs = {
        "scores": random_layout(g, _randn(g, batch, steps, columns, dtype=_pick(g, SCORE_DTYPES))),
        "emission": random_layout(g, torch.randint(0, columns, (arcs,), generator=g), False),
        "label": random_layout(g, torch.randint(-1, 3, (arcs,), generator=g), False),
        "weight": random_layout(g, _randn(g, arcs, dtype=dtype), False),
        "start": random_layout(g, _randn(g, states, dtype=dtype), False),
        "final": random_layout(g, _randn(g, states, dtype=dtype), False),
    }
    inputs["lengths"] = random_lengths(g, batch, steps)
    for name, decoder in GRAPH_DECODERS.items():
        yield name, decoder, inputs


CTC_DECODERS: dict[str, Decoder] = {
    "greedy_decode": lambda x: greedy_decode(x["log_probs"], x["lengths"]),
    "forced_align": lambda x: forced_align(**x),
    "prefix_beam_search": lambda x: prefix_beam_search(x["log_probs"], x["lengths"], beam=3),
}


def ctc_cases(g: torch.Generator) -> Iterator[tuple[str, Decoder, Inputs]]:
    batch, steps, vocab = _size(g, 1, 4), _size(g, 2, 6), _size(g, 3, 5)
    log_probs = _randn(g, batch, steps, vocab, dtype=torch.float64).log_softmax(-1)
    lengths = random_lengths(g, batch, steps, shortest=2)
    shortest = steps if lengths is None else int(_as_lengths(lengths).min())
    # Targets of at most half the frames fit any lengths, repeats included; every entry is a
    # symbol, so any row (an expanded one too) is valid up to any target length.
    width = _size(g, 1, 3)
    inputs = {
        "log_probs": random_layout(g, log_probs.to(_pick(g, SCORE_DTYPES))),
        "targets": random_layout(g, torch.randint(1, vocab, (batch, width), generator=g)),
        "lengths": lengths,
        "target_lengths": random_layout(
            g, torch.randint(0, min(width, shortest // 2) + 1, (batch,), generator=g)
        ),
    }
    for name, decoder in CTC_DECODERS.items():
        yield name, decoder, inputs


def _as_lengths(lengths: Tensor) -> Tensor:
    return lengths.sum(1) if lengths.dtype == torch.bool else lengths


# ---------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------


def _contiguous(x: Inputs, dtype: torch.dtype | None = None) -> Inputs:
    """Contiguous copies of the inputs, floating ones in ``dtype`` (``None``: as they are)."""
    return {
        name: None
        if t is None
        else t.contiguous().to(dtype if dtype and t.is_floating_point() else t.dtype)
        for name, t in x.items()
    }


def check(name: str, decoder: Decoder, inputs: Inputs) -> None:
    """The decoder on ``inputs`` equals it on contiguous copies (exactly, in the same dtypes)
    and on contiguous float64 copies (paths exactly for generic inputs, scores within the
    tolerance of the computing dtype)."""
    floats = [x.dtype for x in inputs.values() if x is not None and x.is_floating_point()]
    generic = all(dtype in PARAM_DTYPES for dtype in floats)
    tol = 1e-9 if all(dtype == torch.float64 for dtype in floats) else 1e-4
    got = decoder(inputs)
    same = decoder(_contiguous(inputs))
    wide = decoder(_contiguous(inputs, torch.float64))
    for field, a, b, c in zip(range(len(got)), got, same, wide, strict=True):
        what = f"{name} output {field} with {_describe(inputs)}"
        if a.is_floating_point():
            torch.testing.assert_close(a.double(), c, rtol=tol, atol=tol, msg=what)
        else:
            assert torch.equal(a, b), what
            assert not generic or torch.equal(a, c), what


def _describe(inputs: Inputs) -> str:
    return ", ".join(
        f"{name} {None if x is None else (x.dtype, tuple(x.shape), x.stride())}"
        for name, x in inputs.items()
    )


@pytest.mark.parametrize("engine", ["native", "eager"])
@pytest.mark.parametrize(
    ("family", "seed"),
    [(chain_cases, 0), (graph_cases, 1), (ctc_cases, 2)],
    ids=["chain", "graph", "ctc"],
)
def test_every_layout_and_dtype_decodes_like_contiguous_float64(family, seed, engine):
    if engine == "native" and not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    g = torch.Generator().manual_seed(seed)
    for _ in range(CASES):
        for name, decoder, inputs in family(g):
            if engine == "eager":
                with native.disabled():
                    check(name, decoder, inputs)
            else:
                check(name, decoder, inputs)
