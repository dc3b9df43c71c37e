"""Data-parallel training with two processes over gloo: the helpers and a torchrun run."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from hybrid.training import distributed

ROOT = Path(__file__).resolve().parents[1]


def _worker(rank: int, size: int, port: int, errors) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        torch.manual_seed(rank)  # different initial weights on purpose
        model = nn.Linear(3, 2)
        distributed.broadcast_parameters(model)
        torch.manual_seed(0)
        reference = nn.Linear(3, 2)
        assert torch.equal(model.weight, reference.weight)  # rank 0's weights everywhere
        distributed.check_in_sync(model)
        model.weight.grad = torch.full_like(model.weight, float(rank))
        model.bias.grad = None  # an unused parameter counts as a zero gradient
        distributed.sum_gradients(model)
        assert torch.equal(model.weight.grad, torch.full_like(model.weight, 1.0))  # 0 + 1
        assert torch.equal(model.bias.grad, torch.zeros_like(model.bias))
        assert distributed.sum_values(rank, 2.5) == [1.0, 5.0]
        assert distributed.all_gather({"rank": rank}) == [{"rank": 0}, {"rank": 1}]
        with torch.no_grad():
            model.weight[0, 0] += rank
        with pytest.raises(RuntimeError, match="different models"):
            distributed.check_in_sync(model)
    except Exception as error:  # reported to the parent, which fails the test
        errors.put(f"rank {rank}: {error!r}")
    finally:
        dist.destroy_process_group()


def test_helpers_with_two_processes():
    errors = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_worker, args=(2, 29517, errors), nprocs=2, join=True)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found


DOMAIN_CASES = {
    "tagging-crf": 29541,
    "parsing-attention": 29542,
    "parsing-chart-crf": 29543,
    "qa-sum": 29544,
    "qa-mean": 29545,
    "speech-dnn": 29546,
    "speech-ctc": 29547,
}

#: Training items of every case: odd, so that the two processes' shares differ in size.
ITEMS = 41

# Plain SGD without clipping and a learning rate of 1: the one step moves each weight by
# minus its gradient, so equal weights after it mean equal gradients (to the tolerance).
# Every draw is off (dropout, word dropout, memory noise, SpecAugment), so the two runs
# differ only in how the batch is split.
STEP = {"epochs": 1, "batch_size": ITEMS, "lr": 1.0, "optimizer": "sgd", "clip": 0.0}


def _one_step(case: str) -> dict[str, Tensor]:
    """Train the tiny model of ``case`` for one epoch of one step (over every training item)
    in this process's world, and return its weights."""
    domain = case.split("-")[0]
    quiet = {"progress": False, "log": lambda _: None}
    if domain == "tagging":
        from hybrid.tagging.batching import TaggingVocabulary
        from hybrid.tagging.model import Tagger, TaggerConfig
        from hybrid.tagging.synthetic import airline_splits
        from hybrid.tagging.train import TaggerTrainConfig, fit

        splits = airline_splits(train=ITEMS, valid=9, test=1, seed=3)
        vocabulary = TaggingVocabulary.build(splits["train"])
        sizes = {"word_dim": 8, "hidden": 8, "char_dim": 4, "char_out": 4, "feature_dim": 4}
        torch.manual_seed(0)
        model = Tagger(TaggerConfig(head="crf", dropout=0.0, **sizes), vocabulary)
        config = TaggerTrainConfig(**STEP)
        fit(model, vocabulary, splits["train"], splits["valid"], config, **quiet)
    elif domain == "parsing":
        from hybrid.parsing.data import ParsingVocabulary
        from hybrid.parsing.experiment import default_settings, new_parser
        from hybrid.parsing.synthetic import synthetic_trees
        from hybrid.parsing.train import ParserTrainConfig, fit

        trees = synthetic_trees(ITEMS + 9, seed=3)
        base = default_settings("synthetic", 1)
        sizes = {**base.model, "hidden": 12, "word_dim": 8, "target_dim": 8, "dropout": 0.0}
        settings = replace(base, model=sizes, span_hidden=8)
        torch.manual_seed(0)
        vocabulary = ParsingVocabulary.build(trees)
        parser = new_parser(vocabulary, settings, False, case.removeprefix("parsing-"))
        model = parser.model
        fit(parser, trees[:ITEMS], trees[ITEMS:], ParserTrainConfig(**STEP), **quiet)
    elif domain == "qa":
        from hybrid.qa.batching import QAVocabulary, collate
        from hybrid.qa.model import Reader, ReaderConfig
        from hybrid.qa.synthetic import generate_stories
        from hybrid.qa.train import QATrainConfig, fit

        train, valid = generate_stories(ITEMS, seed=0), generate_stories(9, seed=1)
        vocabulary = QAVocabulary.build(train)
        sizes = {"dim": 8, "hidden": 8, "sentence_size": 6}
        torch.manual_seed(0)
        model = Reader(ReaderConfig(kind="memory", noise=0.0, dropout=0.0, **sizes), vocabulary)
        reduction = case.removeprefix("qa-")  # "sum", the default, or "mean"
        config = QATrainConfig(**STEP, reduction=reduction, linear_start=False)
        fit(model, collate(train, vocabulary), collate(valid, vocabulary), config, **quiet)
    else:
        from hybrid.speech.acoustic import AcousticConfig, build
        from hybrid.speech.train import AcousticTrainConfig, fit_acoustic

        ctc = case == "speech-ctc"
        generator = torch.Generator().manual_seed(0)
        lengths = torch.randint(4, 12, (ITEMS + 5,), generator=generator).tolist()
        features = [torch.randn(n, 3, generator=generator) for n in lengths]
        if ctc:  # 1-3 symbols of 3, the blank being symbol 3
            symbols = torch.randint(1, 4, (len(lengths),), generator=generator).tolist()
            targets = [torch.randint(0, 3, (k,), generator=generator) for k in symbols]
            sizes = {"kind": "bilstm", "num_outputs": 4, "hidden": 6, "layers": 1}
        else:  # frame targets of 3 pdfs, some frames without one (-1)
            targets = [torch.randint(-1, 3, (n,), generator=generator) for n in lengths]
            sizes = {"kind": "dnn", "num_outputs": 3, "hidden": 8, "layers": 1, "context": 1}
        torch.manual_seed(0)
        model = build(AcousticConfig(input_dim=3, dropout=0.0, **sizes))
        fit_acoustic(
            model,
            features[:ITEMS],
            targets[:ITEMS],
            AcousticTrainConfig(**STEP, spec_augment=None),
            ctc_blank=3 if ctc else None,
            valid=(features[ITEMS:], targets[ITEMS:]),
        )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _domain_worker(rank: int, size: int, case: str, out: Path, errors) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(DOMAIN_CASES[case]))
    dist.init_process_group("gloo", rank=rank, world_size=size)
    try:
        weights = _one_step(case)
        if rank == 0:
            torch.save(weights, out)
    except Exception as error:  # reported to the parent, which fails the test
        errors.put(f"rank {rank}: {error!r}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("case", list(DOMAIN_CASES))
def test_two_processes_take_the_same_step_in_every_domain(case, tmp_path):
    """Two processes, each with every other item of the one batch (21 and 20 of 41), end
    with the weights of one process that took the same step on the whole batch: the domain's
    `Task.loss` splits into totals and units that the engine sums back exactly."""
    errors = mp.get_context("spawn").SimpleQueue()
    out = tmp_path / "two.pt"
    mp.spawn(_domain_worker, args=(2, case, out, errors), nprocs=2, join=True)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    two = torch.load(out, weights_only=True)
    one = _one_step(case)
    assert two.keys() == one.keys()
    for key, value in one.items():
        torch.testing.assert_close(
            two[key], value, atol=1e-5, rtol=1e-4, msg=lambda m, key=key: f"{key}: {m}"
        )
