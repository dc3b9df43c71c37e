"""The ``hybrid`` command: each domain registers its subcommands; this module gathers them,
and answers ``hybrid --version``, ``hybrid report`` (run folders side by side), ``hybrid
redraw`` (a run folder's tables and plots from its results.json) and the errors of any
command."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, deploy
from .deploy import FORMATS
from .parsing import commands as parsing
from .qa import commands as qa
from .speech import commands as speech
from .tagging import commands as tagging
from .tagging.commands import K_BEST, MAX_K

#: The domains whose run folders `hybrid redraw` draws.
_DOMAINS = ("tagging", "qa", "speech", "parsing")


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(args.runs, args.out, args.split, args.metric))
    print(f"report.md and report.png in {args.out}")
    return 0


def _redraw(args: argparse.Namespace) -> int:
    from importlib import import_module

    from .runs import read_results

    for run in args.runs:
        domain = read_results(run)["domain"]
        if domain not in _DOMAINS:
            raise ValueError(f"{run}: results.json names domain {domain!r}, not one of {_DOMAINS}")
        import_module(f".{domain}.experiment", __package__).redraw(run)
        print(f"{run}: results.md and plots drawn again from results.json")
    return 0


#: Per kind of saved system (`hybrid.saved`), the domain whose ``export`` module writes it.
_EXPORTERS = {
    "tagger": "tagging",
    "speech system": "speech",
    "parser": "parsing",
    "chart parser": "parsing",
    "reader": "qa",
}


def _export(args: argparse.Namespace) -> int:
    from importlib import import_module
    from pathlib import Path

    from .saved import KIND_KEY, load_saved

    model = Path(args.model)
    kind = load_saved(model, tuple(_EXPORTERS))[KIND_KEY]
    if args.k is not None and kind != "tagger":
        raise ValueError(f"--k: n-best taggings are exported with taggers; {model} holds a {kind}")
    suffix = ".onnx" if args.format == "onnx" else ".torchscript.pt"
    out = Path(args.out) if args.out else model.with_suffix(suffix)
    if out.resolve() == model.resolve():
        raise ValueError(f"--out {out} is the model itself; give another file")
    domain = import_module(f".{_EXPORTERS[kind]}.export", __package__)
    options = {"k": args.k} if kind == "tagger" else {}
    sidecar = domain.export_model(model, args.format, out, **options)
    files = [out, *(out.with_name(name) for name in deploy.describe(out).get("files", [])), sidecar]
    print(
        f"{', '.join(map(str, files))}: the {kind} as {args.format} (keep them together); the "
        f"command that reads the saved model reads it too (--model {out}), as does "
        "hybrid.deploy.load"
    )
    return 0


def _register_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="compare run folders side by side (mean ± std over seeds), from results.json",
    )
    report.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    report.add_argument(
        "--split", help="the split compared (default: the runs' primary one, test for most)"
    )
    report.add_argument("--metric", help="the metric compared (default: the runs' primary one)")
    report.add_argument("--out", default="runs/report", help="where report.md and .png go")
    report.set_defaults(run=_report)
    redraw = commands.add_parser(
        "redraw", help="draw a run folder's results.md and plots again from its results.json"
    )
    redraw.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    redraw.set_defaults(run=_redraw)
    export = commands.add_parser(
        "export",
        help="write a saved tagger, speech system, parser or reader as ONNX or TorchScript, "
        "with its vocabularies and settings as JSON beside it, for the command that reads it "
        "(--model) and the torch-free runtime hybrid.deploy",
    )
    export.add_argument(
        "--model", required=True, help="a saved system: a models/<name>.pt of a run"
    )
    export.add_argument("--format", default="onnx", choices=FORMATS)
    export.add_argument(
        "--out",
        help="the exported file (default: the model's name ending .onnx or .torchscript.pt); "
        "its description goes to the same name + .json",
    )
    export.add_argument(
        "--k", type=K_BEST, help=f"a tagger: also export the k best taggings (1 to {MAX_K})"
    )
    export.set_defaults(run=_export)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hybrid`` command."""
    parser = argparse.ArgumentParser(
        prog="hybrid",
        description="Deep + structured sequence models: train and compare systems on a corpus, "
        "then tag, recognize, parse or answer with a saved one.",
    )
    parser.add_argument("--version", action="version", version=f"hybrid {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for domain in (tagging, qa, speech, parsing):
        domain.register(commands)
    _register_report(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hybrid`` command.

    A bad input (an option argparse refuses, a missing or unreadable file, a file that is no
    model, text that does not decode, a malformed sentence or story) ends as one line
    ``hybrid: error: ...`` on standard error and exit status 2; an interrupt (Ctrl-C) as
    ``hybrid: interrupted`` and 130. Any other exception is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("hybrid: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output stopped early (``| head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, OSError) as error:  # UnicodeDecodeError is a ValueError
        print(f"hybrid: error: {_message(error)}", file=sys.stderr)
        return 2


def _message(error: Exception) -> str:
    """One line for ``error``: an OSError as ``<path>: <reason>``."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    raise SystemExit(main())
