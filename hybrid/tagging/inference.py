"""Tag raw text with a saved tagger: tags, spans, confidences, n-best taggings and intent."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial

from ..batching import WINDOW, map_in_batches
from .batching import TaggingVocabulary
from .corpus import Sentence
from .metrics import extract_spans
from .model import Tagger

#: Most padded word positions tagged together (a few megabytes of activations and marginals).
TOKEN_BUDGET = 8192


def tag_texts(
    model: Tagger,
    vocabulary: TaggingVocabulary,
    texts: Iterable[str],
    k: int | None = None,
    budget: int = TOKEN_BUDGET,
) -> list[dict]:
    """Tag whitespace-tokenised ``texts`` (`tag_stream`, all at once).

    Args:
        model: A trained tagger (see `hybrid.tagging.model.Tagger.load`).
        vocabulary: Its vocabularies (``model.vocabulary``).
        texts: One sentence per string. A tagger trained with an extra token column (the POS
            tags of CoNLL-2000) needs it with every word, written ``word/FEATURE``
            (``"He/PRP reckons/VBZ ..."``).
        k: Also return the ``k`` best taggings with their scores. The k-best decoder holds
            ``k`` x tags x tags scores per word of a batch, so memory grows with ``k``
            (``k = 100000`` takes gigabytes on a tagger of 120 tags); ``hybrid tag --k``
            allows 1 to 100.
        budget: Most padded word positions (texts times longest text) in one batch; the
            character tensor holds at most `hybrid.tagging.batching.MAX_WORD_CHARS` per
            position, however long a word.

    Returns:
        One dictionary per text: ``words``, ``tags``, ``spans`` (label, first and last-plus-one
        word, text), ``confidence`` (posterior probability of each chosen tag), and where
        available ``nbest`` (list of ``{"tags", "score"}``, best first), ``intent`` and
        ``intent_confidence``.

    Raises:
        ValueError: naming ``texts[i]`` for a text without words or, for a tagger that reads
            features, a token that is not ``word/FEATURE``; ``budget`` below 1.
    """
    return list(tag_stream(model, vocabulary, texts, k, budget))


def tag_stream(
    model: Tagger,
    vocabulary: TaggingVocabulary,
    texts: Iterable[str],
    k: int | None = None,
    budget: int = TOKEN_BUDGET,
    window: int = WINDOW,
) -> Iterator[dict]:
    """`tag_texts`, lazily, in bounded memory: the texts (any iterable: a file, standard
    input) are read ``window`` at a time, sorted by length and tagged in batches of at most
    ``budget`` padded words (a longer text alone); the results come in the order of
    ``texts`` as each window is done (see `hybrid.batching.map_in_batches`).

    Raises:
        ValueError: ``budget`` or ``window`` below 1 (at once); those of `tag_texts` when the
            text is reached.
    """
    with_features = vocabulary.features is not None
    sentences = (_sentence(i, text, with_features) for i, text in enumerate(texts))
    model.eval()
    tag = partial(_tag_batch, model, vocabulary, k)
    return map_in_batches(tag, sentences, lambda s: len(s.words), budget, window)


def _tag_batch(
    model: Tagger, vocabulary: TaggingVocabulary, k: int | None, sentences: list[Sentence]
) -> list[dict]:
    """The result dictionaries of one batch of sentences (see `tag_texts`)."""
    out = model.predict(vocabulary.batch(sentences, with_labels=False), k)
    scheme = model.config.scheme
    results = []
    for b, sentence in enumerate(sentences):
        n = len(sentence.words)
        tags = vocabulary.tags.decode(out["tags"][b, :n].tolist())
        result = {
            "words": list(sentence.words),
            "tags": tags,
            "spans": [
                {
                    "label": label,
                    "start": start,
                    "end": end,
                    "text": " ".join(sentence.words[start:end]),
                }
                for label, start, end in (extract_spans(tags, scheme) if scheme else ())
            ],
            "confidence": [round(c, 4) for c in out["confidence"][b, :n].tolist()],
        }
        if "nbest" in out:
            result["nbest"] = [
                {"tags": vocabulary.tags.decode(path[:n]), "score": score}
                for path, score in zip(
                    out["nbest"][b].tolist(), out["nbest_scores"][b].tolist(), strict=True
                )
                if path[0] >= 0
            ]
        if "intents" in out:
            result["intent"] = vocabulary.intents.decode([int(out["intents"][b])])[0]
            result["intent_confidence"] = round(float(out["intent_confidence"][b]), 4)
        results.append(result)
    return results


def _sentence(index: int, text: str, with_features: bool) -> Sentence:
    """Text number ``index`` as a whitespace-tokenised sentence; ``word/FEATURE`` tokens when
    features are needed."""
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
