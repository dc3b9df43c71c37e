"""The CUDA path equals the CPU path (skipped where no GPU is visible; CI has none)."""

from __future__ import annotations

import pytest
import torch

from hybrid import CRF, StructuredSVM
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.schemes import allowed_transitions
from hybrid.tagging.synthetic import airline_splits
from hybrid.tagging.train import TrainConfig, fit, load_tagger, predict_tags, save_tagger

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
        TrainConfig(epochs=2, batch_size=16, lr=1e-2),
        checkpoint=tmp_path / "state.pt",
        progress=False,
        log=lambda _: None,
    )
    assert history.loss[1] < history.loss[0]
    on_gpu = predict_tags(model, vocabulary, splits["test"])
    save_tagger(tmp_path / "tagger.pt", model, vocabulary)
    loaded, loaded_vocabulary = load_tagger(tmp_path / "tagger.pt")
    assert next(loaded.parameters()).device.type == "cpu"
    assert predict_tags(loaded, loaded_vocabulary, splits["test"]) == on_gpu
