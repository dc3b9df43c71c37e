"""Beam search against brute-force enumeration of every sequence a tiny model can produce."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
from torch import Tensor

from hybrid.structured import BeamSearchResult, beam_search, greedy_search

BOS, EOS = 0, 1
VOCAB = 4  # bos, eos and two content tokens


# -- models --------------------------------------------------------------------------------


def markov_tables(sequences: int, seed: int) -> Tensor:
    """``(S, V, V)`` log-probs of the next token given the last, one table per sequence."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(sequences, VOCAB, VOCAB, generator=generator, dtype=torch.float64)
    return logits.log_softmax(-1)


def markov_step(tables: Tensor) -> Callable:
    """A step whose state is the sequence id of every row."""

    def step(tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return tables[state, tokens], state

    return step


def markov_search(tables: Tensor, **kwargs) -> BeamSearchResult:
    """Beam search over the Markov model of every table at once."""
    sequences = torch.arange(tables.shape[0])
    return beam_search(markov_step(tables), sequences, tables.shape[0], bos=BOS, eos=EOS, **kwargs)


class HistoryModel:
    """Log-probs that depend on the whole history, through a hash of it into a table.

    The step's state is the history itself, ``(N, T)`` ``-1`` padded, ``bos`` first; every
    history the step builds is recorded, so the returned hypotheses can be checked against
    the histories their rows actually held.
    """

    def __init__(self, seed: int, buckets: int = 97):
        generator = torch.Generator().manual_seed(seed)
        self.table = torch.randn(buckets, VOCAB, generator=generator, dtype=torch.float64)
        self.table = self.table.log_softmax(-1)
        self.weights = torch.randint(1, 1000, (64,), generator=generator)
        self.buckets = buckets
        self.seen: set[tuple[int, ...]] = set()

    def bucket(self, history: Tensor) -> Tensor:
        """Hash of each ``-1`` padded history row."""
        weights = self.weights[: history.shape[-1]]
        return ((history + 1) * weights).sum(-1) % self.buckets

    def step(self, tokens: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
        history = history.clone()
        rows = torch.arange(len(tokens))
        history[rows, (history >= 0).sum(1)] = tokens
        for row, token in zip(history, tokens, strict=True):
            if token != EOS:
                self.seen.add(tuple(row[row >= 0].tolist()[1:]))
        return self.table[self.bucket(history)], history

    def log_probs(self, prefix: list[int]) -> list[float]:
        """The next-token log-probs after ``prefix`` (``bos`` first)."""
        return self.table[self.bucket(torch.tensor(prefix))].tolist()


# -- brute force ---------------------------------------------------------------------------


class Hyp(NamedTuple):
    tokens: list[int]
    raw: float
    finished: bool


def enumerate_all(
    log_probs: Callable[[list[int]], list[float]],
    max_length: int,
    min_length: int = 0,
    allowed: Callable[[list[int], int], bool] | None = None,
) -> list[Hyp]:
    """Every finished sequence of at most ``max_length`` tokens, and every unfinished one of
    exactly ``max_length``: what the search can return."""
    found = []

    def grow(prefix: list[int], raw: float) -> None:
        scores = log_probs([BOS, *prefix])
        for token in range(VOCAB):
            if token == BOS or (allowed is not None and not allowed(prefix, token)):
                continue
            if token == EOS:
                if len(prefix) >= min_length:
                    found.append(Hyp([*prefix, EOS], raw + scores[EOS], True))
            elif len(prefix) + 1 == max_length:
                found.append(Hyp([*prefix, token], raw + scores[token], False))
            else:
                grow([*prefix, token], raw + scores[token])

    grow([], 0.0)
    return found


def true_nbest(hyps: list[Hyp], nbest: int, alpha: float) -> list[Hyp]:
    """Finished before unfinished, each by ``raw / length ** alpha``."""
    return sorted(hyps, key=lambda h: (not h.finished, -h.raw / len(h.tokens) ** alpha))[:nbest]


def assert_matches(result: BeamSearchResult, b: int, expected: list[Hyp], alpha: float) -> None:
    """Hypotheses of sequence ``b`` equal ``expected``, in order, with their scores."""
    n = len(expected)
    assert result.to_lists()[b][:n] == [h.tokens for h in expected]
    raw = torch.tensor([h.raw for h in expected], dtype=torch.float64)
    lengths = torch.tensor([len(h.tokens) for h in expected], dtype=torch.float64)
    torch.testing.assert_close(result.log_probs[b, :n], raw)
    torch.testing.assert_close(result.scores[b, :n], raw / lengths**alpha)
    assert result.finished[b, :n].tolist() == [h.finished for h in expected]
    assert result.lengths[b, :n].tolist() == [len(h.tokens) for h in expected]


# -- a constraint --------------------------------------------------------------------------


class NoRepeatEvenEnd:
    """Token 3 never twice in a row; ``eos`` only after an even number of tokens.

    cstate: ``(last token, count)``, both ``(N,)``.
    """

    def start(self, batch_size: int, device: torch.device) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros(batch_size, dtype=torch.long, device=device)
        return zeros.clone(), zeros

    def allowed(self, cstate: tuple[Tensor, Tensor]) -> Tensor:
        last, count = cstate
        mask = torch.ones(len(last), VOCAB, dtype=torch.bool)
        mask[:, 3] = last != 3
        mask[:, EOS] = count % 2 == 0
        return mask

    def advance(self, cstate: tuple[Tensor, Tensor], tokens: Tensor) -> tuple[Tensor, Tensor]:
        return tokens, cstate[1] + 1

    @staticmethod
    def oracle(prefix: list[int], token: int) -> bool:
        if token == EOS:
            return len(prefix) % 2 == 0
        return not (token == 3 and prefix[-1:] == [3])


class Forbid:
    """Never token ``token`` (stateless: cstate is a dummy ``(N,)`` tensor)."""

    def __init__(self, token: int):
        self.token = token

    def start(self, batch_size: int, device: torch.device) -> Tensor:
        return torch.zeros(batch_size, device=device)

    def allowed(self, cstate: Tensor) -> Tensor:
        mask = torch.ones(len(cstate), VOCAB, dtype=torch.bool)
        mask[:, self.token] = False
        return mask

    def advance(self, cstate: Tensor, tokens: Tensor) -> Tensor:
        return cstate


# -- exact n-best --------------------------------------------------------------------------

# beam 24 keeps every candidate at every step (8 prefixes of 3 tokens times 3 extensions).
EXACT = [
    # (max_length, beam, nbest, alpha, min_length)
    (4, 24, 10, 0.0, 0),
    (4, 24, 10, 1.0, 0),
    (4, 24, 24, 0.6, 1),
    (2, 6, 5, 0.0, 0),  # 3 finished sequences exist: two unfinished fill the rest
    (3, 12, 12, -0.5, 2),
]


@pytest.mark.parametrize(("max_length", "beam", "nbest", "alpha", "min_length"), EXACT)
def test_history_model_exact_nbest(max_length, beam, nbest, alpha, min_length):
    model = HistoryModel(seed=max_length + beam)
    history = torch.full((1, max_length), -1)
    result = beam_search(
        model.step, history, 1, beam, max_length, BOS, EOS, nbest, alpha, min_length=min_length
    )
    everything = enumerate_all(model.log_probs, max_length, min_length)
    assert_matches(result, 0, true_nbest(everything, nbest, alpha), alpha)
    for tokens, length in zip(result.tokens[0], result.lengths[0], strict=True):
        if length > 1:  # the row of this hypothesis held exactly its own history
            assert tuple(tokens[: length - 1].tolist()) in model.seen


@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_constrained_exact_nbest(alpha):
    tables = markov_tables(2, seed=3)
    result = markov_search(
        tables, beam=24, max_length=4, nbest=8, length_penalty=alpha, constraint=NoRepeatEvenEnd()
    )
    for b in range(2):
        log_probs = lambda prefix, b=b: tables[b, prefix[-1]].tolist()  # noqa: E731
        everything = enumerate_all(log_probs, 4, allowed=NoRepeatEvenEnd.oracle)
        assert_matches(result, b, true_nbest(everything, 8, alpha), alpha)


def test_forbidden_token_never_appears():
    tables = markov_tables(3, seed=4)
    tables[:, :, 2] = -0.01  # the model wants token 2 everywhere
    result = markov_search(tables, beam=3, max_length=6, constraint=Forbid(2))
    assert (result.lengths > 0).all()
    assert not (result.tokens == 2).any()


# -- batching, greedy, stopping ------------------------------------------------------------


@pytest.mark.parametrize("constraint", [None, NoRepeatEvenEnd()])
def test_batch_with_different_max_lengths_equals_each_alone(constraint):
    tables = markov_tables(4, seed=5)
    tables[:, :, EOS] -= 3.0  # long hypotheses, so max_length matters
    limits = torch.tensor([2, 6, 3, 5])
    options = dict(beam=3, nbest=2, length_penalty=0.5, constraint=constraint)
    batched = markov_search(tables, max_length=limits, **options)
    for b, limit in enumerate(limits.tolist()):
        alone = markov_search(tables[b : b + 1], max_length=limit, **options)
        assert batched.to_lists()[b] == alone.to_lists()[0]
        for field in ("scores", "log_probs", "lengths", "finished"):
            assert torch.equal(getattr(batched, field)[b], getattr(alone, field)[0]), field


def argmax_decode(table: Tensor, max_length: int) -> tuple[list[int], float]:
    """Greedy decoding by hand: the argmax non-bos token until eos or ``max_length``."""
    tokens, raw, last = [], 0.0, BOS
    while len(tokens) < max_length and last != EOS:
        scores = table[last].clone()
        scores[BOS] = float("-inf")
        last = int(scores.argmax())
        tokens.append(last)
        raw += float(scores[last])
    return tokens, raw


def test_greedy_equals_beam_one_equals_argmax():
    tables = markov_tables(6, seed=6)
    greedy = markov_search(tables, beam=1, max_length=7)
    again = greedy_search(markov_step(tables), torch.arange(6), 6, 7, BOS, EOS)
    assert greedy.to_lists() == again.to_lists()
    for b in range(6):
        tokens, raw = argmax_decode(tables[b], 7)
        assert greedy.to_lists()[b] == [tokens]
        assert greedy.finished[b, 0] == (tokens[-1] == EOS)
        assert greedy.log_probs[b, 0].item() == pytest.approx(raw)


def test_unfinished_at_max_length_are_flagged_and_ranked_last():
    tables = markov_tables(1, seed=7)
    tables[:, :, EOS] = -8.0  # eos is unlikely, never impossible
    result = markov_search(tables, beam=6, max_length=2, nbest=5, length_penalty=1.0)
    assert result.finished[0].tolist() == [True] * 3 + [False] * 2
    unfinished = result.tokens[0, 3:]
    assert (result.lengths[0, 3:] == 2).all() and not (unfinished == EOS).any()
    assert (result.scores[0, 3:] == result.log_probs[0, 3:] / 2).all()


def test_empty_slots_when_fewer_hypotheses_exist():
    tables = markov_tables(1, seed=8)
    result = markov_search(tables, beam=8, max_length=1, nbest=8)
    # With one token: eos (finished), or one of two content tokens (unfinished).
    assert result.lengths[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert (result.tokens[0, 3:] == -1).all() and (result.scores[0, 3:] == float("-inf")).all()
    assert not result.finished[0, 3:].any()


def test_early_stopping_ends_the_search():
    tables = markov_tables(2, seed=9)
    tables[:, :, EOS] = -0.001  # eos almost surely next
    calls = []

    def step(tokens, state):
        calls.append(1)
        return tables[state, tokens], state

    result = beam_search(step, torch.arange(2), 2, beam=2, max_length=50, bos=BOS, eos=EOS)
    assert result.finished.all()
    assert len(calls) <= 3


def test_state_pytree_is_expanded_and_reordered():
    tables = markov_tables(2, seed=10)

    def step(tokens, state):
        ids = state["ids"]
        assert ids.shape == (6,) and state["pair"][0].shape == (6, 1)
        assert torch.equal(ids, torch.tensor([0, 0, 0, 1, 1, 1]))  # rows stay in their sequence
        return tables[ids, tokens], state

    state = {"ids": torch.arange(2), "pair": (torch.zeros(2, 1), None), "note": "kept"}
    result = beam_search(step, state, 2, beam=3, max_length=4, bos=BOS, eos=EOS)
    assert result.tokens.shape[:2] == (2, 3)


# -- validation ----------------------------------------------------------------------------


def search(**overrides):
    tables = markov_tables(2, seed=11)
    arguments = dict(
        step=markov_step(tables),
        state=torch.arange(2),
        batch_size=2,
        beam=2,
        max_length=4,
        bos=BOS,
        eos=EOS,
    )
    arguments.update(overrides)
    return beam_search(**arguments)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(beam=0), "beam"),
        (dict(nbest=0), "nbest"),
        (dict(nbest=3), "nbest"),
        (dict(bos=-1), "bos"),
        (dict(eos=True), "eos"),
        (dict(eos=VOCAB), "eos=4"),
        (dict(batch_size=0), "batch_size"),
        (dict(max_length=0), "max_length"),
        (dict(max_length=torch.tensor([3])), "max_length"),
        (dict(max_length=2, min_length=2), "max_length"),
        (dict(length_penalty=float("nan")), "length_penalty"),
        (dict(state=torch.arange(3)), "state"),
        (dict(constraint=object()), "constraint"),
    ],
)
def test_bad_arguments_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        search(**overrides)


def test_bad_step_outputs_raise():
    def wrong_rows(tokens, state):
        return torch.zeros(2, VOCAB), state

    with pytest.raises(ValueError, match=r"step must return log_probs of shape \(4, V\)"):
        search(step=wrong_rows)

    def nan_at_two(tokens, state):
        calls = state + 1
        log_probs = torch.full((len(tokens), VOCAB), -1.0)
        log_probs[:, EOS] = -5.0
        if calls[0] == 3:
            log_probs[:, 2] = float("nan")
        return log_probs, calls

    with pytest.raises(ValueError, match="NaN log_probs .* step 2"):
        search(step=nan_at_two, state=torch.zeros(2))

    with pytest.raises(ValueError, match="log_probs > 0"):
        search(step=lambda tokens, state: (torch.ones(len(tokens), VOCAB), state))


def test_constraint_without_tokens_raises():
    class Nothing(Forbid):
        def allowed(self, cstate):
            return torch.zeros(len(cstate), VOCAB, dtype=torch.bool)

    with pytest.raises(ValueError, match="constraint left no token .* step 0"):
        search(constraint=Nothing(0))


def hand_table(bos_row: list[float], content_eos: float) -> Tensor:
    """A ``(1, V, V)`` table: ``bos_row`` after bos; after content tokens, token 2 is cheap,
    token 3 dear, eos costs ``content_eos``."""
    tables = torch.full((1, VOCAB, VOCAB), -3.0, dtype=torch.float64)
    tables[0, BOS] = torch.tensor(bos_row, dtype=torch.float64)
    tables[0, 2:, 2] = -0.01
    tables[0, 2:, EOS] = content_eos
    return tables


@pytest.mark.parametrize(
    ("alpha", "tables"),
    [
        # eos first is best raw; a long hypothesis through the dear token 2 wins normalised.
        (1.0, hand_table([-9.0, -1.0, -2.5, -4.0], content_eos=-0.05)),
        (2.0, hand_table([-9.0, -1.0, -2.5, -4.0], content_eos=-0.05)),
        # alpha < 0 favours short hypotheses: [2, eos] beats [eos], which finished first.
        (-1.0, hand_table([-9.0, -3.0, -1.0, -4.0], content_eos=-0.01)),
    ],
)
def test_early_stopping_is_exact_under_length_normalisation(alpha, tables):
    # A bound that ignores a reachable length stops after the first step and returns [eos].
    result = markov_search(tables, beam=48, max_length=5, nbest=1, length_penalty=alpha)
    log_probs = lambda prefix: tables[0, prefix[-1]].tolist()  # noqa: E731
    expected = true_nbest(enumerate_all(log_probs, 5), 1, alpha)
    assert expected[0].tokens != [EOS]
    assert_matches(result, 0, expected, alpha)


@pytest.mark.parametrize("beam", [1, 3])
def test_ties_keep_the_lowest_token_as_an_argmax_does(beam):
    """Tokens 2, 4 and 5 tie at every step and ``eos`` (1) is never best: each hypothesis
    extends the lowest-numbered tokens first, whatever the device's top-k would do."""
    scores = torch.full((6,), -9.0)
    scores[[2, 4, 5]] = -1.0

    def step(tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return scores.expand(tokens.shape[0], -1).log_softmax(-1), state

    result = beam_search(step, torch.zeros(2), 2, beam, 4, bos=0, eos=1, nbest=beam)
    best = [2, 2, 2, 2]
    assert result.to_lists()[0][0] == best and result.to_lists()[1][0] == best
    if beam > 1:
        assert result.to_lists()[0][1] == [2, 2, 2, 4]
