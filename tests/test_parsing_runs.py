"""The parsing run folder on the shared run layer (`hybrid.runs`): the results.json schema,
seeds in one folder, tables and plots redrawn from results.json alone, a killed
``hybrid train-parser`` resumed exactly, and the command under torchrun."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from processes import finish, kill_within_first_epoch, start

from hybrid.parsing.experiment import (
    LENGTH_BINS,
    default_settings,
    redraw,
    results_table,
    run_parsing,
)
from hybrid.parsing.synthetic import synthetic_trees
from hybrid.runs import FORMAT, ROW_KEY, RunFolder, summarise

ROOT = Path(__file__).resolve().parents[1]
TREES = synthetic_trees(90, seed=5)
TRAIN, DEV, TEST = TREES[:60], TREES[60:75], TREES[75:]
PLOTS = (
    "training.png",
    "f1-by-length.png",
    "attention.png",
    "pointer-attention.png",
    "tree.png",
)
#: The metrics that are shares or scores: fractions in [0, 1].
FRACTIONS = ("f1", "precision", "recall", "exact", "well_formed")
#: Where every subprocess runs: one thread, idle threads asleep (a shared two-core machine).
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def tiny_settings():
    base = default_settings("synthetic", 1)
    model = {**base.model, "hidden": 16, "word_dim": 12, "target_dim": 8}
    return replace(base, model=model, span_hidden=16)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """A run folder of three parsers (attention, pointer, chart CRF) over two seeds."""
    run = tmp_path_factory.mktemp("parsing") / "run"
    models = ["attention", "pointer", "chart-crf"]
    only = {"inputs": ["words"], "models": models, "corpus": "synthetic"}
    results = run_parsing(TRAIN, DEV, TEST, run, settings=tiny_settings(), seeds=[0, 1], **only)
    return run, results


def test_results_json_follows_the_schema_with_a_row_per_seed_and_split(two_seeds):
    run, results = two_seeds
    saved = json.loads((run / "results.json").read_text())
    assert saved == results
    assert saved["format"] == FORMAT and saved["domain"] == "parsing"
    assert saved["primary"] == {"metric": "f1", "higher": True, "split": "test"}
    assert saved["corpus"] == "synthetic" and saved["settings"]["train_trees"] == len(TRAIN)
    assert "seed" not in saved["settings"]["training"]  # a key of the rows, not a setting
    keys = [tuple(row[k] for k in ROW_KEY) for row in saved["rows"]]
    assert len(keys) == len(set(keys))
    seq2seq = ("greedy", "beam", "constrained")
    decoders = {"attention": seq2seq, "pointer": seq2seq, "chart-crf": ("cky", "mbr")}
    assert set(keys) == {
        ("words", model, decoder, seed, "test")
        for model, modes in decoders.items()
        for decoder in modes
        for seed in (0, 1)
    } | {
        ("words", model, modes[0], seed, "dev")
        for model, modes in decoders.items()
        for seed in (0, 1)
    }
    for row in saved["rows"]:
        assert row["epochs"] == 1 and row["seconds"] > 0
        environment = row["environment"]
        assert environment["device"] == "cpu" and environment["processes"] == 1
        assert environment["threads"] == torch.get_num_threads()
        assert environment["torch"] == torch.__version__
        for name in FRACTIONS:
            if name in row["metrics"]:
                assert 0 <= row["metrics"][name] <= 1
        if row["split"] == "dev":
            history = row["history"]
            assert row["metrics"] == {
                "f1": history["dev_f1"][row["best_epoch"] - 1],
                "loss": history["dev_loss"][row["best_epoch"] - 1],
            }
            continue
        assert set(row["metrics"]) == {*FRACTIONS, "evalb_errors", "sentences_per_second"}
        assert row["sentences"] == len(row["outputs"]) == len(TEST)
        bins = [f"{a}-{b}" if b else f"{a}+" for a, b in LENGTH_BINS]
        assert list(row["f1_by_length"]) == bins
        mapped = row["system"] != "chart-crf" and row["decoder"] == "constrained"
        assert ("attention" in row) == mapped
    # the summary is over seeds
    entry = next(
        s
        for s in saved["summary"]
        if (s["task"], s["system"], s["decoder"], s["split"], s["metric"])
        == ("words", "chart-crf", "mbr", "test", "f1")
    )
    f1 = [
        r["metrics"]["f1"] for r in saved["rows"] if (r["decoder"], r["split"]) == ("mbr", "test")
    ]
    assert entry["seeds"] == 2 and entry["mean"] == pytest.approx(statistics.fmean(f1))
    assert entry["std"] == pytest.approx(statistics.stdev(f1))
    table = (run / "results.md").read_text()
    assert "mean ± std over seeds 0, 1" in table and "- words-pointer (seed 1):" in table
    for name in ("words-pointer-seed0", "words-pointer-seed1", "words-chart-crf-seed1"):
        assert (run / "models" / f"{name}.pt").is_file()


def test_redraw_reproduces_the_table_and_plots_from_results_json_alone(two_seeds, tmp_path):
    run, _ = two_seeds
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(run / "results.json", copy / "results.json")  # no models, no checkpoints
    drawn = {name: (run / name).read_bytes() for name in ("results.md", *PLOTS)}
    results = redraw(copy)
    assert results == json.loads((run / "results.json").read_text())
    assert (copy / "results.md").read_bytes() == drawn["results.md"]
    for name in PLOTS:
        assert (copy / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("results.md", *PLOTS):  # deleted, and back
        (run / name).unlink()
    redraw(run)
    assert {name: (run / name).read_bytes() for name in ("results.md", *PLOTS)} == drawn


def test_redraw_refuses_a_folder_that_is_no_parsing_run(tmp_path):
    with pytest.raises(ValueError, match=r"results.json does not exist"):
        redraw(tmp_path)
    RunFolder(tmp_path, "tagging", ("f1", True)).claim("atis", {"hidden": 8})
    with pytest.raises(ValueError, match=r"results.json holds a tagging run, not a parsing run"):
        redraw(tmp_path)


def _train_into(run: str, model: str) -> None:
    """Train one tiny parser over words into the run folder ``run`` (a spawned process)."""
    torch.set_num_threads(1)
    only = {"inputs": ["words"], "models": [model], "corpus": "synthetic"}
    quiet = {"log": lambda line: None}
    run_parsing(TRAIN, DEV, TEST, Path(run), settings=tiny_settings(), **quiet, **only)


def test_processes_training_into_one_folder_at_once_lose_no_row(tmp_path):
    context = multiprocessing.get_context("spawn")
    models = ("chart-crf", "chart-ssvm")
    workers = [context.Process(target=_train_into, args=(str(tmp_path), m)) for m in models]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted((r["system"], r["decoder"], r["split"]) for r in results["rows"]) == [
        ("chart-crf", "cky", "dev"),
        ("chart-crf", "cky", "test"),
        ("chart-crf", "mbr", "test"),
        ("chart-ssvm", "cky", "dev"),
        ("chart-ssvm", "cky", "test"),
    ]
    table = (tmp_path / "results.md").read_text()  # drawn with the rows of both
    assert "| chart, tree CRF | mbr |" in table and "| chart, structured SVM | cky |" in table


def _test_row(seed, f1, exact, speed, short):
    bins = {"1-10": short, "11-20": None, "21-30": None, "31-40": None, "41+": None}
    metrics = {"f1": f1, "exact": exact, "well_formed": 1.0, "sentences_per_second": speed}
    return {
        "task": "tags",
        "system": "chart-crf",
        "decoder": "cky",
        "seed": seed,
        "split": "test",
        "metrics": metrics,
        "f1_by_length": bins,
    }


def test_the_table_gives_the_mean_and_spread_over_seeds():
    rows = [_test_row(0, 0.80, 0.10, 100.0, 0.70), _test_row(1, 0.90, 0.20, 200.0, 0.90)]
    table = results_table({"corpus": "ptb", "rows": rows, "summary": summarise(rows)})
    # mean (80 + 90) / 2 = 85; sample deviation sqrt((5^2 + 5^2) / (2 - 1)) = 7.07
    assert "| chart, tree CRF | cky | 85.00 ± 7.07 (2) | 15.0 ± 7.1 (2) | 100.0 | 150.0 |" in table
    assert "| tags | chart, tree CRF | cky | 80.0 | - | - | - | - |" in table
    alone = results_table({"corpus": "ptb", "rows": rows[:1], "summary": summarise(rows[:1])})
    assert "| chart, tree CRF | cky | 80.00 | 10.0 | 100.0 | 100.0 |" in alone
    assert "| tags | chart, tree CRF | cky | 70.0 | - | - | - | - |" in alone
    assert "over seeds" not in alone


# -- the command, killed in mid-epoch and run again ---------------------------------------


def _train_parser(runs: Path, name: str, *more: str) -> list[str]:
    """``hybrid train-parser`` on 400 synthetic trees: the chart CRF over words, one epoch of
    13 steps, a checkpoint after every step."""
    return [
        *("-m", "hybrid.cli", "train-parser", "--models", "chart-crf", "--inputs", "words"),
        *("--epochs", "1", "--train-size", "400", "--save-every", "1", "--threads", "1"),
        *("--quiet", "--runs", str(runs), "--name", name, *more),
    ]


def _same_rows(a: list[dict], b: list[dict]) -> None:
    """The rows of two runs of one command: equal but for the times they took."""
    assert len(a) == len(b)
    timing = {"seconds": None, "environment": None}
    for x, y in zip(a, b, strict=True):
        speed = {"sentences_per_second": None}
        assert x["metrics"] | speed == y["metrics"] | speed
        if "history" in x:
            assert x["history"] | {"seconds": None} == y["history"] | {"seconds": None}
            x, y = x | {"history": None}, y | {"history": None}
        assert x | timing | {"metrics": None} == y | timing | {"metrics": None}


def test_a_killed_command_resumes_exactly(tmp_path):
    finish(start(_train_parser(tmp_path, "straight"), ENVIRONMENT))
    checkpoint = tmp_path / "killed" / "checkpoints" / "words-chart-crf-seed0.pt"
    kill_within_first_epoch(start(_train_parser(tmp_path, "killed"), ENVIRONMENT), checkpoint)
    assert not (tmp_path / "killed" / "models").exists()
    finish(start(_train_parser(tmp_path, "killed"), ENVIRONMENT))
    assert "resumed from" in checkpoint.with_suffix(".log").read_text()
    model = Path("models") / "words-chart-crf-seed0.pt"
    a = torch.load(tmp_path / "straight" / model, weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / model, weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    straight = json.loads((tmp_path / "straight" / "results.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert [row["environment"]["threads"] for row in resumed["rows"]] == [1, 1, 1]
    _same_rows(straight["rows"], resumed["rows"])


# -- the command under torchrun, and the options every training command shares ------------


def test_torchrun_trains_with_two_processes_and_writes_once(tmp_path):
    command = [
        *("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561"),
        *("-m", "hybrid.cli", "train-parser", "--models", "chart-crf", "--inputs", "words"),
        *("--epochs", "1", "--train-size", "64", "--quiet", "--runs", str(tmp_path)),
    ]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "parse-synthetic"
    results = json.loads((run / "results.json").read_text())
    assert [row["environment"]["processes"] for row in results["rows"]] == [2, 2, 2]
    assert sorted(p.name for p in (run / "models").iterdir()) == ["words-chart-crf-seed0.pt"]
    # one process printed and wrote: one table, one epoch line in the log
    assert done.stdout.count("# Parsing: sequence-to-sequence") == 1
    log = (run / "checkpoints" / "words-chart-crf-seed0.log").read_text().splitlines()
    assert len(log) == 1 and log[0].startswith("chart parser epoch 1: loss ")


def test_amp_and_average_are_recorded_settings_of_the_training(tmp_path, capsys):
    from hybrid.cli import main

    argv = ["train-parser", "--models", "chart-ssvm", "--inputs", "tags", "--epochs", "1"]
    argv += ["--train-size", "40", "--quiet", "--runs", str(tmp_path), "--name", "amp"]
    assert main([*argv, "--amp", "--average", "0.5", "--device", "cpu"]) == 0
    results = json.loads((tmp_path / "amp" / "results.json").read_text())
    assert results["settings"]["training"]["amp"] is True
    assert results["settings"]["training"]["average"] == 0.5
    checkpoint = tmp_path / "amp" / "checkpoints" / "tags-chart-ssvm-seed0.pt"
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["settings"]["training"]["amp"] is True and "averaged" in saved
    capsys.readouterr()
    assert main([*argv, "--average", "0.5"]) == 2  # without mixed precision: refused by name
    assert "settings.training.amp: True there, False asked" in capsys.readouterr().err
    assert main([*argv, "--amp"]) == 2  # without the average
    assert "settings.training.average: 0.5 there, 0.0 asked" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_parsers_train_and_parse_on_the_device_asked_for(tmp_path):
    from hybrid.parsing import BaseParser

    only = {"inputs": ["tags"], "models": ["pointer", "chart-crf"], "corpus": "synthetic"}
    settings = tiny_settings()
    settings = replace(settings, training=replace(settings.training, amp=True))
    results = run_parsing(TRAIN, DEV, TEST, tmp_path, settings=settings, device="cuda", **only)
    assert {row["environment"]["device"] for row in results["rows"]} == {"cuda"}
    parser = BaseParser.load(tmp_path / "models" / "tags-chart-crf-seed0.pt")  # on the CPU
    assert next(parser.model.parameters()).device.type == "cpu"
    row = next(r for r in results["rows"] if (r["decoder"], r["split"]) == ("cky", "test"))
    sentences = [tree.leaves() for tree in TEST]
    tags = [[tag for tag, _ in tree.preterminals()] for tree in TEST]
    outputs = [" ".join(p.tokens) for p in parser.parse(sentences, tags, mode="cky")]
    assert outputs == row["outputs"]


def test_a_tree_is_drawn_words_in_order_under_their_phrases(tmp_path):
    from hybrid.parsing.plots import _layout, plot_trees
    from hybrid.parsing.tree import Tree

    tree = Tree.from_string("(S (NP (DT the) (NN dog)) (VP (VBZ barks) (ADVP (RB loudly))) (. .))")
    nodes, edges = _layout(tree)
    words = sorted((x, label) for x, _, label, word in nodes if word)
    assert [label for _, label in words] == tree.leaves() and [x for x, _ in words] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert len(nodes) == len(list(tree.subtrees())) + len(tree.leaves())
    assert len(edges) == len(nodes) - 1  # a tree: every node but the root has one parent
    depth = {label: y for _, y, label, word in nodes if not word}
    assert depth["S"] == 0 and depth["NP"] == depth["VP"] == 1 and depth["RB"] == 3
    by_label = {label: x for x, _, label, word in nodes if not word}
    assert by_label["NP"] == 0.5 and by_label["ADVP"] == 3  # above its children's middle
    plot_trees([tree, tree], ["gold", "parsed"], tmp_path / "tree.png")
    assert (tmp_path / "tree.png").stat().st_size > 1000
