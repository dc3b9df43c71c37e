"""Token vocabularies: a bijection between strings and the integer indices models consume."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Vocabulary", "str_tuple"]


def str_tuple(value: Any, name: str, length: int | None = None) -> tuple[str, ...]:
    """``value`` as a tuple of strings (optionally of a given ``length``), or a named error."""
    if isinstance(value, str):
        raise ValueError(f"{name} must be a sequence of strings, not a single string {value!r}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(item).__name__}")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have one entry per word ({length}), got {len(items)}")
    return items


_DEFAULT_SPECIALS = ("<pad>", "<unk>")
_AUTO = object()


class Vocabulary:
    """A bijection between tokens and indices ``0 .. len - 1``, specials first.

    Specials take the first indices in the order given (by default ``"<pad>" = 0`` and
    ``"<unk>" = 1``); the other tokens follow by decreasing count, ties in string order, so
    the same tokens always give the same indices.

    Args:
        tokens: The tokens to count (e.g. every word of the training set).
        min_count: Keep tokens seen at least this often (specials are always kept).
        specials: Reserved tokens; ``()`` for a label vocabulary.
        unk: The special that unknown tokens map to. By default ``"<unk>"`` when it is among
            ``specials``, else ``None``: then `index` raises ``ValueError`` for an unknown
            token, which is what a label vocabulary needs.

    Raises:
        ValueError: for non-string tokens, ``min_count < 1``, repeated specials, or an
            ``unk`` that is not one of the ``specials``.

    Example:
        >>> words = Vocabulary(["a", "b", "a"])
        >>> words.encode(["a", "zzz"])
        [2, 1]
        >>> labels = Vocabulary(["O", "B-X", "O"], specials=())
        >>> labels.tokens
        ['O', 'B-X']
    """

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        min_count: int = 1,
        specials: Sequence[str] = _DEFAULT_SPECIALS,
        unk: Any = _AUTO,
    ) -> None:
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
        specials = str_tuple(specials, "specials")
        if isinstance(tokens, str):
            raise ValueError("tokens must be an iterable of strings, not a single string")
        counts: Counter[str] = Counter()
        for i, token in enumerate(tokens):
            if not isinstance(token, str):
                raise ValueError(f"tokens[{i}] must be a string, got {type(token).__name__}")
            counts[token] += 1
        reserved = set(specials)
        kept = [t for t, c in counts.items() if c >= min_count and t not in reserved]
        kept.sort(key=lambda t: (-counts[t], t))
        if unk is _AUTO:
            unk = "<unk>" if "<unk>" in reserved else None
        self._setup(list(specials) + kept, specials, unk)

    def _setup(self, itos: list[str], specials: tuple[str, ...], unk: str | None) -> None:
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials must be distinct, got {list(specials)}")
        if unk is not None and unk not in specials:
            raise ValueError(f"unk must be one of specials {list(specials)} or None, got {unk!r}")
        self._itos = itos
        self._stoi = {token: i for i, token in enumerate(itos)}
        if len(self._stoi) != len(itos):
            raise ValueError("tokens must be distinct")
        self._specials = specials
        self._unk = unk

    @property
    def tokens(self) -> list[str]:
        """All tokens in index order, specials first (a copy)."""
        return list(self._itos)

    @property
    def specials(self) -> tuple[str, ...]:
        """The reserved tokens, which hold indices ``0 .. len(specials) - 1``."""
        return self._specials

    @property
    def unk_index(self) -> int | None:
        """Index that unknown tokens map to, or ``None`` when unknown tokens are an error."""
        return None if self._unk is None else self._stoi[self._unk]

    @property
    def pad_index(self) -> int | None:
        """Index of ``"<pad>"`` (e.g. for ``nn.Embedding(padding_idx=...)``), or ``None``."""
        return self._stoi.get("<pad>") if "<pad>" in self._specials else None

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self._itos, self._specials, self._unk) == (
            other._itos,
            other._specials,
            other._unk,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, specials={list(self._specials)}, unk={self._unk!r})"

    def index(self, token: str) -> int:
        """Index of ``token``; the ``unk`` index for an unknown token.

        Raises:
            ValueError: naming the token when it is unknown and the vocabulary has no ``unk``.
        """
        i = self._stoi.get(token)
        if i is not None:
            return i
        if self._unk is None:
            raise ValueError(f"token {token!r} is not in the vocabulary (and it has no unk)")
        return self._stoi[self._unk]

    def token(self, index: int) -> str:
        """The token at ``index`` (``0 <= index < len``).

        Raises:
            ValueError: if ``index`` is not an integer in range.
        """
        try:
            i = operator.index(index)
        except TypeError:
            raise ValueError(f"index must be an integer, got {type(index).__name__}") from None
        if not 0 <= i < len(self._itos):
            raise ValueError(f"index must be in [0, {len(self._itos)}), got {i}")
        return self._itos[i]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of ``tokens``, one per token (see `index`)."""
        if isinstance(tokens, str):
            raise ValueError("tokens must be an iterable of strings, not a single string")
        return [self.index(t) for t in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        """Tokens at ``indices`` (Python ints, NumPy ints or 0-d integer tensors)."""
        return [self.token(i) for i in indices]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description: ``{"tokens", "specials", "unk"}``."""
        return {"tokens": list(self._itos), "specials": list(self._specials), "unk": self._unk}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild the exact vocabulary (same indices) that `to_dict` described.

        Raises:
            ValueError: if ``data`` lacks a key, has wrong types, repeats a token, or its
                tokens do not start with its specials.
        """
        if not isinstance(data, dict) or not {"tokens", "specials", "unk"} <= data.keys():
            raise ValueError("data must be a dict with keys 'tokens', 'specials' and 'unk'")
        tokens = str_tuple(data["tokens"], "data['tokens']")
        specials = str_tuple(data["specials"], "data['specials']")
        unk = data["unk"]
        if unk is not None and not isinstance(unk, str):
            raise ValueError(f"data['unk'] must be a string or None, got {unk!r}")
        if tokens[: len(specials)] != specials:
            raise ValueError("data['tokens'] must start with data['specials']")
        vocab = cls.__new__(cls)
        vocab._setup(list(tokens), specials, unk)
        return vocab
