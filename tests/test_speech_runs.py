"""The speech comparison on the shared run layer (`hybrid.runs`): the results.json schema,
summaries over seeds, tables and plots redrawn from results.json alone, networks that start
from the same weights whatever trained before them, every shared training option of
``hybrid train-asr``, a killed command that resumes exactly, and torchrun."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from processes import assert_same, finish, kill_after, kill_within_first_epoch, start

from hybrid import cli
from hybrid.report import comparison
from hybrid.runs import FORMAT, environment, read_results
from hybrid.speech import experiment
from hybrid.speech.corpus import synthetic_recordings, synthetic_split
from hybrid.speech.experiment import ExperimentSettings, redraw, run_speech
from hybrid.speech.fsdd import DIGITS
from hybrid.speech.recognizer import Recognizer
from hybrid.speech.systems import SystemSettings
from hybrid.speech.train import AcousticTrainConfig

ROOT = Path(__file__).resolve().parents[1]

SMALL = ExperimentSettings(
    systems=SystemSettings(
        word_states=2,
        silence_states=1,
        mixtures=1,
        gmm_iterations=1,
        viterbi_iterations=0,
        dnn={"hidden": 8, "layers": 1, "context": 1},
        bilstm={"hidden": 4, "layers": 1},
        rnn={"hidden": 4, "layers": 1},
        ctc={"hidden": 4, "layers": 1},
        training=AcousticTrainConfig(epochs=2, batch_size=8),
        ctc_training=AcousticTrainConfig(epochs=2, batch_size=8, lr=3e-3),
    ),
    train_strings=8,
    test_strings=3,
    dev_strings=3,
)

KEY = ("task", "system", "decoder", "seed", "split")

METRICS = {
    "error_rate",
    "utterance_error_rate",
    "substitutions",
    "deletions",
    "insertions",
    "reference_words",
    "utterance_errors",
    "decode_seconds",
}


@pytest.fixture(scope="module")
def synthetic():
    train, test = synthetic_split(synthetic_recordings(speakers=2, takes=7, seed=1))
    return train, test[::5]


@pytest.fixture(scope="module")
def two_seeds(synthetic, tmp_path_factory):
    """A run folder of ``hybrid train-asr --seeds 0 1`` (isolated words and strings; the
    GMM-HMM, the DNN-HMM and CTC), and the rows it returned."""
    run_dir = tmp_path_factory.mktemp("runs") / "two"
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(experiment, "default_settings", lambda *args, **kwargs: SMALL)
        patched.setattr(experiment, "load_corpus", lambda corpus, data: (*synthetic, DIGITS))
        command = ["train-asr", "--tasks", "isolated", "strings", "--systems", "gmm", "dnn"]
        command += ["ctc", "--seeds", "0", "1", "--quiet", "--runs", str(run_dir.parent)]
        assert cli.main([*command, "--name", run_dir.name]) == 0
    return run_dir


def _same(row: dict) -> dict:
    """What a rerun of ``row`` must repeat exactly on the CPU: all but the times."""
    timeless = {k: v for k, v in row.items() if k not in ("seconds", "environment")}
    timeless["metrics"] = {k: v for k, v in row["metrics"].items() if k != "decode_seconds"}
    timeless["history"] = [{**h, "seconds": None} for h in row["history"]]
    return timeless


def test_results_json_follows_the_schema_with_rows_per_seed(two_seeds):
    results = read_results(two_seeds)
    assert results["format"] == FORMAT and results["domain"] == "speech"
    assert results["primary"] == {"metric": "error_rate", "higher": False, "split": "official"}
    assert results["corpus"] == "synthetic" and results["settings"]["words"] == list(DIGITS)
    assert "seed" not in results["settings"]["systems"]["training"]  # each row has its own
    tasks = ("isolated", "strings")
    keys = [(r["task"], r["system"], r["seed"]) for r in results["rows"]]
    networks = {(t, s, n) for t in tasks for s in ("dnn", "ctc") for n in (0, 1)}
    assert len(keys) == len(set(keys)) and set(keys) == {(t, "gmm", None) for t in tasks} | networks
    expected = set(environment())
    for row in results["rows"]:
        assert set(KEY) <= set(row) and row["split"] == "official" and row["decoder"] is None
        assert set(row["metrics"]) == METRICS
        assert all(isinstance(v, int | float) for v in row["metrics"].values())
        assert (
            0 <= row["metrics"]["utterance_error_rate"] <= 1 and row["metrics"]["error_rate"] >= 0
        )
        assert set(row["environment"]) == expected
        assert row["environment"]["processes"] == 1 and row["environment"]["device"] == "cpu"
        assert row["environment"]["threads"] == 1  # train-asr's default --threads
        assert len(row["hypotheses"]) == len(row["references"]) > 0
        if row["system"] == "gmm":
            assert row["epochs"] is None and row["history"] == []
        else:
            assert row["epochs"] == 2 and len(row["history"][-1]["loss"]) == 2
    # the seeds train differently, and the summary is over them
    dnn = {r["seed"]: r for r in results["rows"] if (r["task"], r["system"]) == ("isolated", "dnn")}
    assert dnn[0]["history"][0]["loss"] != dnn[1]["history"][0]["loss"]
    summary = {(e["task"], e["system"], e["metric"]): e for e in results["summary"]}
    entry = summary["isolated", "dnn", "error_rate"]
    rates = [dnn[seed]["metrics"]["error_rate"] for seed in (0, 1)]
    assert entry["seeds"] == 2 and entry["split"] == "official"
    assert entry["mean"] == pytest.approx(statistics.fmean(rates))
    assert entry["std"] == pytest.approx(statistics.stdev(rates))
    assert summary["isolated", "gmm", "error_rate"]["seeds"] == 1
    # hybrid report compares the folder's official split by default
    columns, table, metric, higher, split = comparison([two_seeds])
    assert metric == "error_rate" and not higher and split == "official"
    assert table["isolated / dnn"][columns[0]][2] == 2
    # the table: mean ± std over the seeds, the GMM-HMM once; each seed's errors by kind
    text = (two_seeds / "results.md").read_text()
    assert "Seeds 0, 1: mean ± standard deviation" in text
    gmm, dnn_line = (
        next(x for x in text.splitlines() if x.startswith(f"| {n} |"))
        for n in ("GMM-HMM", "hybrid DNN-HMM")
    )
    assert "±" not in gmm and "±" in dnn_line
    assert "| hybrid DNN-HMM, seed 1 |" in text
    models = {p.name for p in (two_seeds / "models").iterdir()}
    assert models == {f"{t}-gmm.pt" for t in tasks} | {
        f"{t}-{s}-seed{n}.pt" for t, s, n in networks
    }


def test_redraw_rebuilds_the_table_and_every_plot_from_results_json_alone(two_seeds, monkeypatch):
    table = (two_seeds / "results.md").read_bytes()
    plots = {p.name: p.read_bytes() for p in two_seeds.glob("*.png")}
    assert set(plots) == {
        "errors.png",
        "confusion.png",
        "ctc.png",
        "training-isolated.png",
        "training-strings.png",
        "alignment-isolated.png",
        "alignment-strings.png",
    }
    for name in ("results.md", *plots):
        (two_seeds / name).unlink()
    for reader in ("extract", "fbank", "train_systems", "load_corpus", "log_posteriors"):
        monkeypatch.setattr(experiment, reader, lambda *a, **k: pytest.fail("read the corpus"))
    results = redraw(two_seeds)
    assert results == read_results(two_seeds)
    assert (two_seeds / "results.md").read_bytes() == table
    for name, drawn in plots.items():
        assert (two_seeds / name).read_bytes() == drawn, name


def test_redraw_refuses_a_run_folder_of_another_domain(tmp_path):
    results = {"format": FORMAT, "domain": "tagging", "corpus": "atis", "rows": []}
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="holds a tagging run, not a speech run"):
        redraw(tmp_path)
    assert not (tmp_path / "results.md").exists()


def test_a_network_starts_from_the_same_weights_alone_or_after_other_systems(synthetic, tmp_path):
    """Before, a network's initial weights came from torch's global random state, which the
    systems trained before it in the process had moved."""
    train, test = synthetic
    only = {"tasks": ("isolated",), "settings": SMALL, "corpus": "synthetic", "words": DIGITS}
    alone = run_speech(train, test, tmp_path / "alone", systems=("rnn",), **only)
    after = run_speech(train, test, tmp_path / "after", systems=("dnn", "bilstm", "rnn"), **only)
    [first] = alone["rows"]
    [second] = [r for r in after["rows"] if r["system"] == "rnn"]
    assert _same(first) == _same(second)
    weights = [
        torch.load(tmp_path / run / "models" / "isolated-rnn-seed0.pt", weights_only=True)
        for run in ("alone", "after")
    ]
    for name, tensor in weights[0]["model"]["weights"].items():
        assert torch.equal(tensor, weights[1]["model"]["weights"][name]), name


def test_a_seed_asked_for_later_trains_only_its_networks(synthetic, tmp_path, monkeypatch):
    train, test = synthetic
    asked = []
    real = experiment.train_systems

    def spy(*args, **kwargs):
        asked.append(list(args[6]))  # the (system, seed) pairs to train
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "train_systems", spy)
    only = {"tasks": ("isolated",), "settings": SMALL, "corpus": "synthetic", "words": DIGITS}
    first = run_speech(train, test, tmp_path, systems=("gmm", "rnn"), seeds=(0,), **only)
    both = run_speech(train, test, tmp_path, systems=("gmm", "rnn"), seeds=(0, 1), **only)
    assert asked == [[("gmm", None), ("rnn", 0)], [("rnn", 1)]]
    assert both["rows"][:2] == first["rows"]  # read back, not trained again
    assert [(r["system"], r["seed"]) for r in both["rows"]] == [
        ("gmm", None),
        ("rnn", 0),
        ("rnn", 1),
    ]
    rnn = [e for e in both["summary"] if (e["system"], e["metric"]) == ("rnn", "error_rate")]
    assert [e["seeds"] for e in rnn] == [2]


def test_seeds_are_refused_before_anything_is_written(synthetic, tmp_path):
    train, test = synthetic
    only = {"settings": SMALL, "corpus": "synthetic", "words": DIGITS, "tasks": ("isolated",)}
    for seeds, message in (
        ((), "one or more distinct"),
        ((1, 1), "one or more distinct"),
        ((-1,), "non-negative"),
    ):
        with pytest.raises(ValueError, match=message):
            run_speech(train, test, tmp_path / "run", seeds=seeds, **only)
    assert not (tmp_path / "run").exists()


def test_amp_and_average_train_every_network_and_are_recorded(synthetic, tmp_path, monkeypatch):
    real = experiment.default_settings
    asked = []

    def small(corpus, epochs=None, speed_factors=None, spec_augment=None, amp=False, average=0):
        asked.append((amp, average))
        systems = SMALL.systems
        engine = {"amp": amp, "average": average}
        trained = {k: replace(getattr(systems, k), **engine) for k in ("training", "ctc_training")}
        return replace(SMALL, systems=replace(systems, **trained))

    assert real("synthetic", amp=True).systems.ctc_training.amp
    assert real("fsdd", average=0.9).systems.training.average == 0.9
    monkeypatch.setattr(experiment, "default_settings", small)
    monkeypatch.setattr(experiment, "load_corpus", lambda corpus, data: (*synthetic, DIGITS))
    command = ["train-asr", "--tasks", "isolated", "--systems", "dnn", "--quiet", "--amp"]
    command += ["--average", "0.5"]
    threads = torch.get_num_threads()
    try:
        assert cli.main([*command, "--threads", "2", "--runs", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    results = read_results(tmp_path / "asr-synthetic")
    assert asked == [(True, 0.5)] and results["settings"]["systems"]["training"]["amp"] is True
    assert results["settings"]["systems"]["training"]["average"] == 0.5
    [row] = results["rows"]
    assert row["environment"]["threads"] == 2
    assert (tmp_path / "asr-synthetic" / "models" / "isolated-dnn-seed0.pt").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_networks_train_and_decode_on_the_device_the_gmm_on_the_cpu(synthetic, tmp_path):
    train, test = synthetic
    only = {"tasks": ("isolated",), "settings": SMALL, "corpus": "synthetic", "words": DIGITS}
    results = run_speech(
        train, test, tmp_path, systems=("gmm", "dnn", "rnn"), device="cuda", **only
    )
    devices = {r["system"]: r["environment"]["device"] for r in results["rows"]}
    assert devices == {"gmm": "cpu", "dnn": "cuda", "rnn": "cuda"}
    recognizer = Recognizer.load(tmp_path / "models" / "isolated-dnn-seed0.pt")  # on the CPU
    assert next(recognizer.network.parameters()).device.type == "cpu"


#: A ``hybrid`` command line whose train-asr reads a tiny synthetic corpus with tiny
#: settings: networks of many small batches (one utterance each), so an epoch lasts long
#: enough to be killed in.
_DRIVER = """
import sys

from hybrid.cli import main
from hybrid.speech import experiment
from hybrid.speech.corpus import synthetic_recordings, synthetic_split
from hybrid.speech.fsdd import DIGITS
from hybrid.speech.systems import SystemSettings
from hybrid.speech.train import AcousticTrainConfig


def settings(corpus, epochs=None, speed_factors=None, spec_augment=None, amp=False, average=0):
    training = AcousticTrainConfig(epochs=3, batch_size=1, amp=amp, average=average)
    systems = SystemSettings(
        word_states=2, silence_states=1, mixtures=1, gmm_iterations=1, viterbi_iterations=0,
        dnn={"hidden": 8, "layers": 1, "context": 1}, realign=False, training=training,
        phone_iterations=12, tree_leaves=80, tree_min_count=10,
    )
    return experiment.ExperimentSettings(systems=systems)


train, test = synthetic_split(synthetic_recordings(speakers=2, takes=7, seed=1))
experiment.default_settings = settings
experiment.load_corpus = lambda corpus, data: (train, test[::5], DIGITS)
raise SystemExit(main(sys.argv[1:]))
"""


def _driver(tmp_path: Path) -> tuple[Path, dict]:
    script = tmp_path / "hybrid_tiny.py"
    script.write_text(textwrap.dedent(_DRIVER))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return script, env


def _models(run_dir: Path) -> dict[str, dict]:
    return {
        p.name: torch.load(p, weights_only=True) for p in sorted((run_dir / "models").iterdir())
    }


def test_a_killed_train_asr_resumes_exactly(tmp_path):
    script, env = _driver(tmp_path)
    command = ["train-asr", "--tasks", "isolated", "--systems", "gmm", "dnn", "--quiet"]
    command += ["--save-every", "1", "--runs", str(tmp_path)]

    def run(name: str) -> subprocess.Popen:
        return start([str(script), *command, "--name", name], env)

    finish(run("straight"))
    checkpoint = tmp_path / "killed" / "checkpoints" / "isolated-official" / "dnn-pass1-seed0.ckpt"
    kill_within_first_epoch(run("killed"), checkpoint)  # about 50 steps an epoch
    assert read_results(tmp_path / "killed")["rows"] == []  # claimed, nothing finished
    finish(run("killed"))
    expected, resumed = read_results(tmp_path / "straight"), read_results(tmp_path / "killed")
    assert [_same(r) for r in resumed["rows"]] == [_same(r) for r in expected["rows"]]
    [history] = next(r for r in resumed["rows"] if r["system"] == "dnn")["history"]
    assert len(history["loss"]) == 3 and history["changes"] == []
    models, straight_models = _models(tmp_path / "killed"), _models(tmp_path / "straight")
    assert list(models) == list(straight_models) == ["isolated-dnn-seed0.pt", "isolated-gmm.pt"]
    assert_same(models, straight_models)


def test_a_train_asr_killed_in_a_gmm_stage_resumes_it_exactly(tmp_path):
    """Killed during the tied triphones' Viterbi passes (the whole-word GMM-HMM and the
    monophones done), the command run again resumes that stage after its last saved pass
    and ends with the models and results of an uninterrupted run."""
    script, env = _driver(tmp_path)
    command = ["train-asr", "--tasks", "isolated", "--systems", "gmm", "gmm-tri", "--quiet"]
    command += ["--runs", str(tmp_path)]

    def run(name: str) -> subprocess.Popen:
        return start([str(script), *command, "--name", name], env)

    finish(run("straight"))
    checkpoints = tmp_path / "killed" / "checkpoints" / "isolated-official"
    saved = kill_after(run("killed"), checkpoints / "gmm-tri.ckpt")
    assert saved["passes"] < saved["settings"]["iterations"] == 12  # died within the stage
    done = torch.load(checkpoints / "gmm-mono.ckpt", weights_only=True)
    assert done["passes"] == 12
    written = {p.name: p.stat().st_mtime_ns for p in checkpoints.glob("*.ckpt")}
    finish(run("killed"))
    # the finished stages were read back, not trained again; the killed one went on
    again = {p.name: p.stat().st_mtime_ns for p in checkpoints.glob("*.ckpt")}
    assert {k for k in written if again[k] != written[k]} == {"gmm-tri.ckpt"}
    expected, resumed = read_results(tmp_path / "straight"), read_results(tmp_path / "killed")
    assert [_same(r) for r in resumed["rows"]] == [_same(r) for r in expected["rows"]]
    models, straight_models = _models(tmp_path / "killed"), _models(tmp_path / "straight")
    assert list(models) == ["isolated-gmm-tri.pt", "isolated-gmm.pt"]
    assert_same(models, straight_models)


def test_torchrun_trains_the_comparison_with_two_processes(tmp_path):
    script, env = _driver(tmp_path)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", "29563", str(script), "train-asr", "--tasks", "isolated"]
    command += ["--systems", "gmm", "dnn", "--quiet", "--runs", str(tmp_path), "--name", "two"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = read_results(tmp_path / "two")
    assert sorted(r["system"] for r in results["rows"]) == ["dnn", "gmm"]
    assert [r["environment"]["processes"] for r in results["rows"]] == [2, 2]
    assert result.stdout.count("| GMM-HMM |") == 1  # one process prints
    assert result.stdout.count("SYNTHETIC") == 1
    models = sorted(p.name for p in (tmp_path / "two" / "models").iterdir())
    assert models == ["isolated-dnn-seed0.pt", "isolated-gmm.pt"]
    log = tmp_path / "two" / "checkpoints" / "isolated-official" / "dnn-pass1-seed0.log"
    assert len(log.read_text().splitlines()) == 3  # one line per epoch, from one process
