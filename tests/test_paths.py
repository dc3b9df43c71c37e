"""Padded decoder output converted to lists, against pytorch-crf's list output."""

from __future__ import annotations

import pytest
import torch
import torchcrf

from hybrid import CRF
from hybrid.structured import paths_to_lists


def test_lists_equal_pytorch_crf_decode():
    generator = torch.Generator().manual_seed(5)
    peer = torchcrf.CRF(6, batch_first=True)
    ours = CRF.from_pytorch_crf(peer)
    emissions = torch.randn(7, 12, 6, generator=generator)
    lengths = torch.tensor([12, 1, 5, 12, 3, 8, 2])
    mask = torch.arange(12)[None, :] < lengths[:, None]
    paths, _ = ours.decode(emissions, lengths)
    assert paths_to_lists(paths) == peer.decode(emissions, mask)


def test_kbest_lists_drop_padding_and_missing_ranks():
    crf = CRF(2)
    emissions = torch.randn(2, 2, 2)
    paths, scores = crf.decode(emissions, torch.tensor([2, 1]), k=5)
    lists = paths_to_lists(paths)
    assert [len(row) for row in lists] == [5, 5]
    assert [len(p) for p in lists[0]] == [2, 2, 2, 2, 0]  # 4 paths of length 2 exist
    assert [len(p) for p in lists[1]] == [1, 1, 0, 0, 0]
    assert torch.isneginf(scores[0, 4]) and torch.isneginf(scores[1, 2:]).all()


def test_rejects_other_shapes():
    with pytest.raises(ValueError, match="paths"):
        paths_to_lists(torch.zeros(3, dtype=torch.long))
