"""The bracket constraint against an independent recursive well-formedness checker."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor

from hybrid.parsing.constraint import BracketConstraint, BracketState
from hybrid.structured import beam_search, greedy_search

VOCAB = ["<pad>", "<s>", "</s>", "(A", "(B", ")A", ")B", ")", "XX"]
BOS, EOS = 1, 2
SPECIALS = [0, 1]
BRACKETS_AND_WORD = VOCAB[3:]
CPU = torch.device("cpu")


# -- the oracle ----------------------------------------------------------------------------


def shape_of(tokens: list[str]) -> tuple[int, int] | None:
    """``(words, depth)`` of a well-formed linearized tree, else ``None``.

    Well-formed: one bracket over the whole sequence; every bracket holds at least one word
    or subtree and closes with ``)`` or ``)`` plus its own label.
    """

    def constituent(at: int) -> tuple[int, int, int] | None:
        """``(end, words, depth)`` of the constituent opening at ``at``."""
        if at >= len(tokens) or not tokens[at].startswith("("):
            return None
        label, at, words, depth, children = tokens[at][1:], at + 1, 0, 0, 0
        while at < len(tokens) and not tokens[at].startswith(")"):
            if tokens[at] == "XX":
                at, words = at + 1, words + 1
            else:
                inner = constituent(at)
                if inner is None:
                    return None
                at, words, depth = inner[0], words + inner[1], max(depth, inner[2])
            children += 1
        if at == len(tokens) or children == 0 or tokens[at] not in (")", ")" + label):
            return None
        return at + 1, words, depth + 1

    found = constituent(0)
    if found is None or found[0] != len(tokens):
        return None
    return found[1], found[2]


def well_formed(tokens: list[str], num_words: int, max_depth: int) -> bool:
    shape = shape_of(tokens)
    return shape is not None and shape[0] == num_words and shape[1] <= max_depth


# -- running the automaton -----------------------------------------------------------------


def run(constraint: BracketConstraint, sequences: Tensor) -> tuple[Tensor, BracketState]:
    """Whether each row of ``sequences`` ``(N, L)`` is allowed token by token, and the
    states after it (``constraint`` built for ``N`` sentences)."""
    state = constraint.start(len(constraint.num_words), CPU)
    ok = torch.ones(len(sequences), dtype=torch.bool)
    for column in sequences.T:
        ok &= constraint.allowed(state).gather(1, column[:, None]).squeeze(1)
        state = constraint.advance(state, column)
    return ok, state


def accepts(constraint: BracketConstraint, sequences: Tensor) -> Tensor:
    """``(N,)`` bool: every token allowed in turn, then ``eos``."""
    ok, state = run(constraint, sequences)
    return ok & constraint.allowed(state)[:, EOS]


def allowed_prefixes(constraint: BracketConstraint) -> list[list[tuple[int, ...]]]:
    """Every prefix (without eos) the constraint allows, by length, for ``B = 1``."""
    levels = [[()]]
    state = constraint.start(1, CPU)
    while levels[-1]:
        allowed = constraint.allowed(state)
        allowed[:, EOS] = False
        rows, tokens = allowed.nonzero(as_tuple=True)
        levels.append(
            [(*levels[-1][r], t) for r, t in zip(rows.tolist(), tokens.tolist(), strict=True)]
        )
        state = constraint.advance(BracketState(*(x[rows] for x in state)), tokens)
    return levels[:-1]


# -- exact acceptance ----------------------------------------------------------------------


def test_accepts_exactly_the_well_formed_sequences():
    ids = [VOCAB.index(token) for token in BRACKETS_AND_WORD]
    trees = 0
    for length in range(1, 8):
        sequences = torch.tensor(list(itertools.product(ids, repeat=length)))
        shapes = [shape_of([VOCAB[i] for i in row]) for row in sequences.tolist()]
        for num_words, max_depth in [(1, 1), (1, 3), (2, 2), (2, 3), (3, 3)]:
            n = torch.full((len(sequences),), num_words)
            got = accepts(BracketConstraint(VOCAB, n, max_depth=max_depth), sequences)
            expected = [s is not None and s[0] == num_words and s[1] <= max_depth for s in shapes]
            assert got.tolist() == expected, (length, num_words, max_depth)
            trees += sum(expected)
    assert trees > 200  # not vacuous: hundreds of trees are compared


def test_bracket_budget_accepts_exactly_the_trees_within_it():
    ids = [VOCAB.index(token) for token in BRACKETS_AND_WORD]
    for length in range(1, 8):
        sequences = torch.tensor(list(itertools.product(ids, repeat=length)))
        tokens = [[VOCAB[i] for i in row] for row in sequences.tolist()]
        for num_words, budget in [(1, 1), (1, 2), (2, 1), (2, 2)]:
            n = torch.full((len(sequences),), num_words)
            constraint = BracketConstraint(VOCAB, n, max_brackets=budget)
            expected = [
                well_formed(t, num_words, 30) and sum(x.startswith("(") for x in t) <= budget
                for t in tokens
            ]
            assert accepts(constraint, sequences).tolist() == expected, (length, budget)
    per_sentence = BracketConstraint(VOCAB, torch.tensor([1, 3]), max_brackets=torch.tensor([2, 4]))
    assert per_sentence.max_length().tolist() == [1 + 4 + 1, 3 + 8 + 1]
    with pytest.raises(ValueError, match="max_brackets must be >= 1"):
        BracketConstraint(VOCAB, torch.tensor([2]), max_brackets=0)
    with pytest.raises(ValueError, match=r"max_brackets must have shape \(2,\)"):
        BracketConstraint(VOCAB, torch.tensor([2, 3]), max_brackets=torch.tensor([1, 2, 3]))


@pytest.mark.parametrize(("num_words", "budget"), [(1, 2), (2, 2), (3, 3)])
def test_every_prefix_within_the_budget_completes(num_words, budget):
    constraint = BracketConstraint(VOCAB, torch.tensor([num_words]), max_brackets=budget)
    levels = allowed_prefixes(constraint)
    assert len(levels) == int(constraint.max_length()[0])  # the budget is used up exactly
    for level in levels:
        batch = BracketConstraint(VOCAB, torch.full((len(level),), num_words), max_brackets=budget)
        ok, state = run(batch, torch.tensor(level).view(len(level), -1))
        allowed = batch.allowed(state)
        assert ok.all() and (allowed[:, EOS] | allowed[:, 3:].any(1)).all()


def level_states(num_words: int, max_depth: int) -> list[tuple[list, Tensor, Tensor]]:
    """For every length: the allowed prefixes (``B = 1``), whether each is accepted, and
    the ``(P, V)`` tokens allowed after each."""
    constraint = BracketConstraint(VOCAB, torch.tensor([num_words]), max_depth=max_depth)
    found = []
    for level in allowed_prefixes(constraint):
        batch = BracketConstraint(VOCAB, torch.full((len(level),), num_words), max_depth=max_depth)
        sequences = torch.tensor(level).view(len(level), -1)
        ok, state = run(batch, sequences)
        assert ok.all()
        allowed = batch.allowed(state)
        found.append((level, allowed[:, EOS], allowed))
    return found


@pytest.mark.parametrize(("num_words", "max_depth"), [(1, 1), (1, 4), (2, 2), (3, 2), (2, 3)])
def test_every_allowed_prefix_completes(num_words, max_depth):
    # Lengths are bounded, so "every prefix is accepted or has an allowed extension" means
    # every allowed prefix leads to an accepted sequence.
    levels = level_states(num_words, max_depth)
    for level, accepted, allowed in levels:
        for prefix, complete in zip(level, accepted.tolist(), strict=True):
            assert complete == well_formed([VOCAB[i] for i in prefix], num_words, max_depth)
        assert (accepted | allowed[:, 3:].any(1)).all()
        assert not allowed[:, SPECIALS].any()
        assert not allowed[accepted][:, 3:].any()  # after the root only eos
    longest = BracketConstraint(VOCAB, torch.tensor([num_words]), max_depth=max_depth)
    assert len(levels) == int(longest.max_length()[0])  # prefixes up to max_length - 1


def test_vocabulary_without_a_closing_for_a_label_never_opens_it():
    vocab = ["</s>", "(A", "(B", ")A", "XX"]  # nothing closes B
    constraint = BracketConstraint(vocab, torch.tensor([2]))
    state = constraint.start(1, CPU)
    for token in ["(A", "XX"]:
        assert not constraint.allowed(state)[0, 2]
        state = constraint.advance(state, torch.tensor([vocab.index(token)]))
    assert constraint.allowed(state)[0].tolist() == [False, True, False, False, True]


# -- random walks and beam search ----------------------------------------------------------


def decode(tokens: list[int]) -> list[str]:
    assert tokens[-1] == EOS
    return [VOCAB[i] for i in tokens[:-1]]


@pytest.mark.parametrize("max_depth", [2, 30])
def test_random_walks_end_well_formed(max_depth):
    generator = torch.Generator().manual_seed(max_depth)
    num_words = torch.arange(1, 201) % 7 + 1
    constraint = BracketConstraint(VOCAB, num_words, max_depth=max_depth)
    state = constraint.start(len(num_words), CPU)
    walks = torch.full((len(num_words), int(constraint.max_length().max())), -1)
    done = torch.zeros(len(num_words), dtype=torch.bool)
    for at in range(walks.shape[1]):
        allowed = constraint.allowed(state)
        assert allowed[~done].any(1).all()
        token = torch.multinomial(allowed.double(), 1, generator=generator).squeeze(1)
        token = torch.where(done, EOS, token)
        walks[:, at] = torch.where(done, -1, token)
        state = constraint.advance(state, token)
        done |= token == EOS
    assert done.all()
    for walk, n in zip(walks.tolist(), num_words.tolist(), strict=True):
        assert well_formed(decode([t for t in walk if t >= 0]), n, max_depth)


def random_step(seed: int):
    """A step function with random next-token log-probs given the last token."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(len(VOCAB), len(VOCAB), generator=generator).log_softmax(-1)
    return lambda tokens, state: (table[tokens], state)


@pytest.mark.parametrize("seed", [0, 1])
def test_beam_search_returns_only_trees_over_each_sentence(seed):
    num_words = torch.tensor([1, 4, 2, 6])
    constraint = BracketConstraint(VOCAB, num_words, max_depth=4)
    limits = constraint.max_length()
    result = beam_search(
        random_step(seed), None, 4, beam=5, max_length=limits, bos=BOS, eos=EOS,
        constraint=constraint, length_penalty=1.0,
    )  # fmt: skip
    assert result.finished.all()
    for hyps, n in zip(result.to_lists(), num_words.tolist(), strict=True):
        assert len({tuple(h) for h in hyps}) == 5
        assert all(well_formed(decode(h), n, 4) for h in hyps)
    greedy = greedy_search(random_step(seed), None, 4, limits, BOS, EOS, constraint=constraint)
    assert greedy.finished.all()
    for (tokens,), n in zip(greedy.to_lists(), num_words.tolist(), strict=True):
        assert well_formed(decode(tokens), n, 4)


def test_constrained_beam_finds_the_best_tree():
    # Beam large enough to keep every prefix: the best allowed sequence, by brute force.
    step = random_step(2)
    constraint = BracketConstraint(VOCAB, torch.tensor([2]), max_depth=2)
    result = beam_search(
        step, None, 1, beam=200, max_length=constraint.max_length(), bos=BOS, eos=EOS,
        nbest=3, constraint=constraint,
    )  # fmt: skip
    trees = [p for level in allowed_prefixes(constraint) for p in level]
    trees = [p for p in trees if well_formed([VOCAB[i] for i in p], 2, 2)]
    assert max(len(level) for level in allowed_prefixes(constraint)) <= 200
    scores = []
    for tree in trees:
        tokens = torch.tensor([BOS, *tree, EOS])
        scores.append(float(step(tokens[:-1], None)[0].gather(1, tokens[1:, None]).sum()))
    best = sorted(zip(scores, trees, strict=True), reverse=True)[:3]
    assert result.to_lists()[0] == [[*tree, EOS] for _, tree in best]
    torch.testing.assert_close(result.log_probs[0], torch.tensor([s for s, _ in best]))


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(vocab="(A )A XX </s>"), "vocab"),
        (dict(vocab=["(A", "(A", ")", "XX", "</s>"]), "distinct"),
        (dict(vocab=["(A", ")", "XX"]), "eos"),
        (dict(vocab=["(A", ")", "</s>"]), "word"),
        (dict(vocab=["(A", ")B", "XX", "</s>"]), "no opening token"),
        (dict(eos="(A"), "eos"),
        (dict(num_words=torch.tensor([2, 0])), "num_words"),
        (dict(num_words=torch.tensor([2.0])), "num_words"),
        (dict(num_words=torch.tensor([[2]])), "num_words"),
        (dict(num_words=[2]), "num_words"),
        (dict(max_depth=0), "max_depth"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    options = dict(vocab=VOCAB, num_words=torch.tensor([2]))
    options.update(arguments)
    with pytest.raises(ValueError, match=message):
        BracketConstraint(**options)


def test_start_with_another_batch_size_raises():
    with pytest.raises(ValueError, match="batch_size"):
        BracketConstraint(VOCAB, torch.tensor([2, 3])).start(3, CPU)
