"""Memory safety of the fused kernels' ctypes boundary (`hybrid.structured.native`).

Oracles: the ``extern "C"`` declarations of the C++ sources (for the signature table and the
ctypes declarations), the same call on contiguous copies of the same values (for views:
non-contiguous, transposed, sliced and expanded), and the eager engine (for the fallback
and for the decoders through the public API).

The cases that crashed or exhausted memory before the fix run in a child process under an
address-space limit, so that a regression fails its test instead of killing pytest.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from test_ctc_lm import CHAR_SYMBOLS, CHAR_TABLES, WORD_SYMBOLS, WORD_TABLES
from test_graph import random_graph
from torch import Tensor

from hybrid import CRF
from hybrid.ctc import forced_align, prefix_beam_search
from hybrid.ctc.lexicon import Lexicon
from hybrid.ctc.lm import NGramLM, lm_scorer
from hybrid.structured import Graph, graph_viterbi, log_partition, marginals, native, viterbi

ROOT = Path(__file__).resolve().parents[1]
CHILD_MEMORY = 4 << 30  # address space a child may add to what its imports took

# ---------------------------------------------------------------------------------------------
# views: the same values in other memory layouts
# ---------------------------------------------------------------------------------------------


def _garbage(x: Tensor) -> float | int | bool:
    """A value that changes any result it leaks into (NaN, a huge index, True)."""
    if x.is_floating_point():
        return float("nan")
    return True if x.dtype == torch.bool else torch.iinfo(x.dtype).max


def strided(x: Tensor, dim: int = -1) -> Tensor:
    """``x`` as every other entry along ``dim`` of a buffer twice as long there."""
    shape = list(x.shape)
    shape[dim] *= 2
    buffer = torch.full(shape, _garbage(x), dtype=x.dtype)
    every_other = [slice(None)] * x.dim()
    every_other[dim] = slice(None, None, 2)
    buffer[tuple(every_other)] = x
    return buffer[tuple(every_other)]


def window(x: Tensor) -> Tensor:
    """``x`` as a window in the middle of the last dim of a wider buffer (an offset slice)."""
    buffer = torch.full((*x.shape[:-1], x.shape[-1] + 3), _garbage(x), dtype=x.dtype)
    buffer[..., 1:-2] = x
    return buffer[..., 1:-2]


def transposed(x: Tensor) -> Tensor:
    """``x`` (at least 2-D) stored with its first and last dims swapped."""
    return x.transpose(0, -1).contiguous().transpose(0, -1)


def expanded(x: Tensor) -> Tensor:
    """The first entry of ``x`` along dim 0 repeated with stride 0 (other values than ``x``)."""
    return x[:1].expand(x.shape)


def views(x: Tensor) -> dict[str, Tensor]:
    """Non-contiguous (and offset) views holding exactly the values of ``x``."""
    found = {"strided": strided(x), "window": window(x)}
    if x.dim() >= 2:
        found["transposed"] = transposed(x)
    return found


# ---------------------------------------------------------------------------------------------
# the signature table against the C++ sources
# ---------------------------------------------------------------------------------------------

# A definition of an exported function (only those are named hybrid_*), in or out of a macro.
_EXPORT = re.compile(r"\b(void|int|int64_t)\s+hybrid_(\w+?)(_##SUFFIX)?\s*\(([^)]*)\)\s*\{")


def _exported() -> dict[str, tuple[str, tuple[tuple[str, str], ...], bool]]:
    """``stem -> (return type, ((C type, name), ...), typed)`` of every exported function."""
    found = {}
    for source in native.SOURCES:
        text = source.read_text().replace("\\\n", " ")
        for restype, stem, typed, params in _EXPORT.findall(text):
            pairs = [re.sub(r"\s*\*\s*", "* ", " ".join(p.split())) for p in params.split(",")]
            parsed = tuple(tuple(p.rsplit(" ", 1)) for p in pairs if p)
            found[stem] = (restype, parsed, bool(typed))
    return found


def test_the_signature_table_is_the_c_sources():
    table = {
        stem: (signature.restype, signature.params, signature.typed)
        for stem, signature in native._KERNELS.items()
    }
    exported = _exported()
    assert set(exported) >= {"viterbi", "forward_backward", "prefix_beam", "abi_version"}
    assert table == exported
    sources = "".join(source.read_text() for source in native.SOURCES)
    version = re.search(r"hybrid_abi_version\(\)\s*\{\s*return (\d+);", sources)
    assert int(version.group(1)) == native._ABI_VERSION


_CTYPES = {"int": ctypes.c_int, "int64_t": ctypes.c_int64, "uint8_t": ctypes.c_uint8}


def _ctype(c_type: str, float_type: type) -> type:
    """The ctypes type of C type ``c_type`` (``F`` is ``float_type``)."""
    base = c_type.removeprefix("const ").rstrip("*")
    scalar = {"F": float_type, "double": ctypes.c_double, **_CTYPES}[base]
    return ctypes.POINTER(scalar) if c_type.endswith("*") else scalar


@pytest.mark.parametrize(
    ("suffix", "float_type"), [("f32", ctypes.c_float), ("f64", ctypes.c_double)]
)
def test_every_loaded_kernel_declares_its_c_signature(suffix, float_type):
    if not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    lib = native._library()
    for stem, (restype, params, typed) in _exported().items():
        function = getattr(lib, f"hybrid_{stem}_{suffix}" if typed else f"hybrid_{stem}")
        assert function.argtypes == [_ctype(c_type, float_type) for c_type, _ in params], stem
        assert function.restype == (None if restype == "void" else _CTYPES[restype]), stem


# ---------------------------------------------------------------------------------------------
# the boundary refuses what C cannot take
# ---------------------------------------------------------------------------------------------


def _viterbi_arguments() -> dict:
    """Valid arguments of ``hybrid_viterbi_f32``: 3 sequences, 5 steps, 4 tags."""
    return {
        "emissions": torch.randn(3, 5, 4),
        "lengths": torch.tensor([5, 2, 4]),
        "batch": 3,
        "steps": 5,
        "tags": 4,
        "transitions": torch.randn(4, 4),
        "start": torch.randn(4),
        "end": torch.randn(4),
        "score": torch.empty(3),
        "path": torch.full((3, 5), -1),
        "threads": 1,
    }


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("lengths", strided(torch.tensor([5, 2, 4])), "lengths: expected a contiguous CPU"),
        ("lengths", torch.tensor([5, 2, 4], dtype=torch.int32), "lengths: .*got cpu torch.int32"),
        ("transitions", torch.randn(4, 4).t(), r"transitions: .*strides \(1, 4\)"),
        ("emissions", torch.randn(3, 5, 4, dtype=torch.float64), "emissions: .*torch.float32"),
        ("start", torch.randn(4, device="meta"), "start: .*got meta"),
        ("end", None, "end: .*got NoneType"),
        ("path", torch.full((3, 5), -1).t().contiguous().t(), "path: expected a contiguous"),
        ("steps", 5.0, "steps: expected a number that fits the int64_t"),
        ("threads", 2**40, "threads: expected a number that fits the int of"),
        ("batch", True, "batch: expected a number"),
    ],
)
def test_the_boundary_refuses_buffers_c_cannot_take(name, value, match):
    if not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    arguments = _viterbi_arguments()
    arguments[name] = value
    with pytest.raises(ValueError, match=match):
        native._call("viterbi", torch.float32, **arguments)


@pytest.mark.parametrize("change", ["missing", "unknown", "dtype"])
def test_the_boundary_refuses_a_wrong_argument_list(change):
    if not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    arguments = _viterbi_arguments()
    dtype = torch.float32
    if change == "missing":
        del arguments["end"]
    elif change == "unknown":
        arguments["beam"] = 1.0
    else:
        dtype = torch.float16
    with pytest.raises(ValueError, match="hybrid_viterbi"):
        native._call("viterbi", dtype, **arguments)


# ---------------------------------------------------------------------------------------------
# views of every argument of every entry point (in a memory-limited child)
# ---------------------------------------------------------------------------------------------


def _run_in_child(function: Callable[[], None]) -> None:
    """Run ``function`` of this module in a fresh interpreter whose address space is limited
    to ``CHILD_MEMORY`` beyond its imports; fail with its output if it does not exit 0."""
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]; "
        f"import test_native_safety as t; t._limit_memory(); t.{function.__name__}()"
    )
    # One thread: waking sleeping OpenMP threads costs milliseconds a call on a busy machine,
    # and what is tested here is the memory layout, not the parallel loop.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{function.__name__} ran past {timeout.timeout} s:\n{timeout.stdout}")
    if result.returncode != 0:
        pytest.fail(
            f"{function.__name__} exited with {result.returncode}; last cases and errors:\n"
            f"{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
        )


def _limit_memory() -> None:
    """Cap the address space at the current size plus ``CHILD_MEMORY`` (Linux only)."""
    if sys.platform != "linux":
        return
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    used = pages * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (used + CHILD_MEMORY, used + CHILD_MEMORY))


def _kernel_problems() -> Iterator[tuple[str, Callable, dict]]:
    """``(name, native entry point, keyword arguments)``: every entry point, small shapes."""
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        emissions = torch.randn(4, 6, 3, generator=g, dtype=dtype)
        chain = {
            "emissions": emissions,
            "transitions": torch.randn(3, 3, generator=g, dtype=dtype),
            "start": torch.randn(3, generator=g, dtype=dtype),
            "end": torch.randn(3, generator=g, dtype=dtype),
            "lengths": torch.tensor([6, 2, 5, 1]),
        }
        yield "viterbi", native.viterbi, chain
        tags = torch.randint(0, 3, (4, 6), generator=g)
        yield "forward_backward", native.forward_backward, {**chain, "posteriors": False}
        yield (
            "forward_backward with gold tags",
            native.forward_backward,
            {**chain, "posteriors": True, "tags": tags},
        )
        graph = random_graph(g, states=4, arcs=12, emissions=5, forbid=0.1)
        scores = torch.randn(4, 6, 5, generator=g, dtype=dtype)
        for beam in (float("inf"), 2.0):
            arguments = {"scores": scores, "lengths": chain["lengths"], "graph": graph}
            yield f"graph_viterbi beam {beam}", native.graph_viterbi, {**arguments, "beam": beam}
        log_probs = torch.randn(3, 8, 4, generator=g, dtype=dtype).log_softmax(-1)
        lengths = torch.tensor([8, 5, 6])
        targets = torch.randint(1, 4, (3, 2), generator=g)
        alignment = {"targets": targets, "target_lengths": torch.tensor([2, 1, 2]), "blank": 0}
        yield (
            "ctc_align",
            native.ctc_align,
            {"log_probs": log_probs, "lengths": lengths, **alignment},
        )
        search = {"log_probs": log_probs, "lengths": lengths, "beam": 4, "nbest": 3, "blank": 0}
        fusion = {"lm_weight": 0.8, "insertion_bonus": 0.3}
        for name, prune, lexicon, lm in _search_options():
            options = {"prune": prune, "lexicon": lexicon, "lm": lm, **fusion}
            yield f"prefix_beam_search {name}", native.prefix_beam_search, {**search, **options}


def _search_options():
    """``(name, prune, lexicon tables, LM tables)`` covering every table of the search."""
    lexicon = Lexicon(["a", "ab", "ba"], WORD_SYMBOLS, " ").kernel_tables()
    word_lm = lm_scorer(NGramLM(WORD_TABLES, log10=True), WORD_SYMBOLS, "word").kernel_tables()
    char_lm = lm_scorer(NGramLM(CHAR_TABLES, log10=True), CHAR_SYMBOLS, "char").kernel_tables()
    yield "plain", None, None, None
    yield "lexicon and word LM", -3.0, lexicon, word_lm
    yield "char LM", 2, None, char_lm


def _tensor_paths(arguments: dict) -> Iterator[tuple[str, ...]]:
    """Paths to every tensor in ``arguments``, inside a `Graph` or table tuple too."""
    for name, value in arguments.items():
        if isinstance(value, Tensor):
            yield (name,)
        elif isinstance(value, Graph):
            for field in dataclasses.fields(value):
                if isinstance(getattr(value, field.name), Tensor):
                    yield name, field.name
        elif isinstance(value, tuple):
            for field, item in zip(value._fields, value, strict=True):
                if isinstance(item, Tensor):
                    yield name, field


def _get(arguments: dict, path: tuple[str, ...]) -> Tensor:
    value = arguments[path[0]]
    return value if len(path) == 1 else getattr(value, path[1])


def _with(arguments: dict, path: tuple[str, ...], x: Tensor) -> dict:
    """``arguments`` with the tensor at ``path`` replaced by ``x``."""
    name = path[0]
    if len(path) == 1:
        return {**arguments, name: x}
    holder = arguments[name]
    if isinstance(holder, Graph):
        return {**arguments, name: dataclasses.replace(holder, **{path[1]: x})}
    return {**arguments, name: holder._replace(**{path[1]: x})}


# Integer arguments that stay valid when every entry repeats the first (see `expanded`).
_EXPANDABLE_INDICES = {"lengths", "targets", "target_lengths", "tags"}


def _layouts(path: tuple[str, ...], x: Tensor) -> dict[str, Tensor]:
    found = views(x)
    if x.is_floating_point() or path[-1] in _EXPANDABLE_INDICES:
        found["expanded"] = expanded(x)
    return found


def check_every_view() -> None:
    """Every view of every tensor argument gives the result of its contiguous copy."""
    for name, function, arguments in _kernel_problems():
        contiguous = function(**arguments)
        for path in _tensor_paths(arguments):
            x = _get(arguments, path)
            for layout, view in _layouts(path, x).items():
                case = f"{name}: {'.'.join(path)} {layout} {view.dtype}"
                print(case, flush=True)  # the last line names the case if the child dies
                got = function(**_with(arguments, path, view))
                want = contiguous
                if layout == "expanded":
                    want = function(**_with(arguments, path, view.contiguous()))
                for a, b in zip(got, want, strict=True):
                    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=case)


def test_every_view_of_every_kernel_argument_matches_the_contiguous_call():
    if not native.available(torch.zeros(1)):
        pytest.skip("fused kernels unavailable")
    _run_in_child(check_every_view)


def _public_decoders(lengths: Tensor) -> Iterator[tuple[str, tuple]]:
    """``(name, outputs)`` of every decoder with a fused kernel, on fixed seeded inputs."""
    g = torch.Generator().manual_seed(1)
    emissions = torch.randn(3, 6, 4, generator=g)
    transitions = torch.randn(4, 4, generator=g)
    torch.manual_seed(1)  # the same CRF parameters on every call
    yield "CRF.decode", CRF(4).decode(emissions, lengths)
    yield "viterbi", viterbi(emissions, transitions, lengths=lengths)
    yield "log_partition", (log_partition(emissions, transitions, lengths=lengths),)
    yield "marginals", (marginals(emissions, transitions, lengths=lengths),)
    graph = random_graph(g, states=4, arcs=12, emissions=5)
    scores = torch.randn(3, 6, 5, generator=g)
    yield "graph_viterbi", graph_viterbi(scores, graph, lengths)
    log_probs = torch.randn(3, 6, 4, generator=g).log_softmax(-1)
    targets = torch.tensor([[1, 2], [3, -1], [2, 2]])
    yield "forced_align", forced_align(log_probs, targets, lengths)
    yield "prefix_beam_search", prefix_beam_search(log_probs, lengths, beam=4)


def check_public_decoders() -> None:
    """Non-contiguous ``lengths`` (the issue's example) give the results of contiguous ones,
    with the fused kernels and the eager engine."""
    lengths = torch.tensor([[6, 0], [1, 0], [5, 0]])[:, 0]
    with native.disabled():
        eager = dict(_public_decoders(lengths.contiguous()))
    for name, got in _public_decoders(lengths):
        print(name, flush=True)
        for a, b in zip(got, eager[name], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_public_decoders_take_non_contiguous_lengths():
    _run_in_child(check_public_decoders)


@pytest.mark.parametrize(
    ("argument", "layout"),
    [
        ("transitions", "transposed"),
        ("transitions", "strided"),
        ("start", "strided"),
        ("end", "strided"),
    ],
)
def test_viterbi_reads_views_of_its_potentials(argument, layout):
    g = torch.Generator().manual_seed(0)
    potentials = {
        "transitions": torch.randn(3, 3, generator=g),
        "start": torch.randn(3, generator=g),
        "end": torch.randn(3, generator=g),
    }
    emissions = torch.randn(2, 5, 3, generator=g)
    view = {"transposed": transposed, "strided": strided}[layout](potentials[argument])
    paths, scores = viterbi(emissions, **{**potentials, argument: view})
    with native.disabled():
        want_paths, want_scores = viterbi(emissions, **potentials)
    assert torch.equal(paths, want_paths)
    torch.testing.assert_close(scores, want_scores)


# ---------------------------------------------------------------------------------------------
# a foreign library under the kernels' cache name
# ---------------------------------------------------------------------------------------------


def _foreign_source(kind: str) -> str:
    """C++ for a library that is not the kernels: no kernel symbols, or all of them (as
    stubs) with another ABI version."""
    if kind == "missing symbols":
        return 'extern "C" int unrelated() { return 0; }\n'
    stubs = [
        f"void hybrid_{stem}_{suffix}() {{}}"
        for stem, signature in native._KERNELS.items()
        if signature.typed
        for suffix in ("f32", "f64")
    ]
    version = native._ABI_VERSION + 1
    return (
        'extern "C" {\n'
        + "\n".join(
            [
                *stubs,
                f"int hybrid_abi_version() {{ return {version}; }}",
                "long long hybrid_sources_digest() { return 0; }",
            ]
        )
        + "\n}\n"
    )


@pytest.mark.parametrize(
    ("kind", "match"),
    [("missing symbols", "has no symbol hybrid_abi_version"), ("other version", "ABI version")],
)
def test_a_foreign_library_in_place_of_the_kernels_falls_back_to_eager(
    kind, match, tmp_path, monkeypatch
):
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler to build a foreign library")
    target = tmp_path / "kernels" / "_kernels.so"
    target.parent.mkdir()
    monkeypatch.setattr(native, "_library_path", lambda: target)
    source = tmp_path / "foreign.cpp"
    source.write_text(_foreign_source(kind))
    subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(target)], check=True)
    g = torch.Generator().manual_seed(4)
    emissions, transitions = torch.randn(3, 5, 4, generator=g), torch.randn(4, 4, generator=g)
    lengths = torch.tensor([5, 3, 1])
    native._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=rf"{re.escape(str(target))}.*{match}"):
            paths, scores = viterbi(emissions, transitions, lengths=lengths)
        with native.disabled():
            want_paths, want_scores = viterbi(emissions, transitions, lengths=lengths)
    finally:
        native._library.cache_clear()
    assert torch.equal(paths, want_paths)
    torch.testing.assert_close(scores, want_scores)
