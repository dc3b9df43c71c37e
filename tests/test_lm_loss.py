"""The auxiliary next/previous-word loss against a per-token loop, and its configuration."""

from __future__ import annotations

import pytest
import torch

from hybrid.nn.lm import NeighbourWordLoss
from hybrid.tagging.model import TaggerConfig


def test_equals_a_loop_over_every_token():
    torch.manual_seed(0)
    hidden, num_words, unk = 3, 6, 1
    loss_fn = NeighbourWordLoss(hidden, num_words, unk).double()
    lengths = [4, 1, 3]
    words = torch.randint(2, 9, (3, 4))  # indices >= 6 stand for unknown words
    states = torch.randn(3, 4, 2 * hidden, dtype=torch.float64)
    expected = 0.0
    for b, n in enumerate(lengths):
        target = [w if w < num_words else unk for w in words[b].tolist()]
        for t in range(n):
            if t + 1 < n:
                logp = loss_fn.next_word(states[b, t, :hidden]).log_softmax(-1)
                expected -= logp[target[t + 1]]
            if t > 0:
                logp = loss_fn.previous_word(states[b, t, hidden:]).log_softmax(-1)
                expected -= logp[target[t - 1]]
    got = loss_fn(states, words, torch.tensor(lengths))
    torch.testing.assert_close(got, expected / 3)


def test_padding_and_single_words_contribute_nothing():
    loss_fn = NeighbourWordLoss(2, 5, 1)
    states = torch.randn(2, 3, 4)
    words = torch.tensor([[2, 3, 4], [2, 0, 0]])
    alone = loss_fn(states[:1], words[:1], torch.tensor([3]))
    both = loss_fn(states, words, torch.tensor([3, 1]))
    torch.testing.assert_close(both, alone / 2)  # the one-word sentence adds no term


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 5, 1), "hidden"), ((2, 0, 0), "num_words"), ((2, 5, 5), "unk_index")],
)
def test_constructor_errors(args, message):
    with pytest.raises(ValueError, match=message):
        NeighbourWordLoss(*args)


def test_states_shape_error():
    with pytest.raises(ValueError, match=r"states must have shape \(B, T, 4\)"):
        NeighbourWordLoss(2, 5, 1)(torch.zeros(2, 3, 6), torch.ones(2, 3, dtype=torch.long), 3)


def test_config_needs_one_layer_and_a_non_negative_weight():
    with pytest.raises(ValueError, match="layers == 1"):
        TaggerConfig(lm_weight=0.1, layers=2)
    with pytest.raises(ValueError, match="lm_weight"):
        TaggerConfig(lm_weight=-1.0)


def test_tagger_loss_adds_the_weighted_lm_loss():
    from hybrid.tagging.batching import TaggingVocabulary
    from hybrid.tagging.model import Tagger
    from hybrid.tagging.synthetic import airline_splits

    train = airline_splits(train=20, valid=5, test=5)["train"]
    vocabulary = TaggingVocabulary.build(train)
    config = TaggerConfig(head="crf", word_dim=8, hidden=6, dropout=0.0, lm_weight=0.5, lm_words=10)
    torch.manual_seed(0)
    with_lm = Tagger(config, vocabulary).eval()
    without = Tagger(TaggerConfig(**{**vars(config), "lm_weight": 0.0}), vocabulary).eval()
    without.load_state_dict(with_lm.state_dict(), strict=False)
    batch = vocabulary.batch(train)
    states, _ = with_lm.encoder(batch.words, batch.lengths, batch.chars, batch.features)
    lm = with_lm.language_model(states, batch.words, batch.lengths)
    assert with_lm.language_model.num_words == 10
    torch.testing.assert_close(with_lm.loss(batch), without.loss(batch) + 0.5 * lm)
