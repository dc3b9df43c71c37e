"""Decoding only well-formed linearized trees: a tensorized bracket automaton for beam search.

A tree over ``n`` words is linearized (Vinyals et al., 2015) as opening tokens ``(LABEL``,
one ``XX`` per word and closing tokens ``)LABEL`` (labelled) or ``)`` (closes any bracket)::

    (S (NP XX XX )NP (VP XX (NP XX )NP )VP )S

`BracketConstraint` implements `hybrid.structured.beam.Constraint`: passed to
`hybrid.structured.beam_search` it lets every hypothesis emit only tokens after which a
well-formed tree over exactly its sequence's ``n`` words can still be completed, so every
finished hypothesis is such a tree.

The automaton, per hypothesis (all rows advance in tensor ops):

- State: the labels of the open brackets, bottom first, ``(N, max_depth)``; the depth
  ``d``; the words used ``w`` (``r = n - w`` remain); whether the innermost open bracket
  already has a child (``content``); whether the root has closed (``closed``).
- ``(LABEL`` is allowed when the root has not closed, ``r >= 1`` (the new bracket needs a
  word), ``d < max_depth`` and fewer than ``max_brackets`` brackets have opened; and only for
  labels that some closing token of the vocabulary can close (``)LABEL`` or ``)``).
- ``XX`` is allowed inside a bracket (``d >= 1``) while ``r >= 1``.
- A closing token is allowed when the innermost bracket has content and the token is ``)``
  or ``)LABEL`` of that bracket's label; the root (``d = 1``) closes only when ``r = 0``.
- ``eos`` is allowed exactly when the root has closed (then with ``r = 0``), and nothing
  else is. Every other token (``<pad>``, ``<s>``, unknown words) is never allowed.

No allowed token leads to a dead end: after any of them, emitting the remaining ``XX`` and
closing every open bracket completes a tree. Depth is at most ``max_depth`` brackets, so a
tree has at most ``1 + n * (max_depth - 1)`` brackets (and at most ``max_brackets``), and a
sequence at most `BracketConstraint.max_length` tokens: the bracket budget bounds the work of
a decoder whose model keeps opening unary chains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ..vocabulary import str_tuple

__all__ = ["BracketConstraint", "BracketState"]


class BracketState(NamedTuple):
    """The automaton state of ``N`` hypotheses (a pytree the beam search reorders).

    Attributes:
        labels: ``(N, max_depth)`` int64 label ids (>= 1) of the open brackets, bottom
            first, 0 above the depth.
        depth: ``(N,)`` int64 open brackets.
        words: ``(N,)`` int64 ``XX`` emitted so far.
        content: ``(N,)`` bool, whether the innermost open bracket has a child.
        closed: ``(N,)`` bool, whether the root bracket has closed.
        num_words: ``(N,)`` int64 words of the hypothesis' input sentence.
        opened: ``(N,)`` int64 brackets opened so far.
        max_brackets: ``(N,)`` int64 brackets the hypothesis may open in all.
    """

    labels: Tensor
    depth: Tensor
    words: Tensor
    content: Tensor
    closed: Tensor
    num_words: Tensor
    opened: Tensor
    max_brackets: Tensor


class _Tables(NamedTuple):
    """Per-token ``(V,)`` facts about the vocabulary."""

    open_label: Tensor  # int64 label id of an opening token, else 0
    openable: Tensor  # bool: an opening token whose label some closing token closes
    closing: Tensor  # bool: ``)`` or ``)LABEL``
    close_label: Tensor  # int64 label id of ``)LABEL``, else 0
    plain: Tensor  # bool: ``)``
    word: Tensor  # bool
    eos: Tensor  # bool

    def to(self, device: torch.device) -> _Tables:
        """The tables on ``device``."""
        return _Tables(*(table.to(device) for table in self))


def _tables(tokens: tuple[str, ...], word: str, eos: str) -> _Tables:
    """The token tables of ``tokens``; label ids start at 1 in sorted label order."""
    labels = sorted({t[1:] for t in tokens if t.startswith(("(", ")")) and t != ")"})
    ids = {label: i + 1 for i, label in enumerate(labels)}
    closable = {token[1:] for token in tokens if token.startswith(")") and token != ")"}
    plain = ")" in tokens
    return _Tables(
        open_label=torch.tensor([ids[t[1:]] if t.startswith("(") else 0 for t in tokens]),
        openable=torch.tensor([t.startswith("(") and (plain or t[1:] in closable) for t in tokens]),
        closing=torch.tensor([t.startswith(")") for t in tokens]),
        close_label=torch.tensor(
            [ids[t[1:]] if t.startswith(")") and t != ")" else 0 for t in tokens]
        ),
        plain=torch.tensor([t == ")" for t in tokens]),
        word=torch.tensor([t == word for t in tokens]),
        eos=torch.tensor([t == eos for t in tokens]),
    )


def _check_num_words(num_words: object) -> Tensor:
    """``num_words`` as a ``(B,)`` int64 CPU tensor of values >= 1, or a named error."""
    if (
        not isinstance(num_words, Tensor)
        or num_words.is_floating_point()
        or num_words.dtype == torch.bool
        or num_words.dim() != 1
        or len(num_words) == 0
    ):
        described = (
            f"{num_words.dtype} of shape {tuple(num_words.shape)}"
            if isinstance(num_words, Tensor)
            else type(num_words).__name__
        )
        raise ValueError(
            f"num_words must be an integer tensor of shape (B,), B >= 1, got {described}"
        )
    if bool((num_words < 1).any()):
        raise ValueError(f"num_words must be >= 1 (a tree needs a word), got {num_words.tolist()}")
    return num_words.to("cpu", torch.long)


class BracketConstraint:
    """Only well-formed linearized trees over exactly ``num_words[b]`` words (see module).

    Args:
        vocab: The decoder's tokens in id order (e.g. ``Vocabulary.tokens``): opening tokens
            start with ``(``, closing ones with ``)``; ``word`` and ``eos`` among them.
        num_words: ``(B,)`` integer tensor, words of each input sentence (>= 1).
        eos: The end token.
        word: The token for a word (POS tags normalised away).
        max_depth: Most brackets open at once (bounds the length of unary chains).
        max_brackets: Most brackets in the tree, an int or a ``(B,)`` integer tensor (>= 1);
            ``None``: only ``max_depth`` bounds them.

    Raises:
        ValueError: a vocabulary that is not distinct strings, lacks ``eos`` or ``word``,
            holds ``(`` without a label (`delinearize` skips it), or has no opening token
            that a closing token can close; bad ``num_words``;
            ``max_depth < 1``; ``max_brackets`` not >= 1 or of the wrong shape.

    Example:
        >>> vocab = ["<pad>", "</s>", "(S", "(NP", ")S", ")NP", ")", "XX"]
        >>> constraint = BracketConstraint(vocab, torch.tensor([2]))
        >>> state = constraint.start(1, torch.device("cpu"))
        >>> " ".join(vocab[i] for i in constraint.allowed(state)[0].nonzero().flatten())
        '(S (NP'
    """

    def __init__(
        self,
        vocab: Sequence[str],
        num_words: Tensor,
        eos: str = "</s>",
        word: str = "XX",
        max_depth: int = 30,
        max_brackets: int | Tensor | None = None,
    ):
        tokens = str_tuple(vocab, "vocab")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocab must hold distinct tokens")
        if "(" in tokens:
            raise ValueError(
                f"vocab[{tokens.index('(')}] is '(': an opening token needs a label, e.g. '(S'"
            )
        for name, token in (("eos", eos), ("word", word)):
            if token not in tokens or token.startswith(("(", ")")):
                raise ValueError(f"{name}={token!r} must be a vocab token that is not a bracket")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(f"max_depth must be an int >= 1, got {max_depth!r}")
        self._tables = {torch.device("cpu"): _tables(tokens, word, eos)}
        if not bool(self._tables[torch.device("cpu")].openable.any()):
            raise ValueError("vocab has no opening token that one of its closing tokens closes")
        self.num_words = _check_num_words(num_words)
        self.max_depth = max_depth
        self.max_brackets = self._bracket_budget(max_brackets)
        self.vocab_size = len(tokens)
        self.eos = tokens.index(eos)

    def _bracket_budget(self, max_brackets: int | Tensor | None) -> Tensor:
        """``(B,)`` int64 brackets each tree may hold: ``max_brackets``, capped by depth."""
        by_depth = 1 + self.num_words * (self.max_depth - 1)
        if max_brackets is None:
            return by_depth
        if isinstance(max_brackets, Tensor) and not max_brackets.is_floating_point():
            if max_brackets.shape != self.num_words.shape:
                raise ValueError(
                    f"max_brackets must have shape ({len(self.num_words)},) like num_words, "
                    f"got {tuple(max_brackets.shape)}"
                )
            budget = max_brackets.to("cpu", torch.long)
        elif isinstance(max_brackets, int) and not isinstance(max_brackets, bool):
            budget = torch.full_like(self.num_words, max_brackets)
        else:
            raise ValueError(
                f"max_brackets must be None, an int or a (B,) integer tensor, got {max_brackets!r}"
            )
        if bool((budget < 1).any()):
            raise ValueError(f"max_brackets must be >= 1 (the root), got {budget.tolist()}")
        return torch.minimum(budget, by_depth)

    def _tables_on(self, device: torch.device) -> _Tables:
        """The token tables on ``device`` (copied there once)."""
        if device not in self._tables:
            self._tables[device] = self._tables[torch.device("cpu")].to(device)
        return self._tables[device]

    def max_length(self) -> Tensor:
        """``(B,)`` int64: tokens of the longest well-formed sequence, ``eos`` included.

        ``n`` words, at most ``max_brackets`` brackets (by default ``1 + n * (max_depth -
        1)``) of two tokens each, and ``eos``: as `beam_search`'s ``max_length`` it lets
        every hypothesis finish.
        """
        return self.num_words + 2 * self.max_brackets + 1

    def start(self, batch_size: int, device: torch.device) -> BracketState:
        """The empty state of each of the ``batch_size`` sequences (leading dim ``B``)."""
        if batch_size != len(self.num_words):
            raise ValueError(
                f"batch_size must equal len(num_words) = {len(self.num_words)}, got {batch_size}"
            )
        zeros = torch.zeros(batch_size, dtype=torch.long, device=device)
        flags = torch.zeros(batch_size, dtype=torch.bool, device=device)
        return BracketState(
            labels=torch.zeros(batch_size, self.max_depth, dtype=torch.long, device=device),
            depth=zeros,
            words=zeros,
            content=flags,
            closed=flags,
            num_words=self.num_words.to(device),
            opened=zeros,
            max_brackets=self.max_brackets.to(device),
        )

    def allowed(self, cstate: BracketState) -> Tensor:
        """``(N, V)`` bool: the tokens each hypothesis may emit next (see module)."""
        tables = self._tables_on(cstate.depth.device)
        remaining = cstate.num_words - cstate.words
        inside = cstate.depth > 0
        innermost = (cstate.depth - 1).clamp(0, self.max_depth - 1)[:, None]
        top = cstate.labels.gather(1, innermost)  # (N, 1), 0 outside every bracket
        can_open = ~cstate.closed & (remaining > 0) & (cstate.depth < self.max_depth)
        can_open &= cstate.opened < cstate.max_brackets
        can_word = inside & (remaining > 0)
        can_close = inside & cstate.content & ((cstate.depth > 1) | (remaining == 0))
        matches = tables.plain | (tables.close_label == top)
        return (
            (tables.openable & can_open[:, None])
            | (tables.word & can_word[:, None])
            | (tables.closing & matches & can_close[:, None])
            | (tables.eos & cstate.closed[:, None])
        )

    def advance(self, cstate: BracketState, tokens: Tensor) -> BracketState:
        """The states after each hypothesis emits ``tokens`` ``(N,)``.

        ``tokens`` must be allowed (or ``eos``, which leaves a state as it is); other tokens
        do not raise but leave meaningless states.
        """
        tables = self._tables_on(cstate.depth.device)
        label = tables.open_label[tokens]
        opening = label > 0
        closing = tables.closing[tokens]
        word = tables.word[tokens]
        slot = torch.arange(self.max_depth, device=tokens.device)
        push = opening[:, None] & (slot == cstate.depth[:, None])
        pop = closing[:, None] & (slot == cstate.depth[:, None] - 1)
        labels = torch.where(push, label[:, None], cstate.labels.masked_fill(pop, 0))
        depth = cstate.depth + opening.long() - closing.long()
        return BracketState(
            labels=labels,
            depth=depth,
            words=cstate.words + word.long(),
            content=(cstate.content | word | closing) & ~opening,
            closed=cstate.closed | (closing & (depth == 0)),
            num_words=cstate.num_words,
            opened=cstate.opened + opening.long(),
            max_brackets=cstate.max_brackets,
        )
