"""Tag raw text with a saved tagger: tags, spans, confidences, n-best taggings and intent."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial

from ..batching import WINDOW, map_in_batches
from .batching import TaggingVocabulary
from .corpus import Sentence
from .model import Tagger
from .text import TOKEN_BUDGET, sentence_from_text, tagging_results


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
            character tensor holds at most `hybrid.tagging.text.MAX_WORD_CHARS` per
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
    sentences = (sentence_from_text(i, text, with_features) for i, text in enumerate(texts))
    model.eval()
    tag = partial(tag_batch, model, vocabulary, k)
    return map_in_batches(tag, sentences, lambda s: len(s.words), budget, window)


def tag_batch(
    model: Tagger, vocabulary: TaggingVocabulary, k: int | None, sentences: list[Sentence]
) -> list[dict]:
    """The result dictionaries of one batch of sentences, as `tag_texts` returns them."""
    out = model.predict(vocabulary.batch(sentences, with_labels=False), k)
    return tagging_results(sentences, out, vocabulary.tags, vocabulary.intents, model.config.scheme)
