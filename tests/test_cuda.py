"""The CUDA path equals the CPU path (skipped where no GPU is visible; CI has none)."""

from __future__ import annotations

import pytest
import torch

from hybrid import CRF, StructuredSVM
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.schemes import allowed_transitions
from hybrid.tagging.synthetic import airline_splits
from hybrid.tagging.train import TaggerTrainConfig, fit, predict_tags

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TAGS = ["O"] + [f"{p}-{c}" for c in "ABCDEFGHIJK" for p in "BI"]
F64 = {"rtol": 1e-9, "atol": 1e-9}


@pytest.mark.parametrize(("batch", "steps"), [(1, 1), (16, 30), (7, 300)])
def test_chain_layers_agree_on_cpu_and_cuda(batch, steps):
    torch.manual_seed(steps)
    num_tags = len(TAGS)
    emissions = torch.randn(batch, steps, num_tags, dtype=torch.float64) * 3
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[0] = steps
    crf = CRF(num_tags, allowed_transitions("BIO", TAGS)).double()
    torch.nn.init.normal_(crf.transitions)
    svm = StructuredSVM(num_tags, allowed_transitions("BIO", TAGS)).double()
    gold = crf.decode(emissions, lengths)[0].clamp_min(0)
    results = {}
    for device in ("cpu", "cuda"):
        crf.to(device)
        crf.zero_grad()
        scores = emissions.to(device).clone().requires_grad_()
        args = (gold.to(device), lengths.to(device))
        nll = crf.nll(scores, *args, reduction="sum")
        nll.backward()
        paths, best = crf.decode(scores.detach(), lengths.to(device))
        nbest, nbest_scores = crf.decode(scores.detach(), lengths.to(device), k=3)
        marginals = crf.marginals(scores.detach(), lengths.to(device))
        hinge = svm.to(device).loss(scores.detach(), *args)
        results[device] = [
            t.detach().cpu()
            for t in (nll, scores.grad, crf.transitions.grad, best, nbest_scores, marginals, hinge)
        ] + [paths.cpu(), nbest.cpu()]
    *floats, paths, nbest = results["cuda"]
    *expected_floats, expected_paths, expected_nbest = results["cpu"]
    for got, expected in zip(floats, expected_floats, strict=True):
        torch.testing.assert_close(got, expected, equal_nan=True, **F64)
    assert torch.equal(paths, expected_paths) and torch.equal(nbest, expected_nbest)


def test_tagger_trains_on_cuda_and_loads_on_cpu(tmp_path):
    splits = airline_splits(train=64, valid=16, test=16)
    vocabulary = TaggingVocabulary.build(splits["train"])
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(head="crf", word_dim=16, hidden=16), vocabulary).cuda()
    history = fit(
        model,
        vocabulary,
        splits["train"],
        splits["valid"],
        TaggerTrainConfig(epochs=2, batch_size=16, lr=1e-2),
        checkpoint=tmp_path / "state.pt",
        progress=False,
        log=lambda _: None,
    )
    assert history.loss[1] < history.loss[0]
    on_gpu = predict_tags(model, vocabulary, splits["test"])
    model.save(tmp_path / "tagger.pt")
    loaded = Tagger.load(tmp_path / "tagger.pt")
    assert next(loaded.parameters()).device.type == "cpu"
    assert predict_tags(loaded, loaded.vocabulary, splits["test"]) == on_gpu
    back = Tagger.load(tmp_path / "tagger.pt", device="cuda")
    assert all(p.device.type == "cuda" for p in back.parameters()) and not back.training
    assert predict_tags(back, back.vocabulary, splits["test"]) == on_gpu


def _tree_results(device: str) -> list[torch.Tensor]:
    """The tree programs' outputs on ``device``, on fixed float64 inputs (back on the CPU)."""
    from hybrid.structured import cky, tree_hinge, tree_log_partition, tree_marginals

    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 31, 31, 7, generator=generator, dtype=torch.float64) * 2
    lengths = torch.tensor([30, 1, 2, 17, 30, 9])
    scores, lengths = scores.to(device).requires_grad_(), lengths.to(device)
    log_z = tree_log_partition(scores, lengths)
    log_z.sum().backward()
    marginals = tree_marginals(scores.detach(), lengths)
    spans, best = cky(scores.detach(), lengths)
    hinge = tree_hinge(scores.detach(), spans, lengths)  # the best tree as gold
    outputs = (log_z.detach(), scores.grad, marginals, spans, best, hinge)
    return [t.cpu() for t in outputs]


def test_tree_programs_agree_on_cpu_and_cuda():
    cpu, cuda = _tree_results("cpu"), _tree_results("cuda")
    for got, expected in zip(cuda, cpu, strict=True):
        if got.is_floating_point():
            torch.testing.assert_close(got, expected, **F64)
        else:
            assert torch.equal(got, expected)


def test_chart_parser_trains_on_cuda_and_loads_on_cpu(tmp_path):
    from dataclasses import replace

    from hybrid.parsing import BaseParser
    from hybrid.parsing.data import ParsingVocabulary
    from hybrid.parsing.experiment import default_settings, new_parser
    from hybrid.parsing.synthetic import synthetic_trees
    from hybrid.parsing.train import ParserTrainConfig, fit, inputs_of

    trees = synthetic_trees(120, seed=2)
    base = default_settings("synthetic", 2)
    settings = replace(base, model={**base.model, "hidden": 16, "word_dim": 12}, span_hidden=16)
    for objective in ("crf", "ssvm"):
        torch.manual_seed(0)
        parser = new_parser(ParsingVocabulary.build(trees), settings, True, f"chart-{objective}")
        parser.model.cuda()
        config = ParserTrainConfig(epochs=2, batch_size=16, lr=3e-3)
        history = fit(parser, trees[:100], trees[100:], config, progress=False)
        assert history.loss[1] < history.loss[0]
        sentences, tags = inputs_of(trees[100:])
        on_gpu = [parse.tree for parse in parser.parse(sentences, tags, mode="mbr")]
        parser.save(tmp_path / f"{objective}.pt")
        loaded = BaseParser.load(tmp_path / f"{objective}.pt")
        assert next(loaded.model.parameters()).device.type == "cpu"
        assert [parse.tree for parse in loaded.parse(sentences, tags, mode="mbr")] == on_gpu


def test_acoustic_model_trains_on_cuda(tmp_path):
    from hybrid.speech.acoustic import AcousticConfig, build
    from hybrid.speech.augment import SpecAugment
    from hybrid.speech.train import AcousticTrainConfig, fit_acoustic

    generator = torch.Generator().manual_seed(0)
    targets = [torch.randint(0, 3, (n,), generator=generator) for n in (30, 25, 40, 35) * 4]
    features = [torch.nn.functional.one_hot(t, 6).float() * 3 for t in targets]
    torch.manual_seed(0)
    model = build(AcousticConfig(kind="bilstm", input_dim=6, num_outputs=3, hidden=16)).cuda()
    masks = SpecAugment(time_width=4, feature_width=1)
    config = AcousticTrainConfig(epochs=2, batch_size=4, lr=0.02, spec_augment=masks)
    history = fit_acoustic(model, features, targets, config, tmp_path / "state.pt")
    assert history.loss[1] < history.loss[0] and next(model.parameters()).is_cuda
