"""Between text and a parser's arrays, without torch: what a trained parser and an exported
one (`hybrid.deploy`) share.

`words_and_tags` reads one line of ``hybrid parse``'s input, `encode_sentences` pads sentences
into the index arrays the parser's encoder reads (NumPy, laid out as
`hybrid.parsing.data.collate` lays out its tensors), `decoded_parse` turns a
sequence-to-sequence decoder's output token ids, and `chart_parse` a chart parser's best
spans, into the `Parse` (tree, tokens, well-formedness) of a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..vocabulary import Vocabulary
from .linearize import delinearize, well_formed
from .spans import spans_tree
from .tree import Tree

__all__ = [
    "MAX_CHARS",
    "WORD_BUDGET",
    "Parse",
    "chart_parse",
    "decoded_parse",
    "encode_sentences",
    "words_and_tags",
]

#: Most padded source words decoded together (each with its beam of decoder states).
WORD_BUDGET = 2048

#: Most characters of a word the character encoder reads (its first ones), in training and
#: parsing alike (`hybrid.parsing.data.collate`).
MAX_CHARS = 20


@dataclass
class Parse:
    """One decoded sentence.

    Attributes:
        tree: The tree over the sentence's words (repaired if needed; preterminals are the
            given tags, or ``XX``).
        tokens: The decoder's output: a sequence-to-sequence parser's tokens, without
            ``<s>`` and ``</s>``; a chart parser's labelled spans in preorder, ``i:j:label``
            (``+`` joining a unary chain).
        well_formed: Whether ``tokens`` was a tree over the words before any repair (always
            for a chart parser).
    """

    tree: Tree
    tokens: list[str]
    well_formed: bool


def words_and_tags(where: str, text: str, with_tags: bool) -> tuple[list[str], list[str]]:
    """The words of a tokenised sentence and, ``with_tags``, the tags of its ``word/TAG``
    tokens (else an empty list).

    Raises:
        ValueError: naming ``where`` (the argument or line), for a text without words or a
            token without its tag.
    """
    tokens = text.split()
    if not tokens:
        raise ValueError(f"{where}: expected a sentence of at least one word, got {text!r}")
    if not with_tags:
        return tokens, []
    pairs = [token.rpartition("/") for token in tokens]
    bad = [
        token
        for token, (word, sep, tag) in zip(tokens, pairs, strict=True)
        if not (word and sep and tag)
    ]
    if bad:
        raise ValueError(
            f"{where}: this parser reads POS tags: give each word as word/TAG, got {bad[:5]}"
        )
    return [word for word, _, _ in pairs], [tag for _, _, tag in pairs]


def encode_sentences(
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]] | None,
    words: Vocabulary,
    chars: Vocabulary,
    tag_vocabulary: Vocabulary,
    reverse: bool,
) -> dict[str, np.ndarray]:
    """Pad ``sentences`` into the int64 arrays of `hybrid.parsing.data.collate`, each
    sentence in reading order (reversed if ``reverse``), index 0 padding: ``words``
    ``(B, S)``, ``lengths`` ``(B,)``, ``chars`` ``(B, S, C)`` (each word's first `MAX_CHARS`
    characters) and ``tags`` ``(B, S)`` (zeros without ``tags``).

    Raises:
        ValueError: No sentences, an empty sentence, or ``tags`` without one tag per word.
    """
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError("sentences must be non-empty and have at least one word each")
    if tags is not None and [len(t) for t in tags] != [len(s) for s in sentences]:
        raise ValueError("tags must have one tag per word of each sentence")
    batch, width = len(sentences), max(len(s) for s in sentences)
    longest = max(min(len(w), MAX_CHARS) for s in sentences for w in s)
    arrays = {
        "words": np.zeros((batch, width), dtype=np.int64),
        "lengths": np.array([len(s) for s in sentences], dtype=np.int64),
        "chars": np.zeros((batch, width, longest), dtype=np.int64),
        "tags": np.zeros((batch, width), dtype=np.int64),
    }
    step = -1 if reverse else 1
    for b, sentence in enumerate(sentences):
        ordered = list(sentence)[::step]
        arrays["words"][b, : len(ordered)] = words.encode(ordered)
        for i, word in enumerate(ordered):
            spelled = chars.encode(list(word[:MAX_CHARS]))
            arrays["chars"][b, i, : len(spelled)] = spelled
        if tags is not None:
            arrays["tags"][b, : len(ordered)] = tag_vocabulary.encode(list(tags[b])[::step])
    return arrays


def decoded_parse(
    ids: Sequence[int],
    targets: Vocabulary,
    sentence: Sequence[str],
    tags: Sequence[str] | None,
) -> Parse:
    """The `Parse` of ``sentence`` (with its POS ``tags`` on the preterminals, or ``XX``)
    from a decoder's output ``ids``, target token indices without ``<s>`` and ``</s>``: the
    tree `delinearize` makes of them (repaired if they are no tree over the words)."""
    tokens = targets.decode(list(ids))
    tree = delinearize(tokens, list(sentence), None if tags is None else list(tags))
    return Parse(tree, tokens, well_formed(tokens, len(sentence)))


def chart_parse(
    rows: Sequence[Sequence[int]],
    labels: Sequence[str],
    sentence: Sequence[str],
    tags: Sequence[str] | None,
) -> Parse:
    """The `Parse` of ``sentence`` (with its POS ``tags``, or ``XX``) from a chart parser's
    best tree: ``rows``, its ``2n - 1`` spans ``[i, j, label index]`` in preorder (as
    `hybrid.structured.cky` gives them), ``labels`` the span labels by index. Its tokens are
    the spans as ``i:j:label``."""
    if not rows or rows[0][0] < 0:
        raise ValueError(
            f"no tree: every labelled binary tree over {' '.join(sentence)[:60]!r} holds a "
            "forbidden span"
        )
    spans = [(i, j, labels[label]) for i, j, label in rows]
    tree = spans_tree(spans, sentence, tags)
    return Parse(tree, [f"{i}:{j}:{label.replace(' ', '+')}" for i, j, label in spans], True)
