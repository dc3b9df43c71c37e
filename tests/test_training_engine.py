"""The training engine on a toy task: selection, patience, schedules, averaging, exact resume
(also after SIGKILL), refused resumes, random states, data parallelism and mixed precision."""

from __future__ import annotations

import math
import os
import random
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from processes import finish, kill_within_first_epoch, start
from torch import nn

from hybrid.training import History, Task, TrainConfig, distributed, train
from hybrid.training.randomness import random_states, restore_random_states, seed_everything

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ToyConfig:
    inputs: int = 3
    dropout: float = 0.0


class Toy(nn.Module):
    """A linear regressor with dropout (draws from torch's global generator)."""

    def __init__(self, config: ToyConfig = ToyConfig()) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.inputs, 1)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.linear(self.dropout(x)).squeeze(-1)


def toy_data(count: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 3, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.1 * torch.randn(count, generator=generator)
    return x, y


class ToyTask(Task):
    """Squared error summed over items; the development score is minus the dev MSE, or a
    scripted score per epoch; the step also draws noise from every generator it is given."""

    kind = "tagger checkpoint"

    def __init__(self, model, config, data=None, dev=None, scripted=None, draw=False):
        self.model, self.config = model, config
        self.x, self.y = data if data is not None else toy_data()
        self.dev, self.scripted, self.draw = dev, scripted, draw
        self.evaluated = 0

    def plan(self, generator):
        order = torch.randperm(len(self.x), generator=generator).tolist()
        size = self.config.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def loss(self, batch, generator):
        x, y = self.x[batch], self.y[batch]
        if self.draw:  # every random source a step may use
            x = x + 1e-3 * torch.randn(x.shape, generator=generator)
            shift = random.random() + float(np.random.rand()) + float(torch.rand(()))  # noqa: NPY002
            x = x + 1e-3 * shift
        return ((self.model(x) - y) ** 2).sum(), len(batch)

    def evaluate(self, model):
        self.evaluated += 1
        if self.scripted is not None:
            return {"dev_score": self.scripted[self.evaluated - 1]}
        if self.dev is None:
            return None
        x, y = self.dev
        with torch.no_grad():
            return {"dev_mse": float(((model(x) - y) ** 2).mean())}

    def score(self, metrics):
        if "dev_score" in metrics:
            return (metrics["dev_score"],)
        return (-metrics["dev_mse"],)


def quiet(task, checkpoint=None, **options):
    return train(task, checkpoint, progress=False, log=lambda _: None, **options)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    for (key, x), y in zip(a.items(), b.values(), strict=True):
        assert torch.equal(x, y), key


def fresh(seed=0, config=ToyConfig()):
    torch.manual_seed(seed)
    return Toy(config)


CONFIG = TrainConfig(epochs=4, batch_size=8, lr=0.05, optimizer="sgd", clip=0)


def test_training_fits_and_keeps_the_best_epoch():
    dev = toy_data(20, seed=1)
    model = fresh()
    history = quiet(ToyTask(model, replace(CONFIG, epochs=6), dev=dev))
    assert len(history) == 6 and history.loss[-1] < history.loss[0]
    assert history.best_epoch == 1 + int(np.argmin(history.dev_mse))
    with torch.no_grad():
        kept = float(((model(dev[0]) - dev[1]) ** 2).mean())
    assert kept == pytest.approx(min(history.dev_mse), rel=1e-6)  # the best weights are kept
    assert history.lr == [0.05] * 6 and len(history.seconds) == 6


def test_the_first_of_equal_scores_is_kept_and_nan_never_wins():
    history = quiet(ToyTask(fresh(), CONFIG, scripted=[0.5, 0.7, 0.7, 0.6]))
    assert history.best_epoch == 2
    history = quiet(ToyTask(fresh(), CONFIG, scripted=[math.nan, 0.1, math.nan, 0.0]))
    assert history.best_epoch == 2


def test_patience_stops_after_epochs_without_improvement():
    config = replace(CONFIG, epochs=10, patience=2)
    history = quiet(ToyTask(fresh(), config, scripted=[0.1, 0.5, 0.4, 0.5, 0.3, 0.9, 0.9]))
    assert len(history) == 4 and history.best_epoch == 2  # epochs 3 and 4 are no better


def test_without_development_data_the_last_epoch_is_kept():
    model = fresh()
    history = quiet(ToyTask(model, replace(CONFIG, epochs=3, patience=1)))
    assert len(history) == 3 and history.best_epoch == 3
    assert set(history.columns) == {"loss", "lr", "seconds"}


def test_step_decay_of_the_learning_rate():
    config = replace(CONFIG, epochs=5, anneal_every=2, anneal_factor=0.5)
    history = quiet(ToyTask(fresh(), config))
    assert history.lr == [0.05, 0.05, 0.025, 0.025, 0.0125]


def test_one_step_is_plain_sgd_on_the_mean_loss():
    """One epoch of one batch with SGD: the update is -lr times the gradient of the mean."""
    x, y = toy_data(8)
    model, expected = fresh(), fresh()
    quiet(ToyTask(model, replace(CONFIG, epochs=1), data=(x, y)))
    loss = ((expected(x) - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= 0.05 * p.grad
    for a, b in zip(model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_sum_reduction_steps_on_the_sum():
    x, y = toy_data(8)
    model, expected = fresh(), fresh()
    task = ToyTask(model, replace(CONFIG, epochs=1, lr=0.01), data=(x, y))
    task.reduction = "sum"
    quiet(task)
    ((expected(x) - y) ** 2).sum().backward()
    with torch.no_grad():
        for p in expected.parameters():
            p -= 0.01 * p.grad
    for a, b in zip(model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_weight_average_is_kept():
    model = fresh()
    quiet(ToyTask(model, replace(CONFIG, epochs=2, average=0.9)))
    raw = fresh()
    quiet(ToyTask(raw, replace(CONFIG, epochs=2)))
    assert not torch.equal(model.linear.weight, raw.linear.weight)


@pytest.mark.parametrize("save_every", [0, 1, 3])
def test_resume_is_exact(tmp_path, save_every):
    """Stopped after any epoch or step, a run resumes to the weights and history of a run that
    was never stopped, with dropout and draws from every random generator."""
    config = replace(CONFIG, epochs=3, optimizer="adam", clip=1.0, average=0.5)
    model_config = ToyConfig(dropout=0.3)
    dev = toy_data(10, seed=1)
    straight = fresh(config=model_config)
    whole = quiet(ToyTask(straight, config, dev=dev, draw=True))

    class Stop(Exception):
        pass

    checkpoint = tmp_path / "run.pt"
    stops = 0
    for _ in range(20):
        resumed = fresh(config=model_config)
        task = ToyTask(resumed, config, dev=dev, draw=True)
        calls, limit = [0], 2 + 3 * stops  # stop after a few more steps each time
        loss = task.loss

        def stopping(batch, generator, loss=loss, calls=calls, limit=limit):
            calls[0] += 1
            if calls[0] > limit:
                raise Stop
            return loss(batch, generator)

        task.loss = stopping
        try:
            history = quiet(task, checkpoint, save_every=save_every)
            break
        except Stop:
            stops += 1
    assert stops >= 2
    assert history.to_dict() | {"seconds": None} == whole.to_dict() | {"seconds": None}
    assert_same_weights(weights(resumed), weights(straight))


def test_resume_with_other_settings_is_refused_naming_them(tmp_path):
    checkpoint = tmp_path / "run.pt"
    quiet(ToyTask(fresh(), replace(CONFIG, epochs=1)), checkpoint)
    with pytest.raises(ValueError, match=r"run.pt.*training\.lr: 0.05 there, 0.1 asked"):
        quiet(ToyTask(fresh(), replace(CONFIG, epochs=2, lr=0.1)), checkpoint)
    with pytest.raises(ValueError, match=r"model\.dropout"):
        quiet(ToyTask(fresh(config=ToyConfig(dropout=0.5)), CONFIG), checkpoint)
    history = quiet(ToyTask(fresh(), replace(CONFIG, epochs=2)), checkpoint)
    assert len(history) == 2
    assert history.changes == [{"after_epoch": 1, "changed": {"training.epochs": [1, 2]}}]
    with pytest.raises(ValueError, match="epochs"):  # fewer epochs than trained
        quiet(ToyTask(fresh(), replace(CONFIG, epochs=1)), checkpoint)


def test_truncated_checkpoint_is_named(tmp_path):
    checkpoint = tmp_path / "run.pt"
    quiet(ToyTask(fresh(), replace(CONFIG, epochs=1)), checkpoint)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"run.pt is not a file written by hybrid: truncated"):
        quiet(ToyTask(fresh(), CONFIG), checkpoint)


def test_a_checkpoint_of_an_older_loop_is_refused_naming_it(tmp_path):
    checkpoint = tmp_path / "run.pt"
    quiet(ToyTask(fresh(), replace(CONFIG, epochs=1)), checkpoint)
    state = torch.load(checkpoint, weights_only=True)
    del state["order"], state["ranks"]
    torch.save(state, checkpoint)
    with pytest.raises(ValueError, match=r"run.pt is a checkpoint of an older version"):
        quiet(ToyTask(fresh(), CONFIG), checkpoint)


def test_log_lines_go_to_a_file_beside_the_checkpoint(tmp_path):
    lines = []
    train(
        ToyTask(fresh(), replace(CONFIG, epochs=2)),
        tmp_path / "run.pt",
        progress=False,
        log=lines.append,
    )
    logged = (tmp_path / "run.log").read_text().splitlines()
    assert logged == lines and len(lines) == 2 and lines[1].startswith("tagger epoch 2: loss ")


def test_random_states_round_trip_through_a_weights_only_load(tmp_path):
    seed_everything(3)
    states = random_states()
    torch.save(states, tmp_path / "states.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))  # noqa: NPY002
    seed_everything(4)
    restore_random_states(torch.load(tmp_path / "states.pt", weights_only=True))
    again = (random.random(), float(np.random.rand()), float(torch.rand(())))  # noqa: NPY002
    assert again == expected


def test_settings_are_validated():
    for bad in (
        {"epochs": 0},
        {"batch_size": 1.5},
        {"lr": 0},
        {"optimizer": "adagrad"},
        {"average": 1.0},
        {"patience": -1},
        {"anneal_factor": 0},
        {"clip": -1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="save_every"):
        quiet(ToyTask(fresh(), CONFIG), save_every=-1)


def test_a_mixed_precision_checkpoint_records_its_precision(tmp_path):
    quiet(ToyTask(fresh(), replace(CONFIG, epochs=1, amp=True)), tmp_path / "run.pt")
    saved = torch.load(tmp_path / "run.pt", weights_only=True)
    assert saved["settings"]["precision"] == "bfloat16"
    plain = tmp_path / "plain.pt"
    quiet(ToyTask(fresh(), replace(CONFIG, epochs=1)), plain)
    assert "precision" not in torch.load(plain, weights_only=True)["settings"]


def test_mixed_precision_on_cpu_trains():
    model = fresh()
    history = quiet(ToyTask(model, replace(CONFIG, epochs=3, amp=True)))
    assert all(math.isfinite(v) for v in history.loss) and history.loss[-1] < history.loss[0]
    assert model.linear.weight.dtype == torch.float32


def test_history_round_trips_as_plain_data():
    history = History()
    history.append({"loss": 1.0, "dev": 0.5})
    history.append({"loss": 0.5, "dev": 0.6})
    assert History.from_dict(history.to_dict()) == history
    assert history.loss == history["loss"] == [1.0, 0.5] and len(history) == 2
    with pytest.raises(AttributeError, match="no column 'f1'"):
        history.f1  # noqa: B018


# -- two processes --------------------------------------------------------------------------


def _two_process_worker(rank, port, path, errors):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # different weights everywhere: the first process's win
        model = Toy()
        x, y = toy_data(9)  # an odd batch: 5 items on one process, 4 on the other
        quiet(ToyTask(model, replace(CONFIG, epochs=1, batch_size=9), data=(x, y)))
        if rank == 0:
            torch.save(weights(model), path)
    except Exception as error:  # reported to the parent, which fails the test
        errors.put(f"rank {rank}: {error!r}")
    finally:
        dist.destroy_process_group()


def test_two_processes_take_the_step_of_one_on_the_whole_batch(tmp_path):
    errors = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_two_process_worker, args=(29531, tmp_path / "w.pt", errors), nprocs=2, join=True)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    single = fresh(0)
    quiet(ToyTask(single, replace(CONFIG, epochs=1, batch_size=9), data=toy_data(9)))
    two = torch.load(tmp_path / "w.pt", weights_only=True)
    for key, value in weights(single).items():
        torch.testing.assert_close(two[key], value, rtol=1e-6, atol=1e-7)


def test_single_process_helpers_are_no_ops():
    model = nn.Linear(2, 2)
    model.weight.grad = torch.ones_like(model.weight)
    distributed.sum_gradients(model)
    distributed.check_in_sync(model)
    assert distributed.world() == (0, 1) and distributed.is_main()
    assert distributed.sum_values(1.5, 2) == [1.5, 2.0] and distributed.all_gather(3) == [3]
    assert torch.equal(model.weight.grad, torch.ones_like(model.weight))


# -- a real process, killed -----------------------------------------------------------------

_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {tests!r})
from test_training_engine import ToyTask, Toy, ToyConfig, toy_data, CONFIG, weights
from dataclasses import replace
from hybrid.training import train

class Slow(ToyTask):
    def loss(self, batch, generator):
        time.sleep(0.02)
        return super().loss(batch, generator)

torch.manual_seed(0)
model = Toy(ToyConfig(dropout=0.3))
config = replace(CONFIG, epochs=3, batch_size=2, optimizer="adam")
history = train(Slow(model, config, dev=toy_data(10, seed=1), draw=True), sys.argv[1],
                progress=False, save_every=1)
torch.save({{"weights": weights(model), "history": history.to_dict()}}, sys.argv[2])
"""


def test_a_killed_process_resumes_exactly(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_SCRIPT.format(tests=str(ROOT / "tests"))))

    def run(checkpoint, out):
        return start([str(script), str(checkpoint), str(out)])

    finish(run(tmp_path / "straight.pt", tmp_path / "straight.out"))
    checkpoint = tmp_path / "killed.pt"
    kill_within_first_epoch(run(checkpoint, tmp_path / "killed.out"), checkpoint)
    finish(run(checkpoint, tmp_path / "killed.out"))
    a = torch.load(tmp_path / "straight.out", weights_only=True)
    b = torch.load(tmp_path / "killed.out", weights_only=True)
    assert_same_weights(b["weights"], a["weights"])
    assert b["history"] | {"seconds": None} == a["history"] | {"seconds": None}
