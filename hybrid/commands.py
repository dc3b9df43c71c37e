"""What the ``hybrid`` commands share: argument types, reading inputs, the options of the
user's own data, and the options every training command declares once (`training_options`).

Each domain registers its own subcommands (``hybrid/<domain>/commands.py``) with these
pieces; `hybrid.cli` only gathers them.
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from .batching import WINDOW
from .files import decode_lines

Value = TypeVar("Value")


def bounded(
    convert: Callable[[str], float], accept: Callable[[float], bool], expected: str
) -> Callable[[str], float]:
    """An argparse ``type=``: ``convert`` the text and keep values that ``accept``; otherwise
    argparse prints ``argument --x: expected <expected>, got <text>`` and exits with 2."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}") from None
        if not accept(value):  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected
    return parse


POSITIVE_INT = bounded(int, lambda v: v >= 1, "a positive integer")
NON_NEGATIVE_INT = bounded(int, lambda v: v >= 0, "a non-negative integer")
POSITIVE_FLOAT = bounded(float, lambda v: 0 < v < math.inf, "a positive number")
NON_NEGATIVE_FLOAT = bounded(float, lambda v: 0 <= v < math.inf, "a non-negative number")
PROBABILITY = bounded(float, lambda v: 0 <= v < 1, "a probability in [0, 1)")
BABI_TASK = bounded(int, lambda v: 1 <= v <= 20, "a bAbI task number from 1 to 20")


def run_name(text: str) -> str:
    """An argparse ``type=`` for ``--name``: a folder name under ``--runs`` (``a/b`` names a
    subfolder); an empty or blank name, which would silently mean the default, is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a run folder name, got {text!r}")
    return text


def device_name(text: str) -> str:
    """An argparse ``type=`` for ``--device``: a device a model can train on (see
    `hybrid.training.resolve_device`), checked before any data is read."""
    from .training import resolve_device

    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def or_default(value: Value | None, default: Value) -> Value:
    """``value`` where the option was given, else ``default`` (a given 0 stays 0)."""
    return default if value is None else value


def load_model(loader: Callable[[Path], Value], path: str) -> Value:
    """``loader(path)``, a last resort behind the loaders' own checks: what ``torch.load``
    raises for a file that is no saved model (random bytes, an empty or truncated file) or
    ``load_state_dict`` for weights of other shapes becomes a ValueError naming the file."""
    try:
        return loader(Path(path))
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"{path}: not a model of this command ({reason})") from error


def stdin_lines() -> Iterator[str]:
    """The lines of standard input without their line ends, read and decoded one at a time as
    UTF-8 whatever the locale (`hybrid.files.decode_lines`: a byte-order mark dropped, bytes
    that are not UTF-8 refused naming ``standard input`` and the line). A standard input
    replaced by a text stream with no bytes beneath it (``io.StringIO``, IDLE's) is read as
    the text it holds."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:
        return (line.removesuffix("\n").removesuffix("\r") for line in sys.stdin)
    return decode_lines(binary, "standard input")


def input_window(arguments: list[str]) -> int:
    """How many inputs are read before any is answered: one at a time when they come from a
    terminal, where a person waits for each answer; else `hybrid.batching.WINDOW`, sorted
    together into batches."""
    return 1 if not arguments and sys.stdin.isatty() else WINDOW


def input_texts(arguments: list[str]) -> Iterator[tuple[str, str]]:
    """``(where, text)`` of each input: the command-line ``arguments`` or, without any, the
    non-blank lines of standard input (``where`` names the argument or the line)."""
    if arguments:
        yield from ((f"argument {i}", text) for i, text in enumerate(arguments, start=1))
        return
    for number, line in enumerate(stdin_lines(), start=1):
        if line.strip():
            yield f"standard input, line {number}", line.strip()


def nonempty(results: Iterable[Value], what: str) -> Iterator[Value]:
    """``results``, lazily; an input that held none is refused once it is read."""
    empty = True
    for result in results:
        empty = False
        yield result
    if empty:
        raise ValueError(f"no input: expected {what}")


def own_data(
    command: argparse.ArgumentParser, what: str, dev: bool, held_out: str | None = None
) -> argparse._ArgumentGroup:
    """The options that give a command the user's own files: ``--train`` and ``--test``
    (and ``--dev`` with the fraction held out of train for a split not given, or what
    ``held_out`` says, where 0 is allowed); the group, for a command's reading options."""
    group = command.add_argument_group("your own data", what)
    group.add_argument("--train", nargs="+", metavar="FILE", help="training files")
    if dev:
        group.add_argument(
            "--dev", nargs="+", metavar="FILE", help="development files (default: from train)"
        )
        group.add_argument(
            "--held-out",
            type=bounded(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")
            if held_out is None
            else bounded(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
            default=0.1 if held_out is None else None,
            help=held_out
            or "fraction of train held out for a split not given (default 0.1, seed 0)",
        )
    default = " (default: from train)" if dev else ""
    group.add_argument("--test", nargs="+", metavar="FILE", help=f"test files{default}")
    return group


def one_source(args: argparse.Namespace) -> None:
    """Refuse ``--corpus`` beside ``--train``: both name the data."""
    if args.corpus is not None:
        raise ValueError(f"--corpus {args.corpus} and --train both name the data: give one of them")


def files_name(paths: list[str]) -> str:
    """A run folder name from the first training path: its name without suffix, or the
    folder above for a generic one (``ner`` for ``data/ner/train.conll``), or ``data``."""
    first = Path(paths[0]).expanduser().absolute()
    stem = first.stem.replace("*", "")
    if stem.lower() in ("", "train", "training", "manifest"):
        return first.parent.name or "data"
    return stem


def training_options(
    command: argparse.ArgumentParser,
    data: str,
    name: str,
    seeds: list[int] | None,
    seeds_help: str | None = None,
    threads: int | None = None,
) -> None:
    """Declare the options every training command shares: ``--data``, ``--runs``, ``--name``,
    ``--seeds``, ``--device``, ``--threads``, ``--amp``, ``--average``, ``--save-every`` and
    ``--quiet``.

    Args:
        command: The subcommand's parser.
        data: What ``--data`` holds (e.g. ``"atis/ and conll2000/"``).
        name: The default run folder name, in words.
        seeds: The default seeds (``None``: the command decides, see ``seeds_help``).
        seeds_help: The help of ``--seeds``.
        threads: The default number of torch threads (``None``: torch's own).
    """
    group = command.add_argument_group("every training command")
    group.add_argument(
        "--data", help=f"folder holding {data} (default $HYBRID_DATA or ../shared/data)"
    )
    group.add_argument("--runs", default="runs", help="parent folder of run folders")
    group.add_argument("--name", type=run_name, help=f"run folder name (default {name})")
    group.add_argument(
        "--seeds",
        nargs="+",
        type=NON_NEGATIVE_INT,
        default=seeds,
        help=seeds_help or f"training seeds, a run each (default {' '.join(map(str, seeds))})",
    )
    group.add_argument(
        "--device", type=device_name, default="cpu", help="cpu (default), cuda, cuda:1, ..."
    )
    group.add_argument(
        "--threads",
        type=POSITIVE_INT,
        default=threads,
        help="torch threads (default: "
        + ("torch's own" if threads is None else str(threads))
        + "); under torchrun, per process",
    )
    group.add_argument(
        "--amp", action="store_true", help="mixed precision (float16 on CUDA, bfloat16 on CPU)"
    )
    group.add_argument(
        "--average",
        type=PROBABILITY,
        default=0.0,
        metavar="DECAY",
        help="decay of a moving average of the weights, updated after every step; the "
        "average is evaluated and kept (default 0: off)",
    )
    group.add_argument(
        "--save-every",
        type=NON_NEGATIVE_INT,
        default=0,
        metavar="STEPS",
        help="also checkpoint every this many steps within an epoch (default 0: after each "
        "epoch); a killed run resumes from its last checkpoint when run again",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def engine_options(args: argparse.Namespace) -> dict[str, object]:
    """The shared options that are training settings of the engine
    (`hybrid.training.TrainConfig`): ``{"amp": ..., "average": ...}``, for a domain's
    training config."""
    return {"amp": args.amp, "average": args.average}


def start_training(args: argparse.Namespace) -> None:
    """Set torch's threads (``--threads``) and join the process group that ``torchrun``
    describes (NCCL for ``--device cuda``, gloo otherwise), before any data is read."""
    import torch

    from .training.distributed import init_from_environment

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    init_from_environment(args.device)


def show_results(run_dir: Path) -> None:
    """Print a finished run folder's table and where it is (the first process only)."""
    from .training.distributed import is_main

    if is_main():
        print((run_dir / "results.md").read_text())
        print(f"results, models and plots in {run_dir}")
