"""The readers of `hybrid.nn.memory` against per-example reference loops and their padding."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hybrid.nn.memory import AttentiveReader, MemoryNetwork, SequenceReader, position_encoding

WORDS = 12


def _random_memory(generator, batch=4, slots=5, width=4, query=3):
    lengths = torch.randint(0, slots + 1, (batch,), generator=generator)
    lengths[0] = slots
    memory = torch.zeros(batch, slots, width, dtype=torch.long)
    for b in range(batch):
        for m in range(int(lengths[b])):
            size = int(torch.randint(1, width + 1, (1,), generator=generator))
            memory[b, m, :size] = torch.randint(1, WORDS, (size,), generator=generator)
    questions = torch.zeros(batch, query, dtype=torch.long)
    for b in range(batch):
        size = int(torch.randint(1, query + 1, (1,), generator=generator))
        questions[b, :size] = torch.randint(1, WORDS, (size,), generator=generator)
    return memory, lengths, questions


def _reference(model: MemoryNetwork, memory, lengths, query):
    """The MemN2N equations one example, sentence and word at a time."""
    d = model.dim

    def sentence_vector(table, words):
        words = [int(w) for w in words if w != 0]
        total = torch.zeros(d, dtype=torch.float64)
        for j, w in enumerate(words, start=1):
            weight = torch.ones(d, dtype=torch.float64)
            if model.position:
                big_j = model.sentence_size
                weight = torch.tensor(
                    [
                        1 + 4 * (k - (d + 1) / 2) * (j - (big_j + 1) / 2) / (d * big_j)
                        for k in range(1, d + 1)
                    ],
                    dtype=torch.float64,
                )
            total = total + weight * model.words[table].weight[w].double()
        return total

    all_logits, all_attention = [], []
    for b in range(len(memory)):
        n = int(lengths[b])
        u = sentence_vector(0, query[b])
        hops = []
        for hop in range(model.hops):
            a, c = (hop, hop + 1) if model.tying == "adjacent" else (1, 2)
            keys, values = [], []
            for i in range(n):
                age = n - 1 - i
                key, value = sentence_vector(a, memory[b, i]), sentence_vector(c, memory[b, i])
                if model.temporal:
                    key = key + model.ages[a][age].double()
                    value = value + model.ages[c][age].double()
                keys.append(key)
                values.append(value)
            if model.attend_empty and not model.linear_start:
                # the empty slots up to memory_size hold zero vectors
                keys += [torch.zeros(d, dtype=torch.float64)] * (model.memory_size - n)
            scores = torch.stack([k @ u for k in keys]) if keys else torch.zeros(0)
            p = scores if model.linear_start else torch.softmax(scores, 0)
            o = sum((p[i] * values[i] for i in range(n)), torch.zeros(d, dtype=torch.float64))
            p = p[:n]
            u = (model.update.weight.double() @ u if model.tying == "layerwise" else u) + o
            hops.append(torch.cat([p, torch.zeros(memory.shape[1] - n, dtype=torch.float64)]))
        if model.tying == "layerwise":
            logits = model.output.weight.double() @ u
        else:
            logits = model.words[model.hops].weight[model.answer_words].double() @ u
        all_logits.append(logits)
        all_attention.append(torch.stack(hops))
    return torch.stack(all_logits), torch.stack(all_attention)


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
@pytest.mark.parametrize("position", [True, False])
@pytest.mark.parametrize("temporal", [True, False])
@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("attend_empty", [True, False])
def test_memory_network_equals_the_reference_loop(tying, position, temporal, linear, attend_empty):
    generator = torch.Generator().manual_seed(7)
    memory, lengths, query = _random_memory(generator)
    torch.manual_seed(3)
    model = (
        MemoryNetwork(
            WORDS,
            torch.tensor([2, 5, 7]),
            dim=6,
            hops=3,
            memory_size=7,
            tying=tying,
            position=position,
            sentence_size=3,
            temporal=temporal,
            noise=0.3,
            attend_empty=attend_empty,
        )
        .double()
        .eval()
    )
    model.linear_start = linear
    logits, attention = model(memory, lengths, query)
    expected_logits, expected_attention = _reference(model, memory, lengths, query)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(attention, expected_attention)


def test_position_encoding_formula():
    weights = position_encoding(width=4, dim=5, sentence_size=3)
    assert weights.shape == (4, 5)
    for j in range(1, 5):
        for k in range(1, 6):
            expected = 1 + 4 * (k - 3) * (j - 2) / 15
            assert math.isclose(float(weights[j - 1, k - 1]), expected, rel_tol=1e-6)
    # the middle word of a sentence of the full size weighs 1 in every dimension
    assert torch.equal(weights[1], torch.ones(5))


def test_position_encoding_orders_words():
    """Two sentences with the same words in another order get different vectors."""
    model = MemoryNetwork(WORDS, torch.tensor([1, 2]), dim=4, sentence_size=3).eval()
    memory = torch.tensor([[[3, 4, 5]], [[5, 4, 3]]])
    query = torch.tensor([[3], [3]])
    vectors = model._embed(1, memory, model._position(memory))
    assert not torch.allclose(vectors[0], vectors[1])
    bag = MemoryNetwork(WORDS, torch.tensor([1, 2]), dim=4, position=False).eval()
    bag_vectors = bag._embed(1, memory, bag._position(memory))
    torch.testing.assert_close(bag_vectors[0], bag_vectors[1])
    assert model(memory, torch.tensor([1, 1]), query)[0].shape == (2, 2)


def test_noise_only_ages_statements_in_training():
    torch.manual_seed(0)
    model = MemoryNetwork(
        WORDS, torch.tensor([1, 2]), dim=4, memory_size=50, noise=0.5, sentence_size=4
    )
    lengths = torch.tensor([20, 7])
    plain, inside = model.eval()._ages(lengths, 20)
    noisy, noisy_inside = model.train()._ages(lengths, 20)
    assert torch.equal(inside, noisy_inside)
    for b, n in enumerate(lengths.tolist()):
        base, shifted = plain[b, :n], noisy[b, :n]
        assert base.tolist() == list(range(n - 1, -1, -1))
        assert (shifted >= base).all()
        # ages stay strictly ordered: the newest statement stays the youngest
        assert (shifted[:-1] > shifted[1:]).all()
    assert not torch.equal(plain, noisy)


@pytest.mark.parametrize("attend_empty", [True, False])
def test_empty_memory_reads_nothing_and_padding_gets_no_weight(attend_empty):
    model = MemoryNetwork(
        WORDS,
        torch.tensor([1, 2]),
        dim=4,
        hops=2,
        memory_size=5,
        sentence_size=2,
        attend_empty=attend_empty,
    ).eval()
    memory = torch.zeros(2, 3, 2, dtype=torch.long)
    memory[0, :2] = torch.tensor([[3, 4], [5, 0]])
    query = torch.tensor([[3, 0], [4, 5]])
    logits, attention = model(memory, torch.tensor([2, 0]), query)
    assert torch.isfinite(logits).all()
    assert (attention[1] == 0).all() and (attention[0, :, 2] == 0).all()
    # the answer to an empty memory is the query's own vector through the output layer
    u = model._embed(0, query[1:], model._position(query[1:]))[0]
    torch.testing.assert_close(logits[1], model.words[2].weight[model.answer_words] @ u)
    total = attention[0].sum(-1)
    if attend_empty:  # three empty slots (memory_size 5) take the rest
        assert (total < 1).all() and (total > 0).all()
    else:
        torch.testing.assert_close(total, torch.ones(2))


def test_empty_slots_take_weight_as_zero_scores_even_far_from_zero():
    """The softmax over statements and empty slots stays exact for large scores."""
    model = MemoryNetwork(
        WORDS, torch.tensor([1, 2]), dim=4, hops=1, memory_size=4, sentence_size=2
    ).double()
    memory = torch.tensor([[[3, 0], [5, 0]]])
    with torch.no_grad():
        for table in model.words:
            table.weight.mul_(40)  # scores of several hundred, positive and negative
    _, attention = model.eval()(memory, torch.tensor([2]), torch.tensor([[3, 5]]))
    u = model._embed(0, torch.tensor([[3, 5]]), model._position(memory))[0]
    keys = model._embed(0, memory, model._position(memory))[0] + model.ages[0][[1, 0]]
    scores = torch.cat([keys @ u, torch.zeros(2, dtype=torch.float64)])
    torch.testing.assert_close(attention[0, 0], scores.softmax(0)[:2])


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_memory_network_gradients(tying):
    generator = torch.Generator().manual_seed(1)
    memory, lengths, query = _random_memory(generator, batch=2, slots=3)
    torch.manual_seed(0)
    model = MemoryNetwork(
        WORDS, torch.tensor([2, 5]), dim=3, hops=2, memory_size=3, tying=tying, sentence_size=4
    ).double()
    model.eval()
    names = ["words.1.weight", "ages.1"]

    def logits(*tensors):
        return torch.func.functional_call(
            model, dict(zip(names, tensors, strict=True)), (memory, lengths, query)
        )[0]

    inputs = [dict(model.named_parameters())[n].detach().clone().requires_grad_() for n in names]
    assert torch.autograd.gradcheck(logits, inputs)


def test_memory_network_rejects_bad_input():
    answers = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="sentence_size"):
        MemoryNetwork(WORDS, answers)
    answers_only = {"answer_words": answers, "sentence_size": 4}
    with pytest.raises(ValueError, match="tying"):
        MemoryNetwork(WORDS, **answers_only, tying="none")
    with pytest.raises(ValueError, match="noise"):
        MemoryNetwork(WORDS, **answers_only, noise=1.0)
    with pytest.raises(ValueError, match="answer_words"):
        MemoryNetwork(WORDS, torch.tensor([0, WORDS]), sentence_size=4)
    with pytest.raises(ValueError, match="hops"):
        MemoryNetwork(WORDS, **answers_only, hops=0)
    model = MemoryNetwork(WORDS, **answers_only, memory_size=2)
    memory = torch.ones(1, 3, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="memory_size"):
        model(memory, torch.tensor([3]), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="memory_lengths"):
        model(memory[:, :2], torch.tensor([3]), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="query"):
        model(memory[:, :2], torch.tensor([2]), torch.ones(2, dtype=torch.long))


def _text_batch(generator, batch=4, steps=9, query=4):
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps
    text = torch.randint(1, WORDS, (batch, steps), generator=generator)
    text = text * (torch.arange(steps)[None] < lengths[:, None])
    query_lengths = torch.randint(1, query + 1, (batch,), generator=generator)
    questions = torch.randint(1, WORDS, (batch, query), generator=generator)
    questions = questions * (torch.arange(query)[None] < query_lengths[:, None])
    return text, lengths, questions, query_lengths


@pytest.mark.parametrize("reader", [AttentiveReader, SequenceReader])
def test_lstm_readers_ignore_padding(reader):
    """Each question answered in a padded batch as when it is alone, unpadded."""
    generator = torch.Generator().manual_seed(5)
    text, lengths, query, query_lengths = _text_batch(generator)
    torch.manual_seed(0)
    model = reader(WORDS, 3, dim=5, hidden=4, dropout=0.0).double().eval()
    logits, attention = model(text, lengths, query, query_lengths)
    for b in range(len(text)):
        n, q = int(lengths[b]), int(query_lengths[b])
        alone, alone_attention = model(
            text[b : b + 1, :n], lengths[b : b + 1], query[b : b + 1, :q], query_lengths[b : b + 1]
        )
        torch.testing.assert_close(logits[b], alone[0])
        if attention is not None:
            torch.testing.assert_close(attention[b, :n], alone_attention[0])
            assert (attention[b, n:] == 0).all()
            assert math.isclose(float(attention[b].sum().detach()), 1.0)


def test_sequence_reader_reads_text_then_query_as_one_sequence():
    generator = torch.Generator().manual_seed(2)
    text, lengths, query, query_lengths = _text_batch(generator, batch=3)
    torch.manual_seed(0)
    model = SequenceReader(WORDS, 3, dim=5, hidden=4, dropout=0.0).double().eval()
    logits, _ = model(text, lengths, query, query_lengths)
    for b in range(3):
        sequence = torch.cat([text[b, : lengths[b]], query[b, : query_lengths[b]]])
        states, _ = model.lstm(model.embedding(sequence)[None])
        torch.testing.assert_close(logits[b], model.output(states[0, -1]))


def test_readers_validate_sizes():
    for reader in (AttentiveReader, SequenceReader):
        with pytest.raises(ValueError, match="num_answers"):
            reader(WORDS, 0)
    assert isinstance(SequenceReader(WORDS, 2).lstm, nn.LSTM)
