"""The tagging comparison on the shared run layer (`hybrid.runs`): its results.json schema and
summary over seeds, the table and plots redrawn from results.json alone, processes sharing a
run folder, and the shared training options of ``hybrid train-tagger``: a process killed in
mid-epoch and run again ends as an uninterrupted one, ``torchrun`` with two processes,
``--threads``, ``--amp`` and ``--device``."""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from processes import finish, kill_within_first_epoch, start

from hybrid.cli import main
from hybrid.runs import FORMAT, environment, read_results
from hybrid.tagging.datasets import load_splits
from hybrid.tagging.experiment import redraw, run_comparison
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.train import TaggerTrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "8", "--word-dim", "8", "--quiet"]
PLOTS = ("training_curves.png", "label_f1.png", "confusion.png")
METRICS = {"precision", "recall", "f1", "accuracy", "intent_accuracy"}


@pytest.fixture
def threads():
    """Restore torch's threads after a command that sets them (``--threads``)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _train(runs: Path, name: str, *options: str) -> dict:
    """``hybrid train-tagger`` on a slice of the synthetic corpus into ``runs/name``; the
    folder's results.json."""
    command = ["train-tagger", "--limit", "24", "--epochs", "2", "--batch-size", "8", *TINY]
    assert main([*command, *options, "--runs", str(runs), "--name", name]) == 0
    return read_results(runs / name)


def test_results_follow_the_schema_and_are_summarised_over_seeds(tmp_path, threads, capsys):
    options = ["--heads", "crf", "softmax", "--seeds", "0", "1", "--threads", "1"]
    results = _train(tmp_path, "run", *options)
    capsys.readouterr()
    assert results["format"] == FORMAT and results["domain"] == "tagging"
    assert results["corpus"] == "synthetic"
    assert results["primary"] == {"metric": "f1", "higher": True, "split": "test"}
    settings = results["settings"]
    assert set(settings) == {"sizes", "tagger", "training", "refit"}
    assert "head" not in settings["tagger"] and "seed" not in settings["training"]
    assert settings["sizes"] == {"train": 24, "valid": 24, "test": 24}
    rows = results["rows"]
    test = load_splits("synthetic")["test"][:24]
    assert [(r["system"], r["seed"], r["split"]) for r in rows] == [
        (head, seed, split)
        for head in ("crf", "softmax")
        for seed in (0, 1)
        for split in ("test", "dev")
    ]
    here = environment("cpu")
    for row in rows:
        assert row.get("task") is None and row.get("decoder") is None  # no task, no decoder
        assert set(row["metrics"]) == METRICS  # the synthetic corpus has intents
        assert all(0 <= value <= 1 for value in row["metrics"].values())
        assert row["epochs"] == 2 and row["seconds"] > 0 and row["tokens_per_second"] > 0
        assert row["environment"] == here  # where it trained: this process, one thread
        assert here["threads"] == 1 and here["processes"] == 1 and here["device"] == "cpu"
        assert row["refit_epochs"] is None
        assert len(row["history"]["loss"]) == 2 and len(row["history"]["dev_f1"]) == 2
        assert set(row["per_label"]) and all(
            set(entry) == {"precision", "recall", "f1", "support"}
            for entry in row["per_label"].values()
        )
        if row["split"] == "test":
            name = f"{row['system']}-seed{row['seed']}.pt"
            vocabulary = Tagger.load(tmp_path / "run" / "models" / name).vocabulary
            assert list(row["confusion"]) == vocabulary.tags.tokens
            gold = Counter(tag for sentence in test for tag in sentence.tags)
            assert {tag: sum(row["confusion"][tag].values()) for tag in vocabulary.tags.tokens} == {
                tag: gold[tag] for tag in vocabulary.tags.tokens
            }  # every test token of a known gold tag, once
            hits = sum(row["confusion"][tag].get(tag, 0) for tag in row["confusion"])
            assert hits / gold.total() == pytest.approx(row["metrics"]["accuracy"])
        else:
            assert "confusion" not in row
    # the summary is over seeds, per head and split
    summary = {(s["system"], s["split"], s["metric"]): s for s in results["summary"]}
    assert len(summary) == len(results["summary"]) == 2 * 2 * len(METRICS)
    for (head, split, metric), entry in summary.items():
        values = [r["metrics"][metric] for r in rows if (r["system"], r["split"]) == (head, split)]
        assert entry["seeds"] == 2 and entry["task"] is None and entry["decoder"] is None
        assert entry["mean"] == pytest.approx(statistics.fmean(values))
        assert entry["std"] == pytest.approx(statistics.stdev(values))
    table = (tmp_path / "run" / "results.md").read_text()
    f1 = summary[("crf", "test", "f1")]
    assert f"| crf | 2 | {100 * f1['mean']:.2f} ± {100 * f1['std']:.2f} |" in table


def test_redraw_reproduces_the_table_and_plots_from_results_json_alone(tmp_path, capsys):
    _train(tmp_path, "run", "--heads", "crf", "softmax", "--seeds", "0", "1")
    capsys.readouterr()
    run = tmp_path / "run"
    drawn = {name: (run / name).read_bytes() for name in ("results.md", *PLOTS)}
    for name in drawn:
        (run / name).unlink()
    for folder in ("models", "checkpoints"):  # neither models nor records are read
        for path in (run / folder).iterdir():
            path.unlink()
    results = redraw(run)  # the corpus is not read either: redraw takes the folder alone
    assert results == read_results(run)
    assert {name: (run / name).read_bytes() for name in drawn} == drawn


def _compare(run_dir: Path, head: str) -> None:
    """Two seeds of ``head`` on a slice of the synthetic corpus, into ``run_dir``, on one thread:
    a forked child that entered the OpenMP thread pools it inherited (torch's, the kernels')
    would wait forever for threads that were not forked with it."""
    torch.set_num_threads(1)
    splits = {k: v[:16] for k, v in load_splits("synthetic").items()}
    tagger = TaggerConfig(word_dim=8, hidden=8, char_dim=4, char_out=4)
    training = TaggerTrainConfig(epochs=1, batch_size=8)
    quiet = {"progress": False, "log": lambda _: None}
    run_comparison(splits, run_dir, [head], [0, 1], tagger, training, **quiet)


def test_processes_sharing_a_run_folder_lose_no_rows(tmp_path):
    context = multiprocessing.get_context("fork")  # the children start at once, hybrid loaded
    workers = [context.Process(target=_compare, args=(tmp_path, h)) for h in ("crf", "softmax")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    results = read_results(tmp_path)
    assert sorted((r["system"], r["seed"], r["split"]) for r in results["rows"]) == [
        (head, seed, split)
        for head in ("crf", "softmax")
        for seed in (0, 1)
        for split in ("dev", "test")
    ]
    table = (tmp_path / "results.md").read_text()
    assert "| crf | 2 |" in table and "| softmax | 2 |" in table  # drawn from every row


def test_redraw_refuses_a_folder_of_another_domain_or_none(tmp_path):
    with pytest.raises(ValueError, match=r"results\.json does not exist"):
        redraw(tmp_path)
    (tmp_path / "results.json").write_text(
        json.dumps({"format": FORMAT, "domain": "parsing", "corpus": "ptb", "rows": []})
    )
    with pytest.raises(ValueError, match=r"results\.json holds a parsing run, not a tagging run"):
        redraw(tmp_path)
    assert not (tmp_path / "results.md").exists()


def test_mixed_precision_trains_and_is_recorded(tmp_path, capsys):
    results = _train(tmp_path, "amp", "--heads", "crf", "--seeds", "0", "--amp")
    capsys.readouterr()
    assert results["settings"]["training"]["amp"] is True
    checkpoint = torch.load(tmp_path / "amp" / "checkpoints" / "crf-seed0.pt", weights_only=True)
    assert checkpoint["settings"]["training"]["amp"] is True
    assert all(0 <= v <= 1 for r in results["rows"] for v in r["metrics"].values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_device_trains_and_is_recorded(tmp_path, capsys):
    results = _train(tmp_path, "cuda", "--heads", "crf", "--seeds", "0", "--device", "cuda")
    capsys.readouterr()
    assert {r["environment"]["device"] for r in results["rows"]} == {"cuda"}
    assert "| cuda |" in (tmp_path / "cuda" / "results.md").read_text()
    model = Tagger.load(tmp_path / "cuda" / "models" / "crf-seed0.pt")
    assert all(p.device.type == "cpu" for p in model.parameters())  # saved for any machine


# -- a real process, killed in mid-epoch, run again ------------------------------------------

#: Many batches of one sentence, each step checkpointed: an epoch lasts long enough to be
#: caught in its middle.
KILLED = [
    "train-tagger", "--limit", "80", "--batch-size", "1", "--epochs", "2", "--seeds", "0",
    "--heads", "crf", "--save-every", "1", *TINY,
]  # fmt: skip

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def _command(runs: Path) -> subprocess.Popen:
    return start(["-m", "hybrid.cli", *KILLED, "--runs", str(runs)], ENVIRONMENT)


def test_a_killed_command_resumes_exactly(tmp_path):
    finish(_command(tmp_path / "straight"))
    killed_runs = tmp_path / "killed"
    checkpoint = killed_runs / "synthetic" / "checkpoints" / "crf-seed0.pt"
    kill_within_first_epoch(_command(killed_runs), checkpoint)  # 80 steps, each checkpointed
    assert not (killed_runs / "synthetic" / "models" / "crf-seed0.pt").exists()
    finish(_command(killed_runs))
    a = Tagger.load(tmp_path / "straight" / "synthetic" / "models" / "crf-seed0.pt")
    b = Tagger.load(killed_runs / "synthetic" / "models" / "crf-seed0.pt")
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), key

    def scores(row: dict) -> dict:
        history = {k: v for k, v in row["history"].items() if k != "seconds"}
        kept = ("system", "seed", "split", "metrics", "per_label", "confusion", "epochs")
        return {k: row.get(k) for k in kept} | {"history": history}

    straight_rows = read_results(tmp_path / "straight" / "synthetic")["rows"]
    resumed_rows = read_results(killed_runs / "synthetic")["rows"]
    assert [scores(r) for r in resumed_rows] == [scores(r) for r in straight_rows]
    assert [r["split"] for r in straight_rows] == ["test", "dev"]


# -- torchrun: two processes train, the first writes -----------------------------------------


def test_torchrun_trains_with_two_processes_and_the_first_writes(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", "29518", "-m", "hybrid.cli", "train-tagger", "--limit", "40",
        "--epochs", "2", "--seeds", "0", "--heads", "crf", *TINY, "--runs", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=ENVIRONMENT, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "synthetic"
    results = read_results(run)
    assert [(r["split"], r["environment"]["processes"]) for r in results["rows"]] == [
        ("test", 2),
        ("dev", 2),
    ]
    assert sorted(p.name for p in (run / "models").iterdir()) == ["crf-seed0.pt"]
    assert result.stdout.count("results, models and plots in") == 1  # printed once
    log = (run / "checkpoints" / "crf-seed0.log").read_text().splitlines()
    assert [line.split(":")[0] for line in log] == ["crf epoch 1", "crf epoch 2"]  # logged once
    assert all((run / name).exists() for name in ("results.md", *PLOTS))
