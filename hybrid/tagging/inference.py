"""Tag raw text with a saved tagger: tags, spans, confidences, n-best taggings and intent."""

from __future__ import annotations

from collections.abc import Sequence

from .batching import TaggingVocabulary
from .corpus import Sentence
from .metrics import extract_spans
from .model import Tagger


def tag_texts(
    model: Tagger, vocabulary: TaggingVocabulary, texts: Sequence[str], k: int | None = None
) -> list[dict]:
    """Tag whitespace-tokenised ``texts``.

    Args:
        model: A trained tagger (see `hybrid.tagging.train.load_tagger`).
        vocabulary: Its vocabularies.
        texts: One sentence per string. A tagger trained with an extra token column (the POS
            tags of CoNLL-2000) needs it with every word, written ``word/FEATURE``
            (``"He/PRP reckons/VBZ ..."``).
        k: Also return the ``k`` best taggings with their scores.

    Returns:
        One dictionary per text: ``words``, ``tags``, ``spans`` (label, first and last-plus-one
        word, text), ``confidence`` (posterior probability of each chosen tag), and where
        available ``nbest`` (list of ``{"tags", "score"}``), ``intent`` and
        ``intent_confidence``.
    """
    sentences = [_sentence(text, vocabulary.features is not None) for text in texts]
    empty = [i for i, s in enumerate(sentences) if not s.words]
    if empty:
        raise ValueError(f"texts must contain at least one word each (empty: {empty[:10]})")
    model.eval()
    out = model.predict(vocabulary.batch(sentences, with_labels=False), k)
    scheme = model.config.scheme or "BIO"
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
                for label, start, end in extract_spans(tags, scheme)
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


def _sentence(text: str, with_features: bool) -> Sentence:
    """A whitespace-tokenised sentence; ``word/FEATURE`` tokens when features are needed."""
    tokens = text.split()
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
            f"this tagger reads a feature with every word: write tokens as word/FEATURE "
            f"(e.g. 'reckons/VBZ'); got {bad[:5]}"
        )
    return Sentence(tuple(w for w, _, _ in pairs), features=tuple(f for _, _, f in pairs))
