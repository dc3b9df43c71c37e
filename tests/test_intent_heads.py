"""Intent heads: attention pooling against per-sequence computation, the heads, selection."""

from __future__ import annotations

import pytest
import torch

from hybrid.nn.pooling import AttentionPooling, SequenceClassifier
from hybrid.tagging.train import selection_score


def test_attention_pooling_matches_each_sequence_alone():
    torch.manual_seed(2)
    pooling = AttentionPooling(6, 4).double()
    lengths = [5, 2, 3]
    states = torch.randn(3, 5, 6, dtype=torch.float64)
    pooled, weights = pooling(states, torch.tensor(lengths))
    for b, n in enumerate(lengths):
        alone, alone_weights = pooling(states[b : b + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(pooled[b], alone[0])
        torch.testing.assert_close(weights[b, :n], alone_weights[0])
        assert (weights[b, n:] == 0).all()
        scores = pooling.score(torch.tanh(pooling.project(states[b, :n]))).squeeze(-1)
        torch.testing.assert_close(pooled[b], scores.softmax(0) @ states[b, :n])
    torch.testing.assert_close(weights.sum(1), torch.ones(3, dtype=torch.float64))


def test_attention_pooling_errors():
    pooling = AttentionPooling(4)
    with pytest.raises(ValueError, match="states must have shape"):
        pooling(torch.zeros(2, 4), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="lengths"):
        pooling(torch.zeros(2, 3, 4), torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="dim"):
        AttentionPooling(0)
    with pytest.raises(ValueError, match="num_classes"):
        SequenceClassifier(4, 0)


def test_sequence_classifier_reads_every_position():
    torch.manual_seed(3)
    classifier = SequenceClassifier(4, 3)
    states = torch.randn(1, 5, 4, requires_grad=True)
    summary = torch.zeros(1, 4)
    classifier(states, summary, torch.tensor([5])).sum().backward()
    assert (states.grad.abs().sum(-1) > 0).all()  # a decisive word anywhere reaches the logits


def test_selection_score():
    assert selection_score({"f1": 0.9}) == 0.9
    assert selection_score({"f1": 0.9, "intent_accuracy": 0.8}) == pytest.approx(0.85)


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_tagger_intent_heads_train_and_decode(pooling):
    from hybrid.tagging.batching import TaggingVocabulary
    from hybrid.tagging.model import Tagger, TaggerConfig
    from hybrid.tagging.synthetic import airline_splits

    train = airline_splits(train=60, valid=5, test=5)["train"]
    vocabulary = TaggingVocabulary.build(train)
    torch.manual_seed(0)
    config = TaggerConfig(
        head="softmax",
        word_dim=16,
        hidden=16,
        dropout=0.0,
        intent_pooling=pooling,
    )
    model = Tagger(config, vocabulary)
    batch = vocabulary.batch(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(80):
        optimizer.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first
    model.eval()
    out = model.predict(batch)
    assert out["intents"].shape == (60,) and out["intents"].max() < len(vocabulary.intents)
    _, logits = model(batch)
    expected = logits.softmax(1).max(1).values
    torch.testing.assert_close(out["intent_confidence"], expected)
    accuracy = (out["intents"] == batch.intents).float().mean().item()
    majority = batch.intents.bincount().max().item() / 60
    assert accuracy > majority + 0.2  # learned from the 60 utterances, not the prior


def test_unknown_intent_pooling():
    from hybrid.tagging.model import TaggerConfig

    with pytest.raises(ValueError, match="intent_pooling"):
        TaggerConfig(intent_pooling="max")
