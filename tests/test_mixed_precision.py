"""Under mixed precision (`torch.autocast`, bfloat16 on CPU) the structured layers run their
dynamic programs in float32: the same values as on float32 scores rounded the same way."""

from __future__ import annotations

import pytest
import torch

from hybrid.ctc.loss import ctc_loss
from hybrid.nn.crf import CRF
from hybrid.structured.tree import cky, tree_log_partition


@pytest.fixture
def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _half_scores(*shape):
    """bfloat16 scores from a linear layer under autocast, as a network makes them."""
    torch.manual_seed(0)
    features = torch.randn(*shape)
    layer = torch.nn.Linear(shape[-1], shape[-1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = layer(features)
    assert scores.dtype == torch.bfloat16
    return scores.detach()


def test_crf_likelihood_and_decoding(autocast):
    crf = CRF(5)
    emissions = _half_scores(4, 30, 5)
    tags, lengths = torch.randint(0, 5, (4, 30)), torch.tensor([30, 20, 10, 1])
    with autocast:
        nll = crf.nll(emissions, tags, lengths)
        paths, scores = crf.decode(emissions, lengths)
    assert nll.dtype == torch.float32
    torch.testing.assert_close(nll, crf.nll(emissions.float(), tags, lengths), rtol=0, atol=0)
    expected_paths, expected_scores = crf.decode(emissions.float(), lengths)
    assert torch.equal(paths, expected_paths) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, expected_scores)


def test_tree_programs(autocast):
    scores = _half_scores(3, 7, 7, 4)
    lengths = torch.tensor([6, 4, 1])
    with autocast:
        partition = tree_log_partition(scores, lengths)
        best, spans = cky(scores, lengths)
    assert partition.dtype == torch.float32
    torch.testing.assert_close(partition, tree_log_partition(scores.float(), lengths))
    expected_best, expected_spans = cky(scores.float(), lengths)
    torch.testing.assert_close(best, expected_best)
    assert torch.equal(spans, expected_spans)


def test_ctc_loss(autocast):
    logits = _half_scores(2, 20, 6)
    targets, lengths = torch.tensor([[1, 2, 3], [4, 4, -1]]), torch.tensor([20, 15])
    with autocast:
        log_probs = logits.log_softmax(-1)
        loss = ctc_loss(log_probs, targets, lengths, blank=0)
    assert loss.dtype == torch.float32
    expected = torch.nn.functional.ctc_loss(  # PyTorch's, on the same values in float32
        log_probs.float().transpose(0, 1), targets.clamp_min(0), lengths, torch.tensor([3, 2])
    )
    torch.testing.assert_close(loss, expected)
