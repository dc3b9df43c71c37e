"""Sequence tagging: corpora, tagging schemes and their constraints, span metrics, the tagger.

The names below load on first use: the readers, schemes and metrics import no torch.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names

_HOMES = {
    "Sentence": ".corpus",
    "Vocabulary": ".corpus",
    "read_atis": ".corpus",
    "read_conll": ".corpus",
    "read_conllu": ".corpus",
    "read_jsonl": ".corpus",
    "read_slot_folder": ".corpus",
    "TaggingFiles": ".datasets",
    "load_tagging": ".datasets",
    "bio_to_bioes": ".metrics",
    "bioes_to_bio": ".metrics",
    "extract_spans": ".metrics",
    "iob1_to_bio": ".metrics",
    "label_scores": ".metrics",
    "span_scores": ".metrics",
    "allowed_transitions": ".schemes",
    "detect_scheme": ".schemes",
}
__all__ = [
    "Sentence",
    "TaggingFiles",
    "Vocabulary",
    "allowed_transitions",
    "bio_to_bioes",
    "bioes_to_bio",
    "detect_scheme",
    "extract_spans",
    "iob1_to_bio",
    "label_scores",
    "load_tagging",
    "read_atis",
    "read_conll",
    "read_conllu",
    "read_jsonl",
    "read_slot_folder",
    "span_scores",
]


__getattr__, __dir__ = lazy_names(__name__, _HOMES)

if TYPE_CHECKING:
    from .corpus import (
        Sentence,
        Vocabulary,
        read_atis,
        read_conll,
        read_conllu,
        read_jsonl,
        read_slot_folder,
    )
    from .datasets import TaggingFiles, load_tagging
    from .metrics import (
        bio_to_bioes,
        bioes_to_bio,
        extract_spans,
        iob1_to_bio,
        label_scores,
        span_scores,
    )
    from .schemes import allowed_transitions, detect_scheme
