"""Between text and a tagger's arrays, without torch: what a trained tagger and an exported
one (`hybrid.deploy`) share.

`sentence_from_text` reads one line of input, `encode_sentences` pads sentences into the
index arrays a tagger reads (NumPy; `hybrid.tagging.batching` wraps them as tensors), and
`tagging_results` turns a batch of outputs into the dictionaries ``hybrid tag`` prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..vocabulary import Vocabulary
from .corpus import Sentence
from .metrics import extract_spans

_DIGITS = re.compile(r"\d")

#: Most characters of a word the character encoder reads: a longer word (a URL, a run of
#: characters without spaces) is read as its first and last ``MAX_WORD_CHARS // 2``, its
#: prefix and suffix, in training and tagging alike. This bounds a batch's character tensor
#: to ``MAX_WORD_CHARS`` characters per padded word, whatever the input. Every word of ATIS
#: and CoNLL-2000 is read whole (their longest have 16 and 54 characters).
MAX_WORD_CHARS = 64

#: Most padded word positions tagged together (a few megabytes of activations and marginals).
TOKEN_BUDGET = 8192


def word_characters(word: str) -> str:
    """The characters of ``word`` the character encoder reads: all of them, or for a word
    longer than `MAX_WORD_CHARS` its first and last ``MAX_WORD_CHARS // 2``."""
    if len(word) <= MAX_WORD_CHARS:
        return word
    half = MAX_WORD_CHARS // 2
    return word[:half] + word[-half:]


def normalise_word(word: str) -> str:
    """Word-embedding key of a token: lower case, every digit mapped to ``0``.

    Case and digits stay visible to the character encoder, which reads the raw token.
    """
    return _DIGITS.sub("0", word.lower())


def sentence_from_text(index: int, text: str, with_features: bool) -> Sentence:
    """Text number ``index`` as a whitespace-tokenised sentence; ``word/FEATURE`` tokens when
    ``with_features``.

    Raises:
        ValueError: naming ``texts[index]``, for a text without words or, with features, a
            token that is not ``word/FEATURE``.
    """
    tokens = text.split()
    if not tokens:
        raise ValueError(f"texts[{index}]: expected at least one word, got {text!r}")
    if not with_features:
        return Sentence(tuple(tokens))
    pairs = [token.rpartition("/") for token in tokens]
    bad = [
        token
        for token, (word, slash, _) in zip(tokens, pairs, strict=True)
        if not word or not slash
    ]
    if bad:
        raise ValueError(
            f"texts[{index}]: this tagger reads a feature with every word: write tokens as "
            f"word/FEATURE (e.g. 'reckons/VBZ'); got {bad[:5]}"
        )
    return Sentence(tuple(w for w, _, _ in pairs), features=tuple(f for _, _, f in pairs))


def encode_sentences(
    sentences: Sequence[Sentence],
    words: Vocabulary,
    chars: Vocabulary,
    features: Vocabulary | None = None,
) -> dict[str, np.ndarray]:
    """Pad ``sentences`` into int64 arrays: ``words`` ``(B, T)``, ``lengths`` ``(B,)``,
    ``chars`` ``(B, T, C)`` (each word's characters as `word_characters` reads them) and, with
    a ``features`` vocabulary, ``features`` ``(B, T)``; index 0 pads.

    Raises:
        ValueError: No sentences, a sentence without words, or a sentence without features
            where ``features`` is given.
    """
    if not sentences or any(len(s.words) == 0 for s in sentences):
        raise ValueError("sentences must be non-empty and have at least one word each")
    batch, longest = len(sentences), max(len(s.words) for s in sentences)
    spelled = [[word_characters(w) for w in s.words] for s in sentences]
    widest = max(len(w) for words_ in spelled for w in words_)
    arrays = {
        "words": np.zeros((batch, longest), dtype=np.int64),
        "lengths": np.array([len(s.words) for s in sentences], dtype=np.int64),
        "chars": np.zeros((batch, longest, widest), dtype=np.int64),
    }
    if features is not None:
        arrays["features"] = np.zeros((batch, longest), dtype=np.int64)
    for b, sentence in enumerate(sentences):
        n = len(sentence.words)
        arrays["words"][b, :n] = words.encode([normalise_word(w) for w in sentence.words])
        for t, word in enumerate(spelled[b]):
            arrays["chars"][b, t, : len(word)] = chars.encode(list(word))
        if features is not None:
            if sentence.features is None:
                raise ValueError("this vocabulary needs sentences with features")
            arrays["features"][b, :n] = features.encode(list(sentence.features))
    return arrays


def tagging_results(
    sentences: Sequence[Sentence],
    outputs: Mapping[str, Any],
    tags: Vocabulary,
    intents: Vocabulary | None,
    scheme: str | None,
) -> list[dict]:
    """One dictionary per sentence from a batch of tagger outputs (tensors or arrays, as
    `hybrid.tagging.model.Tagger.predict` names them): ``words``, ``tags``, ``spans`` (label,
    first and last-plus-one word, text), ``confidence`` and, where the outputs have them,
    ``nbest`` (``{"tags", "score"}``, best first), ``intent`` and ``intent_confidence``."""
    results = []
    for b, sentence in enumerate(sentences):
        n = len(sentence.words)
        labels = tags.decode(outputs["tags"][b, :n].tolist())
        result = {
            "words": list(sentence.words),
            "tags": labels,
            "spans": [
                {
                    "label": label,
                    "start": start,
                    "end": end,
                    "text": " ".join(sentence.words[start:end]),
                }
                for label, start, end in (extract_spans(labels, scheme) if scheme else ())
            ],
            "confidence": [round(c, 4) for c in outputs["confidence"][b, :n].tolist()],
        }
        if "nbest" in outputs:
            result["nbest"] = [
                {"tags": tags.decode(path[:n]), "score": score}
                for path, score in zip(
                    outputs["nbest"][b].tolist(), outputs["nbest_scores"][b].tolist(), strict=True
                )
                if path[0] >= 0
            ]
        if "intents" in outputs and intents is not None:
            result["intent"] = intents.decode([int(outputs["intents"][b])])[0]
            result["intent_confidence"] = round(float(outputs["intent_confidence"][b]), 4)
        results.append(result)
    return results
