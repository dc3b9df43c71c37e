"""Trees as token sequences, and back (Vinyals et al., 2015, "Grammar as a Foreign Language").

`linearize` writes a tree depth first: an opening token ``(LABEL`` for each phrase, ``XX`` for
each word (its POS tag normalised away), and a closing token, ``)LABEL`` (labelled) or ``)``::

    (S (NP (DT the) (NN dog)) (VP (VBZ barks)))  ->  (S (NP XX XX )NP (VP XX )VP )S

`delinearize` puts the words back under the ``XX`` tokens. A decoder's output is not always a
tree; `well_formed` says whether it is, and `delinearize` repairs what it is not, in this
order, token by token:

1. tokens that are neither brackets nor ``XX`` (padding, sentence markers) are skipped;
2. a closing bracket with no open phrase is dropped; a labelled one closes the innermost open
   phrase whatever its label (the opening label wins); an opening bracket while ``max_depth``
   phrases are open is dropped, with the closing bracket that would close it;
3. an ``XX`` beyond the number of words is dropped, and so is a phrase left empty (one with no
   word inside);
4. at the end, the words no ``XX`` took are attached, in order, to the outermost phrase (the
   root); phrases still open are closed;
5. several top-level phrases (or words outside any phrase) are put under one root labelled
   ``root_label``.

So ``delinearize`` returns a tree over exactly the given words for any token sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..vocabulary import str_tuple
from .tree import Tree, is_word

__all__ = ["WORD", "delinearize", "linearize", "well_formed"]

WORD = "XX"


def linearize(tree: Tree, labelled_closing: bool = True) -> list[str]:
    """The tokens of ``tree``: ``(LABEL``, ``XX`` per word, ``)LABEL`` (or ``)``).

    Preterminals become ``XX``; a word directly under a phrase also becomes ``XX``.

    Raises:
        ValueError: ``tree`` is not a `Tree`, or a phrase label is empty (collapse the PTB's
            unlabelled root first).
    """
    if not isinstance(tree, Tree):
        raise ValueError(f"tree must be a Tree, got {type(tree).__name__}")
    tokens: list[str] = []
    stack: list[Tree | str] = [tree]  # subtrees to write, and tokens to copy
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            tokens.append(item)
        elif item.is_preterminal():
            tokens.append(WORD)
        elif not item.label:
            raise ValueError(f"a phrase has an empty label in {item}; collapse the root first")
        else:
            tokens.append("(" + item.label)
            stack.append(")" + item.label if labelled_closing else ")")
            stack.extend(WORD if isinstance(c, str) else c for c in reversed(item.children))
    return tokens


def well_formed(tokens: Sequence[str], num_words: int, max_depth: int = 50) -> bool:
    """Whether ``tokens`` is exactly one tree with ``num_words`` words and no repair needed.

    One phrase at the top; every closing bracket closes an open phrase (a labelled one, a
    phrase of its label); no empty phrase; no token that is not a bracket or ``XX``; exactly
    ``num_words`` ``XX``; at most ``max_depth`` phrases open at once (as `delinearize` keeps).

    Raises:
        ValueError: ``tokens`` is one str, or holds something that is not a str.
    """
    tokens = str_tuple(tokens, "tokens")
    stack: list[list] = []  # [label, has content]
    words = 0
    closed_root = False
    for token in tokens:
        if closed_root:
            return False
        if token == WORD:
            if not stack:
                return False
            stack[-1][1] = True
            words += 1
        elif token.startswith("(") and len(token) > 1:
            if not stack and words:
                return False
            if len(stack) == max_depth:
                return False
            if stack:
                stack[-1][1] = True
            stack.append([token[1:], False])
        elif token.startswith(")"):
            if not stack or not stack[-1][1] or token not in (")", ")" + stack[-1][0]):
                return False
            stack.pop()
            closed_root = not stack
        else:
            return False
    return closed_root and words == num_words


def delinearize(
    tokens: Sequence[str],
    words: Sequence[str],
    tags: Sequence[str] | None = None,
    root_label: str = "S",
    max_depth: int = 50,
) -> Tree:
    """The tree of ``tokens`` over ``words``, repaired as the module docstring says.

    Args:
        tokens: Linearized tree tokens (a decoder's output, special tokens allowed).
        words: The sentence.
        tags: POS tag of each word for the preterminals (``None``: ``XX``).
        root_label: Label of the root added over several top-level pieces.
        max_depth: Most phrases open at once (deeper brackets are dropped).

    Raises:
        ValueError: ``tokens``, ``words`` or ``tags`` given as one str or holding something
            that is not a str (naming its position); a word or tag that is empty or holds
            whitespace or brackets (a `Tree` could not hold it: write ``-LRB-`` and ``-RRB-``
            for brackets); no words; ``tags`` of another length than ``words``; or
            ``max_depth < 1``.
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise ValueError(f"max_depth must be a positive integer, got {max_depth!r}")
    tokens = str_tuple(tokens, "tokens")
    words = _leaves("words", words)
    if len(words) == 0:
        raise ValueError("words must hold at least one word")
    if tags is not None:
        tags = _leaves("tags", tags)
        if len(tags) != len(words):
            raise ValueError(f"tags must have one tag per word ({len(words)}), got {len(tags)}")
    tags = [WORD] * len(words) if tags is None else tags
    leaves = [Tree(tag, [word]) for word, tag in zip(words, tags, strict=True)]
    top: list[Tree] = []
    stack: list[tuple[str, list[Tree]]] = []
    used = dropped = 0
    for token in tokens:
        if token == WORD and used < len(leaves):
            (stack[-1][1] if stack else top).append(leaves[used])
            used += 1
        elif token.startswith("(") and len(token) > 1:
            if len(stack) < max_depth:
                stack.append((token[1:], []))
            else:
                dropped += 1
        elif token.startswith(")") and dropped:
            dropped -= 1
        elif token.startswith(")") and stack:
            _close(stack, top)
    while stack:
        _close(stack, top)
    rest = leaves[used:]
    if len(top) == 1 and not top[0].is_preterminal():
        return Tree(top[0].label, [*top[0].children, *rest]) if rest else top[0]
    return Tree(root_label, [*top, *rest])


def _close(stack: list[tuple[str, list[Tree]]], top: list[Tree]) -> None:
    """Close the innermost open phrase; an empty one is dropped."""
    label, children = stack.pop()
    if children:
        (stack[-1][1] if stack else top).append(Tree(label, children))


def _leaves(name: str, values: Sequence[str]) -> tuple[str, ...]:
    """``values`` (words or tags) as a tuple of strs that a `Tree` can hold (see `is_word`);
    ValueError naming ``name`` or the position of the first that is not."""
    values = str_tuple(values, name)
    for position, value in enumerate(values):
        if not is_word(value):
            raise ValueError(
                f"{name}[{position}] must be a non-empty str without whitespace or brackets "
                f"(write -LRB- and -RRB- for brackets), got {value!r}"
            )
    return values
