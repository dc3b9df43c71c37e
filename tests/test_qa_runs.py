"""The reader comparison on the shared run layer: the results.json schema, tables and plots
redrawn from it alone, seeds, a run killed within an epoch that resumes exactly, and two
processes under torchrun."""

from __future__ import annotations

import json
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

from hybrid.cli import main
from hybrid.qa.experiment import default_settings, redraw, run_qa
from hybrid.qa.synthetic import generate_stories
from hybrid.qa.train import QATrainConfig
from hybrid.runs import FORMAT, ROW_KEY, read_results

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ("errors.png", "validation_curves.png", "hop_attention.png")
#: A memory network small and fast enough for a subprocess: 29 steps of 32 questions an epoch.
TINY = ["--models", "memory", "--dim", "8", "--no-linear-start", "--quiet", "--threads", "1"]


def _settings(epochs: int = 1) -> dict:
    """Every reader small, trained ``epochs`` main epochs after 2 of linear start."""
    return {
        kind: (
            replace(default_settings(kind)[0], dim=8, hidden=8),
            QATrainConfig(epochs=epochs, linear_start_epochs=2),
        )
        for kind in ("memory", "attentive", "lstm")
    }


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """Two tasks, every reader, two seeds: ``(run folder, results.json content)``."""
    run_dir = tmp_path_factory.mktemp("qa") / "run"
    tasks = {
        task: {
            "train": generate_stories(120, seed=task, task=task),
            "test": generate_stories(40, seed=10 + task, task=task),
        }
        for task in (1, 2)
    }
    results = run_qa(
        tasks,
        run_dir,
        seeds=(0, 1),
        settings=_settings(),
        corpus="two synthetic tasks",
        progress=False,
        log=lambda _: None,
    )
    return run_dir, results


def test_results_follow_the_schema_with_a_row_per_reader_task_seed_and_split(comparison):
    run_dir, results = comparison
    assert read_results(run_dir) == results
    assert results["format"] == FORMAT and results["domain"] == "qa"
    assert results["corpus"] == "two synthetic tasks"
    assert results["primary"] == {"metric": "error", "higher": False, "split": "test"}
    assert set(results["settings"]["readers"]) == {"memory", "attentive", "lstm"}
    rows = results["rows"]
    keys = {tuple(row.get(field) for field in ROW_KEY) for row in rows}
    assert keys == {
        (task, kind, None, seed, split)
        for task in (1, 2)
        for kind in ("memory", "attentive", "lstm")
        for seed in (0, 1)
        for split in ("valid", "test")
    }
    assert len(rows) == len(keys)
    for row in rows:
        metrics = row["metrics"]
        assert 0 <= metrics["error"] <= 1 and metrics["loss"] > 0
        hops = [v for k, v in metrics.items() if k.startswith("support_hop")]
        assert len(hops) == {"memory": 3, "attentive": 1, "lstm": 0}[row["system"]]
        assert all(0 <= h <= 1 for h in hops)
        assert row["epochs"] == (3 if row["system"] == "memory" else 1) and row["seconds"] > 0
        assert row["unit"] == row["task"] and row["train_questions"] == 108
        assert row["questions"] == (12 if row["split"] == "valid" else 40)
        environment = row["environment"]
        assert environment["device"] == "cpu" and environment["processes"] == 1
        assert {"hybrid", "torch", "python", "platform", "threads", "commit"} <= set(environment)
        assert ("history" in row) == (row["split"] == "valid")
        assert ("attention" in row) == (row["split"] == "test" and row["system"] == "memory")
    example = next(r["attention"] for r in rows if "attention" in r)
    assert len(example["weights"]) == 3
    assert all(len(hop) == len(example["statements"]) for hop in example["weights"])
    # the summary is over seeds: per task, reader, split and metric
    group = ("task", "system", "split")
    for entry in results["summary"]:
        values = [
            r["metrics"][entry["metric"]]
            for r in rows
            if all(r[field] == entry[field] for field in group)
        ]
        assert entry["seeds"] == len(values) == 2
        assert entry["mean"] == pytest.approx(statistics.fmean(values))
        assert entry["std"] == pytest.approx(statistics.stdev(values))


def test_the_table_and_plots_are_redrawn_from_results_json_alone(comparison, tmp_path):
    run_dir, results = comparison
    table = (run_dir / "results.md").read_bytes()
    assert b"| 2 |" in table and b"memory best" in table and b"over 2 seeds" in table
    # a folder holding results.json alone: no models, no checkpoints, no corpus
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(run_dir / "results.json", alone / "results.json")
    assert redraw(alone) == results
    assert (alone / "results.md").read_bytes() == table
    for name in PLOTS:
        assert (alone / name).stat().st_size > 0, name
    for name in ("results.md", *PLOTS):
        (run_dir / name).unlink()
    redraw(run_dir)
    assert (run_dir / "results.md").read_bytes() == table
    for name in PLOTS:
        assert (run_dir / name).stat().st_size > 0, name


def test_the_table_shows_the_best_seed_by_validation_and_the_mean_over_seeds(comparison):
    _, results = comparison
    rows = results["rows"]
    table = (comparison[0] / "results.md").read_text()
    for task in (1, 2):
        errors = {
            (r["system"], r["seed"], r["split"]): r["metrics"]["error"]
            for r in rows
            if r["task"] == task
        }
        cells = []
        for kind in ("memory", "attentive", "lstm"):
            best = min((0, 1), key=lambda seed: (errors[kind, seed, "valid"], seed))
            tests = [errors[kind, seed, "test"] for seed in (0, 1)]
            cells.append(
                f"{100 * errors[kind, best, 'test']:.1f} | {100 * statistics.fmean(tests):.1f}"
                f" ± {100 * statistics.stdev(tests):.1f}"
            )
        assert f"| {task} | " + " | ".join(cells) + " |" in table


def test_the_command_trains_a_run_per_seed_into_one_folder(tmp_path, capsys):
    argv = ["train-qa", *TINY, "--epochs", "1", "--seeds", "0", "1", "--amp", "--save-every", "5"]
    argv += ["--average", "0.5"]
    assert main([*argv, "--runs", str(tmp_path), "--name", "s", "--device", "cpu"]) == 0
    assert "over 2 seeds" in capsys.readouterr().out
    results = read_results(tmp_path / "s")
    assert {(r["seed"], r["split"]) for r in results["rows"]} == {
        (seed, split) for seed in (0, 1) for split in ("valid", "test")
    }
    assert all(r["environment"]["threads"] == 1 for r in results["rows"])
    readers = results["settings"]["readers"].values()
    assert all(reader["training"]["amp"] for reader in readers)
    assert all(reader["training"]["average"] == 0.5 for reader in readers)
    assert sorted(p.name for p in (tmp_path / "s" / "models").iterdir()) == [
        "memory-task1-seed0.pt",
        "memory-task1-seed1.pt",
    ]


def _command(runs: Path) -> list[str]:
    """``hybrid train-qa`` on the embedded stories, two epochs, a checkpoint after every step."""
    options = ["--epochs", "2", "--save-every", "1", "--runs", str(runs), "--name", "run"]
    return ["-m", "hybrid.cli", "train-qa", *TINY, *options]


def _metrics(run_dir: Path) -> dict:
    return {
        tuple(row.get(f) for f in ROW_KEY): row["metrics"] for row in read_results(run_dir)["rows"]
    }


def test_a_command_killed_within_an_epoch_resumes_exactly(tmp_path):
    finish(start(_command(tmp_path / "straight")))
    checkpoint = tmp_path / "killed" / "run" / "checkpoints" / "memory-task1-seed0.pt"
    kill_within_first_epoch(start(_command(tmp_path / "killed")), checkpoint)
    finish(start(_command(tmp_path / "killed")))
    model = Path("run") / "models" / "memory-task1-seed0.pt"
    expected = torch.load(tmp_path / "straight" / model, weights_only=True)["model"]
    resumed = torch.load(tmp_path / "killed" / model, weights_only=True)["model"]
    assert expected.keys() == resumed.keys()
    for name, weights in expected.items():
        assert torch.equal(resumed[name], weights), name
    assert _metrics(tmp_path / "killed" / "run") == _metrics(tmp_path / "straight" / "run")


def test_torchrun_trains_a_reader_with_two_processes(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29562",
        "-m",
        "hybrid.cli",
        "train-qa",
        *TINY,
        "--epochs",
        "1",
        "--runs",
        str(tmp_path),
    ]
    environment = {
        **os.environ,
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=environment, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("results, models and plots in") == 1  # printed once
    run_dir = tmp_path / "babi-synthetic"
    results = read_results(run_dir)
    assert [r["environment"]["processes"] for r in results["rows"]] == [2, 2]
    assert [p.name for p in (run_dir / "models").iterdir()] == ["memory-task1-seed0.pt"]
    assert json.loads((run_dir / "checkpoints" / "memory-task1-seed0.json").read_text())
