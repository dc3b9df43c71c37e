"""The attention encoder-decoder: step-by-step decoding equals teacher forcing, padding
invariance, attention weights, validation, and learning a small transduction."""

from __future__ import annotations

import pytest
import torch

from hybrid.nn.seq2seq import ATTENTIONS, Attention, Seq2Seq, Seq2SeqConfig
from hybrid.structured.beam import beam_search


def small(attention, **extra):
    config = Seq2SeqConfig(
        num_source=12,
        num_target=9,
        hidden=8,
        word_dim=6,
        target_dim=5,
        attention=attention,
        attention_dim=7,
        dropout=0.0,
        **extra,
    )
    return Seq2Seq(config).double().eval()


def batch(seed=0, features=False):
    generator = torch.Generator().manual_seed(seed)
    source = torch.randint(2, 12, (3, 6), generator=generator)
    lengths = torch.tensor([6, 4, 1])
    source[torch.arange(6)[None] >= lengths[:, None]] = 0
    target = torch.randint(1, 9, (3, 5), generator=generator)
    tags = torch.randint(1, 4, (3, 6), generator=generator) if features else None
    return source, lengths, target, tags


@pytest.mark.parametrize("pointer", [None, 4])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_step_by_step_decoding_equals_teacher_forcing(attention, pointer):
    model = small(attention, num_features=4, pointer_token=pointer)
    source, lengths, target, tags = batch(features=True)
    logits, weights = model(source, lengths, target, features=tags)
    state = model.start(source, lengths, features=tags)
    for t in range(target.shape[1]):
        log_probs, state = model.step(target[:, t], state)
        torch.testing.assert_close(log_probs, logits[:, t].log_softmax(-1))
        if weights is not None:
            torch.testing.assert_close(state["attention"], weights[:, t])
        if pointer is not None:
            assert state["pointer"].tolist() == (target[:, : t + 1] == pointer).sum(1).tolist()


@pytest.mark.parametrize("pointer", [None, 4])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_a_sequence_alone_equals_it_in_a_padded_batch(attention, pointer):
    model = small(attention, pointer_token=pointer)
    source, lengths, target, _ = batch(1)
    logits, _ = model(source, lengths, target)
    for b in range(3):
        n = int(lengths[b])
        alone, _ = model(source[b : b + 1, :n], lengths[b : b + 1], target[b : b + 1])
        torch.testing.assert_close(alone[0], logits[b])


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_attention_weights_are_distributions_over_real_positions(kind):
    attention = Attention(kind, 4, 3).double()
    memory = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    context, weights = attention(torch.randn(2, 3, 4, dtype=torch.float64), memory, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    assert (weights[1, :, 2:] == 0).all()
    torch.testing.assert_close(context, weights @ memory)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(Seq2SeqConfig(num_source=5, num_target=5, attention="cosine"))
    with pytest.raises(ValueError, match="num_target must be a positive integer"):
        Seq2Seq(Seq2SeqConfig(num_source=5, num_target=0))
    with pytest.raises(ValueError, match="kind must be one of"):
        Attention("none", 4)
    for bad in (0, 5, -1, True, 2.0):  # 0 is the padding index
        with pytest.raises(ValueError, match="pointer_token must be None or a target index"):
            Seq2Seq(Seq2SeqConfig(num_source=5, num_target=5, pointer_token=bad))


def test_the_pointer_reads_the_memory_state_of_the_next_unconsumed_position():
    """The decoder input beside the token embedding is ``m_p``, ``p`` the pointer tokens
    so far, or zeros past the source's end: recomputed here position by position."""
    model = small("none", pointer_token=4)
    source, lengths, target, _ = batch(2)
    target[:, 1:4] = 4  # at least three pointer moves, past the end of the length-1 source
    seen = []
    hook = model.decoder.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    model(source, lengths, target)
    hook.remove()
    memory = model.start(source, lengths)["memory"]
    dim = memory.shape[-1]
    for b in range(3):
        for t in range(target.shape[1]):
            p = int((target[b, : t + 1] == 4).sum())
            expected = memory[b, p] if p < lengths[b] else torch.zeros(dim, dtype=memory.dtype)
            torch.testing.assert_close(seen[0][b, t, -dim:], expected)


@pytest.mark.parametrize("pointer", [None, 4])
def test_beam_search_scores_are_the_teacher_forced_log_probs_of_its_outputs(pointer):
    """The search reorders the decoder state (pointer included) with its hypotheses: every
    n-best output scores under teacher forcing what the search says."""
    model = small("general", pointer_token=pointer)
    source, lengths, _, _ = batch(3)
    result = beam_search(
        model.step, model.start(source, lengths), 3, beam=4, max_length=8, bos=1, eos=2
    )
    for b in range(3):
        for n, tokens in enumerate(result.to_lists()[b]):
            target = torch.tensor([[1, *tokens]])
            logits, _ = model(source[b : b + 1, : lengths[b]], lengths[b : b + 1], target)
            picked = logits[0, :-1].log_softmax(-1).gather(1, target[0, 1:, None]).sum()
            torch.testing.assert_close(picked, result.log_probs[b, n])


def _greedy_exact_after_training(config, sample, steps, bos=1):
    """Train ``Seq2Seq(config)`` for ``steps`` batches of ``sample(32)`` (``source, lengths,
    target`` with ``target`` starting at ``bos``, 0-padded), then decode 100 new samples
    greedily: how many outputs equal their target up to and including its last token."""
    model = Seq2Seq(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        source, lengths, target = sample(32)
        logits, _ = model(source, lengths, target[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    source, lengths, target = sample(100)
    state, tokens, output = model.start(source, lengths), torch.full((100,), bos), []
    with torch.no_grad():
        for _ in range(target.shape[1] - 1):
            log_probs, state = model.step(tokens, state)
            tokens = log_probs.argmax(-1)
            output.append(tokens)
    output = torch.stack(output, 1)
    sizes = ((target != 0).sum(1) - 1).tolist()  # tokens after bos, eos included
    return sum(output[i, :k].tolist() == target[i, 1 : k + 1].tolist() for i, k in enumerate(sizes))


def test_attention_model_learns_to_reverse_sequences():
    """Reversing 3-6 symbols needs the source positions: the attention model learns it."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    symbols, bos, eos = 6, 1, 2  # target ids: 0 pad, 1 <s>, 2 </s>, 3.. symbols
    config = Seq2SeqConfig(
        num_source=symbols + 2,
        num_target=symbols + 3,
        hidden=32,
        word_dim=16,
        target_dim=16,
        encoder_layers=1,
        decoder_layers=1,
        attention="dot",
        dropout=0.0,
    )

    def sample(count):
        lengths = torch.randint(3, 7, (count,), generator=generator)
        source = torch.randint(2, symbols + 2, (count, 6), generator=generator)
        source[torch.arange(6)[None] >= lengths[:, None]] = 0
        target = torch.zeros(count, 8, dtype=torch.long)
        for i, n in enumerate(lengths.tolist()):
            target[i, : n + 2] = torch.tensor([bos, *(source[i, :n].flip(0) + 1).tolist(), eos])
        return source, lengths, target

    correct = _greedy_exact_after_training(config, sample, 300, bos)
    assert correct >= 90


def test_the_pointer_alone_learns_to_copy_without_attention():
    """Copying 3-8 symbols, each followed by a pointer token, from the start state alone is
    beyond a small model without attention; reading ``m_p`` it is a lookup."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    symbols, bos, eos, move = 6, 1, 2, 3  # target ids: 0 pad, 1 <s>, 2 </s>, 3 move, 4.. symbols
    config = Seq2SeqConfig(
        num_source=symbols + 2,
        num_target=symbols + 4,
        hidden=16,
        word_dim=8,
        target_dim=8,
        encoder_layers=1,
        decoder_layers=1,
        attention="none",
        pointer_token=move,
        dropout=0.0,
    )

    def sample(count):
        lengths = torch.randint(3, 9, (count,), generator=generator)
        source = torch.randint(2, symbols + 2, (count, 8), generator=generator)
        source[torch.arange(8)[None] >= lengths[:, None]] = 0
        target = torch.zeros(count, 18, dtype=torch.long)
        for i, n in enumerate(lengths.tolist()):
            pairs = [x for s in (source[i, :n] + 2).tolist() for x in (s, move)]
            target[i, : 2 * n + 2] = torch.tensor([bos, *pairs, eos])
        return source, lengths, target

    correct = _greedy_exact_after_training(config, sample, 200, bos)
    assert correct >= 90
